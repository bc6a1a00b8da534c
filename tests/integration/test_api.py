"""The REST API: authentication, parameter validation, pagination, sky searches, the portal's own
resources on an ingested sample archive, the OpenAPI schema, and the create_api_key command."""
from __future__ import annotations

import json
import math
import random
import shutil
from collections import Counter

import astropy.units as u
import pytest
from astropy.coordinates import SkyCoord
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token

from rawdata.sample import corrupt_helpers
from survey.api import keys
from survey.api.pagination import PortalPagination
from survey.api.views import catalogued_frame_count
from survey.models import ApiKey, Frame, IngestRun, NightFolder, NightUnitStats
from tests.integration.conftest import run_command
from tests.integration.test_pipeline_contract import ArchiveBuilder, PipelineStyleClient, api_key

pytestmark = pytest.mark.django_db


def get(path: str, key: str | None = None, **params):
    headers = {"Accept": "application/json"}
    if key:
        headers["X-API-Key"] = key
    return Client().get(path, params, headers=headers)


def walk(path: str, key: str, page_size: int, **params) -> list[dict]:
    """Every row of a listing, page by page, asserting the page arithmetic on the way."""
    first = get(path, key, page_size=page_size, **params).json()
    rows = list(first["results"])
    assert first["num_pages"] == max(1, math.ceil(first["count"] / page_size))
    for page in range(2, first["num_pages"] + 1):
        body = get(path, key, page_size=page_size, page=page, **params).json()
        assert body["count"] == first["count"]
        rows.extend(body["results"])
    assert len(rows) == first["count"]
    return rows


@pytest.fixture
def key() -> str:
    return api_key("tester")


@pytest.fixture
def builder(tmp_path) -> ArchiveBuilder:
    return ArchiveBuilder(tmp_path / "obsdata")


# -- authentication --------------------------------------------------------------------------------
ENDPOINTS = [
    "/api/frames/raw/", "/api/tiles/", "/api/targets/", "/api/frames/processed/", "/api/master/flat/",
    "/api/frames/", "/api/nights/", "/api/runs/", "/api/problems/", "/api/stats/", "/api/folders/",
    "/api/schema/",
]  # fmt: skip


@pytest.mark.parametrize("path", ENDPOINTS)
def test_missing_key_is_a_401_json_not_a_redirect(path):
    response = get(path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "X-API-Key"
    assert response.json() == {"error": "Authentication credentials were not provided."}


def test_wrong_revoked_and_inactive_keys_are_refused(key):
    assert get("/api/tiles/", key).status_code == 200
    wrong = get("/api/tiles/", "gwp_" + "x" * 43)
    assert wrong.status_code == 401 and wrong.json() == {"error": "Invalid API key."}
    keys.revoke_key(ApiKey.objects.get(key_hash=ApiKey.hash_key(key)).prefix)
    assert get("/api/tiles/", key).status_code == 401
    other = api_key("leaver")
    get_user_model().objects.filter(username="leaver").update(is_active=False)
    assert get("/api/tiles/", other).status_code == 401
    # A wrong key is refused even next to a valid session: it is never silently anonymous or ignored.
    client = Client()
    client.force_login(get_user_model().objects.get(username="tester"))
    assert client.get("/api/tiles/", headers={"X-API-Key": "gwp_nope"}).status_code == 401


def test_key_records_its_last_use(key):
    assert ApiKey.objects.get(key_hash=ApiKey.hash_key(key)).last_used_at is None
    get("/api/tiles/", key)
    assert ApiKey.objects.get(key_hash=ApiKey.hash_key(key)).last_used_at is not None


def test_token_and_session_authentication():
    user = get_user_model().objects.create_user("human")  # no password: hashing one costs a second
    token = Token.objects.create(user=user)
    assert Client().get("/api/nights/", headers={"Authorization": f"Token {token.key}"}).status_code == 200
    assert Client().get("/api/nights/", headers={"Authorization": "Token bogus"}).status_code == 401
    client = Client()
    client.force_login(user)
    assert client.get("/api/nights/").status_code == 200


def test_api_is_read_only(key):
    for method in ("post", "put", "patch", "delete"):
        response = getattr(Client(), method)("/api/frames/raw/", headers={"X-API-Key": key})
        assert response.status_code == 405, method
        assert "error" in response.json()


# -- parameters ------------------------------------------------------------------------------------
BAD = [
    ("/api/frames/raw/", {"date_start": "2025-13-45"}, "date_start"),
    ("/api/frames/raw/", {"date_end": "tomorrow"}, "date_end"),
    ("/api/frames/raw/", {"night_date": "2025-02-30"}, "night_date"),
    ("/api/frames/raw/", {"night_date": "2025-02-03T01:00:00"}, "night_date"),
    ("/api/frames/raw/", {"ra": "abc", "dec": "1"}, "ra"),
    ("/api/frames/raw/", {"ra": "nan", "dec": "1"}, "ra"),
    ("/api/frames/raw/", {"ra": "10", "dec": "95"}, "dec"),
    ("/api/frames/raw/", {"ra": "10"}, "dec"),
    ("/api/frames/raw/", {"ra": "10", "dec": "0", "radius": "-1"}, "radius"),
    ("/api/frames/raw/", {"ra": "10", "dec": "0", "radius": "181"}, "radius"),
    ("/api/frames/raw/", {"radius": "1"}, "radius"),
    ("/api/frames/raw/", {"coord_sys": "equatorial", "ra": "1", "dec": "1"}, "coord_sys"),
    ("/api/frames/raw/", {"coord_sys": "galactic", "gl": "1"}, "gb"),
    ("/api/frames/raw/", {"polygon": "[[0,0],[1,1]"}, "polygon"),
    ("/api/frames/raw/", {"polygon": "[[0,0],[1,1]]"}, "polygon"),
    ("/api/frames/raw/", {"polygon": "[[0,-80],[120,-80],[240,-80]]"}, "polygon"),
    ("/api/frames/raw/", {"image_type": "light"}, "image_type"),
    ("/api/frames/raw/", {"binning": "1x2"}, "binning"),
    ("/api/frames/raw/", {"days": "-1"}, "days"),
    ("/api/frames/raw/", {"exptime": "long"}, "exptime"),
    ("/api/frames/raw/", {"gain": "high"}, "gain"),
    ("/api/frames/raw/", {"page_size": "0"}, "page_size"),
    ("/api/frames/raw/", {"page_size": "lots"}, "page_size"),
    ("/api/frames/raw/", {"page": "0"}, "page"),
    ("/api/frames/raw/", {"page": "-2"}, "page"),
    ("/api/frames/processed/", {"page_size": "0"}, "page_size"),
    ("/api/frames/", {"count": "maybe"}, "count"),
    ("/api/frames/", {"excluded": "perhaps"}, "excluded"),
    ("/api/tiles/", {"all": "perhaps"}, "all"),
    ("/api/tiles/", {"ra": "1", "dec": "1", "radius": "-0.5"}, "radius"),
    ("/api/targets/", {"target_type": "ALIEN"}, "target_type"),
    ("/api/nights/", {"date_start": "2025-1-x"}, "date_start"),
    ("/api/nights/2025-13-45/", {}, "date"),
    ("/api/runs/", {"status": "sleeping"}, "status"),
]


@pytest.mark.parametrize("path,params,name", BAD, ids=[f"{p}{list(q)}" for p, q, _ in BAD])
def test_bad_parameters_are_a_400_naming_the_parameter(key, path, params, name):
    response = get(path, key, **params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"].startswith(f"{name}:"), body


def test_page_size_is_capped_and_num_pages_follows(key, builder, monkeypatch):
    for minute in range(7):
        builder.frame("7DT01", f"2025-10-02T01:{minute:02d}:00Z", night="2025-10-01")
    monkeypatch.setattr(PortalPagination, "max_page_size", 3)
    body = get("/api/frames/raw/", key, page_size=1000).json()
    assert (body["count"], body["num_pages"], len(body["results"])) == (7, 3, 3)
    assert get("/api/frames/raw/", key).json()["num_pages"] == 1  # default page size (100) > cap is not used
    monkeypatch.undo()
    body = get("/api/frames/raw/", key, page_size=2, page=9).json()  # past the end: an empty page
    assert (body["count"], body["num_pages"], body["results"]) == (7, 4, [])
    last = get("/api/frames/raw/", key, page_size=2, page="last").json()
    assert last["page"] == 4 and len(last["results"]) == 1
    uncounted = get("/api/frames/", key, page_size=5, count="false").json()
    assert uncounted["count"] is None and len(uncounted["results"]) == 5 and uncounted["next"]
    tail = get("/api/frames/", key, page_size=5, page=2, count="false").json()
    assert len(tail["results"]) == 2 and tail["next"] is None


def test_ordering_is_total_and_stable_across_pages(key, builder):
    made = []
    for i in range(11):  # many exposures start in the same second on different units
        made.append(builder.frame(f"7DT0{1 + i % 3}", f"2025-10-02T01:0{i % 2}:00Z", night="2025-10-01",
                                  exptime=[30.0, 60.0, 100.0][i % 3]))  # fmt: skip
    rows = walk("/api/frames/raw/", key, page_size=3)
    assert [r["id"] for r in rows] == [f.id for f in sorted(made, key=lambda f: (f.date_obs, f.id))]
    rows = walk("/api/frames/", key, page_size=4, ordering="-exptime")
    assert [r["id"] for r in rows] == [f.id for f in sorted(made, key=lambda f: (-f.exptime, f.id))]
    rows = walk("/api/frames/", key, page_size=4, ordering="unit__name,-date_obs")
    assert [r["id"] for r in rows] == [
        f.id for f in sorted(made, key=lambda f: (f.unit.name, -f.date_obs.timestamp(), f.id))
    ]


# -- sky searches ----------------------------------------------------------------------------------
def _ids(path: str, key: str, **params) -> set[int]:
    return {r["id"] for r in walk(path, key, page_size=500, **params)}


def test_cone_search_wraps_through_ra_zero(key, builder):
    spots = {"a": (359.7, 0.0), "b": (359.95, 0.1), "c": (0.05, -0.2), "d": (0.3, 0.0), "far": (180.0, 0.0),
             "north": (0.0, 0.6), "e": (359.6, 0.0)}  # fmt: skip
    made = {k: builder.frame("7DT01", f"2025-10-02T0{i}:00:00Z", night="2025-10-01", ra=ra, dec=dec)
            for i, (k, (ra, dec)) in enumerate(spots.items())}  # fmt: skip
    want = {made[k].id for k in ("a", "b", "c", "d")}
    assert _ids("/api/frames/raw/", key, ra=0.0, dec=0.0, radius=0.35) == want
    assert _ids("/api/frames/raw/", key, ra=359.999, dec=0.0, radius=0.35) == want
    assert _ids("/api/frames/raw/", key, ra=-0.001, dec=0.0, radius=0.35) == want  # RA outside 0..360 is folded
    assert _ids("/api/frames/raw/", key, ra=0.0, dec=0.0, radius=0.45) == want | {made["e"].id}


@pytest.mark.parametrize(
    "centre,radius",
    [((0.0, 0.0), 5.0), ((359.0, 45.0), 8.0), ((10.0, 88.0), 4.0), ((200.0, -89.5), 3.0), ((123.4, -30.0), 0.7),
     ((90.0, 0.0), 100.0)],
)  # fmt: skip
def test_cone_search_matches_astropy_separation(key, builder, centre, radius):
    rng = random.Random(hash(centre) & 0xFFFF)
    ra0, dec0 = centre
    frames = []
    for i in range(120):
        # Points spread around the centre (some inside, some just outside), plus a few anywhere.
        if i % 6 == 0:
            ra, dec = rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-1, 1)))
        else:
            c = SkyCoord(ra0 * u.deg, dec0 * u.deg).directional_offset_by(
                rng.uniform(0, 360) * u.deg, rng.uniform(0, 1.6 * radius) * u.deg
            )
            ra, dec = c.ra.deg, c.dec.deg
        frames.append(builder.frame("7DT01", f"2025-10-02T01:{i // 60:02d}:{i % 60:02d}Z", night="2025-10-01",
                                    ra=ra, dec=dec, save=False))  # fmt: skip
    frames = Frame.objects.bulk_create(frames)
    sep = SkyCoord([f.ra for f in frames] * u.deg, [f.dec for f in frames] * u.deg).separation(
        SkyCoord(ra0 * u.deg, dec0 * u.deg)
    ).deg
    expected = {f.id for f, s in zip(frames, sep) if s <= radius}
    assert 0 < len(expected) < len(frames)
    assert _ids("/api/frames/raw/", key, ra=ra0, dec=dec0, radius=radius) == expected


def test_position_without_radius_selects_frames_whose_field_contains_it(key, builder):
    centre = builder.frame("7DT01", "2025-10-02T01:00:00Z", night="2025-10-01", ra=150.0, dec=2.0)
    c = SkyCoord(150.0 * u.deg, 2.0 * u.deg)
    inside = [c.spherical_offsets_by(0.6 * u.deg, 0 * u.deg), c.spherical_offsets_by(0 * u.deg, 0.4 * u.deg),
              c.spherical_offsets_by(-0.6 * u.deg, -0.4 * u.deg)]  # fmt: skip
    outside = [c.spherical_offsets_by(0.72 * u.deg, 0 * u.deg), c.spherical_offsets_by(0 * u.deg, 0.5 * u.deg),
               c.spherical_offsets_by(0.5 * u.deg, 0.5 * u.deg)]  # fmt: skip
    for p in inside:
        assert _ids("/api/frames/raw/", key, ra=p.ra.deg, dec=p.dec.deg) == {centre.id}, p
    for p in outside:
        assert _ids("/api/frames/raw/", key, ra=p.ra.deg, dec=p.dec.deg) == set(), p


def test_galactic_cone_and_polygons(key, builder):
    near_zero = [builder.frame("7DT01", f"2025-10-02T0{i}:00:00Z", night="2025-10-01", ra=ra, dec=dec)
                 for i, (ra, dec) in enumerate([(359.5, 0.5), (0.5, -0.5), (2.0, 0.0), (359.5, 1.5)])]  # fmt: skip
    ring = [[359.0, -1.0], [1.0, -1.0], [1.0, 1.0], [359.0, 1.0]]
    want = {near_zero[0].id, near_zero[1].id}
    assert _ids("/api/frames/raw/", key, polygon=json.dumps(ring)) == want
    assert _ids("/api/frames/raw/", key, polygon=json.dumps(ring + [ring[0]])) == want  # closed ring
    flat = [str(v) for p in ring for v in p]  # the toolkit may repeat `polygon` with flat values
    assert _ids("/api/frames/raw/", key, polygon=flat) == want
    # A triangle: (2.0, 0.0) is inside its box but outside the triangle.
    assert _ids("/api/frames/raw/", key, polygon=json.dumps([[1.5, -1], [3.5, -1], [3.5, 1]])) == set()
    assert _ids("/api/frames/raw/", key, polygon=json.dumps([[1.5, -1], [2.5, -1], [2.5, 1.5]])) == {near_zero[2].id}
    # Galactic: the same position in (l, b).
    g = SkyCoord(0.5 * u.deg, -0.5 * u.deg).galactic
    assert _ids("/api/frames/raw/", key, coord_sys="galactic", gl=g.l.deg, gb=g.b.deg, radius=0.01) == {near_zero[1].id}
    assert _ids("/api/frames/raw/", key, gl=g.l.deg, gb=g.b.deg, radius=0.01) == {near_zero[1].id}
    # coord_sys naming a system whose position is absent: the position given is used.
    assert _ids("/api/frames/raw/", key, coord_sys="galactic", ra=0.5, dec=-0.5, radius=0.01) == {near_zero[1].id}
    gal_ring = [[p.galactic.l.deg, p.galactic.b.deg] for p in (SkyCoord(a * u.deg, d * u.deg) for a, d in ring)]
    assert _ids("/api/frames/raw/", key, coord_sys="galactic", polygon=json.dumps(gal_ring)) == want


def test_tiles_and_targets_listings(key, builder):
    from survey.models import Target

    builder.frame("7DT01", "2025-10-02T01:00:00Z", night="2025-10-01", tile="T13785", program="RIS")
    builder.frame("7DT01", "2025-10-02T02:00:00Z", night="2025-10-01", tile="T13786", program="IMS")
    std = Target.objects.create(name="LTT1020", kind=Target.Kind.STANDARD, ra=28.709, dec=-27.4766)
    Target.objects.create(name="NeverSeen", kind=Target.Kind.NAMED, ra=1.0, dec=1.0)
    builder.frame("7DT02", "2025-10-02T03:00:00Z", night="2025-10-01", target=std)
    builder.refresh()
    tiles = walk("/api/tiles/", key, page_size=1)
    assert [t["name"] for t in tiles] == ["T13785", "T13786"]
    t = tiles[0]
    g = SkyCoord(t["ra"] * u.deg, t["dec"] * u.deg).galactic
    assert (round(t["l"], 4), round(t["b"], 4)) == (round(g.l.deg, 4), round(g.b.deg, 4))
    assert (t["survey_program"], t["observation_count"], t["total_exposure_time"]) == ("RIS", 1, 100.0)
    assert [r["name"] for r in walk("/api/tiles/", key, page_size=10, survey_program="IMS")] == ["T13786"]
    assert get("/api/tiles/", key, all="true", page_size=1).json()["count"] == 28519  # the whole grid
    assert [r["name"] for r in walk("/api/tiles/", key, page_size=5, ra=190.0372, dec=-16.1321)] == ["T13785"]
    targets = walk("/api/targets/", key, page_size=10)
    assert [r["name"] for r in targets] == ["LTT1020"] and targets[0]["target_type"] == "STD"
    assert len(walk("/api/targets/", key, page_size=10, all="true")) == 2
    assert walk("/api/targets/", key, page_size=10, target_type="EXSCI") == []
    assert [r["name"] for r in walk("/api/targets/", key, page_size=10, target_type="standard")] == ["LTT1020"]
    assert [r["name"] for r in walk("/api/targets/", key, page_size=10, ra=28.7, dec=-27.5, radius=0.1)] == ["LTT1020"]


# -- the portal's own resources, on an ingested sample archive -------------------------------------
def test_own_resources_on_an_ingested_archive(key, sample_root, manifest, ingest):
    corrupt_helpers.write_garbage(sample_root / "7DT01" / "2025-06-30_gain2750" / "7DT01_20250701_999999_junk.fits")
    run = ingest(sample_root)
    assert run.code in (0, 1), run.out + run.err
    frames = walk("/api/frames/", key, page_size=100)
    assert len(frames) == len(manifest.files)
    catalogued = [f for f in manifest.files if not f.excluded]
    raw = walk("/api/frames/raw/", key, page_size=100)
    assert len(raw) == sum(1 for f in catalogued if f.image_type == "science")
    every_type = walk("/api/frames/raw/", key, page_size=100, image_type="all")
    assert Counter(r["image_type"] for r in every_type) == Counter(f.image_type for f in catalogued)
    assert len(walk("/api/frames/", key, page_size=100, excluded="true")) == sum(1 for f in manifest.files if f.excluded)
    unit_night = Counter((f.unit, f.night) for f in catalogued if f.image_type == "science")
    (unit, night), n = unit_night.most_common(1)[0]
    assert len(walk("/api/frames/raw/", key, page_size=7, unit_name=unit, night_date=night)) == n
    tile = next(f.tile for f in catalogued if f.tile)
    assert len(walk("/api/frames/raw/", key, page_size=50, target_name=tile)) == sum(
        1 for f in catalogued if f.tile == tile and f.image_type == "science"
    )

    some = frames[0]
    detail = get(f"/api/frames/{some['id']}/", key).json()
    assert detail["header"]["DATE-OBS"] and detail["path"] == some["path"] and detail["folder_path"]
    assert get("/api/frames/999999/", key).status_code == 404

    nights = walk("/api/nights/", key, page_size=2)
    assert [n["date"] for n in nights] == sorted({f.night for f in manifest.files}, reverse=True)
    night_row = next(n for n in nights if n["date"] == night)
    assert night_row["n_science"] == sum(1 for f in catalogued if f.night == night and f.image_type == "science")
    one = get(f"/api/nights/{night}/", key).json()
    per_unit = {s["unit"]: s["n_science"] for s in one["units"]}
    assert per_unit[unit] == n
    assert {f["unit"] for f in one["folders"]} == {f.unit for f in manifest.files if f.night == night}
    assert get("/api/nights/1999-01-01/", key).status_code == 404

    stats = walk("/api/stats/", key, page_size=5, unit_name=unit)
    assert {s["unit"] for s in stats} == {unit}
    assert sum(s["n_science"] for s in stats) == sum(1 for f in catalogued if f.unit == unit and f.image_type == "science")
    folders = walk("/api/folders/", key, page_size=5)
    assert len(folders) == len(manifest.folders)
    states = {(f["unit"], f["name"]): f["state"] for f in folders}
    assert states.pop(("7DT01", "2025-06-30_gain2750")) == "failed"  # it holds the junk file
    assert set(states.values()) == {"ingested"}
    assert [f["name"] for f in walk("/api/folders/", key, page_size=5, state="failed")] == ["2025-06-30_gain2750"]
    runs = walk("/api/runs/", key, page_size=5)
    assert len(runs) == 1 and runs[0]["n_files"] >= len(manifest.files)
    problems = walk("/api/problems/", key, page_size=5, unit_name="7DT01")
    assert [p["path"].rsplit("/", 1)[1] for p in problems] == ["7DT01_20250701_999999_junk.fits"]
    assert problems[0]["reason"] and problems[0]["night"] == "2025-06-30" and problems[0]["unit"] == "7DT01"
    assert walk("/api/problems/", key, page_size=5, reason="no-such-reason") == []


# -- the raw list's count, from the cached statistics ------------------------------------------------
ALL_TYPES = ("bias", "dark", "flat", "science")
# (query parameters, image types the rows have): requests whose only narrowing is the type choice.
UNNARROWED = [({}, {"science"}), ({"image_type": "all"}, set(ALL_TYPES)), ({"image_type": "Flat, bias"}, {"bias", "flat"}),
              ({"image_type": "science", "data_stream": "raw", "offset": "3"}, {"science"})]  # fmt: skip


def _catalogued(types) -> int:
    return Frame.objects.filter(excluded_by="", present=True, image_type__in=types).count()


def _frame_table_counts(queries) -> list[str]:
    """The paginator's own COUNT(*) over the frame table among the captured queries."""
    table = connection.ops.quote_name(Frame._meta.db_table)
    return [q["sql"] for q in queries if q["sql"].startswith("SELECT COUNT(*)") and f"FROM {table}" in q["sql"]]


def assert_raw_counts_exact(key: str, *, from_stats: bool = True) -> None:
    """Every unnarrowed raw listing counts exactly the catalogued frames of its types: from the cached
    statistics, without a COUNT(*) over the frame table (from_stats), or else with one."""
    for params, types in UNNARROWED:
        with CaptureQueriesContext(connection) as queries:
            body = get("/api/frames/raw/", key, page_size=7, **params).json()
        expected = _catalogued(types)
        assert (body["count"], body["num_pages"]) == (expected, max(1, math.ceil(expected / 7))), params
        assert len(body["results"]) == min(7, expected)
        assert catalogued_frame_count(types) == (expected if from_stats else None)
        assert bool(_frame_table_counts(queries.captured_queries)) is not from_stats, params


def _stats_agree_with_frames() -> bool:
    summed = NightUnitStats.objects.aggregate(**{t: Sum(f"n_{t}") for t in ALL_TYPES})
    return all((summed[t] or 0) == _catalogued({t}) for t in ALL_TYPES)


def test_raw_count_from_statistics_stays_exact_through_ingests(key, sample_root, manifest, ingest):
    """After an ingest, a vanished file, a vanished folder, a file back, --cleanup, a half-written
    run: the unfiltered count is the frame table's, taken from NightUnitStats whenever they are current."""
    junk = sample_root / "7DT01" / "2025-06-30_gain2750" / "7DT01_20250701_999999_junk.fits"
    corrupt_helpers.write_garbage(junk)
    assert ingest(sample_root).code in (0, 1)
    assert _stats_agree_with_frames()
    assert NightFolder.objects.filter(state=NightFolder.State.FAILED).count() == 1  # the junk: counted directly
    assert_raw_counts_exact(key)

    science = next(f for f in manifest.files if f.image_type == "science" and not f.excluded)
    kept = sample_root.parent / "kept.fits"
    shutil.move(sample_root / science.path, kept)  # a file vanishes
    assert ingest(sample_root).code in (0, 1)
    assert Frame.objects.filter(present=False).count() == 1 and _stats_agree_with_frames()
    assert_raw_counts_exact(key)

    shutil.move(kept, sample_root / science.path)  # ... and comes back
    assert ingest(sample_root).code in (0, 1)
    assert not Frame.objects.filter(present=False).exists()
    assert_raw_counts_exact(key)

    gone = next(f for f in manifest.folders if (f["unit"], f["folder"]) != ("7DT01", "2025-06-30_gain2750"))
    shutil.rmtree(sample_root / gone["unit"] / gone["folder"])  # a whole folder vanishes
    assert ingest(sample_root).code in (0, 1)
    assert NightFolder.objects.filter(present=False).count() == 1 and Frame.objects.filter(present=False).exists()
    # The ingest does not (yet) refresh the figures of a night whose folder vanished: counted directly.
    assert_raw_counts_exact(key)

    assert ingest(sample_root, "--cleanup").code in (0, 1)
    assert_raw_counts_exact(key)

    # A run that wrote frames but not yet their statistics (or was killed so): the frame table is counted.
    run = IngestRun.objects.create(started_at=IngestRun.objects.latest("id").started_at)
    assert run.status == IngestRun.Status.RUNNING
    assert_raw_counts_exact(key, from_stats=False)
    run.delete()
    folder = NightFolder.objects.filter(present=True).first()
    NightFolder.objects.filter(pk=folder.pk).update(state=NightFolder.State.INGESTING)
    Frame.objects.filter(folder=folder, image_type="science").update(present=False)
    assert not _stats_agree_with_frames()
    assert_raw_counts_exact(key, from_stats=False)
    # The monitor marks a batch whose ingest raised 'failed', statistics unrefreshed: that night is counted.
    NightFolder.objects.filter(pk=folder.pk).update(state=NightFolder.State.FAILED)
    assert_raw_counts_exact(key)


def test_raw_count_of_frames_without_statistics(key, builder):
    """Rows written without an ingest (folders never marked ingested, no figures) are counted directly;
    any row-narrowing parameter is a plain COUNT(*)."""
    for minute in range(5):
        builder.frame("7DT01", f"2025-10-02T01:{minute:02d}:00Z", night="2025-10-01")
    builder.frame("7DT02", "2025-10-02T02:00:00Z", night="2025-10-01", image_type="flat")
    builder.frame("7DT02", "2025-10-02T02:01:00Z", night="2025-10-01", excluded_by="focus:filename-contains-focus")
    builder.frame("7DT02", "2025-10-02T02:02:00Z", night="2025-10-01", present=False)
    assert not NightUnitStats.objects.exists()
    assert_raw_counts_exact(key)
    builder.refresh()
    NightFolder.objects.update(state=NightFolder.State.INGESTED)  # as an ingest leaves them
    assert_raw_counts_exact(key)
    for narrowing in ({"unit_name": "7DT02"}, {"night_date": "2025-10-01"}, {"excluded": "false"},
                      {"image_type": "science", "exptime": "100"}):  # fmt: skip
        with CaptureQueriesContext(connection) as queries:
            body = get("/api/frames/raw/", key, page_size=2, **narrowing).json()
        assert _frame_table_counts(queries.captured_queries), narrowing
        expected = len(walk("/api/frames/raw/", key, page_size=100, **narrowing))
        assert body["count"] == expected, narrowing
    assert get("/api/frames/raw/", key, image_type=",").json()["count"] == 0


# -- schema and docs -------------------------------------------------------------------------------
def test_openapi_schema_is_valid_and_needs_auth(key):
    assert get("/api/schema/").status_code == 401
    response = get("/api/schema/", key, format="json")
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    for route in ("/api/frames/raw/", "/api/tiles/", "/api/targets/", "/api/frames/", "/api/frames/{id}/",
                  "/api/nights/{date}/", "/api/frames/processed/", "/api/master/bias/"):  # fmt: skip
        assert route in schema["paths"], route
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    params = {p["name"] for p in schema["paths"]["/api/frames/raw/"]["get"]["parameters"]}
    assert {"date_start", "date_end", "night_date", "target_name", "ra", "dec", "radius", "polygon", "page",
            "page_size"} <= params  # fmt: skip


def test_docs_pages_need_a_login_and_use_local_assets():
    response = Client().get("/api/docs/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/accounts/login/")
    client = Client()
    client.force_login(get_user_model().objects.create_user("reader"))
    for path in ("/api/docs/", "/api/redoc/"):
        html = client.get(path).content.decode()
        assert "drf_spectacular_sidecar" in html and "cdn." not in html, path


# -- create_api_key --------------------------------------------------------------------------------
def test_create_api_key_command(key):
    get_user_model().objects.create_user("pipeline")
    run = run_command("create_api_key", "--user", "pipeline", "--name", "pipeline@proton")
    raw = run.out.strip()
    assert run.code == 0 and raw.startswith("gwp_") and "shown once" in run.err
    assert ApiKey.objects.filter(key_hash=ApiKey.hash_key(raw)).exists()
    assert not ApiKey.objects.filter(key_hash=raw).exists()  # only the hash is stored
    assert PipelineStyleClient("http://testserver", raw).ping()
    listing = run_command("create_api_key", "--list").out
    assert raw[:12] in listing and "pipeline@proton" in listing and raw not in listing
    with pytest.raises(CommandError, match="at least"):
        run_command("create_api_key", "--revoke", "gwp_")
    assert "revoked" in run_command("create_api_key", "--revoke", raw[:12]).out
    assert not PipelineStyleClient("http://testserver", raw).ping()
    with pytest.raises(CommandError, match="no active key"):
        run_command("create_api_key", "--revoke", raw[:12])
    with pytest.raises(CommandError, match="no user"):
        run_command("create_api_key", "--user", "ghost", "--name", "x")
    made = run_command("create_api_key", "--user", "ghost", "--name", "bot", "--create-user").out.strip()
    assert PipelineStyleClient("http://testserver", made).ping()
    assert not get_user_model().objects.get(username="ghost").has_usable_password()
