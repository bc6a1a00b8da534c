"""Fixtures for tests that use the database (SQLite or PostgreSQL, from DATABASE_URL)."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command


class Run:
    """Result of a management command called in-process: exit code and output."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def run_command(name: str, *args: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def ingest(settings, tmp_path):
    """Call `ingest_all_nights` on a data root; returns a Run."""
    settings.GWPORTAL = {**settings.GWPORTAL, "LOG_DIR": str(tmp_path / "logs")}

    def _ingest(root: Path, *args: str) -> Run:
        return run_command("ingest_all_nights", "--data-root", str(root), "--auto-confirm", "--settle-seconds", "0", *args)

    return _ingest
