"""Calibration readiness by the pipeline's grouping rules, on the generated archive.

The sample has a night where one unit took no flats in one of its filters (Manifest.scenarios
["missing_flats"]); every expectation below is derived from the Manifest's own file records.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from rawdata.sample import Manifest
from survey.calibration import CalibrationRules, camera_key, cameras_match, frame_calibrations, readiness
from survey.models import ApiKey, Frame
from tests.integration.conftest import run_command

pytestmark = pytest.mark.django_db


@pytest.fixture
def archive(sample_template) -> Path:
    """The session's sample archive; the ingest only reads it."""
    return sample_template


@pytest.fixture
def ingested(archive, ingest) -> Manifest:
    run = ingest(archive)
    assert run.code == 0, run.out + run.err
    return Manifest.load(archive)


@pytest.fixture
def gap(ingested):
    """(unit, night, filter) of the flats the generator left out, and the unit's calibration files."""
    miss = ingested.scenarios["missing_flats"][0]
    return miss["unit"], date.fromisoformat(miss["night"]), miss["filter"]


def manifest_groups(m: Manifest, kind: str) -> Counter:
    """Catalogued calibration files per (unit, night, filter-or-exptime) as the pipeline keys them."""
    key = (lambda f: f.filter) if kind == "flat" else (lambda f: f.exptime) if kind == "dark" else (lambda f: None)
    return Counter((f.unit, f.night, key(f)) for f in m.files if f.image_type == kind and f.excluded is None)


def rules(**kw) -> CalibrationRules:
    return CalibrationRules.from_settings(**kw)


# ------------------------------------------------------------------------------------ rules


def test_camera_rule():
    assert camera_key("Moravian USB Camera 1 (64 bit)") == ""  # INSTRUME: the unit stands for the camera
    assert camera_key("Moravian USB Camera ") == "" and camera_key(None) == ""
    assert camera_key("31093") == "31093"
    assert cameras_match("", "31093") and cameras_match("31093", "31093") and not cameras_match("31093", "31204")
    with pytest.raises(ValueError):
        rules(dark_exptime="closest")
    with pytest.raises(ValueError):
        rules(flat_window=-1)


# ------------------------------------------------------------------------------------ readiness


def test_readiness_matches_the_generator_record(ingested, gap):
    unit, night, filt = gap
    flats, biases, darks = (manifest_groups(ingested, k) for k in ("flat", "bias", "dark"))
    science = [f for f in ingested.files if f.image_type == "science" and f.excluded is None]
    start = min(date.fromisoformat(f.night) for f in science)
    end = max(date.fromisoformat(f.night) for f in science)
    rows = readiness(start, end, rules=rules())
    # one setup per (night, unit, filter, exposure time): every frame has gain 2750, 1x1 and INSTRUME only
    assert Counter((r.setup.night.isoformat(), r.setup.unit, r.setup.filter, r.setup.exptime) for r in rows for _ in range(r.setup.n_science)) \
        == Counter((f.night, f.unit, f.filter, f.exptime) for f in science)
    for r in rows:
        s = r.setup
        n = s.night.isoformat()
        assert r.matches["bias"].state == "night" and r.matches["bias"].group.n == biases[(s.unit, n, None)] >= 5
        dark = r.matches["dark"]
        assert dark.state == "night" and dark.group.n == sum(c for (u, d, _), c in darks.items() if (u, d) == (s.unit, n))
        assert dark.scaled == ((s.unit, n, s.exptime) not in darks)
        flat = r.matches["flat"]
        if (s.unit, s.night, s.filter) == gap:
            before = (s.night - timedelta(days=1)).isoformat()
            assert flats[(s.unit, n, s.filter)] == 0 and flats[(s.unit, before, s.filter)] >= 5
            # nearest night within the window; a tie between the night before and after goes to the one before
            assert flat.state == "nearby" and flat.offset == -1 and flat.group.night.isoformat() == before
            assert flat.group.n == flats[(s.unit, before, s.filter)]
            assert r.status == "fallback"
        else:
            assert flat.state == "night" and flat.group.n == flats[(s.unit, n, s.filter)] >= 5
            assert r.status == "ready"
    gaps = [r for r in rows if r.status != "ready"]
    assert {(r.setup.unit, r.setup.night, r.setup.filter) for r in gaps} == {gap}


def test_no_flats_within_the_window_is_missing(ingested, gap):
    unit, night, filt = gap
    rows = readiness(night, night, [unit], rules(flat_window=0))
    missing = [r for r in rows if r.status == "missing"]
    assert missing and all(r.setup.filter == filt and r.missing == ["flat"] for r in missing)
    assert all(r.status == "ready" for r in rows if r.setup.filter != filt)
    # deleting the neighbours' flats of that filter leaves nothing to fall back on even with a wide window
    Frame.objects.filter(unit__name=unit, image_type="flat", filter=filt).exclude(night__date=night).update(present=False)
    rows = readiness(night, night, [unit], rules(flat_window=30))
    assert {r.status for r in rows if r.setup.filter == filt} == {"missing"}


def test_exact_dark_exposure_time(ingested):
    darks = manifest_groups(ingested, "dark")
    dark_exptimes = {e for (_, _, e) in darks}
    science = [f for f in ingested.files if f.image_type == "science" and f.excluded is None]
    odd = {(f.unit, f.night, f.exptime) for f in science if f.exptime not in dark_exptimes}
    assert odd  # standards at 60 s, NINA-era frames at 30/120 s, darks only at 100 s
    start = min(date.fromisoformat(f.night) for f in science)
    end = max(date.fromisoformat(f.night) for f in science)
    rows = readiness(start, end, rules=rules(dark_exptime="exact"))
    got = {(r.setup.unit, r.setup.night.isoformat(), r.setup.exptime) for r in rows if "dark" in r.missing}
    assert got == odd


def test_camera_swap_is_not_matched_across(ingested, gap):
    unit, night, filt = gap
    before, after = night - timedelta(days=1), night + timedelta(days=1)
    frames = Frame.objects.filter(unit__name=unit)
    frames.filter(night__date=before).update(camera="31093")  # the old camera, known by CAM_ID
    frames.filter(night__date=night).update(camera="31204")  # a new camera from this night on
    rows = [r for r in readiness(night, night, [unit], rules()) if r.setup.filter == filt]
    assert rows and all(r.setup.camera == "31204" for r in rows)
    # the night before had another camera; the night after (INSTRUME only) is the unit's camera
    assert {(r.matches["flat"].state, r.matches["flat"].offset) for r in rows} == {("nearby", 1)}
    assert all(r.matches["flat"].group.night == after for r in rows)


# ------------------------------------------------------------------------------------ API


def test_frame_calibrations_api(client, ingested, gap, django_user_model):
    unit, night, filt = gap
    frame = Frame.objects.filter(unit__name=unit, night__date=night, filter=filt, image_type="science", exptime=100.0).first()
    user = django_user_model.objects.create_user("pipeline")
    _, key = ApiKey.issue(user, "test")
    for url in (f"/api/frames/{frame.pk}/calibrations/", f"/api/survey/frames/{frame.pk}/calibrations/"):
        doc = client.get(url, HTTP_X_API_KEY=key).json()
        assert doc["status"] == "fallback" and set(doc["calibrations"]) == {"bias", "dark", "flat"}
        before = (night - timedelta(days=1)).isoformat()
        want = {Path(f.path).name for f in ingested.files
                if (f.unit, f.night, f.filter, f.image_type) == (unit, before, filt, "flat") and f.excluded is None}
        flat = doc["calibrations"]["flat"]
        assert (flat["state"], flat["night"], flat["offset_nights"]) == ("nearby", before, -1)
        assert {f["filename"] for f in flat["frames"]} == want
        bias = {Path(f.path).name for f in ingested.files
                if (f.unit, f.night, f.image_type) == (unit, night.isoformat(), "bias")}
        assert {f["filename"] for f in doc["calibrations"]["bias"]["frames"]} == bias
        assert "path" not in json.dumps(doc)
    bias_frame = Frame.objects.filter(unit__name=unit, night__date=night, image_type="bias").first()
    doc = client.get(f"/api/frames/{bias_frame.pk}/calibrations/", HTTP_X_API_KEY=key).json()
    assert set(doc["calibrations"]) == {"bias"} and bias_frame.pk in {f["id"] for f in doc["calibrations"]["bias"]["frames"]}
    assert client.get("/api/frames/999999/calibrations/", HTTP_X_API_KEY=key).status_code == 404


def test_calibration_gaps_api(client, ingested, gap, django_user_model):
    unit, night, filt = gap
    client.force_login(django_user_model.objects.create_user("operator"))
    span = {"start": "2025-06-30", "end": "2025-07-02"}
    doc = client.get("/api/survey/calibration-gaps/", span).json()
    assert doc["count"] == 0 and doc["results"] == []
    doc = client.get("/api/survey/calibration-gaps/", {**span, "include_fallback": "true"}).json()
    assert {(r["unit"], r["night"], r["filter"], r["status"]) for r in doc["results"]} == {(unit, night.isoformat(), filt, "fallback")}
    doc = client.get("/api/survey/calibration-gaps/", {**span, "flat_window": 0, "unit": unit.lower()}).json()
    science = Counter(f.exptime for f in ingested.files
                      if (f.unit, f.night, f.filter, f.image_type) == (unit, night.isoformat(), filt, "science") and f.excluded is None)
    assert doc["count"] == len(science) and doc["rules"]["windows_nights"]["flat"] == 0
    assert {(r["exptime"], r["n_science"]) for r in doc["results"]} == set(science.items())
    assert all(r["missing"] == ["flat"] and r["flat"]["state"] == "missing" for r in doc["results"])
    for bad in ({"start": "2025-07-02", "end": "2025-06-30"}, {"start": "x", "end": "2025-06-30"}, {**span, "unit": "8DT1"},
                {**span, "flat_window": "many"}):
        response = client.get("/api/survey/calibration-gaps/", bad)
        assert response.status_code == 400 and "error" in response.json(), bad


# ------------------------------------------------------------------------------------ command


def test_check_calibrations_command(ingested, gap, settings, tmp_path):
    unit, night, filt = gap
    settings.GWPORTAL = {**settings.GWPORTAL, "LOG_DIR": str(tmp_path / "logs")}
    ok = run_command("check_calibrations", "--start-date", "2025-06-30", "--end-date", "2025-07-02")
    assert ok.code == 0, ok.out + ok.err
    assert "cannot be calibrated: 0" in ok.out and "NEEDS ANOTHER NIGHT: " in ok.out
    bad = run_command("check_calibrations", "--start-date", "2025-06-30", "--end-date", "2025-07-02", "--flat-window", "0")
    assert bad.code == 1
    reports = sorted((tmp_path / "logs").glob("check_calibrations_*.txt"))
    twins = [json.loads(r.with_suffix(".json").read_text()) for r in reports]
    assert len(reports) == 2 and sorted(t["ok"] for t in twins) == [False, True]
    text = next(r for r, t in zip(reports, twins) if not t["ok"]).read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith(night.isoformat())]
    assert lines and all(unit in ln and filt in ln and "flat: none" in ln for ln in lines)
    failed = next(t for t in twins if not t["ok"])
    assert {(m["unit"], m["night"], m["filter"]) for m in failed["missing"]} == {(unit, night.isoformat(), filt)}
    # one unit only: the unit without the gap is fine even with no fallback
    other = next(u for u in ingested.units if u != unit)
    assert run_command("check_calibrations", "--start-date", "2025-06-30", "--end-date", "2025-07-02",
                       "--flat-window", "0", "--unit", other).code == 0
    with pytest.raises(CommandError) as err:
        run_command("check_calibrations", "--start-date", "2025-07-02", "--end-date", "2025-06-30")
    assert err.value.returncode == 2
