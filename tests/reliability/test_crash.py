"""kill -9 at 20+ exact points of an ingest; the rerun must equal one clean run, and the dead run
must show as interrupted. Real processes, real SIGKILL (survey.faults), real databases."""
from __future__ import annotations

import signal

import pytest

pytestmark = pytest.mark.slow

CHUNK = ("--chunk-size", "25")

FRESH_POINTS = [
    "planned:1", "presence_marked:1", "chunk_read:1", "chunk_read:8", "batch_begin:1", "batch_begin:10",
    "frames_inserted:1", "frames_inserted:12", "batch_uncommitted:1", "batch_uncommitted:15",
    "batch_committed:1", "batch_committed:17", "all_written:1", "duplicates_reported:1", "night_stats:1",
    "tile_stats:1", "folders_updated:1",
]
CLEANUP_POINTS = ["cleanup_deleted:1", "cleanup_deleted:6", "frames_inserted:4", "batch_committed:3", "batch_uncommitted:9"]


@pytest.fixture(scope="module")
def reference(child_dbs, sample_template):
    """The catalogue after one clean run on a fresh database."""
    summary = child_dbs.summary(child_dbs.run(child_dbs.new_url(), str(sample_template), *CHUNK))
    assert summary["code"] == 0 and summary["sizes"]["frames"] > 300
    return summary


def _crash_then_rerun(child_dbs, url, root, point, *args):
    crashed = child_dbs.run(url, str(root), *CHUNK, *args, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, (point, crashed.returncode, crashed.stderr[-2000:])
    return child_dbs.summary(child_dbs.run(url, str(root), *CHUNK))


@pytest.mark.parametrize("point", FRESH_POINTS)
def test_killed_first_ingest_then_rerun_equals_clean_run(child_dbs, sample_template, reference, point):
    after = _crash_then_rerun(child_dbs, child_dbs.new_url(), sample_template, point)
    assert after["code"] == 0
    assert after["digest"] == reference["digest"], (point, after["sizes"], reference["sizes"])
    assert after["runs"] == ["interrupted", "success"]


@pytest.mark.parametrize("point", CLEANUP_POINTS)
def test_killed_cleanup_loses_nothing(child_dbs, sample_template, reference, point):
    url = child_dbs.new_url()
    assert child_dbs.summary(child_dbs.run(url, str(sample_template), *CHUNK))["digest"] == reference["digest"]
    after = _crash_then_rerun(child_dbs, url, sample_template, point, "--cleanup")
    assert after["digest"] == reference["digest"], point
    assert after["runs"] == ["success", "interrupted", "success"]


def test_killed_parallel_ingest_then_rerun(child_dbs, sample_template, reference):
    url = child_dbs.new_url()
    after = _crash_then_rerun(child_dbs, url, sample_template, "chunk_read:4", "--parallel", "--workers", "2")
    assert after["digest"] == reference["digest"]
