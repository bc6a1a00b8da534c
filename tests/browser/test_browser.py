"""The portal in real headless Chromium: log in, plots drawn by plotly.js, search, frame and night pages."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from rawdata.sample import Manifest
from tests.browser.conftest import LivePortal, log_in, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _assert_plotted(driver, plot_id: str) -> None:
    """plotly.js drew this plot: its container and SVG exist inside the element."""
    wait_for(driver, f"#{plot_id} .plot-container")
    assert driver.find_elements(By.CSS_SELECTOR, f"#{plot_id} svg.main-svg")


def test_login_then_dashboard_plots_render(browser, live_portal: LivePortal) -> None:
    log_in(browser, live_portal, "/?days=3000")
    manifest = Manifest.load(live_portal.root)
    total = sum(1 for f in manifest.files if f.excluded is None)
    assert browser.find_element(By.ID, "total-frames").text == str(total)
    for plot_id in ("plot-per-night", "plot-heatmap", "plot-throughput"):
        _assert_plotted(browser, plot_id)
    # Stacked bars: one bar group per type with data; the heatmap draws as an image layer.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot-per-night g.trace.bars")) == 4
    assert browser.find_elements(By.CSS_SELECTOR, "#plot-heatmap .hm, #plot-heatmap image")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert errors == []


def test_search_sort_and_open_a_frame(browser, live_portal: LivePortal) -> None:
    manifest = Manifest.load(live_portal.root)
    log_in(browser, live_portal, "/frames/")
    Select(browser.find_element(By.ID, "id_unit")).select_by_value("7DT02")
    Select(browser.find_element(By.ID, "id_image_type")).select_by_value("science")
    browser.find_element(By.ID, "id_filter").send_keys("m675")
    browser.find_element(By.ID, "search-button").click()
    wait_for(browser, "#result-count")
    expected = [f for f in manifest.files
                if f.excluded is None and (f.unit, f.image_type, f.filter) == ("7DT02", "science", "m675")]
    assert browser.find_element(By.ID, "result-count").text.startswith(f"{len(expected)} frames match")
    links = browser.find_elements(By.CSS_SELECTOR, "#frame-table a.frame-link")
    assert sorted(a.text for a in links) == sorted(f.path.rsplit("/", 1)[1] for f in expected)
    query = parse_qs(urlparse(browser.current_url).query)
    assert query["unit"] == ["7DT02"] and query["filter"] == ["m675"]  # a bookmarkable GET URL

    browser.find_element(By.LINK_TEXT, "Exp (s)").click()
    wait_for(browser, "#frame-table")
    assert parse_qs(urlparse(browser.current_url).query)["sort"] == ["exptime"]
    assert parse_qs(urlparse(browser.current_url).query)["unit"] == ["7DT02"]

    first = browser.find_elements(By.CSS_SELECTOR, "#frame-table a.frame-link")[0]
    name = first.text
    first.click()
    wait_for(browser, "#header-cards")
    assert browser.find_element(By.CSS_SELECTOR, "h1.filename").text == name
    keywords = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#header-cards tr td:first-child")]
    assert keywords[:3] == ["SIMPLE", "BITPIX", "NAXIS"] and "OBJECT" in keywords and "FILTER" in keywords
    assert browser.find_element(By.ID, "download-link").get_attribute("href").endswith("/download")


def test_calendar_to_night_page_with_timeline(browser, live_portal: LivePortal) -> None:
    manifest = Manifest.load(live_portal.root)
    log_in(browser, live_portal, "/nights/?month=2025-07")
    wait_for(browser, "#calendar a.night-link")
    browser.find_element(By.CSS_SELECTOR, "#calendar a.night-link[href$='/nights/2025-07-01/']").click()
    wait_for(browser, "#night-frames")
    expected = sum(1 for f in manifest.files if f.night == "2025-07-01" and f.excluded is None)
    assert browser.find_element(By.ID, "night-frames").text == str(expected)
    _assert_plotted(browser, "plot-timeline")
    units = {s.get_attribute("id") for s in browser.find_elements(By.CSS_SELECTOR, "section.unit-block")}
    assert units == {f"unit-{u}" for u in manifest.units}
    # The survey status section arrives after the page, with its own script (conditions plots) running.
    wait_for(browser, "#night-extra #readiness-matrix tr.setup")
    science_units = {f.unit for f in manifest.files if f.night == "2025-07-01" and f.image_type == "science" and f.excluded is None}
    rows = browser.find_elements(By.CSS_SELECTOR, "#readiness-matrix tr.setup")
    assert {r.get_attribute("data-unit") for r in rows} == science_units
    plots = browser.find_elements(By.CSS_SELECTOR, "#night-extra .status-plot")
    if plots:
        wait_for(browser, "#night-extra .status-plot.drawn", count=len(plots))
    assert not browser.find_elements(By.ID, "night-extra-status")  # the "loading" note is gone
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert errors == []


def test_target_page_plot(browser, live_portal: LivePortal) -> None:
    log_in(browser, live_portal, "/targets/?kind=standard")
    wait_for(browser, "#target-table a")
    browser.find_element(By.LINK_TEXT, "LTT1020").click()
    wait_for(browser, "#target-frames")
    _assert_plotted(browser, "plot-target")
