"""`ingest_all_nights`: catalogue the night folders of a date range (argument parsing only)."""
from __future__ import annotations

import argparse
import sys
from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from survey.ingest.engine import EXIT_FATAL, IngestOptions, run_ingest
from survey.ingest.executors import ExecutorError
from survey.ingest.report import format_plan, format_report
from survey.management.commands._options import add_data_root, iso_date, resolve_data_root, unit_name


class Command(BaseCommand):
    help = "Ingest raw 7DT night folders: headers only, idempotent, batched; exit 0 only if every file was catalogued."
    # Django's system checks load every URLconf (~0.3 s of each run's start-up); they guard the web
    # site's configuration, which `manage.py check` and `migrate` run, not an ingest.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        add_data_root(parser)
        # Django's own option, kept so that `--skip-checks` and call_command(..., skip_checks=True) still
        # work now that there are no checks to skip.
        parser.add_argument("--skip-checks", action="store_true", help=argparse.SUPPRESS)
        parser.add_argument("--start-date", type=iso_date, help="First night (folder date), YYYY-MM-DD.")
        parser.add_argument("--end-date", type=iso_date, help="Last night (folder date), YYYY-MM-DD.")
        parser.add_argument("--date", type=iso_date, help="One night: same as --start-date D --end-date D.")
        parser.add_argument("--new-data-only", action="store_true", help="Only nights after the cutoff; narrows an explicit range, never replaces it.")
        parser.add_argument("--bulk-cutoff-date", "--cutoff", dest="cutoff", type=iso_date, default=None, help="Cutoff for --new-data-only (default GWPORTAL_NEW_DATA_CUTOFF).")
        parser.add_argument("--unit", action="append", type=unit_name, dest="units", help="Only this unit (repeatable).")
        parser.add_argument("--auto-confirm", action="store_true", help="Do not ask before ingesting.")
        parser.add_argument("--parallel", action="store_true", default=None, help="Read headers in a process pool (automatic for large sets).")
        parser.add_argument("--no-parallel", action="store_false", dest="parallel", help="Read in this process only.")
        parser.add_argument("--workers", type=int, default=0, help="Reader processes (default: number of cores).")
        parser.add_argument("--executor", choices=["local", "celery"], default=None, help="Where readers run (default GWPORTAL_EXECUTOR).")
        parser.add_argument("--cleanup", action="store_true", help="Replace the range's records folder by folder (atomic per folder).")
        parser.add_argument("--force", action="store_true", help="Re-read every header even if unchanged.")
        parser.add_argument("--dry-run", action="store_true", help="Show the plan, write nothing.")
        parser.add_argument("--debug", action="store_true", help="Log every file decision.")
        parser.add_argument("--no-verify-checksums", action="store_false", dest="verify_checksums", default=None, help="Skip SHA-256 checks against allfiles.hash.")
        parser.add_argument("--settle-seconds", type=float, default=3600.0, help="A short file younger than this is deferred, older is truncated.")
        parser.add_argument("--include-test-folders", action="store_true", help="Also ingest test folders (2023-00-00, *_test).")
        parser.add_argument("--progress", action="store_true", default=None, help="Force the progress bar (default: on a terminal).")
        parser.add_argument("--chunk-size", type=int, default=0, help="Files per read task and write batch (default GWPORTAL_BATCH_SIZE).")
        parser.add_argument("--trigger", default="manual", help=argparse_hidden())
        # Options of the original kept so existing scripts work; behaviour is always on or explained.
        for flag in ("--continue-on-error", "--validate", "--create-targets", "--exclude-focus", "--exclude-test", "--skip-existing"):
            parser.add_argument(flag, action="store_true", help="Accepted for compatibility (always on).")
        parser.add_argument("--report-interval", type=int, default=5, help="Accepted for compatibility.")
        parser.add_argument("--limit-per-night", type=int, default=None, help="Accepted for compatibility (ignored: every file is catalogued).")

    def handle(self, *args, **o):
        if o["date"]:
            o["start_date"] = o["end_date"] = o["date"]
        if o["start_date"] and o["end_date"] and o["start_date"] > o["end_date"]:
            raise CommandError("--start-date is after --end-date")
        if o["debug"]:
            import logging

            logging.getLogger("survey").setLevel(logging.DEBUG)
            logging.getLogger("rawdata").setLevel(logging.DEBUG)
        conf = settings.GWPORTAL
        cutoff = o["cutoff"] or date.fromisoformat(conf["NEW_DATA_CUTOFF"])
        opts = IngestOptions(
            data_root=resolve_data_root(o["data_root"]),
            start_date=o["start_date"], end_date=o["end_date"], units=o["units"],
            new_data_only=o["new_data_only"], cutoff=cutoff, cleanup=o["cleanup"], dry_run=o["dry_run"],
            parallel=o["parallel"], workers=o["workers"], executor=o["executor"] or conf["EXECUTOR"],
            force=o["force"],
            verify_checksums=conf["VERIFY_CHECKSUMS"] if o["verify_checksums"] is None else o["verify_checksums"],
            settle_seconds=o["settle_seconds"], include_test=o["include_test_folders"], chunk_size=o["chunk_size"],
            progress=sys.stderr.isatty() if o["progress"] is None else o["progress"], trigger=o["trigger"],
            arguments={k: (v.isoformat() if isinstance(v, date) else v) for k, v in o.items()
                       if k not in {"stdout", "stderr", "skip_checks", "force_color", "no_color", "pythonpath", "settings", "traceback"}},
        )
        interactive = sys.stdin.isatty() and not o["auto_confirm"] and not o["dry_run"]
        on_plan = self._confirm if interactive else None
        try:
            report = run_ingest(opts, on_plan=on_plan)
        except DatabaseError as exc:
            self.stderr.write(f"Database error: {exc}".strip())
            sys.exit(EXIT_FATAL)
        except ExecutorError as exc:  # no broker / no live Celery worker / a chunk failed remotely
            self.stderr.write(f"Reader error: {exc}\nBatches written so far are valid; run again to complete.")
            sys.exit(EXIT_FATAL)
        self.stdout.write(format_report(report))
        if report.exit_code:
            sys.exit(report.exit_code)

    def _confirm(self, plans) -> bool:
        self.stdout.write(format_plan(plans))
        answer = input("Ingest these folders? Type YES to continue: ")
        return answer.strip() == "YES"


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS
