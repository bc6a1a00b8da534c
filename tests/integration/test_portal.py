"""Portal pages against an ingested sample archive, checked against the generator's manifest.

Every expected number comes from `Manifest` (what the generator wrote), never from the database.
"""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from rawdata.header import read_header
from rawdata.sample import Manifest, corrupt_helpers
from rawdata.tiles import angular_distance_deg
from survey.models import FileProblem, Frame, FrameHeader, IngestRun, MissingReport, MonitorState
from survey.queries import CappedPaginator, Cone, FrameFilter, cone_bounds, frame_queryset

from tests.integration.conftest import run_command

pytestmark = pytest.mark.django_db

BAD_FILE = "7DT01/2025-07-01_gain2750/7DT01_20250702_030000_T04178_m650_1x1_100.0s_0099.fits"


# ------------------------------------------------------------------------------------ fixtures


class Portal:
    """An ingested sample archive plus a logged-in client."""

    def __init__(self, client, root: Path, manifest: Manifest) -> None:
        self.client, self.root, self.manifest = client, root, manifest

    def rel(self, path: str) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def catalogued(self, **where) -> set[str]:
        """Manifest paths of frames the portal shows by default (not excluded by a rule)."""
        return {f.path for f in self.manifest.select(**where) if f.excluded is None}

    def search(self, params: dict) -> set[str]:
        """Relative paths of every frame a search returns, paging through all pages."""
        params = {"per_page": 200, **params}
        response = self.client.get(reverse("frame-search"), params)
        assert response.status_code == 200, response.content[:2000]
        page = response.context["page_obj"]
        assert not response.context["capped"]
        paths = [self.rel(f.path) for f in page]
        while page.has_next():
            response = self.client.get(reverse("frame-search"), {**params, "page": page.next_page_number()})
            page = response.context["page_obj"]
            paths.extend(self.rel(f.path) for f in page)
        assert len(paths) == len(set(paths)) == page.paginator.count
        return set(paths)

    def export(self, params: dict) -> list[dict[str, str]]:
        response = self.client.get(reverse("frame-export"), params)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        text = b"".join(response.streaming_content).decode("utf-8")
        return list(csv.DictReader(io.StringIO(text)))


@dataclass
class Archive:
    root: Path
    manifest: Manifest
    user_id: int


@pytest.fixture(scope="module")
def archive(django_db_setup, django_db_blocker, sample_template, tmp_path_factory):
    """The sample archive (plus one garbage file), ingested once for this module.

    Written inside an outer transaction that is rolled back when the module ends, exactly as
    Django's TestCase.setUpTestData does: each test runs in a nested savepoint (its own changes
    are rolled back), and nothing leaks into other test modules.
    """
    root = tmp_path_factory.mktemp("portal") / "obsdata"
    shutil.copytree(sample_template, root, copy_function=shutil.copy2)
    corrupt_helpers.write_garbage(root / BAD_FILE)
    override = override_settings(
        GWPORTAL={**settings.GWPORTAL, "DATA_ROOT": str(root), "LOG_DIR": str(root.parent / "logs")}
    )
    override.enable()
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            run = run_command("ingest_all_nights", "--data-root", str(root), "--auto-confirm", "--settle-seconds", "0")
            assert run.code == 1, run.out + run.err  # the garbage file is a recorded problem, the rest is catalogued
            user = get_user_model().objects.create_user("astro")  # no password: tests log in with force_login
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            override.disable()
            raise
    yield Archive(root, Manifest.load(root), user.pk)
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)
    override.disable()


@pytest.fixture
def portal(archive: Archive, client) -> Portal:
    client.force_login(get_user_model().objects.get(pk=archive.user_id))
    return Portal(client, archive.root, archive.manifest)


def _sci_frame() -> Frame:
    return Frame.objects.filter(image_type="science", excluded_by="").order_by("id").first()


# ------------------------------------------------------------------------------------ login


def test_every_page_needs_login(portal: Portal, client) -> None:
    frame = _sci_frame()
    run = IngestRun.objects.first()
    urls = [
        reverse("dashboard"), reverse("night-list"), reverse("night-detail", args=["2025-07-01"]),
        reverse("frame-search"), reverse("frame-export"), reverse("frame-detail", args=[frame.pk]),
        reverse("frame-download", args=[frame.pk]), reverse("target-list"), reverse("target-detail", args=["NGC6121"]),
        reverse("run-list"), reverse("run-detail", args=[run.pk]), reverse("run-log", args=[run.pk]),
        reverse("problem-list"),
    ]
    client.logout()
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def test_login_page_renders(client) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content


# ------------------------------------------------------------------------------------ dashboard


def test_dashboard_totals_match_manifest(portal: Portal) -> None:
    response = portal.client.get(reverse("dashboard"))
    assert response.status_code == 200
    m = portal.manifest
    by_type = m.count_by("image_type", where={"excluded": None})
    totals = response.context["totals"]
    for kind in ("science", "flat", "dark", "bias"):
        assert totals[kind] == by_type[kind], kind
    assert totals["frames"] == sum(by_type.values())
    assert totals["excluded"] == len(m.files) - sum(by_type.values())
    assert f'<div class="value" id="total-frames">{sum(by_type.values())}</div>' in response.content.decode()

    by_unit = m.count_by("unit", where={"excluded": None})
    assert {r["unit"]: r["frames"] for r in response.context["by_unit"]} == dict(by_unit)
    by_filter = m.count_by("filter", "image_type", where={"excluded": None})
    shown = {(r["filter"], t): r[t] for r in response.context["by_filter"] for t in ("science", "flat", "dark", "bias") if r[t]}
    assert shown == dict(by_filter)
    assert response.context["n_nights"] == len({f.night for f in m.files})


def test_dashboard_plots_embed_the_window(portal: Portal) -> None:
    m = portal.manifest
    nights = sorted({f.night for f in m.files})
    response = portal.client.get(reverse("dashboard"), {"days": 3000})
    html = response.content.decode()
    for element in ("fig-per-night", "fig-heatmap", "fig-throughput"):
        assert f'id="{element}" type="application/json"' in html
        assert f'data-figure="{element}"' in html
    assert "survey/plots.js" in html and "plotly/plotly.min.js" in html

    fig = _json_script(html, "fig-per-night")
    assert fig["data"][0]["x"] == nights
    for trace in fig["data"]:
        expected = m.count_by("night", where={"excluded": None, "image_type": trace["name"]})
        assert dict(zip(trace["x"], trace["y"])) == {n: expected.get(n, 0) for n in nights}
    heat = _json_script(html, "fig-heatmap")["data"][0]
    per_cell = m.count_by("unit", "night", where={"excluded": None})
    assert heat["z"] == [[per_cell.get((u, n), 0) for n in heat["x"]] for u in heat["y"]]
    throughput = _json_script(html, "fig-throughput")["data"]
    assert [len(t["y"]) for t in throughput] == [1]

    # Default window: 90 days ending at the newest night (the 2024 NINA night is outside it).
    default = _json_script(portal.client.get(reverse("dashboard")).content.decode(), "fig-per-night")
    assert default["data"][0]["x"] == [n for n in nights if n > "2025-01-01"]


def _json_script(html: str, element_id: str) -> dict:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, element_id
    return json.loads(match.group(1))


def test_dashboard_monitor_states(portal: Portal) -> None:
    response = portal.client.get(reverse("dashboard"))
    assert "never started" in response.content.decode()

    now = timezone.now()
    MonitorState.objects.create(name="update_nights", status="sleeping", host="obs1", pid=4242,
                                heartbeat_at=now - timedelta(seconds=90), next_check_at=now + timedelta(hours=8))
    html = portal.client.get(reverse("dashboard")).content.decode()
    assert "sleeping" in html and "1 min 30 s ago" in html and "heartbeat stale" not in html
    assert (now + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M") in html

    MonitorState.objects.filter(name="update_nights").update(heartbeat_at=now - timedelta(hours=2))
    assert "heartbeat stale" in portal.client.get(reverse("dashboard")).content.decode()


def test_dashboard_lists_latest_runs(portal: Portal) -> None:
    run = IngestRun.objects.get()
    html = portal.client.get(reverse("dashboard")).content.decode()
    assert reverse("run-detail", args=[run.pk]) in html
    assert run.get_status_display() in html


# ------------------------------------------------------------------------------------ nights


def test_night_list_calendar_and_table(portal: Portal) -> None:
    m = portal.manifest
    response = portal.client.get(reverse("night-list"), {"month": "2025-07"})
    assert response.status_code == 200
    per_night = m.count_by("night", where={"excluded": None})
    weeks = response.context["weeks"]
    first, last = weeks[0][0]["date"].isoformat(), weeks[-1][-1]["date"].isoformat()
    cells = {c["date"].isoformat(): c["counts"] for week in weeks for c in week if c["counts"]}
    assert {d: c["frames"] for d, c in cells.items()} == {n: k for n, k in per_night.items() if first <= n <= last}
    assert "2025-06-30" in cells  # the grid starts on the Monday before July 1st
    rows = {n.date.isoformat(): n.n_frames for n in response.context["page_obj"]}
    assert rows == dict(per_night)
    html = response.content.decode()
    assert reverse("night-detail", args=["2025-07-01"]) in html


def test_night_detail_per_unit(portal: Portal) -> None:
    m = portal.manifest
    night = "2025-07-01"
    response = portal.client.get(reverse("night-detail", args=[night]))
    assert response.status_code == 200
    blocks = {b["unit"].name: b for b in response.context["blocks"]}
    assert set(blocks) == set(m.units)
    for unit, block in blocks.items():
        expected = m.count_by("image_type", where={"unit": unit, "night": night, "excluded": None})
        s = block["stats"]
        assert (s.n_science, s.n_flat, s.n_dark, s.n_bias) == (
            expected["science"], expected["flat"], expected["dark"], expected["bias"]
        )
        by_filter = m.count_by("filter", "image_type", where={"unit": unit, "night": night, "excluded": None})
        assert {(r["filter"], t): r[t] for r in block["filters"] for t in ("science", "flat", "dark", "bias") if r[t]} == dict(by_filter)
        exposure = sum(f.exptime for f in m.select(unit=unit, night=night, excluded=None))
        assert block["total_exptime"] == pytest.approx(exposure, abs=0.01)
        folders = {f["folder"] for f in m.folders if f["unit"] == unit and f["night"] == night}
        assert {f.name for f in block["folders"]} == folders
    # The garbage file is a problem of 7DT01's folder that night, shown in that unit's block only.
    assert [p.path for p in blocks["7DT01"]["problems"]] == [str(portal.root / BAD_FILE)]
    assert not blocks["7DT02"]["problems"]
    targets = {t["object"]: t["n"] for t in response.context["targets"]}
    assert targets == dict(m.count_by("object", where={"night": night, "excluded": None, "image_type": "science"}))
    html = response.content.decode()
    assert 'id="fig-timeline"' in html and BAD_FILE.rsplit("/", 1)[1] in html
    timeline = _json_script(html, "fig-timeline")["data"]
    assert sum(len(t["x"]) for t in timeline) == len(m.select(night=night, excluded=None))


def test_night_extra_hook_renders_when_template_exists(portal: Portal, settings, tmp_path) -> None:
    """The extra section is a fragment of its own (`?section=extra`) that the page loads once shown."""
    extra = tmp_path / "templates" / "survey" / "status"
    extra.mkdir(parents=True)
    (extra / "night_extra.html").write_text("<p id='extra'>calibration readiness for {{ night.date|date:'Y-m-d' }}</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path / "templates")]}]
    url = reverse("night-detail", args=["2025-07-01"])
    html = portal.client.get(url).content.decode()
    assert f'id="night-extra" data-src="{url}?section=extra"' in html
    assert "calibration readiness for" not in html
    fragment = portal.client.get(url, {"section": "extra"})
    assert fragment.status_code == 200
    assert fragment.content.decode() == "<p id='extra'>calibration readiness for 2025-07-01</p>"


def test_night_extra_section_is_the_survey_status(portal: Portal, monkeypatch) -> None:
    url = reverse("night-detail", args=["2025-07-01"])
    fragment = portal.client.get(url, {"section": "extra"}).content.decode()
    assert 'id="readiness-matrix"' in fragment and "<html" not in fragment
    assert portal.client.get(reverse("night-detail", args=["2020-01-01"]), {"section": "extra"}).status_code == 404
    monkeypatch.setattr("survey.views.nights.NIGHT_EXTRA_TEMPLATE", "survey/no_such_extra.html")
    assert 'id="night-extra"' not in portal.client.get(url).content.decode()
    assert portal.client.get(url, {"section": "extra"}).status_code == 404


def test_unknown_night_is_404(portal: Portal) -> None:
    assert portal.client.get(reverse("night-detail", args=["2020-01-01"])).status_code == 404
    assert portal.client.get("/nights/2025-13-45/").status_code == 404


# ------------------------------------------------------------------------------------ frame search


def _cone_centre(portal: Portal):
    rec = next(f for f in portal.manifest.files if f.object == "NGC6121" and f.excluded is None)
    return rec.ra, rec.dec


@pytest.mark.parametrize(
    "params, predicate",
    [
        ({}, lambda f: True),
        ({"unit": "7DT02"}, lambda f: f.unit == "7DT02"),
        ({"unit": ["7DT01", "7DT03"]}, lambda f: f.unit in ("7DT01", "7DT03")),
        ({"image_type": "flat"}, lambda f: f.image_type == "flat"),
        ({"image_type": ["bias", "dark"]}, lambda f: f.image_type in ("bias", "dark")),
        ({"filter": "m650"}, lambda f: f.filter == "m650"),
        ({"filter": "m650, r"}, lambda f: f.filter in ("m650", "r")),
        ({"night": "2025-07-01"}, lambda f: f.night == "2025-07-01"),
        ({"date_from": "2025-07-01", "date_to": "2025-07-02"}, lambda f: "2025-07-01" <= f.night <= "2025-07-02"),
        ({"date_to": "2025-01-01"}, lambda f: f.night <= "2025-01-01"),
        ({"exptime_min": "50", "exptime_max": "100"}, lambda f: 50 <= f.exptime <= 100),
        ({"exptime_min": "100.5"}, lambda f: f.exptime >= 100.5),
        ({"object": "LTT1020"}, lambda f: f.object == "LTT1020"),
        ({"object": "NGC6121"}, lambda f: f.object in ("NGC6121", "NGC6121_shift")),  # the shifted pointing is the same target
        ({"object": "LTT*"}, lambda f: (f.object or "").startswith("LTT")),
        ({"unit": "7DT03", "image_type": "science", "filter": "r", "night": "2025-06-30"},
         lambda f: (f.unit, f.image_type, f.filter, f.night) == ("7DT03", "science", "r", "2025-06-30")),
    ],
)
def test_frame_search_filters(portal: Portal, params, predicate) -> None:
    expected = {f.path for f in portal.manifest.files if f.excluded is None and predicate(f)}
    assert expected, "a case that expects nothing cannot fail"
    assert portal.search(params) == expected


def _busiest_tile(manifest: Manifest) -> str:
    """The 7DS tile with the most catalogued science frames in this sample (ties: first by name)."""
    counts = Counter(f.tile for f in manifest.files if f.tile and f.excluded is None)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def test_frame_search_by_tile_name(portal: Portal) -> None:
    tile = _busiest_tile(portal.manifest)
    expected = {f.path for f in portal.manifest.files if f.excluded is None and (f.object == tile or f.tile == tile)}
    assert expected
    assert portal.search({"object": tile}) == expected
    assert portal.search({"object": tile.lower()}) == expected  # tile names are matched case-insensitively


def test_frame_search_include_excluded(portal: Portal) -> None:
    m = portal.manifest
    assert portal.search({"unit": "7DT01", "include_excluded": "on"}) == {f.path for f in m.select(unit="7DT01")}
    assert portal.search({"unit": "7DT01"}) == portal.catalogued(unit="7DT01")
    assert portal.catalogued(unit="7DT01") != {f.path for f in m.select(unit="7DT01")}


@pytest.mark.parametrize("radius", [0.01, 1.0, 5.0])
def test_frame_search_cone(portal: Portal, radius: float) -> None:
    ra, dec = _cone_centre(portal)
    distances = {f.path: angular_distance_deg(ra, dec, f.ra, f.dec) for f in portal.manifest.files if f.excluded is None}
    assert all(abs(d - radius) > 1e-6 for d in distances.values()), "no frame may sit on the edge of the test cone"
    expected = {p for p, d in distances.items() if d <= radius}
    assert expected
    found = portal.search({"ra": ra, "dec": dec, "radius": radius, "sort": "distance"})
    assert found == expected
    # Sexagesimal input gives the same cone.
    from astropy.coordinates import Angle
    import astropy.units as u

    ra_s = Angle(ra, u.deg).to_string(unit=u.hourangle, sep=":", precision=4)
    dec_s = Angle(dec, u.deg).to_string(unit=u.deg, sep=":", precision=3, alwayssign=True)
    assert portal.search({"ra": ra_s, "dec": dec_s, "radius": radius}) == expected


def test_night_search_keeps_frames_without_date_obs(portal: Portal) -> None:
    """A frame without DATE-OBS (night from its folder) is still found by night and date-range searches."""
    frame = Frame.objects.filter(night__date="2025-07-01", excluded_by="").order_by("id").first()
    Frame.objects.filter(pk=frame.pk).update(date_obs=None)
    night = portal.catalogued(night="2025-07-01")
    assert portal.rel(frame.path) in night
    assert portal.search({"night": "2025-07-01"}) == night
    assert portal.search({"date_from": "2025-07-01", "date_to": "2025-07-01"}) == night
    later = {f.path for f in portal.manifest.files if f.excluded is None and f.night >= "2025-07-01"}
    assert portal.search({"date_from": "2025-07-01"}) == later


def test_cone_across_ra_zero(portal: Portal) -> None:
    """A cone centred just east of RA 0 finds a frame just west of it (the RA window wraps)."""
    frame = _sci_frame()
    Frame.objects.filter(pk=frame.pk).update(ra=359.95, dec=-10.0)
    found = portal.search({"ra": "0.05", "dec": "-10.0", "radius": "0.2"})
    assert found == {portal.rel(frame.path)}
    assert portal.search({"ra": "0.05", "dec": "-10.0", "radius": "0.05"}) == set()


def test_cone_bounds() -> None:
    b = cone_bounds(10.0, 0.0, 1.0)
    assert (b.dec_min, b.dec_max) == (-1.0, 1.0) and b.ra_ranges == ((pytest.approx(9.0), pytest.approx(11.0)),)
    wrapped = cone_bounds(359.5, 60.0, 1.0)
    assert len(wrapped.ra_ranges) == 2 and wrapped.ra_ranges[1][0] == 0.0
    # At Dec 60 a 1 degree circle spans asin(sin 1 / cos 60) = 2.0003 degrees of RA each side.
    assert wrapped.ra_ranges[0][0] == pytest.approx(359.5 - 2.0003, abs=1e-3)
    assert cone_bounds(0.0, 89.5, 1.0).ra_ranges is None
    assert cone_bounds(0.0, -90.0, 2.0).dec_min == -90.0


def test_frame_search_sorting(portal: Portal) -> None:
    r = portal.client.get(reverse("frame-search"), {"sort": "exptime", "per_page": 200})
    values = [f.exptime for f in r.context["page_obj"]]
    assert values == sorted(values)
    r = portal.client.get(reverse("frame-search"), {"sort": "-date", "per_page": 200})
    dates = [f.date_obs for f in r.context["page_obj"]]
    assert dates == sorted(dates, reverse=True)
    r = portal.client.get(reverse("frame-search"), {"sort": "unit", "per_page": 200})
    units = [f.unit.name for f in r.context["page_obj"]]
    assert units == sorted(units)
    html = r.content.decode()
    assert "sort=-unit" in html  # clicking the sorted column again reverses it


def test_frame_search_rejects_bad_input(portal: Portal) -> None:
    for params in ({"ra": "10", "dec": "5"}, {"date_from": "2025-07-02", "date_to": "2025-07-01"},
                   {"dec": "95", "ra": "1", "radius": "1"}, {"ra": "ten", "dec": "1", "radius": "1"},
                   {"ra": "1", "dec": "1", "radius": "45"}, {"exptime_min": "10", "exptime_max": "5"}):
        response = portal.client.get(reverse("frame-search"), params)
        assert response.status_code == 400, params
        assert b'id="form-errors"' in response.content
        assert portal.client.get(reverse("frame-export"), params).status_code == 400


def test_capped_paginator_counts_at_most_the_cap(portal: Portal) -> None:
    qs = frame_queryset(FrameFilter())
    paginator = CappedPaginator(qs, 5, cap=20)
    assert paginator.count == 20 and paginator.capped and paginator.num_pages == 4
    n_bias = len(portal.catalogued(unit="7DT02", image_type="bias"))
    exact = CappedPaginator(frame_queryset(FrameFilter(units=["7DT02"], image_types=["bias"])), 5, cap=n_bias)
    assert exact.count == n_bias and not exact.capped
    cone = CappedPaginator(frame_queryset(FrameFilter(cone=Cone(*_cone_centre(portal), 1.0))), 5, cap=2)
    assert cone.capped


@pytest.mark.parametrize(
    "params",
    [{}, {"unit": "7DT02", "image_type": "science"}, {"filter": "m650", "include_excluded": "on"},
     {"object": "LTT*", "sort": "exptime"}, {"night": "2025-07-01", "sort": "-filter"}],
)
def test_csv_export_equals_search(portal: Portal, params) -> None:
    rows = portal.export(params)
    found = portal.search(params)
    assert {portal.rel(r["path"]) for r in rows} == found
    assert len(rows) == len(found)
    by_path = portal.manifest.by_path()
    for row in rows:
        rec = by_path[portal.rel(row["path"])]
        assert (row["unit"], row["night"], row["image_type"], row["filter"]) == (rec.unit, rec.night, rec.image_type, rec.filter)
        assert float(row["exptime"]) == rec.exptime and int(row["file_size"]) == rec.size


def test_csv_export_is_not_capped(portal: Portal, monkeypatch) -> None:
    monkeypatch.setattr("survey.queries.COUNT_CAP", 10)
    response = portal.client.get(reverse("frame-search"), {"per_page": 25})
    assert response.context["capped"] and response.context["page_obj"].paginator.count == 10
    assert "More than 10 frames match" in response.content.decode()
    rows = portal.export({})
    assert len(rows) == len(portal.catalogued()) > 10


# ------------------------------------------------------------------------------------ frame page


def test_frame_page_shows_every_header_card(portal: Portal) -> None:
    frame = _sci_frame()
    cards = read_header(frame.path).cards  # the file's own header: stored as a layout plus changes, shown whole
    assert FrameHeader.objects.get(frame=frame).full_cards == cards
    response = portal.client.get(reverse("frame-detail", args=[frame.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    shown = dict((k, v) for k, v in response.context["cards"] if k not in ("COMMENT", "HISTORY", ""))
    assert set(shown) == {k for k in cards if k not in ("COMMENT", "HISTORY", "")}
    for key in cards:
        if key:
            assert f"<code>{key}</code>" in html, key
    assert frame.path in html and str(frame.file_size) in html
    assert frame.get_checksum_display() in html
    assert reverse("frame-download", args=[frame.pk]) in html


def test_frame_page_exclusion_and_pointing(portal: Portal) -> None:
    excluded = Frame.objects.exclude(excluded_by="").first()
    html = portal.client.get(reverse("frame-detail", args=[excluded.pk])).content.decode()
    assert f"excluded by rule <code>{excluded.excluded_by}</code>" in html
    off = portal.manifest.scenarios["off_pointing"][0]
    frame = Frame.objects.get(path=str(portal.root / off))
    html = portal.client.get(reverse("frame-detail", args=[frame.pk])).content.decode()
    assert frame.pointing_warning and "off pointing" in html
    assert f"{frame.pointing_offset:.4f}° from the tile centre" in html
    assert portal.client.get(reverse("frame-detail", args=[10**9])).status_code == 404


def test_download_returns_the_file(portal: Portal) -> None:
    frame = _sci_frame()
    response = portal.client.get(reverse("frame-download", args=[frame.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == Path(frame.path).read_bytes()
    assert frame.filename in response["Content-Disposition"]


def test_download_refuses_paths_outside_the_data_root(portal: Portal, tmp_path, settings) -> None:
    secret = tmp_path / "outside" / "secret.fits"
    secret.parent.mkdir()
    secret.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    frame = _sci_frame()
    url = reverse("frame-download", args=[frame.pk])

    Frame.objects.filter(pk=frame.pk).update(path=str(secret))
    assert portal.client.get(url).status_code == 404
    Frame.objects.filter(pk=frame.pk).update(path=str(portal.root / "7DT01" / ".." / ".." / "outside" / "secret.fits"))
    assert portal.client.get(url).status_code == 404
    Frame.objects.filter(pk=frame.pk).update(path="/etc/passwd")
    assert portal.client.get(url).status_code == 404

    link = portal.root / "7DT01" / "2025-07-01_gain2750" / "escape.fits"
    link.symlink_to(secret)
    Frame.objects.filter(pk=frame.pk).update(path=str(link))
    assert portal.client.get(url).status_code == 404

    # A symlinked directory inside the root that points outside is refused as well.
    (portal.root / "7DT01" / "linkdir").symlink_to(secret.parent, target_is_directory=True)
    Frame.objects.filter(pk=frame.pk).update(path=str(portal.root / "7DT01" / "linkdir" / "secret.fits"))
    assert portal.client.get(url).status_code == 404

    # The data root itself is not a file to download, and no data root means no downloads.
    Frame.objects.filter(pk=frame.pk).update(path=str(portal.root))
    assert portal.client.get(url).status_code == 404
    other = Frame.objects.exclude(pk=frame.pk).first()
    settings.GWPORTAL = {**settings.GWPORTAL, "DATA_ROOT": ""}
    assert portal.client.get(reverse("frame-download", args=[other.pk])).status_code == 404


def test_download_follows_symlinks_that_stay_inside_the_root(portal: Portal) -> None:
    frame = _sci_frame()
    link = portal.root / "7DT02" / "alias.fits"
    link.symlink_to(frame.path)
    Frame.objects.filter(pk=frame.pk).update(path=str(link))
    response = portal.client.get(reverse("frame-download", args=[frame.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == Path(frame.path).read_bytes()


# ------------------------------------------------------------------------------------ targets


def test_target_list_and_filters(portal: Portal) -> None:
    response = portal.client.get(reverse("target-list"))
    names = [t.name for t in response.context["page_obj"]]
    for name in ("NGC6121", "LTT1020", "S250206dm", "COSMOS"):
        assert name in names
    standards = [t.name for t in portal.client.get(reverse("target-list"), {"kind": "standard"}).context["page_obj"]]
    assert "LTT1020" in standards and "NGC6121" not in standards
    found = [t.name for t in portal.client.get(reverse("target-list"), {"q": "ltt"}).context["page_obj"]]
    assert found == ["LTT1020", "LTT3218"]
    tiles = [t.name for t in portal.client.get(reverse("target-list"), {"kind": "tile"}).context["page_obj"]]
    assert tiles == sorted({f.tile for f in portal.manifest.files if f.tile and f.excluded is None})


@pytest.mark.parametrize("name, match", [
    ("NGC6121", lambda f, name: f.object in (name, name + "_shift")),
    ("LTT1020", lambda f, name: f.object == name),
    ("tile", lambda f, name: f.tile == name),
])
def test_target_detail_by_filter_and_time(portal: Portal, name, match) -> None:
    if name == "tile":
        name = _busiest_tile(portal.manifest)
    sci = [f for f in portal.manifest.files if f.excluded is None and f.image_type == "science" and match(f, name)]
    assert sci
    response = portal.client.get(reverse("target-detail", args=[name]))
    assert response.status_code == 200
    assert {r["filter"]: r["n"] for r in response.context["by_filter"]} == dict(Counter(f.filter for f in sci))
    assert response.context["total"]["n"] == len(sci)
    plot = response.context["plot"]
    per_night = {}
    for trace in plot["data"]:
        for x, y in zip(trace["x"], trace["y"]):
            per_night[(trace["name"], x)] = y
    assert per_night == dict(Counter((f.filter, f.night) for f in sci))
    assert 'id="fig-target"' in response.content.decode()


def test_unknown_target_is_404(portal: Portal) -> None:
    assert portal.client.get(reverse("target-detail", args=["NoSuchThing"])).status_code == 404


# ------------------------------------------------------------------------------------ runs


def test_run_pages(portal: Portal) -> None:
    run = IngestRun.objects.get()
    response = portal.client.get(reverse("run-list"))
    assert [r.pk for r in response.context["page_obj"]] == [run.pk]
    response = portal.client.get(reverse("run-detail", args=[run.pk]))
    assert response.status_code == 200
    rows = {(r["night"], r["unit"]): r for r in response.context["report_rows"]}
    m = portal.manifest
    for (unit, night, kind), n in m.count_by("unit", "night", "image_type", where={"excluded": None}).items():
        assert rows[(night, unit)][kind] == n
    assert [p.path for p in response.context["problems"]] == [str(portal.root / BAD_FILE)]
    html = response.content.decode()
    assert response.context["log_text"] and f"run {run.pk}" in response.context["log_text"]
    assert 'id="run-log"' in html
    log = portal.client.get(reverse("run-log", args=[run.pk]))
    assert log.status_code == 200 and b"".join(log.streaming_content) == Path(run.log_file).read_bytes()


def test_run_log_outside_log_dir_is_not_read(portal: Portal, tmp_path) -> None:
    run = IngestRun.objects.get()
    outside = tmp_path / "elsewhere.log"
    outside.write_text("secret\n")
    IngestRun.objects.filter(pk=run.pk).update(log_file=str(outside))
    response = portal.client.get(reverse("run-detail", args=[run.pk]))
    assert response.context["log_text"] is None and b"secret" not in response.content
    assert portal.client.get(reverse("run-log", args=[run.pk])).status_code == 404


# ------------------------------------------------------------------------------------ problems


def test_problem_list_and_reason_filter(portal: Portal) -> None:
    problem = FileProblem.objects.get(path=str(portal.root / BAD_FILE))
    FileProblem.objects.create(path="/x/7DT09/2025-07-01/other.fits", reason="zz_other", severity="warning",
                               first_seen=timezone.now(), last_seen=timezone.now())
    FileProblem.objects.create(path="/x/fixed.fits", reason=problem.reason, resolved=True,
                               first_seen=timezone.now(), last_seen=timezone.now())
    response = portal.client.get(reverse("problem-list"))
    assert {p.path for p in response.context["page_obj"]} == {problem.path, "/x/7DT09/2025-07-01/other.fits"}
    response = portal.client.get(reverse("problem-list"), {"reason": problem.reason})
    assert [p.path for p in response.context["page_obj"]] == [problem.path]
    response = portal.client.get(reverse("problem-list"), {"reason": problem.reason, "resolved": "on"})
    assert {p.path for p in response.context["page_obj"]} == {problem.path, "/x/fixed.fits"}
    assert b'id="no-missing-report"' in response.content


def test_problem_page_shows_latest_missing_report(portal: Portal) -> None:
    MissingReport.objects.create(summary={"folders": 1}, flagged_folders=["old"], clean=False)
    MissingReport.objects.create(
        summary={"folders_checked": 16, "not_ingested": 2},
        flagged_folders=[{"folder": "7DT02/2025-07-02_gain2750", "reason": "not_ingested", "files": 2}],
        clean=False, report_file="/var/reports/missing_20250703.txt",
    )
    html = portal.client.get(reverse("problem-list")).content.decode()
    assert "folders_checked" in html and "not_ingested" in html
    assert "7DT02/2025-07-02_gain2750" in html and "/var/reports/missing_20250703.txt" in html
    assert ">old<" not in html


def test_dashboard_shows_calibration_readiness_and_conditions(client, django_user_model, settings, tmp_path, sample_root):
    """Issue 11: the dashboard carries the calibration summary and the conditions time series."""
    from tests.integration.conftest import run_command

    settings.GWPORTAL = {**settings.GWPORTAL, "LOG_DIR": str(tmp_path / "logs")}
    assert run_command("ingest_all_nights", "--data-root", str(sample_root), "--auto-confirm", "--settle-seconds", "0").code == 0
    user = django_user_model.objects.create_user("dash", password="x-long-password")
    client.force_login(user)
    page = client.get("/").content.decode()
    assert 'id="calibration-summary-table"' in page
    assert 'id="conditions-series-data"' in page
