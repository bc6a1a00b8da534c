"""The monitor: detect night folders, wait until their transfer is complete, ingest them, repeat.

Everything durable lives in the database, so a monitor killed at any point (kill -9) restarts where
it was: each folder's state and fingerprint in ``NightFolder``, the daemon's lease, heartbeat and
last cycle in ``MonitorState``. Nothing is kept in a side file (the original kept "processed" in a
JSON file valid for 24 h, and re-ingested everything after a longer outage).

Public API: :class:`MonitorOptions`, :func:`run_cycle` (one cycle), :func:`run_monitor` (the daemon
loop, with an injectable stop event and clock), :func:`acquire_lease`, :func:`release_lease`,
:func:`heartbeat`, :func:`status_report`, :func:`validate_report`, :func:`flush_catalogue`.

Folder states: ``new`` (row just created) -> ``settling`` (changed within the quiet period, a
transfer temporary present, or a file still incomplete) -> ``stable`` (transfer complete; waiting
for auto-ingest or deferred by the resource guard) -> ``ingesting`` -> ``ingested`` | ``failed``
(files with open problems). A folder whose fingerprint changes after ingest goes back to
``settling``; the ingest then reads only its new or changed files.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any, Protocol

import psutil
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from rawdata.folders import parse_folder_name
from rawdata.scan import FolderListing, NightFolderRef, iter_night_folders, iter_unit_dirs, list_folder
from rawdata.stability import (
    Fingerprint,
    SmartInterval,
    check_files,
    first_change_estimate,
    probe_signature,
    quiet_remaining,
    split_temporaries,
)
from survey import stats
from survey.ingest.engine import EXIT_DEFERRED, EXIT_FAILED_FILES, EXIT_FATAL, EXIT_OK, IngestOptions, run_ingest
from survey.ingest.plan import ensure_rows
from survey.models import FileProblem, Frame, MonitorState, Night, NightFolder, NightUnitStats, TileFilterProgress
from survey.runlog import HOST, attached_handler, log_dir

log = logging.getLogger("survey.monitor")

EXIT_LOCKED = 4  # another monitor holds the lease
DEFAULT_NAME = "update_nights"
DIR_MTIME_MARGIN_S = 2.0  # a folder mtime is trusted only if our listing was taken this long after it
S = NightFolder.State
_DONE = (S.INGESTED, S.FAILED)
_LIGHT_FIELDS = ("path", "id", "state", "present", "ingested_fingerprint", "file_count", "total_bytes", "newest_mtime_ns", "dir_mtime_ns")
_ROW_FIELDS = (
    "id", "path", "name", "state", "file_count", "total_bytes", "newest_mtime_ns", "dir_mtime_ns",
    "fingerprint_changed_at", "last_checked_at", "ingested_fingerprint", "discovered_at", "present", "is_too",
    "night__date", "state_detail",
)


# ----------------------------------------------------------------------------------------- options


@dataclass
class MonitorOptions:
    """Everything one monitor cycle and the daemon loop need (the command only fills this in)."""

    data_root: str
    name: str = DEFAULT_NAME
    auto_ingest: bool = True
    # Transfer-complete gate.
    quiet_s: float = 1800.0  # --stable-minutes: fingerprint unchanged this long
    incomplete_grace_s: float = 3600.0  # an incomplete file older than this stops blocking (-> 'truncated')
    stability_checks: int = 1  # --file-stability-checks: extra unchanged listings required when > 1
    stability_wait_s: float = 30.0  # --file-stability-wait: spacing of those extra listings
    skip_recent_s: float = 0.0  # --skip-recent-folders: never ingest a folder first seen less than this ago
    # Interval rule.
    smart_interval: bool = True
    interval_s: float = 8 * 3600.0
    min_interval_s: float = 60.0
    max_interval_s: float = 1800.0
    resource_retry_s: float = 300.0
    probe_s: float = 60.0  # while sleeping: cheap check for new arrivals (0 = off)
    heartbeat_s: float = 30.0
    lease_ttl_s: float = 120.0
    once: bool = False
    # Scope and work.
    units: list[str] | None = None
    include_test: bool = False
    limit: int | None = None  # nights ingested per cycle
    folders_per_run: int = 40
    ingest_workers: int = 0
    force_full_scan: bool = False
    full_scan_every_s: float = 24 * 3600.0
    update_stats: bool = False
    update_all_stats: bool = False
    # Resource guard (0 / None = off).
    max_cpu_percent: float | None = 90.0
    min_free_memory_gb: float | None = 1.0
    min_free_disk_gb: float | None = 5.0
    cpu_sample_s: float = 1.0

    def interval_rule(self, now: float) -> SmartInterval:
        return SmartInterval(self.interval_s, self.min_interval_s, self.max_interval_s, self.smart_interval, clock=lambda: now)

    def describe(self) -> str:
        return (
            f"root={self.data_root} auto_ingest={self.auto_ingest} quiet={self.quiet_s:g}s "
            f"interval={self.interval_s:g}s smart={self.smart_interval} [{self.min_interval_s:g}s..{self.max_interval_s:g}s] "
            f"limits: cpu<={self.max_cpu_percent} mem>={self.min_free_memory_gb}GB disk>={self.min_free_disk_gb}GB"
        )


@dataclass
class CycleResult:
    """What one cycle saw and did; ``summary()`` is stored as MonitorState.last_cycle."""

    started_at: datetime
    data_root: str = ""
    full_scan: bool = False
    folders_seen: int = 0
    folders_listed: int = 0
    folders_idle: int = 0
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    settling: dict[str, str] = field(default_factory=dict)  # path -> why
    stable: list[str] = field(default_factory=list)  # transfer complete, not ingested this cycle
    ingested: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deferred: dict[str, str] = field(default_factory=dict)  # path -> resource reason
    absent: list[str] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    ready_at: list[float] = field(default_factory=list)  # epoch s when pending folders may be ready
    exit_code: int = EXIT_OK
    next_wait_s: float = 0.0
    duration_s: float = 0.0
    last_full_scan: float | None = None

    @property
    def fatal(self) -> bool:
        return self.exit_code == EXIT_FATAL

    def headline(self) -> str:
        parts = [f"{self.folders_seen} folders ({self.folders_listed} listed)"]
        for label, items in (("new", self.new), ("settling", self.settling), ("ingested", self.ingested),
                             ("failed", self.failed), ("deferred", self.deferred), ("stable", self.stable)):
            if items:
                parts.append(f"{len(items)} {label}")
        if self.errors:
            parts.append("error: " + self.errors[0])
        return ", ".join(parts)

    def summary(self) -> dict[str, Any]:
        def first(items, n=20):
            return list(items)[:n]

        return {
            "started_at": self.started_at.isoformat(), "duration_s": round(self.duration_s, 3),
            "data_root": self.data_root, "full_scan": self.full_scan, "last_full_scan": self.last_full_scan,
            "folders_seen": self.folders_seen, "folders_listed": self.folders_listed, "folders_idle": self.folders_idle,
            "new": first(self.new), "changed": first(self.changed), "settling": dict(list(self.settling.items())[:20]),
            "n_settling": len(self.settling), "stable": first(self.stable), "ingested": first(self.ingested),
            "n_ingested": len(self.ingested), "failed": first(self.failed), "deferred": dict(list(self.deferred.items())[:20]),
            "absent": first(self.absent), "runs": self.runs, "errors": first(self.errors, 5), "violations": self.violations,
            "exit_code": self.exit_code, "next_wait_s": round(self.next_wait_s, 1),
        }


# ----------------------------------------------------------------------------------------- lease


_ttls: dict[str, float] = {}


def _process_alive(pid: int, started_at: datetime | None) -> bool:
    """Is ``pid`` (on this host) still the process that took the lease? Guards against pid reuse."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started_at is None or proc.create_time() <= started_at.timestamp() + 5
    except psutil.Error:
        return False


def acquire_lease(name: str, ttl_s: float) -> bool:
    """Take the single-monitor lease ``name`` for ``ttl_s`` seconds; False if another live monitor holds it.

    Atomic: one conditional UPDATE (lease free, expired, or already ours). A lease whose holder died
    on this host (pid gone) is taken over at once with a compare-and-swap on the old holder.
    """
    now = timezone.now()
    pid = os.getpid()
    MonitorState.objects.get_or_create(name=name)
    taken = dict(host=HOST, pid=pid, lease_until=now + timedelta(seconds=ttl_s), started_at=now, heartbeat_at=now,
                 status="starting", detail="", next_check_at=None)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(host=HOST, pid=pid)
    if MonitorState.objects.filter(Q(name=name) & free).update(**taken):
        _ttls[name] = ttl_s
        return True
    row = MonitorState.objects.get(name=name)
    if row.host == HOST and row.pid and not _process_alive(row.pid, row.started_at):
        swapped = MonitorState.objects.filter(name=name, host=row.host, pid=row.pid, lease_until=row.lease_until).update(**taken)
        if swapped:
            log.warning("took over the lease of monitor pid %s on %s, which is gone", row.pid, row.host)
            _ttls[name] = ttl_s
            return True
    return False


def heartbeat(name: str, **fields: Any) -> bool:
    """Write the heartbeat (and any MonitorState fields), renewing our lease; False if it is not ours."""
    ttl = fields.pop("ttl_s", _ttls.get(name, 120.0))
    now = timezone.now()
    return bool(
        MonitorState.objects.filter(name=name, host=HOST, pid=os.getpid()).update(
            heartbeat_at=now, lease_until=now + timedelta(seconds=ttl), **fields
        )
    )


def release_lease(name: str, *, status: str = "stopped", detail: str = "") -> bool:
    """Give the lease up (only if it is ours) and record the final status."""
    _ttls.pop(name, None)
    return bool(
        MonitorState.objects.filter(name=name, host=HOST, pid=os.getpid()).update(
            lease_until=None, heartbeat_at=timezone.now(), status=status, detail=detail, next_check_at=None
        )
    )


def describe_holder(name: str) -> str:
    row = MonitorState.objects.filter(name=name).first()
    if row is None:
        return "nobody"
    return (f"pid {row.pid} on {row.host}, status {row.status}, heartbeat {row.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"lease until {row.lease_until:%Y-%m-%d %H:%M:%S} UTC" if row.heartbeat_at and row.lease_until
            else f"pid {row.pid} on {row.host}, status {row.status}")


class LeaseKeeper:
    """Renews the lease from a thread while a long cycle (an ingest) blocks the main loop."""

    def __init__(self, name: str, ttl_s: float) -> None:
        self.name, self.ttl_s = name, ttl_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{name}", daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(max(1.0, self.ttl_s / 4)):
                try:
                    if not heartbeat(self.name, ttl_s=self.ttl_s):
                        self.lost = True
                        log.error("monitor lease %r was taken by another process", self.name)
                        return
                except DatabaseError as exc:
                    log.warning("lease renewal failed (will retry): %s", exc)
        finally:
            connection.close()

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


# ----------------------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class ResourceSample:
    cpu_percent: float
    free_memory_gb: float
    free_disk_gb: dict[str, float]


def _guarded_dirs() -> list[str]:
    """The log folder and, for SQLite, the database folder: what an ingest fills up."""
    dirs = [str(log_dir())]
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        name = str(connection.settings_dict.get("NAME") or db.get("NAME") or "")
        if name and not name.startswith("file:") and name != ":memory:":
            dirs.append(os.path.dirname(os.path.abspath(name)))
    return list(dict.fromkeys(dirs))


def sample_resources(opts: MonitorOptions) -> ResourceSample:
    """Measure what the guard compares (psutil: system CPU over ``cpu_sample_s``, available memory, free disk)."""
    cpu = psutil.cpu_percent(interval=opts.cpu_sample_s) if opts.max_cpu_percent else 0.0
    mem = psutil.virtual_memory().available / 2**30
    disks = {}
    for path in _guarded_dirs():
        try:
            disks[path] = shutil.disk_usage(path).free / 2**30
        except OSError as exc:
            log.warning("cannot measure free disk of %s: %s", path, exc)
    return ResourceSample(cpu, mem, disks)


def resource_violations(sample: ResourceSample, opts: MonitorOptions) -> list[str]:
    """Readable reasons to defer an ingest; empty when every limit is met. A limit of 0/None is off."""
    out = []
    if opts.max_cpu_percent and sample.cpu_percent > opts.max_cpu_percent:
        out.append(f"CPU {sample.cpu_percent:.0f}% > --max-cpu-percent {opts.max_cpu_percent:g}")
    if opts.min_free_memory_gb and sample.free_memory_gb < opts.min_free_memory_gb:
        out.append(f"free memory {sample.free_memory_gb:.1f} GB < --min-free-memory-gb {opts.min_free_memory_gb:g}")
    if opts.min_free_disk_gb:
        for path, free in sample.free_disk_gb.items():
            if free < opts.min_free_disk_gb:
                out.append(f"free disk {free:.1f} GB at {path} < --min-free-disk-gb {opts.min_free_disk_gb:g}")
    return out


# ----------------------------------------------------------------------------------------- one cycle


@dataclass(eq=False)
class _Folder:
    ref: NightFolderRef
    row: dict[str, Any]
    listing: FolderListing
    fp: Fingerprint
    changed_at: float
    update: dict[str, Any]
    changed_now: bool
    is_new: bool = False


# A folder whose quiet period ends within this is quiet. The change time is stored with microseconds
# (file times have nanoseconds) and the monitor sleeps exactly until the quiet period ends: rounded
# up on storage, the next cycle would find it "0 s to go" and wait another whole interval.
QUIET_SLACK_S = 0.01


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=dt_timezone.utc)


def _row_fp(row: dict[str, Any]) -> str:
    return f"{row['file_count']}:{row['total_bytes']}:{row['newest_mtime_ns']}"


def _idle(light: tuple, ref: NightFolderRef) -> bool:
    """An ingested folder whose directory mtime has not moved since a trusted listing needs no scandir.

    Adding, removing or renaming a file (rsync's final rename included) changes the folder mtime.
    ``light`` is a row of _LIGHT_FIELDS (no datetimes: converting 20,000 of them would cost more than the scan).
    """
    _path, _id, state, present, ingested_fp, count, size, newest, dir_mtime = light
    return state in _DONE and present and dir_mtime != 0 and dir_mtime == ref.dir_mtime_ns and ingested_fp == f"{count}:{size}:{newest}"


def _trusted_mtime(ref: NightFolderRef, t_now: float) -> int:
    """The folder mtime to store, or 0 (= list again next cycle) if our listing was too close to it.

    On file systems with coarse timestamps a file added in the same tick as the listing would leave
    the mtime unchanged; a listing taken DIR_MTIME_MARGIN_S after the mtime is safe.
    """
    return ref.dir_mtime_ns if t_now - ref.dir_mtime_ns / 1e9 > DIR_MTIME_MARGIN_S else 0


def _bulk_set(updates: dict[int, dict[str, Any]]) -> None:
    """Write many folder rows: one executemany per set of columns, in one transaction.

    Django's bulk_update builds a CASE expression per value (~1 ms each); a first start over
    20,000 folders would spend minutes there. Values are converted by the model fields themselves.
    """
    groups: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = {}
    for folder_id, fields in updates.items():
        if fields:
            groups.setdefault(tuple(sorted(fields)), []).append((folder_id, fields))
    updates.clear()
    if not groups:
        return
    meta = NightFolder._meta
    qn = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        for keys, items in groups.items():
            fields = [meta.get_field(k) for k in keys]
            sql = (f"UPDATE {qn(meta.db_table)} SET " + ", ".join(f"{qn(f.column)} = %s" for f in fields)
                   + f" WHERE {qn(meta.pk.column)} = %s")
            params = [[f.get_db_prep_save(values[f.name], connection) for f in fields] + [folder_id] for folder_id, values in items]
            for start in range(0, len(params), 1000):
                cursor.executemany(sql, params[start : start + 1000])


def _short(path: str, root: str) -> str:
    return os.path.relpath(path, root)


def _last_full_scan(name: str) -> float | None:
    row = MonitorState.objects.filter(name=name).values_list("last_cycle", flat=True).first()
    value = (row or {}).get("last_full_scan")
    return float(value) if isinstance(value, (int, float)) else None


def _remember_full_scan(name: str, t_now: float) -> None:
    """Kept in MonitorState.last_cycle so that a --once run from cron knows when the last full listing was."""
    state, _ = MonitorState.objects.get_or_create(name=name)
    MonitorState.objects.filter(pk=state.pk).update(last_cycle={**(state.last_cycle or {}), "last_full_scan": t_now})


def run_cycle(opts: MonitorOptions, *, now: datetime | None = None, stop: threading.Event | None = None) -> CycleResult:
    """One monitor cycle: scan, update folder states, ingest folders whose transfer is complete.

    Does not take the lease (callers that may run beside the daemon use :func:`acquire_lease`).
    Raises DatabaseError (fatal); any other trouble is recorded in the result and folder rows.
    """
    now = now or timezone.now()
    t_now = now.timestamp()
    tick = time.perf_counter()
    root = os.path.abspath(opts.data_root)
    result = CycleResult(started_at=now, data_root=root)
    if not os.path.isdir(root) or not any(True for _ in iter_unit_dirs(root)):
        result.errors.append(f"data root missing, unmounted or without unit folders: {root}")
        result.exit_code = EXIT_FATAL
        result.ready_at.append(t_now + opts.max_interval_s)
        log.error("%s (folder states left untouched)", result.errors[0])
        return _finish(result, opts, t_now, tick)

    last_full = _last_full_scan(opts.name)
    result.full_scan = opts.force_full_scan or last_full is None or t_now - last_full >= opts.full_scan_every_s
    result.last_full_scan = t_now if result.full_scan else last_full

    refs = list(iter_night_folders(root, units=opts.units, include_test=opts.include_test))
    result.folders_seen = len(refs)
    prefix = root.rstrip(os.sep) + os.sep
    light = {r[0]: r for r in NightFolder.objects.filter(path__startswith=prefix).values_list(*_LIGHT_FIELDS)}
    fresh = [r for r in refs if r.path not in light]
    if fresh:
        ensure_rows(fresh)
    fresh_paths = {r.path for r in fresh}
    need = [ref for ref in refs if result.full_scan or ref.path in fresh_paths or not _idle(light[ref.path], ref)]
    result.folders_idle = len(refs) - len(need)
    rows: dict[str, dict[str, Any]] = {}
    need_paths = [ref.path for ref in need]
    for start in range(0, len(need_paths), 900):
        rows.update((r["path"], r) for r in NightFolder.objects.filter(path__in=need_paths[start : start + 900]).values(*_ROW_FIELDS))

    writes: dict[int, dict[str, Any]] = {}
    pending: list[_Folder] = []
    for ref in need:
        row = rows.get(ref.path)
        if row is None:  # same unit and folder name already known under another path (7DT-01 vs 7DT01, moved root)
            other = NightFolder.objects.filter(unit__name=ref.unit, name=ref.name).values_list("path", flat=True).first()
            result.errors.append(f"{ref.path}: skipped, the catalogue has this unit's folder {ref.name} at {other}")
            log.error("%s", result.errors[-1])
            continue
        is_new = ref.path in fresh_paths
        try:
            listing = list_folder(ref.path)
        except OSError as exc:
            result.errors.append(f"cannot list {ref.path}: {exc}")
            log.warning("cannot list %s: %s", ref.path, exc)
            continue
        result.folders_listed += 1
        fp = Fingerprint.from_listing(listing)
        update: dict[str, Any] = {"last_checked_at": now, "dir_mtime_ns": _trusted_mtime(ref, t_now)}
        if not row["present"]:
            update["present"] = True
        fp_fields = {"file_count": fp.file_count, "total_bytes": fp.total_bytes, "newest_mtime_ns": fp.newest_mtime_ns}
        changed_now = False
        if is_new:
            changed_at = first_change_estimate(listing, ref.dir_mtime_ns, t_now)
            update.update(fp_fields, fingerprint_changed_at=_dt(changed_at), discovered_at=now)
            row["discovered_at"] = now
            result.new.append(ref.path)
            if len(result.new) <= 50:
                log.info("new night folder %s: %d files, %.1f MB", _short(ref.path, root), fp.file_count, fp.total_bytes / 1e6)
        elif str(fp) != _row_fp(row) or row["fingerprint_changed_at"] is None:
            changed_now = str(fp) != _row_fp(row)
            changed_at = t_now if changed_now else first_change_estimate(listing, ref.dir_mtime_ns, t_now)
            update.update(fp_fields, fingerprint_changed_at=_dt(changed_at))
            if changed_now:
                result.changed.append(ref.path)
                log.info("%s changed: %s -> %s", _short(ref.path, root), _row_fp(row), fp)
        else:
            changed_at = row["fingerprint_changed_at"].timestamp()
        if row["state"] in _DONE and str(fp) == row["ingested_fingerprint"]:
            # Done and unchanged: write only what moved (keeps the daily full listing cheap).
            if changed_now or "present" in update or row["dir_mtime_ns"] != update["dir_mtime_ns"]:
                writes[row["id"]] = update
            continue
        pending.append(_Folder(ref, row, listing, fp, changed_at, update, changed_now, is_new))
    if len(result.new) > 50:
        log.info("... %d new night folders in all", len(result.new))

    ready = _gate(pending, opts, result, t_now, root)
    if ready and opts.stability_checks > 1:
        ready = _recheck(ready, opts, result, stop, root)
    going = {id(f) for f in ready}
    for f in pending:
        if id(f) not in going:
            writes[f.row["id"]] = f.update
    _bulk_set(writes)
    if ready:
        _ingest(ready, opts, result, now, root, stop)
    _mark_absent(light, {r.path for r in refs}, result)
    _refresh_stats(opts, result)
    if result.full_scan:
        _remember_full_scan(opts.name, t_now)
    return _finish(result, opts, t_now, tick)


def _gate(pending: list[_Folder], opts: MonitorOptions, result: CycleResult, t_now: float, root: str) -> list[_Folder]:
    """Apply the transfer-complete gate; returns the folders ready to ingest (others get state + reason)."""
    ready: list[_Folder] = []
    for f in pending:
        path, row = f.ref.path, f.row
        why, ready_at = "", t_now
        left = quiet_remaining(f.changed_at, opts.quiet_s, t_now)
        active: list[str] = []
        if row["state"] == S.INGESTING and not f.changed_now:
            f.update["state_detail"] = "resuming an ingest that was interrupted (the ingest skips what is already catalogued)"
            log.info("%s: %s", _short(path, root), f.update["state_detail"])
            ready.append(f)
            continue
        if left > QUIET_SLACK_S:
            why = f"quiet period: last change {t_now - f.changed_at:.0f} s ago, {left:.0f} s to go"
            ready_at = t_now + left
        elif f.listing.temporaries:
            active, stale = split_temporaries(path, f.listing.temporaries, t_now, opts.incomplete_grace_s)
            if stale:
                log.warning("%s: ignoring %d stale transfer temporaries (untouched for %.0f s): %s",
                            _short(path, root), len(stale), opts.incomplete_grace_s, ", ".join(stale[:3]))
            if active:
                why = f"transfer temporaries present ({len(active)}): {', '.join(active[:3])}"
                ready_at = t_now + opts.min_interval_s
        if not why and opts.skip_recent_s and row["discovered_at"] is not None:
            age = t_now - row["discovered_at"].timestamp()
            if age < opts.skip_recent_s:
                why = f"first seen {age:.0f} s ago (--skip-recent-folders {opts.skip_recent_s:g})"
                ready_at = t_now + opts.skip_recent_s - age
        if not why:
            # A file being written has a fresh mtime (tar and rsync set the original mtime only once a
            # file is complete), so only recent files are read; and only those not yet catalogued.
            todo = [e for e in f.listing.files if t_now - e.mtime_ns / 1e9 < opts.incomplete_grace_s]
            if todo and not f.is_new:
                known = dict(
                    (name, (size, mtime))
                    for name, size, mtime in Frame.objects.filter(folder_id=row["id"]).values_list("filename", "file_size", "file_mtime_ns")
                )
                todo = [e for e in todo if known.get(e.name) != (e.size, e.mtime_ns)]
            comp = check_files(path, todo, now=t_now, grace_s=opts.incomplete_grace_s)
            if comp.blocking:
                names = ", ".join(f"{c.name} ({c.detail})" for c in comp.blocking[:3])
                why = f"{len(comp.blocking)} file(s) still incomplete: {names}"
                youngest = max(c.mtime_ns for c in comp.blocking) / 1e9
                ready_at = min(t_now + max(opts.quiet_s, opts.min_interval_s), youngest + opts.incomplete_grace_s)
            elif comp.stale:
                log.warning("%s: %d file(s) incomplete for over %.0f s; ingesting, they will be recorded as truncated: %s",
                            _short(path, root), len(comp.stale), opts.incomplete_grace_s,
                            ", ".join(c.name for c in comp.stale[:3]))
        if why:
            f.update.update(state=S.SETTLING, state_detail=f"settling: {why}")
            result.settling[path] = why
            result.ready_at.append(ready_at)
            if f.changed_now or row["state"] != S.SETTLING or row["state_detail"] != f.update["state_detail"]:
                log.info("%s settling: %s", _short(path, root), why)
            continue
        ready.append(f)
    return ready


def _recheck(ready: list[_Folder], opts: MonitorOptions, result: CycleResult, stop: threading.Event | None, root: str) -> list[_Folder]:
    """--file-stability-checks N: N-1 more listings, --file-stability-wait apart, must show the same fingerprint."""
    for _ in range(opts.stability_checks - 1):
        if stop is not None:
            stop.wait(opts.stability_wait_s)
        else:
            time.sleep(opts.stability_wait_s)
        still = []
        for f in ready:
            try:
                fp = Fingerprint.from_listing(list_folder(f.ref.path))
            except OSError:
                fp = None
            if fp == f.fp:
                still.append(f)
                continue
            now = timezone.now()
            if fp is not None:
                f.update.update(file_count=fp.file_count, total_bytes=fp.total_bytes, newest_mtime_ns=fp.newest_mtime_ns)
            why = f"changed during the stability re-check ({opts.stability_wait_s:g} s)"
            f.update.update(fingerprint_changed_at=now, state=S.SETTLING, state_detail=f"settling: {why}")
            result.settling[f.ref.path] = why
            result.ready_at.append(now.timestamp() + opts.quiet_s)
            _bulk_set({f.row["id"]: f.update})
        ready = still
    return ready


def _order(f: _Folder) -> tuple:
    """ToO folders first (they are urgent), then the newest night first."""
    d = f.row["night__date"] or f.ref.info.date
    return (not f.ref.info.is_too, -(d.toordinal() if d else 0), f.ref.path)


def _ingest(ready: list[_Folder], opts: MonitorOptions, result: CycleResult, now: datetime, root: str,
            stop: threading.Event | None) -> None:
    ready = sorted(ready, key=_order)
    writes: dict[int, dict[str, Any]] = {}

    def hold(folders: list[_Folder], detail: str, into: list[str] | dict[str, str] | None = None) -> None:
        for f in folders:
            f.update.update(state=S.STABLE, state_detail=f"stable: {detail}")
            writes[f.row["id"]] = f.update
            if isinstance(into, list):
                into.append(f.ref.path)
            elif isinstance(into, dict):
                into[f.ref.path] = detail
        _bulk_set(writes)

    if opts.limit:
        dates: list = []
        for f in ready:
            if f.ref.info.date not in dates:
                dates.append(f.ref.info.date)
        keep = set(dates[: opts.limit])
        later = [f for f in ready if f.ref.info.date not in keep]
        if later:
            hold(later, f"waiting (--limit {opts.limit} nights per cycle)", result.stable)
            result.ready_at.append(now.timestamp())
        ready = [f for f in ready if f.ref.info.date in keep]
    if not opts.auto_ingest:
        hold(ready, "transfer complete; auto-ingest is off", result.stable)
        return
    for f in ready:
        if f.fp.file_count == 0:
            f.update.update(state=S.INGESTED, ingested_fingerprint=str(f.fp), ingested_at=now, state_detail="ingested: empty folder")
            writes[f.row["id"]] = f.update
    _bulk_set(writes)
    ready = [f for f in ready if f.fp.file_count]
    conf = settings.GWPORTAL
    size = max(1, opts.folders_per_run)
    for start in range(0, len(ready), size):
        batch, rest = ready[start : start + size], ready[start:]
        if stop is not None and stop.is_set():
            hold(rest, "stop requested before its ingest", result.stable)
            return
        violations = resource_violations(sample_resources(opts), opts)
        if violations:
            reason = "; ".join(violations)
            log.warning("ingest of %d folder(s) deferred by the resource guard: %s", len(rest), reason)
            result.violations = violations
            hold(rest, f"ingest deferred by resource guard: {reason}", result.deferred)
            result.ready_at.append(now.timestamp() + opts.resource_retry_s)
            if result.exit_code == EXIT_OK:
                result.exit_code = EXIT_DEFERRED
            return
        for f in batch:
            f.update.update(state=S.INGESTING, state_detail=f.update.get("state_detail") or f"ingesting: started by monitor pid {os.getpid()}")
            writes[f.row["id"]] = f.update
        _bulk_set(writes)
        names = [_short(f.ref.path, root) for f in batch]
        log.info("ingesting %d folder(s): %s", len(batch), ", ".join(names[:10]) + (" ..." if len(names) > 10 else ""))
        heartbeat(opts.name, status="ingesting", detail=f"ingesting {len(batch)} folder(s): {', '.join(names[:5])}")
        _run_batch(batch, opts, result, now, root, conf)


def _run_batch(batch: list[_Folder], opts: MonitorOptions, result: CycleResult, now: datetime, root: str, conf: dict) -> None:
    ids = [f.row["id"] for f in batch]
    try:
        report = run_ingest(IngestOptions(
            data_root=root, folder_paths=[f.ref.path for f in batch], trigger="monitor", workers=opts.ingest_workers,
            executor=conf["EXECUTOR"], verify_checksums=conf["VERIFY_CHECKSUMS"], settle_seconds=opts.incomplete_grace_s,
            progress=False, include_test=opts.include_test,
            arguments={"monitor": opts.name, "pid": os.getpid(), "folders": [_short(f.ref.path, root) for f in batch]},
        ))
    except DatabaseError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad batch must not stop the daemon
        log.exception("ingest of %d folder(s) failed", len(batch))
        msg = f"{type(exc).__name__}: {exc}"[:500]
        # Restart the quiet period: the batch is retried after one quiet period, not in a tight loop.
        NightFolder.objects.filter(id__in=ids).update(
            state=S.FAILED, state_detail=f"failed: ingest error, retried after the quiet period: {msg}", fingerprint_changed_at=timezone.now()
        )
        result.failed.extend(f.ref.path for f in batch)
        result.errors.append(msg)
        result.ready_at.append(time.time() + opts.quiet_s)
        result.exit_code = EXIT_FAILED_FILES
        return
    result.runs.append(report.run_id)
    c = report.counts
    summary = (f"run {report.run_id}: {c.get('new', 0)} new, {c.get('updated', 0)} updated, {c.get('unchanged', 0)} unchanged, "
               f"{c.get('problems', 0) + c.get('failing', 0)} problems, {c.get('deferred', 0)} deferred")
    log.info("ingest %s (exit %d); log: %s", summary, report.exit_code, report.log_file)
    states = dict(NightFolder.objects.filter(id__in=ids).values_list("id", "state"))
    groups: dict[str, list[int]] = {"deferred": [], "failed": [], "ingested": [], "missed": []}
    for f in batch:
        state = states.get(f.row["id"])
        if report.exit_code == EXIT_DEFERRED and state == S.INGESTED:
            groups["deferred"].append(f.row["id"])
            result.settling[f.ref.path] = "the ingest deferred files still being written"
            result.ready_at.append(time.time() + opts.quiet_s)
        elif state == S.FAILED:
            groups["failed"].append(f.row["id"])
            result.failed.append(f.ref.path)
        elif state == S.INGESTED:
            groups["ingested"].append(f.row["id"])
            result.ingested.append(f.ref.path)
        else:  # the ingest did not take it (vanished meanwhile?): still 'ingesting', resumed next cycle
            groups["missed"].append(f.row["id"])
            result.errors.append(f"{f.ref.path}: not ingested by run {report.run_id}")
            result.ready_at.append(time.time() + opts.quiet_s)
    # Deferred files (written after the gate): look again instead of calling the folder done.
    NightFolder.objects.filter(id__in=groups["deferred"]).update(
        state=S.SETTLING, ingested_fingerprint="", fingerprint_changed_at=timezone.now(),
        state_detail=f"settling: the ingest deferred files still being written ({summary})")
    NightFolder.objects.filter(id__in=groups["failed"]).update(state_detail=f"failed: files with problems ({summary}); see the problems page")
    NightFolder.objects.filter(id__in=groups["ingested"]).update(state_detail=f"ingested: {summary}")
    if report.exit_code == EXIT_FAILED_FILES:
        result.exit_code = EXIT_FAILED_FILES
    elif report.exit_code == EXIT_FATAL:
        result.exit_code = EXIT_FATAL


def _mark_absent(light: dict[str, tuple], seen: set[str], result: CycleResult) -> None:
    """Folders known to the database but gone from disk are flagged (never deleted: the frames stay)."""
    for path, row in light.items():
        if path in seen or not row[3]:
            continue
        if os.path.isdir(path):
            continue  # filtered out (unit, test folder), not gone
        NightFolder.objects.filter(pk=row[1]).update(present=False, state_detail=Concat(F("state_detail"), Value(" [folder gone from disk]")))
        result.absent.append(path)
        log.warning("night folder gone from disk: %s", path)


def _refresh_stats(opts: MonitorOptions, result: CycleResult) -> None:
    if opts.update_all_stats:
        log.info("refreshing all statistics (--update-all-stats)")
        stats.refresh_all()
        return
    if not (opts.update_stats and (result.ingested or result.failed)):
        return
    nights = set(NightFolder.objects.filter(path__in=result.ingested + result.failed).values_list("night_id", flat=True))
    frames = Frame.objects.filter(night_id__in=nights)
    stats.refresh_night_unit_stats(nights)
    stats.refresh_tiles(frames.exclude(tile_id=None).values_list("tile_id", flat=True).distinct())
    stats.refresh_targets(frames.exclude(target_id=None).values_list("target_id", flat=True).distinct())
    log.info("statistics refreshed for %d night(s)", len(nights))


def _finish(result: CycleResult, opts: MonitorOptions, t_now: float, tick: float) -> CycleResult:
    result.duration_s = time.perf_counter() - tick
    result.next_wait_s = opts.interval_rule(t_now + result.duration_s).wait(result.ready_at)
    return result


# ----------------------------------------------------------------------------------------- the loop


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float, stop: threading.Event) -> None: ...


class SystemClock:
    """Wall clock; sleeping returns at once when ``stop`` is set (a signal handler sets it)."""

    def now(self) -> datetime:
        return timezone.now()

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(max(0.0, seconds))


@contextmanager
def monitor_log() -> Iterator[str]:
    """Log to ``<LOG_DIR>/monitor.log`` (rotating, 10 MB x 5) while the monitor runs."""
    path = os.path.join(str(log_dir()), "monitor.log")
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=10 * 2**20, backupCount=5, encoding="utf-8")
    handler.setLevel(logging.INFO)
    with attached_handler(handler):
        yield path


def run_monitor(opts: MonitorOptions, stop: threading.Event, clock: Clock | None = None, *, max_cycles: int | None = None) -> int:
    """The daemon: lease, cycle, heartbeat, sleep (waking early on new arrivals), until ``stop`` is set.

    Returns the exit code: 0 after a clean stop, EXIT_LOCKED if another monitor runs (or took the
    lease over), and for ``opts.once`` the cycle's own code. DatabaseError propagates (fatal).
    """
    clock = clock or SystemClock()
    with monitor_log() as log_path:
        if not acquire_lease(opts.name, opts.lease_ttl_s):
            log.error("another monitor holds the lease %r (%s): not starting", opts.name, describe_holder(opts.name))
            return EXIT_LOCKED
        log.info("monitor %r started (pid %d on %s): %s; log %s", opts.name, os.getpid(), HOST, opts.describe(), log_path)
        code = EXIT_OK
        final = "stopped"
        try:
            heartbeat(opts.name, status="starting", cycles=0, detail=opts.describe())
            cycles = 0
            while not stop.is_set():
                heartbeat(opts.name, status="scanning")
                # Taken before the scan: whatever arrives while the cycle runs wakes the next sleep early.
                probe = probe_signature(os.path.abspath(opts.data_root)) if opts.probe_s else None
                with LeaseKeeper(opts.name, opts.lease_ttl_s) as keeper:
                    try:
                        result = run_cycle(opts, now=clock.now(), stop=stop)
                    except DatabaseError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - a bug in one cycle must not end a 24/7 daemon
                        log.exception("monitor cycle failed")
                        result = CycleResult(started_at=clock.now(), errors=[f"{type(exc).__name__}: {exc}"], exit_code=EXIT_FATAL)
                        result.ready_at.append(clock.now().timestamp() + opts.max_interval_s)
                if keeper.lost:
                    final, code = "lost lease", EXIT_LOCKED
                    return code
                cycles += 1
                after = clock.now()
                wait = opts.interval_rule(after.timestamp()).wait(result.ready_at)
                result.next_wait_s = wait
                next_at = after + timedelta(seconds=wait)
                done = opts.once or (max_cycles is not None and cycles >= max_cycles)
                log.info("cycle %d: %s%s", cycles, result.headline(),
                         "" if done else f"; next check in {_human(wait)} (at {next_at:%Y-%m-%d %H:%M:%S} UTC)")
                if not heartbeat(opts.name, status="sleeping" if not done else "finishing", next_check_at=None if done else next_at,
                                 cycles=F("cycles") + 1, last_cycle=result.summary(), detail=result.headline()):
                    log.error("monitor lease %r was taken by another process: stopping", opts.name)
                    final, code = "lost lease", EXIT_LOCKED
                    return code
                if done:
                    code = result.exit_code
                    break
                _sleep_until(opts, stop, clock, next_at, probe)
            if stop.is_set():
                log.info("stop requested: monitor %r stopped cleanly after %d cycle(s)", opts.name, cycles)
            return code
        finally:
            try:
                if final != "lost lease":
                    release_lease(opts.name, status="stopped", detail=f"stopped at {timezone.now():%Y-%m-%d %H:%M:%S} UTC")
            except DatabaseError as exc:
                log.error("could not release the monitor lease: %s", exc)


def _sleep_until(opts: MonitorOptions, stop: threading.Event, clock: Clock, next_at: datetime, base: tuple | None) -> str:
    """Sleep until ``next_at`` in slices: heartbeat every heartbeat_s, compare the probe with ``base`` every probe_s."""
    root = os.path.abspath(opts.data_root)
    last_beat = last_probe = clock.now()
    while not stop.is_set():
        now = clock.now()
        if now >= next_at:
            return "due"
        events = [next_at, last_beat + timedelta(seconds=opts.heartbeat_s)]
        if base is not None:
            events.append(last_probe + timedelta(seconds=opts.probe_s))
        clock.sleep(max(0.0, (min(events) - now).total_seconds()), stop)
        now = clock.now()
        if stop.is_set():
            break
        if now - last_beat >= timedelta(seconds=opts.heartbeat_s):
            last_beat = now
            if not heartbeat(opts.name, status="sleeping"):
                log.error("monitor lease %r lost while sleeping", opts.name)
                stop.set()
                return "lease"
        if base is not None and now - last_probe >= timedelta(seconds=opts.probe_s):
            last_probe = now
            if probe_signature(root) != base:
                log.info("new data under %s: checking now instead of at %s", root, f"{next_at:%H:%M:%S}")
                return "change"
    heartbeat(opts.name, status="stopping")
    return "stop"


def _human(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


# ----------------------------------------------------------------------------------------- reports


def status_report(name: str = DEFAULT_NAME, *, root: str | None = None, max_rows: int = 50) -> str:
    """The folder states and the monitor heartbeat, as text (``update_nights --mode status``)."""
    now = timezone.now()
    lines = []
    row = MonitorState.objects.filter(name=name).first()
    if row is None:
        lines.append(f"Monitor {name!r}: never started")
    else:
        live = row.lease_until is not None and row.lease_until > now
        lines.append(f"Monitor {name!r}: {row.status} (pid {row.pid} on {row.host or '?'}), {row.cycles} cycle(s)"
                     + ("" if live or row.status in ("stopped", "idle") else "  ** NOT RUNNING: lease expired (killed?) **"))
        if row.heartbeat_at:
            lines.append(f"  heartbeat: {row.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC ({_human((now - row.heartbeat_at).total_seconds())} ago)")
        if row.next_check_at:
            lines.append(f"  next check: {row.next_check_at:%Y-%m-%d %H:%M:%S} UTC")
        if row.detail:
            lines.append(f"  last: {row.detail}")
    folders = NightFolder.objects.all()
    if root:
        folders = folders.filter(path__startswith=os.path.abspath(root).rstrip(os.sep) + os.sep)
    counts = dict(folders.values_list("state").annotate(n=Count("id")))
    absent = folders.filter(present=False).count()
    lines.append("Night folders: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in S.values)
                 + (f" ({absent} gone from disk)" if absent else ""))
    todo = folders.exclude(state=S.INGESTED).select_related("unit").order_by("-night__date", "path")[:max_rows]
    for f in todo:
        lines.append(f"  {f.unit.name}/{f.name:32} {f.state:10} {f.state_detail[:120]}")
    return "\n".join(lines)


def validate_report(root: str, *, show_invalid: bool = False) -> tuple[str, int]:
    """Every entry of every unit folder: night-folder name problems (``--mode validate``); returns (text, n_invalid)."""
    lines, n_invalid, n_total = [], 0, 0
    for unit, unit_dir, unit_path in iter_unit_dirs(root):
        if unit_dir != unit:
            lines.append(f"{unit_dir}: non-standard unit folder name (read as {unit})")
        for name in sorted(os.listdir(unit_path)):
            if not os.path.isdir(os.path.join(unit_path, name)):
                continue
            n_total += 1
            info = parse_folder_name(name)
            if info is None:
                n_invalid += 1
                lines.append(f"{unit_dir}/{name}: INVALID not a YYYY-MM-DD[_suffix] night folder")
            elif not info.valid or info.problems:
                n_invalid += not info.valid
                if info.valid and show_invalid:
                    continue
                label = "INVALID" if not info.valid else "note"
                lines.append(f"{unit_dir}/{name}: {label} {'; '.join(info.problems)}")
            elif info.is_test and not show_invalid:
                lines.append(f"{unit_dir}/{name}: note test folder (not ingested unless --include-test-folders)")
    lines.append(f"{n_total} folders checked, {n_invalid} invalid")
    return "\n".join(lines), n_invalid


def flush_catalogue() -> dict[str, int]:
    """Delete every catalogued frame, problem, statistic, night folder and night (the original's --flush).

    Units, tiles, targets, ingest run history and monitor state are kept; tile/target counters are reset.
    Only ever called after an explicit confirmation (``--yes-i-really-mean-it``).
    """
    counts: dict[str, int] = {}
    with transaction.atomic():
        for label, qs in (("problems", FileProblem.objects.all()), ("stats", NightUnitStats.objects.all()),
                          ("progress", TileFilterProgress.objects.all()), ("frames", Frame.objects.all()),
                          ("folders", NightFolder.objects.all()), ("nights", Night.objects.all())):
            counts[label] = qs.count()
            qs.delete()
    from survey.models import Target, Tile

    Tile.objects.filter(n_frames__gt=0).update(n_frames=0, n_nights=0, total_exptime=0.0, n_filters=0, first_night=None,
                                               last_night=None, programs=[])
    Target.objects.filter(n_frames__gt=0).update(n_frames=0, n_nights=0, total_exptime=0.0, first_night=None,
                                                 last_night=None, filters=[])
    log.warning("catalogue flushed: %s", counts)
    return counts


def lease_info(name: str = DEFAULT_NAME) -> dict[str, Any] | None:
    """MonitorState of ``name`` as a dict (for the portal and tests)."""
    row = MonitorState.objects.filter(name=name).values().first()
    return dict(row) if row else None


__all__ = [
    "EXIT_LOCKED", "CycleResult", "MonitorOptions", "ResourceSample", "SystemClock", "acquire_lease", "flush_catalogue",
    "heartbeat", "lease_info", "monitor_log", "release_lease", "resource_violations", "run_cycle", "run_monitor",
    "sample_resources", "status_report", "validate_report",
]
