"""`reprocess_nights`: re-ingest the folders the latest analysis flagged (or the dates/folders given), then
re-check them. Argument parsing and output only; the work is survey.reconcile.reprocess.

Exit codes: 0 the folders are consistent now, 1 something is still missing/failed/changed, 2 fatal error.
"""
from __future__ import annotations

import sys
from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from survey.management.commands._options import add_data_root, iso_date, unit_name
from survey.reconcile import EXIT_FATAL, ReconcileError, ReprocessOptions, render_text, reprocess

SKIP = {"stdout", "stderr", "skip_checks", "force_color", "no_color", "pythonpath", "settings", "traceback", "verbosity"}


class Command(BaseCommand):
    help = (
        "Re-ingest exactly the night folders flagged by the latest check_missing_files analysis (or --dates, "
        "--start-date/--end-date, --folder), then re-check them; exit 1 if anything is still missing or failed."
    )

    def add_arguments(self, parser):
        add_data_root(parser)
        parser.add_argument("--dates", nargs="+", type=iso_date, metavar="D", help="Re-ingest every folder of these nights.")
        parser.add_argument("--start-date", type=iso_date, help="First night of a range to re-ingest.")
        parser.add_argument("--end-date", type=iso_date, help="Last night of a range to re-ingest.")
        parser.add_argument("--unit", action="append", type=unit_name, dest="units", help="Only this unit (repeatable).")
        parser.add_argument("--folder", action="append", dest="folders", metavar="PATH", help="Re-ingest this night folder (repeatable).")
        parser.add_argument("--report", type=int, dest="report_id", help="Use this MissingReport id instead of the latest.")
        parser.add_argument("--force", action="store_true", help="Re-read every header, not only new or changed files.")
        parser.add_argument("--dry-run", action="store_true", help="List the folders, change nothing.")
        parser.add_argument("--settle-seconds", type=float, default=3600.0, help="A short file younger than this is deferred, older is truncated.")
        parser.add_argument("--workers", type=int, default=0, help="Reader processes (default: number of cores).")
        parser.add_argument("--parallel", action="store_true", default=None, help="Read headers in a process pool.")
        parser.add_argument("--no-parallel", action="store_false", dest="parallel", help="Read in this process only.")
        parser.add_argument("--executor", choices=["local", "celery"], default=None, help="Where readers run (default GWPORTAL_EXECUTOR).")
        parser.add_argument("--no-verify-checksums", action="store_false", dest="verify_checksums", default=None, help="Skip SHA-256 checks.")
        parser.add_argument("--include-test-folders", action="store_true", help="Also test folders (with --dates).")
        parser.add_argument("--progress", action="store_true", help="Show a progress bar.")

    def handle(self, *args, **o):
        if o["dates"] and (o["start_date"] or o["end_date"]):
            return self._fatal("--dates cannot be combined with --start-date/--end-date")
        conf = settings.GWPORTAL
        arguments = {k: ([d.isoformat() for d in v] if k == "dates" and v else v.isoformat() if isinstance(v, date) else v)
                     for k, v in o.items() if k not in SKIP}
        try:
            opts = ReprocessOptions(
                data_root=o["data_root"] or conf["DATA_ROOT"], dates=o["dates"], start_date=o["start_date"],
                end_date=o["end_date"], units=o["units"], folder_paths=o["folders"], report_id=o["report_id"],
                force=o["force"], dry_run=o["dry_run"],
                verify_checksums=conf["VERIFY_CHECKSUMS"] if o["verify_checksums"] is None else o["verify_checksums"],
                settle_seconds=o["settle_seconds"], workers=o["workers"], parallel=o["parallel"],
                executor=o["executor"] or conf["EXECUTOR"], progress=o["progress"],
                include_test=o["include_test_folders"], arguments=arguments,
            )
            result = reprocess(opts)
        except (ReconcileError, CommandError) as exc:
            return self._fatal(str(exc))
        except DatabaseError as exc:
            return self._fatal(f"database error: {exc}".strip())
        self.stdout.write(f"Source: {result.source}; {len(result.folders)} folders")
        for path in result.folders:
            self.stdout.write(f"  {path}")
        for message in result.messages:
            self.stdout.write(message)
        if result.ingest is not None:
            from survey.ingest.report import format_report

            self.stdout.write(format_report(result.ingest))
        if result.check is not None:
            self.stdout.write("")
            self.stdout.write(render_text(result.check.analysis, limit=20, report_file=result.check.report_file), ending="")
        if o["dry_run"]:
            verdict = "dry run, nothing changed"
        elif result.exit_code == 0:
            verdict = "OK: the reprocessed folders are consistent"
        elif result.check is not None:
            a = result.check.analysis
            verdict = f"FAILED: {a.issues} issues remain in {len(a.with_issues())} folders (exit {result.exit_code})"
        else:
            verdict = f"FAILED (exit {result.exit_code})"
        self.stdout.write(f"reprocess_nights: {verdict}")
        if result.exit_code:
            sys.exit(result.exit_code)

    def _fatal(self, message: str) -> None:
        self.stderr.write(f"reprocess_nights: {message}")
        sys.exit(EXIT_FATAL)
