"""Run records and per-run log files: every ingest leaves a row and a log, even when it dies."""
from __future__ import annotations

import logging
import os
import socket
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import psutil
from django.conf import settings
from django.utils import timezone

from survey.models import IngestRun

HOST = socket.gethostname()
STALE_AFTER = timedelta(minutes=15)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_dir() -> Path:
    path = Path(settings.GWPORTAL["LOG_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def mark_interrupted_runs() -> int:
    """Runs still `running` whose process is gone (same host) or silent too long are interrupted."""
    now = timezone.now()
    count = 0
    for run in IngestRun.objects.filter(status=IngestRun.Status.RUNNING):
        dead_here = run.host == HOST and run.pid and not _alive(run.pid, run.started_at)
        silent = (run.heartbeat_at or run.started_at) < now - STALE_AFTER
        if dead_here or silent:
            IngestRun.objects.filter(pk=run.pk, status=IngestRun.Status.RUNNING).update(
                status=IngestRun.Status.INTERRUPTED, finished_at=now,
                error="The process ended without finishing (killed or crashed); a later run completes the work.",
            )
            count += 1
    return count


def _alive(pid: int, started_at) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.create_time() <= started_at.timestamp() + 5 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@contextmanager
def attached_handler(handler: logging.Handler) -> Iterator[None]:
    """Send the `survey`, `rawdata` and `gwportal` loggers (INFO and up) to `handler` for a while."""
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    loggers = [logging.getLogger(name) for name in ("survey", "rawdata", "gwportal")]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()


@contextmanager
def run_log_file(prefix: str, run_id: int | None = None) -> Iterator[Path]:
    """A log file per run: `<LOG_DIR>/<prefix>_YYYYMMDD_HHMMSS.log`."""
    stamp = time.strftime("%Y%m%d_%H%M%S")
    path = log_dir() / f"{prefix}_{stamp}.log"
    if path.exists() and run_id is not None:
        path = log_dir() / f"{prefix}_{stamp}_{run_id}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    with attached_handler(handler):
        yield path


class ResourceMeter:
    """Peak RSS and CPU seconds of this process and its reader children."""

    def __init__(self) -> None:
        self.proc = psutil.Process(os.getpid())
        self.peak_rss = 0
        self._cpu0 = self._cpu()

    def _family(self) -> list[psutil.Process]:
        try:
            return [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return [self.proc]

    def _cpu(self) -> float:
        total = 0.0
        for p in self._family():
            try:
                t = p.cpu_times()
                total += t.user + t.system + getattr(t, "children_user", 0) + getattr(t, "children_system", 0)
            except psutil.Error:
                pass
        return total

    def sample(self) -> None:
        rss = 0
        for p in self._family():
            try:
                rss += p.memory_info().rss
            except psutil.Error:
                pass
        self.peak_rss = max(self.peak_rss, rss)

    @property
    def cpu_seconds(self) -> float:
        return max(0.0, self._cpu() - self._cpu0)
