"""`update_nights`: the 24/7 monitor (argument parsing only; the logic is survey.monitor).

    python manage.py update_nights --auto-ingest --smart-interval --update-stats
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from survey.ingest.engine import EXIT_FATAL
from survey.management.commands._options import add_data_root, resolve_data_root, unit_name
from survey.monitor import (
    EXIT_LOCKED,
    DEFAULT_NAME,
    MonitorOptions,
    flush_catalogue,
    run_monitor,
    status_report,
    validate_report,
)

log = logging.getLogger("survey.monitor")

EXAMPLES = """\
Examples:
  python manage.py update_nights --auto-ingest --smart-interval --update-stats     # the 24/7 daemon
  python manage.py update_nights --once --auto-ingest                                # one cycle (cron)
  python manage.py update_nights --mode status                                       # folder states + heartbeat
  python manage.py update_nights --mode validate --show-invalid                      # folder-name problems
  python manage.py update_nights --auto-ingest --stable-minutes 10 --interval 4h     # faster quiet period
See docs/operations-monitor.md."""

AUTO_INGEST_HELP = """\
--auto-ingest ingests a night folder once its transfer is complete: its file set, sizes and mtimes
have not changed for --stable-minutes (default 30), no rsync temporary is present, and every FITS file
not yet catalogued is as long as its headers say. Only new or changed files are read. Every folder
name variant is detected (YYYY-MM-DD, _gain2750, _ToO either side, _2x2, _gain0 ...). See
docs/operations-monitor.md."""

NEW_DATA_HELP = """\
The monitor needs no date cutoff: every night folder's state is kept in the database (NightFolder),
so an already ingested folder is never re-read and a unit folder arriving late for a known date is
still picked up. For a bulk (re)import use `ingest_all_nights --new-data-only` or a date range."""


def duration(text: str) -> float:
    """Seconds: '300', '90s', '30m', '8h'."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    try:
        if t and t[-1] in units:
            value = float(t[:-1]) * units[t[-1]]
        else:
            value = float(t)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a duration like 300, 90s, 30m or 8h: {text!r}") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"negative duration: {text!r}")
    return value


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


class Command(BaseCommand):
    help = "Monitor the data root: detect night folders, wait until transferred, ingest, refresh statistics."

    def add_arguments(self, parser):
        add_data_root(parser)
        parser.add_argument("--mode", choices=["incremental", "full", "status", "validate", "test"], default="incremental",
                            help="incremental (default): the monitor; full: also re-list every ingested folder each cycle; "
                                 "status: print folder states and the heartbeat; validate: report folder-name problems; "
                                 "test: one cycle, at most 5 nights.")
        parser.add_argument("--once", action="store_true", help="One cycle, then exit (for cron).")
        parser.add_argument("--auto-ingest", action="store_true", help="Ingest folders whose transfer is complete (else only track them).")
        parser.add_argument("--smart-interval", action="store_true", help="Sleep --interval when idle, re-check sooner while folders settle.")
        parser.add_argument("--interval", type=duration, default=8 * 3600.0, help="Sleep between cycles when nothing is pending (default 8h; 300, 30m, 8h).")
        parser.add_argument("--min-interval", type=duration, default=60.0, help="Shortest re-check while folders settle (default 60 s).")
        parser.add_argument("--max-interval", type=duration, default=1800.0, help="Longest re-check while folders settle (default 1800 s).")
        parser.add_argument("--stable-minutes", type=non_negative, default=None, help="Quiet period: folder unchanged this long before ingest (default 30).")
        parser.add_argument("--ingest-delay", type=duration, default=None, help="The original's name for the quiet period, in seconds.")
        parser.add_argument("--file-stability-checks", type=int, default=1, help="Extra unchanged listings required after the quiet period (default 1 = none).")
        parser.add_argument("--file-stability-wait", type=duration, default=30.0, help="Seconds between those listings (default 30).")
        parser.add_argument("--skip-recent-folders", type=duration, default=0.0, help="Never ingest a folder first seen less than this ago (default 0).")
        parser.add_argument("--incomplete-grace-minutes", type=non_negative, default=60.0,
                            help="An incomplete file untouched this long stops blocking its folder and is recorded as truncated (default 60).")
        parser.add_argument("--limit", type=int, default=None, help="At most this many nights ingested per cycle.")
        parser.add_argument("--ingest-workers", type=int, default=0, help="Reader processes per ingest (default: number of cores).")
        parser.add_argument("--force-full-scan", action="store_true", help="List every folder every cycle (default: ingested folders whose mtime did not move are skipped; a full listing runs daily).")
        parser.add_argument("--update-stats", action="store_true", help="Recompute statistics of the nights ingested in each cycle.")
        parser.add_argument("--update-all-stats", action="store_true", help="Recompute every statistic each cycle (slow on a large archive).")
        parser.add_argument("--max-cpu-percent", type=non_negative, default=90.0, help="Defer ingest while system CPU is above this (0 = off; default 90).")
        parser.add_argument("--min-free-memory-gb", type=non_negative, default=1.0, help="Defer ingest while available memory is below this (0 = off; default 1).")
        parser.add_argument("--min-free-disk-gb", type=non_negative, default=5.0, help="Defer ingest while the log/database disk has less free space (0 = off; default 5).")
        parser.add_argument("--probe-seconds", type=duration, default=60.0, help="While sleeping, look for new arrivals this often (0 = off; default 60).")
        parser.add_argument("--unit", action="append", type=unit_name, dest="units", help="Only this unit (repeatable).")
        parser.add_argument("--include-test-folders", action="store_true", help="Also track and ingest test folders.")
        parser.add_argument("--show-invalid", action="store_true", help="validate mode: print invalid folders only.")
        parser.add_argument("--flush", action="store_true", help="DANGER: delete the whole catalogue, then monitor (needs --yes-i-really-mean-it).")
        parser.add_argument("--flush-only", action="store_true", help="DANGER: delete the whole catalogue and exit (needs --yes-i-really-mean-it).")
        parser.add_argument("--yes-i-really-mean-it", action="store_true", help="Confirm --flush/--flush-only.")
        parser.add_argument("--name", default=DEFAULT_NAME, help=argparse.SUPPRESS)
        parser.add_argument("--debug", action="store_true", help="Debug logging.")
        parser.add_argument("--examples", action="store_true", help="Print examples and exit.")
        parser.add_argument("--help-auto-ingest", action="store_true", help="Explain --auto-ingest and exit.")
        parser.add_argument("--new-data-help", action="store_true", help="Explain new-data detection and exit.")

    def handle(self, *args, **o):
        for flag, text in (("examples", EXAMPLES), ("help_auto_ingest", AUTO_INGEST_HELP), ("new_data_help", NEW_DATA_HELP)):
            if o[flag]:
                self.stdout.write(text)
                return
        if o["debug"]:
            for name in ("survey", "rawdata"):
                logging.getLogger(name).setLevel(logging.DEBUG)
        try:
            self._handle(o)
        except DatabaseError as exc:
            self.stderr.write(f"Database error: {exc}".strip())
            sys.exit(EXIT_FATAL)

    def _handle(self, o: dict) -> None:
        if o["mode"] == "status":
            self.stdout.write(status_report(o["name"], root=o["data_root"]))
            return
        root = resolve_data_root(o["data_root"])
        if o["mode"] == "validate":
            text, n_invalid = validate_report(root, show_invalid=o["show_invalid"])
            self.stdout.write(text)
            if n_invalid:
                sys.exit(1)
            return
        if o["flush"] or o["flush_only"]:
            if not o["yes_i_really_mean_it"]:
                raise CommandError(
                    "--flush/--flush-only delete EVERY catalogued frame, problem, statistic, night folder and night "
                    "(the original did this silently). Nothing was deleted. Re-ingesting the archive afterwards takes "
                    "hours. If that is really what you want, add --yes-i-really-mean-it."
                )
            counts = flush_catalogue()
            self.stdout.write("Catalogue flushed: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
            if o["flush_only"]:
                return
        if o["stable_minutes"] is not None and o["ingest_delay"] is not None:
            raise CommandError("--stable-minutes and --ingest-delay both set the quiet period: give one.")
        quiet = o["ingest_delay"] if o["ingest_delay"] is not None else 60.0 * (30.0 if o["stable_minutes"] is None else o["stable_minutes"])
        if o["min_interval"] > o["max_interval"]:
            raise CommandError("--min-interval is larger than --max-interval")
        if o["file_stability_checks"] < 1:
            raise CommandError("--file-stability-checks must be at least 1")
        test = o["mode"] == "test"
        opts = MonitorOptions(
            data_root=root, name=o["name"], auto_ingest=o["auto_ingest"], quiet_s=quiet,
            incomplete_grace_s=60.0 * o["incomplete_grace_minutes"], stability_checks=o["file_stability_checks"],
            stability_wait_s=o["file_stability_wait"], skip_recent_s=o["skip_recent_folders"],
            smart_interval=o["smart_interval"], interval_s=o["interval"], min_interval_s=o["min_interval"],
            max_interval_s=o["max_interval"], probe_s=o["probe_seconds"], once=o["once"] or test,
            units=o["units"], include_test=o["include_test_folders"],
            limit=o["limit"] if o["limit"] is not None else (5 if test else None), ingest_workers=o["ingest_workers"],
            force_full_scan=o["force_full_scan"] or o["mode"] == "full", update_stats=o["update_stats"],
            update_all_stats=o["update_all_stats"], max_cpu_percent=o["max_cpu_percent"] or None,
            min_free_memory_gb=o["min_free_memory_gb"] or None, min_free_disk_gb=o["min_free_disk_gb"] or None,
        )
        if not opts.smart_interval and not opts.once and opts.interval_s > opts.quiet_s:
            log.warning("without --smart-interval a settling folder waits a full --interval (%.0f s) before its next check", opts.interval_s)
        stop = threading.Event()

        def on_signal(signum, _frame):
            log.info("%s received: finishing the current step, then stopping", signal.Signals(signum).name)
            stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            code = run_monitor(opts, stop)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        if code == EXIT_LOCKED:
            self.stderr.write(f"Another monitor {opts.name!r} is running (see `update_nights --mode status`); not starting.")
        if code:
            sys.exit(code)
