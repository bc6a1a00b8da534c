"""Shared fixtures: sample archives generated from the real 7DT conventions, and an ingest runner."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("GWPORTAL_LOG_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test-logs"))


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory) -> Path:
    """One generated sample archive per test session; tests copy it before changing anything."""
    from rawdata.sample import generate_archive

    root = tmp_path_factory.mktemp("sample-template") / "obsdata"
    generate_archive(root, units=3, nights=3, frames_per_night=12, seed=7)
    return root


@pytest.fixture
def sample_root(sample_template, tmp_path) -> Path:
    """A private copy of the sample archive that a test may modify."""
    root = tmp_path / "obsdata"
    shutil.copytree(sample_template, root, copy_function=shutil.copy2)
    return root


@pytest.fixture
def manifest(sample_root):
    from rawdata.sample import Manifest

    return Manifest.load(sample_root)


@pytest.fixture(autouse=True)
def _restore_tile_grid(request, django_db_blocker):
    """Transactional tests end with a flush that also empties the migration-loaded tile grid; put it back
    (this fixture is set up first, so its teardown runs after that flush)."""
    yield
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker is not None and marker.kwargs.get("transaction")) or {
        "live_server", "transactional_db"
    } & set(request.fixturenames)
    if not transactional:
        return
    from survey.models import Tile
    from survey.tilegrid import load_tile_grid

    with django_db_blocker.unblock():
        if not Tile.objects.filter(in_grid=True).exists():
            load_tile_grid(Tile)
