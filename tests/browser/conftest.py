"""Real headless Chromium (Debian's chromium + chromedriver) driving the portal on pytest-django's live server."""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "browser-test-Passw0rd"
WAIT_S = 20


@pytest.fixture(scope="session")
def browser(live_server) -> Iterator:
    """One headless Chromium for the session, with a fresh profile directory that is removed afterwards.

    It asks for the live server so that it is set up after it and torn down before it: Chromium's
    keep-alive connections hold live-server request threads that share the test database connection,
    and they must end while the server still allows that sharing (see _join_request_threads).
    """
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium and chromedriver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gwportal-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # tests read console errors
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        try:
            driver.quit()
            _join_request_threads()
        finally:
            shutil.rmtree(profile, ignore_errors=True)


def _join_request_threads(timeout: float = 10.0) -> None:
    """Wait for the live server's request threads that Chromium's closed connections are ending.

    Each closes the database connections it used when its connection ends; the server's threads are
    daemons that nobody joins, so one still closing when the live server stops finds the shared
    in-memory SQLite connection no longer shareable and fails (a PytestUnhandledThreadExceptionWarning
    in whichever test runs then)."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and thread.name.endswith("(process_request_thread)"):
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                warnings.warn(f"live-server request thread {thread.name} still running after {timeout} s", stacklevel=1)


@dataclass
class LivePortal:
    url: str
    root: Path
    username: str
    password: str


@pytest.fixture
def live_portal(live_server, transactional_db, sample_root, settings, tmp_path, django_user_model, browser) -> LivePortal:
    """The sample archive ingested into the live server's database, a user, and a logged-out browser."""
    from tests.integration.conftest import run_command

    settings.GWPORTAL = {**settings.GWPORTAL, "DATA_ROOT": str(sample_root), "LOG_DIR": str(tmp_path / "logs")}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests only
    run = run_command("ingest_all_nights", "--data-root", str(sample_root), "--auto-confirm", "--settle-seconds", "0")
    assert run.code == 0, run.out + run.err
    django_user_model.objects.create_user("observer", password=PASSWORD)
    browser.delete_all_cookies()
    return LivePortal(live_server.url, sample_root, "observer", PASSWORD)


def wait_for(driver, css: str, count: int = 1, timeout: float = WAIT_S):
    """Wait until at least `count` elements match `css`; returns them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, css)) >= count)
    return driver.find_elements(By.CSS_SELECTOR, css)


def log_in(driver, portal: LivePortal, next_path: str = "/") -> None:
    """Open a page, get sent to the login form, log in there and land on the page."""
    from selenium.webdriver.common.by import By

    driver.get(portal.url + next_path)
    wait_for(driver, "#login-button")
    assert "/accounts/login/" in driver.current_url
    driver.find_element(By.NAME, "username").send_keys(portal.username)
    driver.find_element(By.NAME, "password").send_keys(portal.password)
    driver.find_element(By.ID, "login-button").click()
    wait_for(driver, "header.topbar .user form")
