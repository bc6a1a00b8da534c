"""Security: every URL refuses anonymous access except the public allowlist (walked from the URL
configuration, so a new page cannot forget it), CSRF on forms, production settings, no committed secrets."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = {"/status/", "/tiles/"}  # what the 7DS website reads; nothing else is anonymous
LOGIN_PAGES = {"/accounts/login/", "/admin/login/"}  # where anonymous users are sent
SAMPLES = {"int": "1", "str": "x", "slug": "x", "path": "x", "uuid": "00000000-0000-0000-0000-000000000000"}


def _concrete(route: str) -> str:
    def sample(match: re.Match) -> str:
        conv = match.group(1) or "str"
        return SAMPLES.get(conv, "2025-07-01" if "date" in conv else "T00001" if "tile" in conv else "x")

    return re.sub(r"<(?:(\w+):)?(\w+)>", sample, route)


def walk(patterns=None, prefix: str = ""):
    """Yield a concrete URL for every route in the URL configuration (regex routes by their literal prefix)."""
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        text = str(p.pattern)
        if hasattr(p.pattern, "_route"):
            part = _concrete(p.pattern._route)
        else:  # a regex pattern (the admin): keep what is literal, fill groups with a sample
            part = re.sub(r"\(\?P<\w+>[^)]*\)", "1", text).lstrip("^").rstrip("$").replace("\\", "")
            if re.search(r"[\[\]()*+?|]", part):
                continue
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, prefix + part)
        elif isinstance(p, URLPattern):
            yield "/" + prefix + part


def all_urls() -> list[str]:
    return sorted(set(walk()))


@pytest.mark.django_db
def test_every_url_refuses_anonymous_access_except_the_public_allowlist():
    client = Client()
    urls = all_urls()
    assert len(urls) > 20, urls  # the walk really walked
    assert PUBLIC <= set(urls)
    for url in urls:
        if url in PUBLIC or url in LOGIN_PAGES or url.startswith("/static/"):
            continue
        response = client.get(url)
        if response.status_code in (301, 302):
            target = response.headers["Location"]
            assert target.startswith(("/accounts/login/", "/admin/login/")), (url, target)
        else:
            assert response.status_code in (401, 403, 405), (url, response.status_code)
            if url.startswith("/api/") and response.status_code in (401, 403):
                assert "error" in response.json(), url


@pytest.mark.django_db
def test_public_urls_answer_anonymously():
    client = Client()
    for url in PUBLIC:
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_login_form_requires_csrf_token(django_user_model):
    django_user_model.objects.create_user("astro", password="a-long-pass-phrase")
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "astro", "password": "a-long-pass-phrase"})
    assert response.status_code == 403
    page = client.get("/accounts/login/")
    token = page.cookies["csrftoken"].value
    ok = client.post("/accounts/login/", {"username": "astro", "password": "a-long-pass-phrase", "csrfmiddlewaretoken": token})
    assert ok.status_code == 302


def _manage_production(*args: str, secret: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GWPORTAL_SECRET")}
    env.update({"DJANGO_SETTINGS_MODULE": "gwportal.settings_production", "GWPORTAL_ALLOWED_HOSTS": "gwportal.example.org"})
    if secret:
        env["GWPORTAL_SECRET_KEY"] = secret
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_production_settings_refuse_to_start_without_a_secret_key():
    proc = _manage_production("check", secret=None)
    assert proc.returncode != 0
    assert "GWPORTAL_SECRET_KEY must be set" in proc.stderr


def test_production_settings_pass_check_deploy():
    proc = _manage_production("check", "--deploy", "--fail-level", "WARNING", secret="k" * 10 + os.urandom(24).hex())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout


def test_no_secret_is_committed():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    suspicious = re.compile(
        r"(SECRET_KEY\s*=\s*['\"][^'\"]{8,}['\"])|(-----BEGIN [A-Z ]*PRIVATE KEY-----)|(postgres(?:ql)?://\w+:(?!\.\.\.@|<|\$)[^@\s/]+@)"
        r"|(AKIA[0-9A-Z]{16})|(password\s*=\s*['\"][^'\"]{6,}['\"])",
        re.IGNORECASE,
    )
    hits = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".fits", ".png", ".jpg", ".gz"} or not path.is_file() or name.startswith("tests/"):
            continue
        text = path.read_text(errors="ignore")
        hits += [f"{name}: {m.group(0)[:60]}" for m in suspicious.finditer(text)]
    assert hits == []
