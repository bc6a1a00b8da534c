"""Celery tasks: header reading for scale-out ingests, and one monitor cycle for Celery beat.

`read_chunk_task` runs on reader hosts that mount the data root at the same path as the coordinator.
It reads files and returns records: it never opens a database connection, so reader hosts need no
database credentials. Payloads are JSON (rawdata.serialize): a message can never execute code.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import time
from typing import Any

from celery import shared_task

from rawdata.extract import read_chunk
from rawdata.serialize import chunk_result_to_dict, chunk_task_from_dict

log = logging.getLogger(__name__)

#: Test hook only: seconds each chunk sleeps before reading, so a test can kill a worker mid-run.
TEST_DELAY_ENV = "GWPORTAL_TEST_CHUNK_DELAY"


class DataRootNotVisible(RuntimeError):
    """This worker cannot see the night folder's unit directory: the data root is not mounted here."""


class RefusedPath(ValueError):
    """A chunk names a path outside this worker's data root, or a file name that leaves its folder."""


def _check_paths(folder: str, names: list[str]) -> None:
    """Open only files under the data root (when the worker knows it) and inside the named folder.

    A broker message is input like any request: whoever can write to the broker must not be able to
    make a worker read files elsewhere (SPEC 3: a path is opened only if it is under the data root).
    """
    from django.conf import settings

    if not os.path.isabs(folder):
        raise RefusedPath(f"refused folder {folder!r}: not an absolute path")
    for name in names:
        if not name or "/" in name or "\x00" in name or name in {".", ".."}:
            raise RefusedPath(f"refused file name {name!r}: not a plain name inside {folder}")
    root = (getattr(settings, "GWPORTAL", {}) or {}).get("DATA_ROOT") or ""
    if root:
        real_root, real = os.path.realpath(root), os.path.realpath(folder)
        if os.path.commonpath([real_root, real]) != real_root:
            raise RefusedPath(f"refused folder {folder}: outside this worker's data root {root}")


def _check_visible(folder: str) -> None:
    """Refuse a chunk this host cannot read, instead of recording every file as a problem.

    A vanished night folder under a visible unit directory is real (files become problems, exactly
    as in a local run); a missing unit directory means the data root is not mounted on this host.
    """
    if os.path.isdir(folder) or os.path.isdir(os.path.dirname(folder)):
        return
    raise DataRootNotVisible(
        f"worker host {socket.gethostname()} cannot see {os.path.dirname(folder)}: "
        "mount the data root at the same path as on the coordinator"
    )


@shared_task(name="survey.tasks.read_chunk_task", acks_late=True, reject_on_worker_lost=True)
def read_chunk_task(payload: dict[str, Any]) -> dict[str, Any]:
    """Read one chunk of one night folder; returns a `chunk_result` message (JSON-native dict)."""
    task = chunk_task_from_dict(payload)
    _check_paths(task.context.path, [entry.name for entry in task.files])
    _check_visible(task.context.path)
    delay = float(os.environ.get(TEST_DELAY_ENV) or 0)
    if delay > 0:
        time.sleep(delay)
    result = read_chunk(task)
    log.debug("read %d files of %s in %.2f s", result.headers_read, task.context.path, result.seconds)
    return chunk_result_to_dict(result)


@shared_task(name="survey.tasks.monitor_cycle_task", acks_late=False, ignore_result=True)
def monitor_cycle_task(**overrides: Any) -> dict[str, Any]:
    """One monitor cycle (detect, settle, ingest, statistics) for Celery beat, under the monitor lease.

    Runs on the monitor worker (database access and the data root needed, queue gwportal.monitor).
    `overrides` are MonitorOptions fields (e.g. data_root=..., quiet_s=...) for a manual `.delay()`.
    """
    from django.conf import settings

    from survey import monitor

    fields: dict[str, Any] = {"data_root": settings.GWPORTAL["DATA_ROOT"], "auto_ingest": True, "update_stats": True}
    fields.update(overrides)
    if not fields["data_root"]:
        log.error("monitor cycle not run: no data root (set GWPORTAL_DATA_ROOT on the monitor worker)")
        return {"status": "error", "reason": "no data root: set GWPORTAL_DATA_ROOT"}
    if multiprocessing.current_process().daemon and settings.GWPORTAL["EXECUTOR"] != "celery":
        log.warning("monitor cycle in a prefork pool process: a large ingest cannot start its local reader pool "
                    "here; run the monitor worker with --pool solo (docs/scale-out.md)")
    return run_beat_cycle(monitor.MonitorOptions(**fields))


def run_beat_cycle(opts: Any, *, now: Any = None) -> dict[str, Any]:
    """Take the monitor lease, run one cycle while renewing it, record the cycle, give the lease back.

    The lease is the row the `update_nights` daemon holds (same name), so a beat cycle never runs
    beside the daemon or beside another cycle: it is skipped instead. Between beats the row says
    status 'idle' with the next expected cycle in next_check_at; a heartbeat older than a few beat
    periods therefore means beat (or the monitor worker) stopped.
    """
    from datetime import timedelta

    from django.conf import settings
    from django.db.models import F
    from django.utils import timezone

    from survey import monitor
    from survey.models import MonitorState

    if not monitor.acquire_lease(opts.name, opts.lease_ttl_s):
        holder = monitor.describe_holder(opts.name)
        log.info("monitor cycle skipped: lease %r held by %s", opts.name, holder)
        return {"status": "skipped", "reason": f"monitor lease {opts.name!r} held by {holder}"}
    headline = "cycle did not finish"
    try:
        monitor.heartbeat(opts.name, status="scanning", detail="celery beat cycle")
        with monitor.LeaseKeeper(opts.name, opts.lease_ttl_s) as keeper:
            result = monitor.run_cycle(opts, now=now)
        if keeper.lost:
            log.error("monitor lease %r was taken over during a beat cycle", opts.name)
            return {"status": "lost_lease", "exit_code": result.exit_code, "cycle": _jsonable(result.summary())}
        headline = result.headline()
        monitor.heartbeat(opts.name, status="scanning", cycles=F("cycles") + 1, last_cycle=result.summary(),
                          detail=headline)
        log.info("beat monitor cycle: %s", headline)
        return {"status": "done", "exit_code": result.exit_code, "cycle": _jsonable(result.summary())}
    finally:
        if monitor.release_lease(opts.name, status="idle", detail=f"celery beat: {headline}"):
            period = float((getattr(settings, "CELERY_BEAT_SCHEDULE", {}).get("monitor-cycle") or {}).get("schedule") or 0)
            if period > 0:
                MonitorState.objects.filter(name=opts.name, lease_until=None).update(
                    next_check_at=timezone.now() + timedelta(seconds=period))


def _jsonable(value: Any) -> Any:
    """A cycle summary as JSON-native values (the result serializer accepts JSON only)."""
    import dataclasses
    from datetime import date, datetime

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
