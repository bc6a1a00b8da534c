"""The survey status pages in real headless Chromium: the all-sky map and the calibration readiness matrix.

Uses the session browser of tests/browser/conftest.py.
"""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from rawdata.sample import Manifest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_S = 30


@pytest.fixture
def status_browser(browser):
    """The session's headless Chromium (tests/browser/conftest.py)."""
    return browser


@pytest.fixture
def status_portal(live_server, sample_template, settings, tmp_path, django_user_model, status_browser):
    """The sample archive ingested, and the browser holding a logged-in session cookie."""
    from django.test import Client

    from tests.integration.conftest import run_command

    settings.GWPORTAL = {**settings.GWPORTAL, "LOG_DIR": str(tmp_path / "logs")}
    run = run_command("ingest_all_nights", "--data-root", str(sample_template), "--auto-confirm", "--settle-seconds", "0")
    assert run.code == 0, run.out + run.err
    client = Client()
    client.force_login(django_user_model.objects.create_user("status-viewer"))
    status_browser.delete_all_cookies()
    status_browser.get(live_server.url + "/status/")  # any page of the domain, to set its cookie
    status_browser.add_cookie({"name": "sessionid", "value": client.cookies["sessionid"].value, "path": "/"})
    return live_server.url, Manifest.load(sample_template)


def _wait(driver, condition, timeout: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _severe_errors(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]


def test_sky_map_draws_the_whole_grid(status_browser, status_portal) -> None:
    from selenium.webdriver.common.by import By

    url, manifest = status_portal
    observed = {f.tile for f in manifest.files if f.tile and f.image_type == "science" and f.excluded is None}
    status_browser.get(url + "/survey/?measure=nights")
    assert "/accounts/login/" not in status_browser.current_url
    sky = _wait(status_browser, lambda d: d.find_element(By.CSS_SELECTOR, "#sky-map.drawn"))
    assert sky.find_elements(By.CSS_SELECTOR, ".plot-container")
    assert int(sky.get_attribute("data-observed")) == len(observed)
    assert int(sky.get_attribute("data-observed")) + int(sky.get_attribute("data-unobserved")) == 28_519
    points = status_browser.execute_script(
        "var d = document.getElementById('sky-map').data;"
        "return d.filter(function (t) { return t.type === 'scattergl'; }).map(function (t) { return t.x.length; });"
    )
    assert points == [28_519 - len(observed), len(observed)]
    # an equal-area map: every projected point lies inside the Hammer-Aitoff ellipse x^2/8 + y^2/2 <= 1
    inside = status_browser.execute_script(
        "var t = document.getElementById('sky-map').data.filter(function (t) { return t.type === 'scattergl'; });"
        "var ok = true; t.forEach(function (s) { for (var i = 0; i < s.x.length; i++) {"
        " if (s.x[i] * s.x[i] / 8 + s.y[i] * s.y[i] / 2 > 1.000001) { ok = false; } } }); return ok;"
    )
    assert inside is True
    assert status_browser.find_element(By.ID, "pointing-warnings").text == "1"
    assert _severe_errors(status_browser) == []


def test_readiness_matrix_shows_the_missing_flats(status_browser, status_portal) -> None:
    from selenium.webdriver.common.by import By

    url, manifest = status_portal
    miss = manifest.scenarios["missing_flats"][0]
    night = date.fromisoformat(miss["night"])
    status_browser.get(f"{url}/survey/nights/{night.isoformat()}/")
    _wait(status_browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#readiness-matrix tr.setup"))
    rows = status_browser.find_elements(By.CSS_SELECTOR, "#readiness-matrix tr.setup")
    gap = [r for r in rows if (r.get_attribute("data-unit"), r.get_attribute("data-filter")) == (miss["unit"], miss["filter"])]
    assert gap and all(r.get_attribute("data-status") == "fallback" for r in gap)
    for r in gap:
        flat = r.find_element(By.CSS_SELECTOR, "td[data-kind=flat]")
        assert flat.get_attribute("data-state") == "nearby"
        assert (night - timedelta(days=1)).isoformat() in flat.text
        assert "calib-nearby" in flat.get_attribute("class")
    others = [r for r in rows if r not in gap]
    assert others and all(r.get_attribute("data-status") == "ready" for r in others)
    science_units = {f.unit for f in manifest.files if f.night == miss["night"] and f.image_type == "science"}
    assert {r.get_attribute("data-unit") for r in rows} == science_units
    # the conditions plots of the night are drawn by plotly.js
    _wait(status_browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#night-survey-status .status-plot.drawn")) >= 4)
    assert _severe_errors(status_browser) == []
