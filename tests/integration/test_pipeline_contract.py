"""The HTTP contract the 7DT pipeline's existing client speaks (reference/original-gwportal.md 4.1), checked
call by call with the end-to-end list of 4.3 (items 1-11, and the HTTP half of 12).

`PipelineStyleClient` below is written from the description in 4.1 (not copied from the pipeline): it sends
`X-API-Key`, `Content-Type` and `Accept` headers, GET with query-string parameters, drops None values,
fetches page 1, yields the count, returns when it is 0, then pages 2..num_pages and stops at the first
empty `results`; any non-2xx answer raises "API Error (<status>): <detail> [<url>]" with detail = the
JSON `error` field (else the first 200 characters of the body). Its transport is Django's test client,
so each request goes through the whole middleware stack (LoginRequiredMiddleware included).
"""
from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone as dj_timezone

from survey.models import ApiKey, Frame, Night, NightFolder, Target, Tile, Unit
from survey.stats import refresh_night_unit_stats, refresh_targets, refresh_tiles

pytestmark = pytest.mark.django_db

TILE_KEYS = {
    "id", "name", "ra", "dec", "l", "b", "priority", "survey_program", "area_sq_deg", "observation_count",
    "total_exposure_time", "first_observed", "last_observed",
}  # fmt: skip
TARGET_KEYS = (TILE_KEYS - {"priority", "survey_program"}) | {"target_type", "description"}
RAW_KEYS = {
    "id", "filename", "filepath", "unified_filename", "obstime", "mjd", "exptime", "airmass", "seeing",
    "object_name", "object_type", "object_ra", "object_dec", "obsnote", "unit", "filter", "target", "tile", "night",
}  # fmt: skip
OUT_OF_SCOPE = ["processed", "combined", "processed_too", "combined_too", "master_bias", "master_dark", "master_flat"]


# -- the client -----------------------------------------------------------------------------------
class PortalApiError(Exception):
    """What the pipeline's client raises for a failed request."""


class PipelineStyleClient:
    ENDPOINTS = {
        "raw": "frames/raw/", "processed": "frames/processed/", "combined": "frames/combined/",
        "processed_too": "frames/processed_too/", "combined_too": "frames/combined_too/", "tile": "tiles/",
        "target": "targets/", "master_bias": "master/bias/", "master_dark": "master/dark/",
        "master_flat": "master/flat/",
    }  # fmt: skip
    PAGE_SIZE = 500

    def __init__(self, base_url: str, api_key: str, transport: Client | None = None) -> None:
        if not base_url or not api_key:
            raise ValueError("base URL and API key are both required")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.api_key = api_key
        self.transport = transport or Client()
        self.requests: list[str] = []  # every URL asked, for the checks below

    def _request(self, endpoint: str, params: dict[str, Any] | None = None) -> dict:
        url = urljoin(self.base_url, "api/" + endpoint.lstrip("/"))
        query = urlencode([(k, v) for k, v in (params or {}).items()], doseq=True)
        full = f"{url}?{query}" if query else url
        self.requests.append(full)
        parts = urlsplit(full)
        response = self.transport.get(
            parts.path + (f"?{parts.query}" if parts.query else ""),
            headers={"X-API-Key": self.api_key, "Content-Type": "application/json", "Accept": "application/json"},
        )
        body = response.content
        if not 200 <= response.status_code < 300:
            try:
                detail = json.loads(body).get("error", "Unknown API Error")
            except Exception:  # noqa: BLE001 - the client's own fallback: show the body
                detail = body.decode(errors="replace")[:200]
            raise PortalApiError(f"API Error ({response.status_code}): {detail} [{url}]")
        if not body:
            return {}
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            raise PortalApiError(f"Non-JSON response from {url}. Status={response.status_code}.") from None

    def query(self, entity: str, **params: Any) -> dict:
        return self._request(self.ENDPOINTS[entity], {k: v for k, v in params.items() if v is not None})

    def stream(self, entity: str, page_size: int = PAGE_SIZE, **params: Any) -> Iterator[Any]:
        params = {k: v for k, v in params.items() if v is not None}
        params["page_size"] = page_size
        params["page"] = 1
        first = self.query(entity, **params)
        total = int(first.get("count", 0))
        yield total
        if total == 0:
            return
        yield from first.get("results", [])
        for page in range(2, int(first.get("num_pages", 1)) + 1):
            params["page"] = page
            try:
                rows = self.query(entity, **params).get("results", [])
            except PortalApiError:
                break  # the real client truncates silently on a later page failure
            if not rows:
                break
            yield from rows

    def fetch_all(self, entity: str, page_size: int = PAGE_SIZE, **params: Any) -> list[dict]:
        gen = self.stream(entity, page_size=page_size, **params)
        next(gen)
        return list(gen)

    def ping(self) -> bool:
        try:
            self._request("tiles/", {"page_size": 1})
            return True
        except PortalApiError:
            return False


# -- the 4.3 seed ---------------------------------------------------------------------------------
class ArchiveBuilder:
    """Creates units, nights, folders and frames directly, then refreshes the cached statistics."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._seq = itertools.count(1)
        self.touched_nights: set[int] = set()
        self._folders: dict[tuple[str, date], NightFolder] = {}

    def frame(
        self, unit: str, when: str, *, night: str | None = None, filter: str = "r", tile: str | None = None,
        target: Target | None = None, image_type: str = "science", ra: float | None = None,
        dec: float | None = None, exptime: float = 100.0, obsnote: str = "", object: str | None = None,
        program: str = "", excluded_by: str = "", present: bool = True, is_too: bool = False, save: bool = True,
    ) -> Frame:  # fmt: skip
        """One frame row (unsaved with save=False, for a bulk_create of many)."""
        moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
        night_date = date.fromisoformat(night) if night else (moment.astimezone(timezone.utc).date())
        folder_name = f"{night_date.isoformat()}_gain2750"
        folder_path = self.root / unit / folder_name
        if (unit, night_date) not in self._folders:
            unit_row, _ = Unit.objects.get_or_create(name=unit)
            night_row, _ = Night.objects.get_or_create(date=night_date)
            self._folders[unit, night_date] = NightFolder.objects.get_or_create(
                unit=unit_row, name=folder_name, defaults={"night": night_row, "path": str(folder_path), "gain": 2750}
            )[0]
        folder = self._folders[unit, night_date]
        unit_row, night_row = folder.unit, folder.night
        tile_row = Tile.objects.get(name=tile) if tile else None
        seq = next(self._seq)
        obj = object if object is not None else (tile or (target.name if target else image_type))
        name = f"{unit}_{moment:%Y%m%d_%H%M%S}_{obj}_{filter}_1x1_{exptime:.1f}s_{seq:04d}.fits"
        if ra is None and tile_row is not None:
            ra, dec = tile_row.ra, tile_row.dec
        elif ra is None and target is not None:
            ra, dec = target.ra, target.dec
        now = dj_timezone.now()
        self.touched_nights.add(night_row.id)
        frame = Frame(
            path=str(folder_path / name), filename=name, unit=unit_row, night=night_row, folder=folder,
            image_type=image_type, excluded_by=excluded_by, object=obj, program=program, target=target,
            tile=tile_row, filter=filter, exptime=exptime, date_obs=moment, mjd=40587 + moment.timestamp() / 86400,
            gain=2750, binning=1, camera="C3-61000", ra=ra, dec=dec,
            obj_ra=tile_row.ra if tile_row else (target.ra if target else ra),
            obj_dec=tile_row.dec if tile_row else (target.dec if target else dec),
            airmass=1.2, sequence=seq, obsnote=obsnote, seeing=2.5, file_size=122_000_000,
            file_mtime_ns=int(moment.timestamp() * 1e9), present=present, is_too=is_too, ingested_at=now,
            updated_at=now, software="tcspy", name_family="tcspy",
        )  # fmt: skip
        if save:
            frame.save()
        return frame

    def refresh(self) -> None:
        refresh_night_unit_stats(self.touched_nights)
        refresh_tiles(Frame.objects.exclude(tile=None).values_list("tile_id", flat=True))
        refresh_targets(Frame.objects.exclude(target=None).values_list("target_id", flat=True))


def api_key(username: str = "pipeline") -> str:
    user, _ = get_user_model().objects.get_or_create(username=username)
    return ApiKey.issue(user, f"{username} test key")[1]


@pytest.fixture
def scenario(tmp_path) -> dict[str, Any]:
    """Section 4.3: units 7DT01/7DT02, filters r/m525, tiles T00001-T00003, target GRB240825A, night
    2025-10-01 with 3 frames 7DT01/r/T00001 and 2 frames 7DT02/m525/GRB240825A noting S251112cm.

    Around it, rows the contract must leave out or keep apart: a bias and a focus-excluded frame that
    night, a 7DT02 frame whose file vanished, and T00002/T00003 observed on another night (so that the
    three tiles are "observed", the semantics of /api/tiles/). Times are UTC; night 2025-10-01 runs from
    about 23:30 UTC to 09:00 UTC the next day, so the night straddles the UTC date line."""
    b = ArchiveBuilder(tmp_path / "obsdata")
    grb = Target.objects.create(name="GRB240825A", kind=Target.Kind.TOO, ra=44.1204, dec=-8.0317)
    n = "2025-10-01"
    tile_frames = [
        b.frame("7DT01", "2025-10-01T23:40:00Z", night=n, tile="T00001", ra=359.98, dec=-89.149, program="RIS"),
        b.frame("7DT01", "2025-10-02T01:10:00Z", night=n, tile="T00001", ra=0.03, dec=-89.152, program="RIS"),
        b.frame("7DT01", "2025-10-02T05:30:00Z", night=n, tile="T00001", program="RIS"),
    ]
    note = "LVK S251112cm follow-up"
    grb_frames = [
        # Simultaneous with a 7DT01 frame: the id breaks the tie.
        b.frame("7DT02", "2025-10-02T01:10:00Z", night=n, filter="m525", target=grb, obsnote=note, program="ToO", is_too=True),
        b.frame("7DT02", "2025-10-02T08:45:00Z", night=n, filter="m525", target=grb, obsnote=note, program="ToO", is_too=True),
    ]
    others = {
        "bias": b.frame("7DT01", "2025-10-01T22:00:00Z", night=n, filter="r", image_type="bias", exptime=0.0),
        "focus": b.frame("7DT01", "2025-10-01T23:10:00Z", night=n, tile="T00001", excluded_by="focus:filename-contains-focus"),
        "vanished": b.frame("7DT02", "2025-10-02T02:00:00Z", night=n, filter="m525", target=grb, obsnote=note, present=False),
        "T00002": b.frame("7DT01", "2025-09-21T02:00:00Z", night="2025-09-20", tile="T00002", program="RIS"),
        "T00003": b.frame("7DT01", "2025-09-21T03:00:00Z", night="2025-09-20", tile="T00003", program="RIS"),
    }
    b.refresh()
    key = api_key()
    return {
        "client": PipelineStyleClient("http://testserver", key),
        "key": key,
        "tile_frames": tile_frames,
        "grb_frames": grb_frames,
        "others": others,
        "grb": grb,
    }


# -- 4.3, item by item ----------------------------------------------------------------------------
def test_1_ping_and_missing_or_wrong_key(scenario):
    assert scenario["client"].ping() is True
    assert PipelineStyleClient("http://testserver", "gwp_wrong").ping() is False
    response = Client().get("/api/frames/raw/", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"]
    assert set(response.json()) == {"error"} and response.json()["error"]


def test_2_one_tile_per_page(scenario):
    page = scenario["client"].query("tile", page_size=1)
    assert (page["count"], page["num_pages"], len(page["results"])) == (3, 3, 1)
    assert TILE_KEYS <= set(page["results"][0])
    assert page["results"][0]["name"] == "T00001"
    tile = Tile.objects.get(name="T00001")
    assert page["results"][0]["observation_count"] == 3 and page["results"][0]["first_observed"] == "2025-10-01"
    assert (page["results"][0]["ra"], page["results"][0]["dec"]) == (tile.ra, tile.dec)


def test_3_date_range_pages_in_obstime_order(scenario):
    client = scenario["client"]
    rows = client.fetch_all("raw", page_size=2, date_start="2025-10-01", date_end="2025-10-02")
    assert len(rows) == 5
    assert len([u for u in client.requests if "frames/raw/" in u]) == 3
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == 5
    expected = sorted(scenario["tile_frames"] + scenario["grb_frames"], key=lambda f: (f.date_obs, f.id))
    assert ids == [f.id for f in expected]
    stamps = [datetime.fromisoformat(r["obstime"].replace("Z", "+00:00")) for r in rows]
    assert stamps == sorted(stamps)
    for r in rows:
        assert RAW_KEYS <= set(r)
        assert os.path.isabs(r["filepath"]) and r["filepath"].endswith(r["filename"])
        assert r["unit"] in {"7DT01", "7DT02"} and r["filter"] in {"r", "m525"} and r["night"] == "2025-10-01"


def test_3b_date_end_is_inclusive_of_the_whole_day(scenario):
    client = scenario["client"]
    # date_end=2025-10-01 stops at midnight UTC: only the frame taken before it.
    assert [r["id"] for r in client.fetch_all("raw", date_start="2025-10-01", date_end="2025-10-01")] == [
        scenario["tile_frames"][0].id
    ]
    # An explicit instant is honoured as given.
    rows = client.fetch_all("raw", date_start="2025-10-02T01:10:00Z", date_end="2025-10-02T01:10:00")
    assert sorted(r["id"] for r in rows) == sorted([scenario["tile_frames"][1].id, scenario["grb_frames"][0].id])


def test_4_stream_yields_the_count_first(scenario):
    gen = scenario["client"].stream("raw", night_date="2025-10-01", unit_name="7DT01")
    assert next(gen) == 3
    assert {r["tile"] for r in gen} == {"T00001"}


def test_5_filter_and_obsnote_case_insensitive(scenario):
    rows = scenario["client"].fetch_all("raw", filter_name="m525", obsnote_contains="s251112CM")
    assert sorted(r["id"] for r in rows) == sorted(f.id for f in scenario["grb_frames"])


def test_6_target_name_selects_tile_or_target(scenario):
    client = scenario["client"]
    assert sorted(r["id"] for r in client.fetch_all("raw", target_name="T00001")) == sorted(
        f.id for f in scenario["tile_frames"]
    )
    grb = client.fetch_all("raw", target_name="GRB240825A")
    assert sorted(r["id"] for r in grb) == sorted(f.id for f in scenario["grb_frames"])
    assert {r["target"] for r in grb} == {"GRB240825A"} and {r["tile"] for r in grb} == {None}
    assert len(client.fetch_all("raw", target_name="grb240825a")) == 2  # names are matched in any case


def test_7_cone_search_around_the_tile(scenario):
    tile = Tile.objects.get(name="T00001")  # 0.85 deg from the south pole; the frames straddle RA 0
    rows = scenario["client"].fetch_all("raw", coord_sys="radec", ra=tile.ra, dec=tile.dec, radius=0.5)
    assert sorted(r["id"] for r in rows) == sorted(f.id for f in scenario["tile_frames"])


def test_8_tile_names_as_a_comma_list(scenario):
    client = scenario["client"]
    assert client.query("tile", tile_name="T00001,T00002", page_size=2)["count"] == 2
    # gcn_bot reads "tile returned" as "tile has observations": a grid tile never observed is not returned.
    assert client.query("tile", tile_name="T00001,T00004", page_size=2)["count"] == 1
    assert client.query("tile", tile_name="T00001,T00004", all="true", page_size=2)["count"] == 2


def test_9_target_by_name(scenario):
    rows = scenario["client"].fetch_all("target", target_name="GRB240825A")
    assert len(rows) == 1
    row = rows[0]
    assert TARGET_KEYS <= set(row)
    assert (row["name"], row["ra"], row["dec"], row["target_type"]) == ("GRB240825A", 44.1204, -8.0317, "TOO")
    assert row["observation_count"] == 2  # the vanished file is not counted


def test_10_bad_date_is_a_400(scenario):
    with pytest.raises(PortalApiError) as err:
        scenario["client"].query("raw", date_start="2025-13-45")
    assert str(err.value).startswith("API Error (400)")
    assert "date_start" in str(err.value)


def test_11_nothing_found_and_out_of_scope_endpoints(scenario):
    client = scenario["client"]
    assert client.fetch_all("raw", night_date="1999-01-01") == []
    for entity in OUT_OF_SCOPE:
        page = client.query(entity, page_size=1)
        assert (page["count"], page["results"]) == (0, []), entity
        assert client.fetch_all(entity, nightdate="2025-10-01", production_only="true") == []


def test_12_http_builder_calls(scenario):
    client = scenario["client"]
    # RawFrameQuery(...).on_date(D).by_unit(U).fetch() sends night_date and unit_name; .files() reads filepath.
    rows = client.fetch_all("raw", night_date=date(2025, 10, 1), unit_name="7DT01")
    files = [r["filepath"] for r in rows]
    assert len(files) == 3 and all(os.path.isabs(f) for f in files)
    # TileQuery(...).cone_search(ra, dec, radius=2) sends coord_sys, ra, dec, radius.
    tile = Tile.objects.get(name="T00002")
    near = client.fetch_all("tile", coord_sys="radec", ra=tile.ra, dec=tile.dec, radius=2.0)
    assert {"T00001", "T00002", "T00003"} <= {r["name"] for r in near}


def test_rows_leave_out_calibrations_exclusions_and_vanished_files(scenario):
    client = scenario["client"]
    night = client.fetch_all("raw", night_date="2025-10-01")
    ids = {r["id"] for r in night}
    others = scenario["others"]
    assert len(night) == 5 and not ids & {others["bias"].id, others["focus"].id, others["vanished"].id}
    bias = client.fetch_all("raw", night_date="2025-10-01", image_type="bias")
    assert [r["id"] for r in bias] == [others["bias"].id] and bias[0]["object_type"] == "BIAS"
    assert len(client.fetch_all("raw", night_date="2025-10-01", image_type="all")) == 6


def test_parameters_the_client_may_send_are_accepted(scenario):
    client = scenario["client"]
    base = client.fetch_all("raw", night_date="2025-10-01")
    extra = dict(
        data_stream="too", processing_version="v1", offset=0, neighbors=3, exptime_near=100, all_versions="true",
        production_only="true",
    )
    assert client.fetch_all("raw", night_date="2025-10-01", **extra) == base
    assert len(client.fetch_all("raw", night_date="2025-10-01", target_type="TOO")) == 2
    assert len(client.fetch_all("raw", night_date="2025-10-01", target_type="RIS")) == 3
    assert len(client.fetch_all("raw", night_date="2025-10-01", days=100000, exptime=100, binning=1, gain=2750,
                                camera_serial="c3-61000", min_exptime=50, max_exptime=150)) == 5  # fmt: skip
    assert client.fetch_all("raw", night_date="2025-10-01", max_exptime=50) == []


def test_unified_filename_and_row_values(scenario):
    row = scenario["client"].fetch_all("raw", target_name="GRB240825A")[0]
    frame = scenario["grb_frames"][0]
    assert row["unified_filename"] == f"7DT02_20251002_011000_GRB240825A_m525_1x1_100.0s_{frame.sequence:04d}.fits"
    assert (row["object_ra"], row["object_dec"], row["object_type"]) == (44.1204, -8.0317, "ToO")
    assert row["obsnote"] == "LVK S251112cm follow-up" and row["exptime"] == 100.0
