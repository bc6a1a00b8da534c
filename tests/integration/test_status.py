"""Survey status: the tile grid, `/status/` and `/tiles/`, pointing warnings, conditions, access rules.

Every expected figure is computed here from the generator's own Manifest (what it wrote), with the
definitions of docs/survey-status.md re-implemented independently, never by calling survey.status.
"""
from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone as djtz

from rawdata.sample import Manifest, generate_archive
from survey import status
from survey.models import ApiKey, Frame, NightUnitStats, PublicSnapshot, Target, Tile

pytestmark = pytest.mark.django_db

RING_COUNTS_HEAD = 1, 7, 11, 15  # first rings of survey-status.md section 2, for an independent position check


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def big_template(tmp_path_factory) -> Path:
    """The standard sample, with 200 x 300 px frames so that per-night volumes are visible in GB."""
    root = tmp_path_factory.mktemp("status-sample") / "obsdata"
    generate_archive(root, units=3, nights=3, frames_per_night=12, seed=7, data_shape=(200, 300))
    return root


@pytest.fixture
def archive(big_template) -> Path:
    """The module's archive; the ingest only reads it, so tests share it without copying."""
    return big_template


@pytest.fixture
def ingested(archive, ingest):
    run = ingest(archive)
    assert run.code == 0, run.out + run.err
    return Manifest.load(archive)


# ------------------------------------------------------------------------------------ independent truth


def _summary(values: list[float], digits: int) -> dict:
    vals = [float(v) for v in values]
    counts = Counter(int(round(v)) for v in vals)
    top = max(counts.values())
    return {
        "n": len(vals),
        "mean": round(sum(vals) / len(vals), digits),
        "median": round(statistics.median(vals), digits),
        "mode": min(v for v, c in counts.items() if c == top),
        "min": round(min(vals), digits),
        "max": round(max(vals), digits),
    }


def expected_status(m: Manifest, online_nights: int = 30) -> dict:
    science = [f for f in m.files if f.image_type == "science" and f.excluded is None]
    catalogued = [f for f in m.files if f.excluded is None]
    nights = sorted({f.night for f in science})
    per_night = Counter(f.night for f in science)
    tiles = {n: {f.tile for f in science if f.night == n and f.tile} for n in nights}
    size = {n: sum(f.size for f in catalogued if f.night == n) for n in nights}
    observed = {f.tile for f in science if f.tile}
    ims_tiles = {f.tile for f in science if f.objtype == "IMS"}
    ims: dict[str, set[str]] = defaultdict(set)
    for f in science:
        if f.tile in ims_tiles:
            ims[f.tile].add(f.night)
    frame_nights = sorted({f.night for f in catalogued}, reverse=True)[:online_nights]
    online = {f.unit for f in catalogued if f.night in frame_nights}
    newest = max(datetime.fromisoformat(f.date_obs).replace(tzinfo=timezone.utc) for f in m.files)  # DATE-OBS is UTC
    too_events = {f.object for f in science if f.is_too}
    return {
        "total": max(20, len(m.units)),
        "online": len(online),
        "newest": newest,
        "science_frames": len(science),
        "observing_nights": len(nights),
        "exposure_hours": round(sum(f.exptime for f in science) / 3600, 1),
        "first_night": nights[0],
        "last_night": nights[-1],
        "tiles_per_night": _summary([len(tiles[n]) for n in nights if tiles[n]], 1),
        "exposures_per_night": _summary([per_night[n] for n in nights], 1),
        "raw_gb_per_night": _summary([size[n] / 1e9 for n in nights if size[n]], 3),
        "ris_observed": sum(1 for t in observed if int(t[1:]) <= 25471),
        "observed": len(observed),
        "ims": {t: len(n) for t, n in ims.items()},
        "too_events": too_events,
        "size": size,
    }


def _tile_position(index: int) -> tuple[float, float]:
    """Centre of a tile of the first rings, from the ring rule (independent of rawdata.tiles)."""
    start = 0
    for ring, n in enumerate(RING_COUNTS_HEAD):
        if index < start + n:
            return (index - start) * 360.0 / n, -90.0 + ring * 180.0 / 212.0
        start += n
    raise ValueError(index)


# ------------------------------------------------------------------------------------ the grid


def test_grid_is_loaded_with_the_check_tiles():
    assert Tile.objects.filter(in_grid=True).count() == 28_519
    assert Tile.objects.count() == 28_519
    assert Tile.objects.filter(extension=False).count() == 25_472
    assert Tile.objects.filter(extension=True).order_by("index").first().name == "T25472"
    t = Tile.objects.get(name="T13785")
    assert (round(t.ra, 4), round(t.dec, 4)) == (190.0372, -16.1321)
    t = Tile.objects.get(name="T09614")
    assert (round(t.ra, 4), round(t.dec, 4)) == (122.4590, -29.7170)
    for index in range(sum(RING_COUNTS_HEAD)):
        tile = Tile.objects.get(index=index)
        ra, dec = _tile_position(index)
        assert tile.name == f"T{index:05d}"
        assert math.isclose(tile.ra, ra, abs_tol=1e-9) and math.isclose(tile.dec, dec, abs_tol=1e-9)


# ------------------------------------------------------------------------------------ /status/ and /tiles/


def _check_status_payload(client, ingested):
    exp = expected_status(ingested)
    response = client.get("/status/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    doc = response.json()
    assert set(doc) == {"version", "source", "generated_at", "telescopes", "totals", "nightly", "ris", "ims", "too", "notes"}
    assert doc["version"] == "0.6" and doc["source"] == "7DT GW Portal"
    assert datetime.fromisoformat(doc["generated_at"]).tzinfo is not None
    assert doc["telescopes"]["total"] == exp["total"] == 20
    assert doc["telescopes"]["online"] == exp["online"] == 3
    assert datetime.fromisoformat(doc["telescopes"]["status_updated_at"]) == exp["newest"]
    assert doc["totals"] == {
        "science_frames": exp["science_frames"],
        "observing_nights": exp["observing_nights"],
        "exposure_hours": exp["exposure_hours"],
    }
    nightly = doc["nightly"]
    assert nightly["n_nights"] == doc["totals"]["observing_nights"]
    assert (nightly["first_night"], nightly["last_night"]) == (exp["first_night"], exp["last_night"])
    assert isinstance(nightly["basis"], str) and nightly["basis"]
    for block in ("tiles_per_night", "exposures_per_night", "raw_gb_per_night"):
        assert set(nightly[block]) == {"n", "mean", "median", "mode", "min", "max"}
        assert nightly[block] == exp[block], block
    assert doc["ris"] == {
        "tiles_observed": exp["ris_observed"],
        "tiles_defined": 25_472,
        "coverage_pct": round(100 * exp["ris_observed"] / 25_472, 1),
        "tiles_observed_extended": exp["observed"],
        "tiles_extended": 28_519,
    }
    assert exp["observed"] > exp["ris_observed"]  # the sample has a tile of the northern extension
    assert doc["ims"] == {
        "n_tiles": len(exp["ims"]),
        "min_cycles_per_tile": min(exp["ims"].values()),
        "max_cycles_per_tile": max(exp["ims"].values()),
        "cycles_per_tile": exp["ims"],
    }
    assert list(exp["ims"].values()) == [ingested.params["nights"]]  # an IMS visit every night
    assert exp["too_events"] == {ingested.scenarios["too_event"]}
    assert doc["too"] == {"followup_events": 1, "gw_campaigns": 1, "gw_event_ids": [ingested.scenarios["too_event"]]}
    assert doc["notes"] and all(isinstance(n, str) for n in doc["notes"])
    # the byte counts behind raw_gb_per_night, exactly
    per_night = Counter()
    for night, size in NightUnitStats.objects.values_list("night__date", "total_bytes"):
        per_night[night.isoformat()] += size
    assert {n: per_night[n] for n in exp["size"]} == exp["size"]


def _check_tiles_payload(client, ingested):
    science = [f for f in ingested.files if f.image_type == "science" and f.excluded is None and f.tile]
    by_tile: dict[str, list] = defaultdict(list)
    for f in science:
        by_tile[f.tile].append(f)
    doc = client.get("/tiles/").json()
    assert set(doc) == {"generated_at", "ris_tile_name_bound", "tiles"}
    assert doc["ris_tile_name_bound"] == "T25472"
    assert [t["name"] for t in doc["tiles"]] == sorted(by_tile)
    for entry in doc["tiles"]:
        frames = by_tile[entry["name"]]
        nights = sorted({f.night for f in frames})
        assert set(entry) == {"name", "ra", "dec", "n_frames", "n_nights", "first_night", "last_night"}
        assert entry["n_frames"] == len(frames)
        assert entry["n_nights"] == len(nights)
        assert (entry["first_night"], entry["last_night"]) == (nights[0], nights[-1])
        assert math.isfinite(entry["ra"]) and math.isfinite(entry["dec"])
    t09614 = next(t for t in doc["tiles"] if t["name"] == "T09614")  # the NINA-era check tile
    assert (t09614["ra"], t09614["dec"]) == (122.459, -29.717)


def test_payloads_are_aggregates_only(client, ingested, archive):
    Target.objects.create(name="GRB250101A", kind="too", n_frames=3)
    Target.objects.create(name="MS250102abc", kind="too", n_frames=2)
    Target.objects.create(name=f"{ingested.scenarios['too_event']}_field2", kind="too", n_frames=2)
    Target.objects.create(name="S250301xy", kind="too", n_frames=0)  # no frame: not a follow-up
    status.refresh_snapshots()
    texts = [client.get(url).content.decode() for url in ("/status/", "/tiles/")]
    doc = json.loads(texts[0])
    assert doc["too"] == {"followup_events": 3, "gw_campaigns": 2, "gw_event_ids": [ingested.scenarios["too_event"]]}
    for text in texts:
        assert str(archive) not in text and ".fits" not in text and "/7DT0" not in text
        assert "GRB250101A" not in text and "MS250102abc" not in text and "_field2" not in text


def test_snapshots_follow_the_ingest_and_expire(client, archive, ingest, settings):
    settings.GWPORTAL = {**settings.GWPORTAL, "STATUS_REFRESH": "inline"}  # background threads: see below
    first = "2025-06-30"
    assert ingest(archive, "--start-date", first, "--end-date", first).code == 0
    snap = PublicSnapshot.objects.get(name="status")
    manifest = Manifest.load(archive)
    science = [f for f in manifest.files if f.image_type == "science" and f.excluded is None]
    assert client.get("/status/").json()["totals"]["science_frames"] == sum(1 for f in science if f.night == first)
    assert ingest(archive).code == 0  # the rest of the archive: the snapshot follows without waiting
    assert client.get("/status/").json()["totals"]["science_frames"] == len(science)
    newer = PublicSnapshot.objects.get(name="status").generated_at
    assert newer > snap.generated_at
    # an unchanged re-run writes nothing and leaves the snapshot alone
    assert ingest(archive).code == 0
    assert PublicSnapshot.objects.get(name="status").generated_at == newer
    # older than the maximum age: recomputed on the next request
    old = djtz.now() - timedelta(minutes=16)
    PublicSnapshot.objects.filter(name__in=["status", "tiles"]).update(generated_at=old)
    before = djtz.now()
    client.get("/status/")
    assert PublicSnapshot.objects.get(name="status").generated_at >= before
    assert PublicSnapshot.objects.get(name="tiles").generated_at == old  # only what was asked
    assert status.get_snapshot("tiles", timedelta(minutes=15)).generated_at >= before


@pytest.mark.django_db(transaction=True)
def test_stale_snapshot_is_served_at_once_and_refreshed_behind(client, sample_template, ingest):
    """Default refresh mode: a stale payload is answered immediately, a background thread recomputes it."""
    assert ingest(sample_template).code == 0
    old = djtz.now() - timedelta(minutes=20)
    PublicSnapshot.objects.filter(name="tiles").update(generated_at=old)
    response = client.get("/tiles/")
    assert response.status_code == 200 and response.json()["tiles"]
    assert any(t.name == "snapshot-tiles" for t in status._threads)  # the rebuild runs behind the answer
    status.wait_for_background_refreshes()
    fresh = PublicSnapshot.objects.get(name="tiles").generated_at
    assert fresh > old + timedelta(minutes=19)
    assert client.get("/tiles/")["Last-Modified"] == fresh.strftime("%a, %d %b %Y %H:%M:%S GMT")


def _check_no_frame_reads(client, ingested):
    client.get("/status/")
    client.get("/tiles/")  # both snapshots are fresh after the ingest
    with CaptureQueriesContext(connection) as queries:
        for url in ("/status/", "/tiles/", "/status/"):
            assert client.get(url).status_code == 200
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "survey_frame" not in sql
    assert len(queries.captured_queries) <= 3  # one indexed row lookup per request once serialised


def test_empty_archive_gives_a_valid_status(client):
    doc = client.get("/status/").json()
    assert doc["totals"] == {"science_frames": 0, "observing_nights": 0, "exposure_hours": 0.0}
    assert doc["nightly"]["tiles_per_night"]["n"] == 0 and doc["ims"]["n_tiles"] == 0
    assert client.get("/tiles/").json()["tiles"] == []


# ------------------------------------------------------------------------------------ access


def _check_anonymous_access(client, ingested, django_user_model):
    frame = Frame.objects.filter(image_type="science").first()
    assert client.get("/status/").status_code == 200
    assert client.get("/tiles/").status_code == 200
    for url in ("/survey/", "/survey/tiles/T09614/", "/survey/nights/2025-07-01/", "/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    for url in (f"/api/frames/{frame.pk}/calibrations/", f"/api/survey/frames/{frame.pk}/calibrations/",
                "/api/survey/calibration-gaps/?start=2025-06-30&end=2025-07-02"):
        response = client.get(url)
        assert response.status_code in (401, 403), url
        assert "error" in response.json()
    user = django_user_model.objects.create_user("keyholder")
    _, raw = ApiKey.issue(user, "test")
    assert client.get(f"/api/frames/{frame.pk}/calibrations/", HTTP_X_API_KEY=raw).status_code == 200


def _check_public_switch(client, ingested, settings, django_user_model):
    settings.GWPORTAL = {**settings.GWPORTAL, "PUBLIC_STATUS": False}
    for url in ("/status/", "/tiles/"):
        response = client.get(url, HTTP_ACCEPT="application/json")
        assert response.status_code == 401 and "error" in response.json()
        response = client.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(django_user_model.objects.create_user("reader"))
    assert client.get("/status/").status_code == 200
    assert client.get("/tiles/").json()["ris_tile_name_bound"] == "T25472"


# ------------------------------------------------------------------------------------ pointing, progress, conditions


def test_off_pointing_frame_is_flagged_and_kept(client, ingested, archive, django_user_model):
    off = ingested.scenarios["off_pointing"]
    assert len(off) == 1
    frame = Frame.objects.get(path=str(archive / off[0]))
    assert frame.excluded_by == "" and frame.image_type == "science" and frame.tile is not None
    assert frame.pointing_warning and 1.9 < frame.pointing_offset < 2.1
    assert Frame.objects.filter(pointing_warning=True).count() == 1
    others = Frame.objects.exclude(pk=frame.pk).exclude(pointing_offset=None)
    assert others.exists() and max(others.values_list("pointing_offset", flat=True)) < 0.01
    client.force_login(django_user_model.objects.create_user("viewer"))
    page = client.get(f"/survey/nights/{frame.night.date.isoformat()}/")
    assert page.status_code == 200
    assert list(page.context["ns"]["pointing_frames"]) == [frame]
    assert frame.filename in page.content.decode()
    survey = client.get("/survey/")
    assert survey.context["map"]["pointing_warnings"] == 1
    assert survey.context["map"]["pointing_warning_nights"] == [frame.night.date.isoformat()]
    tile_page = client.get(f"/survey/tiles/{frame.tile.name}/")
    assert tile_page.context["n_flagged"] == 1


def test_tile_progress_and_survey_page(client, ingested, django_user_model):
    science = [f for f in ingested.files if f.image_type == "science" and f.excluded is None and f.tile]
    ris_filters = sorted({f.filter for f in science if f.objtype == "RIS"})
    for tile in {f.tile for f in science}:
        mine = [f for f in science if f.tile == tile]
        t = Tile.objects.get(name=tile)
        assert t.n_filters == len({f.filter for f in mine})
        assert t.programs == sorted({f.objtype for f in mine if f.objtype})
        assert {p.filter: p.n_frames for p in t.progress.all()} == Counter(f.filter for f in mine)
    client.force_login(django_user_model.objects.create_user("surveyor"))
    page = client.get("/survey/", {"measure": "exptime"})
    assert page.status_code == 200 and page.context["measure"] == "exptime"
    data = page.context["map"]
    assert data["survey_filters"] == ris_filters
    assert data["programs"] == dict(Counter(p for t in {f.tile for f in science}
                                            for p in {f.objtype for f in science if f.tile == t and f.objtype}))
    html = page.content.decode()
    assert 'data-gw-status="sky-map"' in html
    embedded = json.loads(html.split('<script id="survey-map-data" type="application/json">', 1)[1].split("</script>", 1)[0])
    assert sorted(embedded["tiles"]["name"]) == sorted({f.tile for f in science})
    assert sum(embedded["ring_counts"]) == 28_519
    ims_tile = ingested.scenarios["ims_tile"]
    assert embedded["tiles"]["programs"][embedded["tiles"]["name"].index(ims_tile)] == ["IMS"]
    page = client.get(f"/survey/tiles/{ims_tile}/")
    mine = [f for f in science if f.tile == ims_tile]
    assert page.context["missing_filters"] == [f for f in ris_filters if f not in {x.filter for x in mine}]
    assert {(r["night__date"].isoformat(), r["filter"]): r["n"] for r in page.context["by_night"]} == Counter(
        (f.night, f.filter) for f in mine
    )
    assert client.get("/survey/tiles/T28519/").status_code == 404  # beyond the grid and never observed


def _check_night_conditions(ingested):
    outage = ingested.scenarios["weather_outage"][0]
    for stats in NightUnitStats.objects.filter(n_science__gt=0).select_related("night", "unit"):
        cond = stats.conditions
        key = (stats.night.date.isoformat(), stats.unit.name)
        science = Frame.objects.filter(night=stats.night, unit=stats.unit, image_type="science", excluded_by="")
        assert cond["n_frames"] == science.count() == stats.n_science
        no_weather = key == (outage["night"], outage["unit"])
        manifest_weather = [f.weather for f in ingested.files
                            if (f.night, f.unit) == key and f.image_type == "science" and f.excluded is None]
        assert (not any(manifest_weather)) == no_weather
        for measure in ("seeing", "sky_brightness", "humidity", "wind_speed"):
            values = [v for v in science.values_list(measure, flat=True) if v is not None]
            if no_weather:
                assert measure not in cond and not values
                continue
            assert values, (key, measure)
            assert cond[measure]["n"] == len(values)
            assert math.isclose(cond[measure]["median"], statistics.median(values), abs_tol=1e-4)
            assert math.isclose(cond[measure]["min"], min(values), abs_tol=1e-4)
            assert math.isclose(cond[measure]["max"], max(values), abs_tol=1e-4)
    nina = NightUnitStats.objects.filter(night__date=date.fromisoformat(ingested.scenarios["nina_night"]))
    assert nina.exists() and all("seeing" in s.conditions and "sky_brightness" in s.conditions for s in nina)
    series = status_conditions_series()
    assert series["nights"] == sorted({f.night for f in ingested.files if f.image_type == "science" and f.excluded is None})


def status_conditions_series():
    from survey.conditions import conditions_series

    return conditions_series()


def test_summary_block_definitions():
    """The block rules on hand-made values: mode over integer-rounded values, ties to the smallest."""
    block = status.summarize([1.4, 2.6, 2.4, 3.0, 0.6], digits=1)
    # rounded: 1, 3, 2, 3, 1 -> 1 and 3 tie twice: the smaller wins
    assert block == {"n": 5, "mean": 2.0, "median": 2.4, "mode": 1, "min": 0.6, "max": 3}
    assert status.summarize([], 1) == {"n": 0, "mean": None, "median": None, "mode": None, "min": None, "max": None}
    assert status.summarize([0.0004, 0.0016], digits=3)["median"] == 0.001
    assert status.event_id("S250206dm_field2") == "S250206dm" and status.event_id("NGC1234") == "NGC1234"


def test_progress_follows_a_vanished_frame(sample_root, ingest, client):
    """A frame gone from disk leaves its tile's figures at the next ingest, although no new frame names the tile."""
    assert ingest(sample_root).code == 0
    m = Manifest.load(sample_root)
    victim = next(f for f in m.files if f.objtype == "RIS" and f.image_type == "science" and f.excluded is None)
    same = [f for f in m.files if f.tile == victim.tile and f.image_type == "science" and f.excluded is None]
    tile = Tile.objects.get(name=victim.tile)
    assert tile.n_frames == len(same)
    (sample_root / victim.path).unlink()
    ingest(sample_root)
    assert Frame.objects.get(path=str(sample_root / victim.path)).present is False
    tile.refresh_from_db()
    assert tile.n_frames == len(same) - 1
    assert tile.progress.get(filter=victim.filter).n_frames == sum(1 for f in same if f.filter == victim.filter) - 1
    entry = next(t for t in client.get("/tiles/").json()["tiles"] if t["name"] == victim.tile)
    assert entry["n_frames"] == len(same) - 1


def _check_dashboard_snippet(ingested):
    from django.template.loader import render_to_string

    html = render_to_string("survey/status/dashboard_extra.html", {})
    nights = sorted({f.night for f in ingested.files if f.image_type == "science" and f.excluded is None}, reverse=True)
    assert 'id="calibration-summary-table"' in html and 'id="conditions-series-data"' in html
    for night in nights:
        assert f"/survey/nights/{night}/" in html
    context = status.dashboard_context()
    assert [n["night"] for n in context["calibration"]["nights"]] == nights
    assert context["calibration"]["totals"]["missing"] == 0 and context["calibration"]["totals"]["fallback"] >= 1
    assert context["pointing_warnings"] == len(ingested.scenarios["off_pointing"])


# ------------------------------------------------------------------------------------ grouped checks
# The checks above share one ingested archive per test below (an ingest costs seconds).


def test_public_payloads_equal_the_manifest(client, ingested):
    _check_status_payload(client, ingested)
    _check_tiles_payload(client, ingested)
    _check_no_frame_reads(client, ingested)


def test_only_status_and_tiles_are_anonymous_and_the_switch(client, ingested, settings, django_user_model):
    _check_anonymous_access(client, ingested, django_user_model)
    client.logout()
    _check_public_switch(client, ingested, settings, django_user_model)


def test_night_conditions_from_both_eras_and_the_dashboard(ingested):
    _check_night_conditions(ingested)
    _check_dashboard_snippet(ingested)

