"""The monitor (survey.monitor + update_nights) on generated 7DT archives, SQLite and PostgreSQL.

Fast by design: quiet periods of 0-120 s with a fake clock (``now=`` / a FakeClock for the loop),
resource limits off unless a test is about them.

Subprocess tests (a real `update_nights` started, signalled, killed) need the child to see this
test's database, so they use ``transaction=True`` (data committed) and ``SharedDatabase``:
- PostgreSQL: the child gets DATABASE_URL of the test database (test_<name>, or GWPORTAL_TEST_DB_NAME);
- SQLite with a file test database (GWPORTAL_TEST_DB_NAME=/path/x.sqlite3): DATABASE_URL to that file;
- SQLite in memory (the default): the in-memory test database is copied to a file with SQLite's
  backup API, the child uses the file, the test reads the child's progress from the file, and the
  file is copied back into the in-memory database before the test's assertions.
"""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from rawdata.header import read_header
from rawdata.sample import corrupt_helpers
from survey.ingest.engine import EXIT_DEFERRED, EXIT_OK, IngestOptions, run_ingest
from survey.models import FileProblem, Frame, IngestRun, MonitorState, NightFolder, NightUnitStats
from survey.monitor import (
    EXIT_LOCKED,
    MonitorOptions,
    ResourceSample,
    acquire_lease,
    heartbeat,
    release_lease,
    resource_violations,
    run_cycle,
    run_monitor,
)
from survey.runlog import HOST
from tests.integration.conftest import run_command
from tests.integration.shared_db import SharedDatabase as BaseSharedDatabase

BASE_DIR = Path(django_settings.BASE_DIR)
S = NightFolder.State


@pytest.fixture(autouse=True)
def log_dir(settings, tmp_path) -> Path:
    path = tmp_path / "logs"
    settings.GWPORTAL = {**settings.GWPORTAL, "LOG_DIR": str(path)}
    return path


def opts(root: Path, **kw: Any) -> MonitorOptions:
    """Monitor options for tests: no quiet period, no resource limits unless asked."""
    base = dict(data_root=str(root), quiet_s=0.0, max_cpu_percent=None, min_free_memory_gb=None, min_free_disk_gb=None,
                cpu_sample_s=0.0, probe_s=0.0, heartbeat_s=3600.0)
    base.update(kw)
    return MonitorOptions(**base)


def folder_row(root: Path, rel: str) -> NightFolder:
    return NightFolder.objects.get(path=str(root / rel))


def frames_in(root: Path, rel: str) -> int:
    return Frame.objects.filter(folder__path=str(root / rel)).count()


def fits_in(root: Path, rel: str) -> int:
    return len(list((root / rel).glob("*.fits")))


def age_tree(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    for p in [path, *path.rglob("*")]:
        os.utime(p, (t, t))


def copy_folder(src: Path, dst: Path, names: list[str] | None = None) -> list[str]:
    dst.mkdir(parents=True, exist_ok=True)
    names = names if names is not None else sorted(p.name for p in src.glob("*.fits"))
    for n in names:
        shutil.copy(src / n, dst / n)
    return names


# ------------------------------------------------------------------------------------------ detection


@pytest.mark.django_db
def test_every_folder_variant_is_detected_and_ingested(sample_root, manifest):
    # Real variants: _gain2750, _ToO after and before the gain, NINA-era bare date, _2x2, _gain0.
    (sample_root / "7DT02" / "2025-07-01_gain2750_ToO").rename(sample_root / "7DT02" / "2025-07-01_ToO_gain2750")
    copy_folder(sample_root / "7DT03" / "2025-07-02_gain2750", sample_root / "7DT03" / "2025-07-03_2x2_gain2750",
                sorted(p.name for p in (sample_root / "7DT03" / "2025-07-02_gain2750").glob("*.fits"))[:3])
    on_disk = {str(p) for p in sample_root.glob("7DT*/*") if p.is_dir()}

    result = run_cycle(opts(sample_root))
    assert result.exit_code == EXIT_OK, result.errors
    assert set(result.new) == on_disk
    assert set(NightFolder.objects.values_list("path", flat=True)) == on_disk
    assert set(NightFolder.objects.values_list("state", flat=True)) == {S.INGESTED}
    for rel in ("7DT01/2025-06-30_gain2750", "7DT02/2025-07-01_ToO_gain2750", "7DT01/2025-07-01_gain2750_ToO",
                "7DT01/2024-02-10", "7DT03/2025-07-03_2x2_gain2750", "7DT01/2025-06-30_gain0"):
        assert frames_in(sample_root, rel) == fits_in(sample_root, rel) > 0, rel
    assert folder_row(sample_root, "7DT02/2025-07-01_ToO_gain2750").is_too
    assert folder_row(sample_root, "7DT03/2025-07-03_2x2_gain2750").binning == 2
    assert Frame.objects.count() == len(manifest.files) + 3
    run = IngestRun.objects.get()
    assert run.trigger == "monitor" and run.status == IngestRun.Status.SUCCESS and Path(run.log_file).exists()


@pytest.mark.django_db
def test_an_unchanged_archive_is_never_ingested_twice(sample_root):
    t0 = timezone.now()
    assert run_cycle(opts(sample_root), now=t0).ingested
    second = run_cycle(opts(sample_root), now=t0 + timedelta(seconds=10))
    assert not second.ingested and not second.runs and not second.new
    third = run_cycle(opts(sample_root), now=t0 + timedelta(seconds=20))
    # Ingested folders whose mtime did not move are not even listed (the idle scan is stat-only).
    assert third.folders_idle == third.folders_seen > 0 and third.folders_listed == 0
    assert IngestRun.objects.count() == 1
    full = run_cycle(opts(sample_root, force_full_scan=True), now=t0 + timedelta(seconds=30))
    assert full.folders_listed == full.folders_seen and not full.runs


@pytest.mark.django_db
def test_late_files_and_late_unit_folders_are_picked_up(sample_root):
    night = sample_root / "7DT01" / "2025-07-02_gain2750"
    late = sorted(night.glob("*.fits"))[-1]
    aside = sample_root / late.name
    late.rename(aside)
    t0 = timezone.now()
    run_cycle(opts(sample_root), now=t0)
    before = Frame.objects.count()
    aside.rename(late)  # a file arrives after its folder was ingested
    # The original missed a unit folder arriving later for an already known date.
    copy_folder(sample_root / "7DT03" / "2025-06-30_gain2750", sample_root / "7DT04" / "2025-06-30_gain2750")
    result = run_cycle(opts(sample_root), now=t0 + timedelta(seconds=60))
    assert str(night) in result.ingested and str(sample_root / "7DT04" / "2025-06-30_gain2750") in result.ingested
    run = IngestRun.objects.get(pk=result.runs[0])
    new_folder = fits_in(sample_root, "7DT04/2025-06-30_gain2750")
    assert run.n_headers_read == 1 + new_folder  # only the new files were read
    assert Frame.objects.count() == before + 1 + new_folder
    assert Frame.objects.values("path").distinct().count() == Frame.objects.count()


@pytest.mark.django_db
def test_unreachable_root_and_conflicting_folders_are_reported_not_guessed(sample_root, tmp_path):
    missing = run_cycle(opts(tmp_path / "unmounted"))
    assert missing.exit_code == 2 and "unmounted" in missing.errors[0] and not NightFolder.objects.exists()
    assert missing.next_wait_s == pytest.approx(1800.0, abs=5)  # looked at again soon, nothing marked gone
    run_cycle(opts(sample_root, auto_ingest=False))
    n = NightFolder.objects.count()
    # The README's unit spelling beside the real one: the same unit and folder name twice.
    copy_folder(sample_root / "7DT01" / "2025-06-30_gain2750", sample_root / "7DT-01" / "2025-06-30_gain2750")
    result = run_cycle(opts(sample_root, auto_ingest=False))
    assert NightFolder.objects.count() == n
    assert any("7DT-01/2025-06-30_gain2750: skipped" in e for e in result.errors)
    shutil.rmtree(sample_root / "7DT03" / "2025-07-02_gain2750")
    gone = run_cycle(opts(sample_root, auto_ingest=False))
    assert gone.absent == [str(sample_root / "7DT03" / "2025-07-02_gain2750")]
    row = folder_row(sample_root, "7DT03/2025-07-02_gain2750")
    assert not row.present and "gone from disk" in row.state_detail


# ------------------------------------------------------------------------------------------ the gate


@pytest.mark.django_db
def test_a_growing_folder_is_ingested_only_after_it_settles(sample_root):
    t0 = timezone.now()
    run_cycle(opts(sample_root), now=t0)  # the archive as it is
    src = sample_root / "7DT03" / "2025-07-02_gain2750"
    names = sorted(p.name for p in src.glob("*.fits"))
    dst = sample_root / "7DT05" / "2025-07-03_gain2750"
    quiet = opts(sample_root, quiet_s=60.0)

    copy_folder(src, dst, names[:10])
    first = run_cycle(quiet, now=t0 + timedelta(seconds=1))
    assert str(dst) in first.settling and not first.runs
    row = folder_row(sample_root, "7DT05/2025-07-03_gain2750")
    assert row.state == S.SETTLING and "quiet period" in row.state_detail and row.file_count == 10

    copy_folder(src, dst, names[10:20])  # still arriving
    second = run_cycle(quiet, now=t0 + timedelta(seconds=40))
    assert str(dst) in second.changed and str(dst) in second.settling
    third = run_cycle(quiet, now=t0 + timedelta(seconds=80))  # 40 s after the last change: not yet
    assert str(dst) in third.settling and not third.runs
    assert third.ready_at and min(third.ready_at) == pytest.approx((t0 + timedelta(seconds=100)).timestamp())
    assert frames_in(sample_root, "7DT05/2025-07-03_gain2750") == 0

    copy_folder(src, dst, names[20:])
    run_cycle(quiet, now=t0 + timedelta(seconds=90))
    done = run_cycle(quiet, now=t0 + timedelta(seconds=151))
    assert done.ingested == [str(dst)]
    assert frames_in(sample_root, "7DT05/2025-07-03_gain2750") == len(names)
    assert folder_row(sample_root, "7DT05/2025-07-03_gain2750").state == S.INGESTED


@pytest.mark.django_db
def test_a_file_being_written_defers_its_folder(sample_root):
    t0 = timezone.now()
    run_cycle(opts(sample_root), now=t0)
    src = sample_root / "7DT02" / "2025-07-02_gain2750"
    dst = sample_root / "7DT06" / "2025-07-03_gain2750"
    names = copy_folder(src, dst)
    growing = dst / names[4]
    header = read_header(src / names[4])
    corrupt_helpers.truncate(growing, header.header_bytes + 100)  # header written, data still coming

    result = run_cycle(opts(sample_root), now=t0 + timedelta(seconds=5))
    assert str(dst) in result.settling and not result.runs
    row = folder_row(sample_root, "7DT06/2025-07-03_gain2750")
    assert row.state == S.SETTLING and names[4] in row.state_detail and "incomplete" in row.state_detail
    assert frames_in(sample_root, "7DT06/2025-07-03_gain2750") == 0
    assert not FileProblem.objects.exists()  # deferred, not failed

    shutil.copy(src / names[4], growing)  # the transfer finishes
    done = run_cycle(opts(sample_root), now=t0 + timedelta(seconds=10))
    assert done.ingested == [str(dst)]
    assert frames_in(sample_root, "7DT06/2025-07-03_gain2750") == len(names)
    assert not FileProblem.objects.filter(severity="error").exists()  # (copied frames share IMAGEIDs: warnings)


@pytest.mark.django_db
def test_a_file_cut_long_ago_no_longer_blocks_and_is_recorded(sample_root):
    folder = sample_root / "7DT01" / "2025-07-01_gain2750"
    cut = sorted(folder.glob("*.fits"))[2]
    corrupt_helpers.truncate(cut, read_header(cut).header_bytes + 100)
    age_tree(folder, 3 * 3600)  # a transfer that died hours ago
    result = run_cycle(opts(sample_root, incomplete_grace_s=3600.0))
    assert str(folder) in result.failed
    problem = FileProblem.objects.get()
    assert problem.path == str(cut) and problem.reason == "truncated"
    assert folder_row(sample_root, "7DT01/2025-07-01_gain2750").state == S.FAILED


@pytest.mark.django_db
def test_rsync_temporaries_block_until_renamed(sample_root):
    t0 = timezone.now()
    run_cycle(opts(sample_root), now=t0)
    src = sample_root / "7DT01" / "2025-07-02_gain2750"
    dst = sample_root / "7DT07" / "2025-07-03_gain2750"
    names = copy_folder(src, dst)
    last = dst / names[-1]
    temp = dst / f".{names[-1]}.Qx81Za"
    last.rename(temp)  # rsync writes .<name>.XXXXXX and renames it at the end
    result = run_cycle(opts(sample_root), now=t0 + timedelta(seconds=5))
    assert "temporaries" in result.settling[str(dst)]
    assert frames_in(sample_root, "7DT07/2025-07-03_gain2750") == 0
    temp.rename(last)
    assert run_cycle(opts(sample_root), now=t0 + timedelta(seconds=10)).ingested == [str(dst)]
    assert frames_in(sample_root, "7DT07/2025-07-03_gain2750") == len(names)


@pytest.mark.django_db
def test_stability_checks_relist_before_ingest(sample_root):
    result = run_cycle(opts(sample_root, stability_checks=2, stability_wait_s=0.0))
    assert result.ingested and not result.settling


# ------------------------------------------------------------------------------------------ restart


@pytest.mark.django_db
def test_a_folder_left_ingesting_by_a_killed_monitor_is_resumed_without_duplicates(sample_root):
    folder = sample_root / "7DT02" / "2025-07-01_gain2750"
    run_cycle(opts(sample_root, auto_ingest=False))  # every folder tracked, none ingested
    assert set(NightFolder.objects.values_list("state", flat=True)) == {S.STABLE}
    # A monitor that died mid-ingest: some batches written, folder still 'ingesting', run still 'running'.
    run_ingest(IngestOptions(data_root=str(sample_root), folder_paths=[str(folder)], trigger="monitor", settle_seconds=0))
    written = list(Frame.objects.filter(folder__path=str(folder)).order_by("filename").values_list("id", flat=True))
    Frame.objects.filter(id__in=written[::2]).delete()
    lost = len(written[::2])
    NightFolder.objects.filter(path=str(folder)).update(state=S.INGESTING, ingested_fingerprint="")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = IngestRun.objects.create(trigger="monitor", started_at=timezone.now(), heartbeat_at=timezone.now(),
                                      host=HOST, pid=dead.pid, status=IngestRun.Status.RUNNING)

    result = run_cycle(opts(sample_root, folders_per_run=100))
    assert str(folder) in result.ingested
    resumed = IngestRun.objects.get(pk=result.runs[0])
    assert resumed.n_new >= lost and resumed.n_unchanged >= len(written) - lost
    assert frames_in(sample_root, "7DT02/2025-07-01_gain2750") == fits_in(sample_root, "7DT02/2025-07-01_gain2750")
    assert Frame.objects.values("path").distinct().count() == Frame.objects.count()
    killed.refresh_from_db()
    assert killed.status == IngestRun.Status.INTERRUPTED
    assert set(NightFolder.objects.values_list("state", flat=True)) == {S.INGESTED}
    # And a restart after that repeats nothing.
    again = run_cycle(opts(sample_root), now=timezone.now() + timedelta(seconds=5))
    assert not again.runs


# ------------------------------------------------------------------------------------------ resources


@pytest.mark.django_db
@pytest.mark.parametrize("limit", [{"min_free_memory_gb": 1e6}, {"min_free_disk_gb": 1e9}])
def test_resource_limits_defer_the_ingest_and_say_so(sample_root, limit):
    result = run_cycle(opts(sample_root, **limit))
    assert result.exit_code == EXIT_DEFERRED and not result.runs and result.deferred and result.violations
    word = "memory" if "min_free_memory_gb" in limit else "disk"
    assert word in result.violations[0]
    assert not Frame.objects.exists()
    states = set(NightFolder.objects.values_list("state", "state_detail"))
    assert {s for s, _ in states} == {S.STABLE}
    assert all("resource guard" in d and word in d for _, d in states)
    assert result.next_wait_s == pytest.approx(300.0, abs=10)  # retried soon, not after 8 hours (smart interval)
    assert run_cycle(opts(sample_root)).ingested  # limits lifted: ingested


def test_resource_violations_rule():
    o = MonitorOptions(data_root="/x", max_cpu_percent=90, min_free_memory_gb=2, min_free_disk_gb=10)
    assert resource_violations(ResourceSample(50.0, 8.0, {"/logs": 100.0}), o) == []
    msgs = resource_violations(ResourceSample(97.0, 1.5, {"/logs": 3.0, "/db": 50.0}), o)
    assert len(msgs) == 3 and "CPU 97%" in msgs[0] and "1.5 GB" in msgs[1] and "/logs" in msgs[2]
    off = MonitorOptions(data_root="/x", max_cpu_percent=None, min_free_memory_gb=None, min_free_disk_gb=None)
    assert resource_violations(ResourceSample(100.0, 0.0, {"/logs": 0.0}), off) == []


# ------------------------------------------------------------------------------------------ stats


@pytest.mark.django_db
def test_update_stats_refreshes_the_ingested_nights(sample_root):
    run_cycle(opts(sample_root))
    NightUnitStats.objects.all().delete()
    src = sample_root / "7DT01" / "2025-07-02_gain2750"
    copy_folder(src, sample_root / "7DT08" / "2025-07-02_gain2750")
    run_cycle(opts(sample_root, update_stats=True), now=timezone.now() + timedelta(seconds=5))
    rows = NightUnitStats.objects.filter(night__date="2025-07-02")
    assert rows.count() == 4  # the whole night recomputed, all units, not just the new folder
    assert not NightUnitStats.objects.exclude(night__date="2025-07-02").exists()


# ------------------------------------------------------------------------------------------ lease


@pytest.mark.django_db
def test_lease_is_exclusive_and_taken_over_only_from_the_dead():
    name = "lease-test"
    assert acquire_lease(name, 60)
    assert acquire_lease(name, 60)  # ours already: renewed
    assert heartbeat(name, status="sleeping")
    assert MonitorState.objects.get(name=name).status == "sleeping"
    assert release_lease(name)
    row = MonitorState.objects.get(name=name)
    assert row.status == "stopped" and row.lease_until is None

    future = timezone.now() + timedelta(seconds=120)
    MonitorState.objects.filter(name=name).update(host="other-host", pid=1234, lease_until=future)
    assert not acquire_lease(name, 60)  # a live lease on another host
    assert not heartbeat(name)  # not ours: nothing written
    MonitorState.objects.filter(name=name).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert acquire_lease(name, 60)  # expired: free

    MonitorState.objects.filter(name=name).update(host=HOST, pid=os.getppid(), started_at=timezone.now(), lease_until=future)
    assert not acquire_lease(name, 60)  # a live process on this host
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    MonitorState.objects.filter(name=name).update(pid=dead.pid, started_at=timezone.now())
    assert acquire_lease(name, 60)  # its holder died: taken over at once
    assert MonitorState.objects.get(name=name).pid == os.getpid()


@pytest.mark.django_db
def test_a_second_monitor_refuses_to_start(sample_root):
    MonitorState.objects.create(name="update_nights", host=HOST, pid=os.getppid(), started_at=timezone.now(),
                                heartbeat_at=timezone.now(), lease_until=timezone.now() + timedelta(minutes=2), status="sleeping")
    code = run_monitor(opts(sample_root, once=True), threading.Event())
    assert code == EXIT_LOCKED
    assert not NightFolder.objects.exists()
    assert MonitorState.objects.get().pid == os.getppid()  # untouched


# ------------------------------------------------------------------------------------------ the loop


class FakeClock:
    """Time moves only when the monitor sleeps; hooks run after each sleep (arrivals, signals)."""

    def __init__(self, start: datetime) -> None:
        self.t = start
        self.sleeps: list[float] = []
        self.hooks: list = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        self.sleeps.append(seconds)
        self.t += timedelta(seconds=seconds)
        for hook in list(self.hooks):
            hook(self, stop)


@pytest.mark.django_db
def test_loop_sleeps_by_the_interval_rule(sample_root, log_dir):
    age_tree(sample_root, 0)  # the whole archive "arrives" now
    clock = FakeClock(timezone.now())
    o = opts(sample_root, quiet_s=120.0, smart_interval=True, interval_s=8 * 3600.0, min_interval_s=60.0, max_interval_s=1800.0)
    code = run_monitor(o, threading.Event(), clock, max_cycles=3)
    assert code == EXIT_OK
    # cycle 1: all folders new (fresh mtimes) -> settle 120 s; cycle 2: ingested -> idle 8 h; cycle 3: nothing to do.
    assert clock.sleeps[0] == pytest.approx(120.0, abs=1)
    assert sum(clock.sleeps[1:]) == pytest.approx(8 * 3600.0)
    assert max(clock.sleeps) <= o.heartbeat_s  # slept in slices, with a heartbeat after each
    assert set(NightFolder.objects.values_list("state", flat=True)) == {S.INGESTED}
    assert IngestRun.objects.count() == 1
    state = MonitorState.objects.get()
    assert state.status == "stopped" and state.cycles == 3 and state.lease_until is None and state.heartbeat_at
    assert state.last_cycle["n_ingested"] == 0 and state.last_cycle["folders_seen"] == NightFolder.objects.count()
    text = (log_dir / "monitor.log").read_text()
    assert "next check in 8 h 00 min" in text and "ingesting" in text


@pytest.mark.django_db
@pytest.mark.parametrize("fraction_ns, start_us", [(731_482_525, 11_379), (892_842_619, 24_194), (500_000_000, 5_000)])
def test_quiet_period_ends_when_due_whatever_the_rounding(sample_root, log_dir, fraction_ns, start_us):
    """File times have nanoseconds, the stored change time and the clock microseconds: a folder whose
    quiet period ends exactly when the monitor wakes is ingested then, not one interval later with
    "0 s to go" (the first two cases round that way: ~3 % of real start times did, a flaky test)."""
    base_s = 1_790_000_000  # 2026-09-21, in the past: no file counts as still being written
    t_ns = base_s * 10**9 + fraction_ns
    for p in [sample_root, *sample_root.rglob("*")]:
        os.utime(p, ns=(t_ns, t_ns))
    start = datetime.fromtimestamp(base_s, dt_timezone.utc) + timedelta(microseconds=fraction_ns // 1000 + start_us)
    clock = FakeClock(start)
    o = opts(sample_root, quiet_s=120.0, smart_interval=True, interval_s=8 * 3600.0, min_interval_s=60.0, max_interval_s=1800.0)
    assert run_monitor(o, threading.Event(), clock, max_cycles=2) == EXIT_OK
    assert clock.sleeps[0] < 120.0 and IngestRun.objects.count() == 1  # ingested in cycle 2
    assert set(NightFolder.objects.values_list("state", flat=True)) == {S.INGESTED}


@pytest.mark.django_db
def test_loop_wakes_early_when_data_arrives(sample_root):
    run_cycle(opts(sample_root))
    for unit in sample_root.glob("7DT*"):
        age_tree(unit, 3600)  # so that the new arrival visibly moves the folder mtimes
    clock = FakeClock(timezone.now() + timedelta(seconds=10))
    stop = threading.Event()
    arrived = sample_root / "7DT09" / "2025-07-03_gain2750_ToO"

    def arrive(c: FakeClock, _stop: threading.Event) -> None:
        if len(c.sleeps) == 1:
            copy_folder(sample_root / "7DT01" / "2025-07-01_gain2750_ToO", arrived)

    clock.hooks.append(arrive)
    o = opts(sample_root, smart_interval=True, probe_s=600.0, interval_s=8 * 3600.0)
    assert run_monitor(o, stop, clock, max_cycles=2) == EXIT_OK
    # It arrived during the first 10-minute slice: the probe after it woke the monitor (not 8 h later).
    assert clock.sleeps == [600.0]
    assert frames_in(sample_root, "7DT09/2025-07-03_gain2750_ToO") == fits_in(sample_root, "7DT09/2025-07-03_gain2750_ToO")


@pytest.mark.django_db
def test_stop_event_ends_the_loop_cleanly(sample_root):
    clock = FakeClock(timezone.now())
    clock.hooks.append(lambda c, stop: stop.set())  # SIGTERM while sleeping
    assert run_monitor(opts(sample_root, smart_interval=True), threading.Event(), clock) == EXIT_OK
    assert len(clock.sleeps) == 1
    state = MonitorState.objects.get()
    assert state.status == "stopped" and state.lease_until is None and state.cycles == 1


# ------------------------------------------------------------------------------------------ command


@pytest.mark.django_db
def test_command_once_status_validate(sample_root):
    (sample_root / "7DT01" / "2025-13-45").mkdir()
    (sample_root / "7DT01" / "not-a-night").mkdir()
    common = ["--data-root", str(sample_root), "--max-cpu-percent", "0", "--min-free-memory-gb", "0", "--min-free-disk-gb", "0"]
    run = run_command("update_nights", "--once", "--auto-ingest", "--stable-minutes", "0", "--update-stats", *common)
    assert run.code == 0, run.err
    assert Frame.objects.count() > 0 and not NightFolder.objects.exclude(state=S.INGESTED).exists()
    status = run_command("update_nights", "--mode", "status")
    assert status.code == 0 and "Monitor 'update_nights': stopped" in status.out
    assert f"{NightFolder.objects.count()} ingested" in status.out and "heartbeat:" in status.out
    validate = run_command("update_nights", "--mode", "validate", "--data-root", str(sample_root))
    assert validate.code == 1
    assert "7DT01/2025-13-45: INVALID" in validate.out and "7DT01/not-a-night: INVALID" in validate.out
    assert run_command("update_nights", "--mode", "test", *common).code == 0
    with pytest.raises(CommandError, match="give one"):
        run_command("update_nights", "--once", "--stable-minutes", "1", "--ingest-delay", "60", *common)


@pytest.mark.django_db
def test_flush_refuses_without_explicit_confirmation(sample_root):
    run_cycle(opts(sample_root))
    n = Frame.objects.count()
    for flag in ("--flush", "--flush-only"):
        with pytest.raises(CommandError, match="yes-i-really-mean-it"):
            run_command("update_nights", flag, "--once", "--data-root", str(sample_root))
        assert Frame.objects.count() == n > 0
    run = run_command("update_nights", "--flush-only", "--yes-i-really-mean-it", "--data-root", str(sample_root))
    assert run.code == 0 and f"{n} frames" in run.out
    assert not Frame.objects.exists() and not NightFolder.objects.exists()


# ------------------------------------------------------------------------------------------ real processes


class SharedDatabase(BaseSharedDatabase):
    """Lets a child process use this test's database (see the module docstring)."""

    def monitor_state(self, name: str = "update_nights") -> dict[str, Any]:
        if self.copy is None:
            return MonitorState.objects.filter(name=name).values().first() or {}
        with sqlite3.connect(self.copy, timeout=30) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM survey_monitorstate WHERE name = ?", (name,)).fetchone()
            return dict(row) if row else {}


def start_monitor(db: SharedDatabase, root: Path, logs: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("GWPORTAL_TEST_DB_NAME",)}
    env.update(DATABASE_URL=db.url, GWPORTAL_LOG_DIR=str(logs), PYTHONUNBUFFERED="1")
    args = [sys.executable, "manage.py", "update_nights", "--data-root", str(root), "--auto-ingest", "--smart-interval",
            "--stable-minutes", "0", "--max-cpu-percent", "0", "--min-free-memory-gb", "0", "--min-free-disk-gb", "0", *extra]
    return subprocess.Popen(args, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(db: SharedDatabase, proc: subprocess.Popen, cond, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = db.monitor_state()
        if state and cond(state):
            return state
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"monitor exited early with {proc.returncode}: {out}\n{err}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"timed out waiting; last state {db.monitor_state()}")


@pytest.mark.django_db(transaction=True)
def test_real_processes_lease_sigkill_takeover_and_sigterm(sample_root, manifest, tmp_path, log_dir):
    """Real `update_nights` processes: a second one refuses; kill -9 then restart repeats nothing; SIGTERM stops cleanly."""
    db = SharedDatabase(tmp_path)
    first = start_monitor(db, sample_root, log_dir)
    third = None
    try:
        state = wait_for(db, first, lambda s: s["status"] == "sleeping" and s["cycles"] >= 1)
        assert state["pid"] == first.pid and state["next_check_at"] and state["heartbeat_at"] and state["lease_until"]

        second = start_monitor(db, sample_root, log_dir, "--once")
        out, err = second.communicate(timeout=120)
        assert second.returncode == EXIT_LOCKED, out + err
        assert "Another monitor 'update_nights' is running" in err

        first.kill()  # SIGKILL: no clean-up at all, the lease stays in the database
        first.communicate()
        assert db.monitor_state()["pid"] == first.pid and db.monitor_state()["lease_until"]

        third = start_monitor(db, sample_root, log_dir)  # takes the dead holder's lease over at once
        wait_for(db, third, lambda s: s["pid"] == third.pid and s["status"] == "sleeping" and s["cycles"] >= 1)
        third.send_signal(signal.SIGTERM)
        out, err = third.communicate(timeout=60)
        assert third.returncode == 0, out + err
    finally:
        for proc in (first, third):
            if proc is not None and proc.poll() is None:
                proc.kill()
    db.sync_back()
    state = MonitorState.objects.get(name="update_nights")
    assert state.status == "stopped" and state.lease_until is None and state.heartbeat_at and state.pid == third.pid
    assert IngestRun.objects.count() == 1  # the restart ingested nothing twice
    assert Frame.objects.count() == len(manifest.files)
    text = (log_dir / "monitor.log").read_text()
    for line in ("another monitor holds the lease", "took over the lease", "SIGTERM received", "stopped cleanly"):
        assert line in text, line


def test_database_unreachable_is_a_clear_fatal_error(sample_root, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GWPORTAL_TEST_DB_NAME"}
    env.update(DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere", GWPORTAL_LOG_DIR=str(tmp_path / "logs"))
    proc = subprocess.run([sys.executable, "manage.py", "update_nights", "--once", "--auto-ingest", "--data-root", str(sample_root)],
                          cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Database error" in proc.stderr and "Traceback" not in proc.stderr
