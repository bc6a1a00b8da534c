"""`check_missing_files`: compare catalogue and disk folder by folder (argument parsing and output only).

Exit codes: 0 clean, 1 something is missing/failed/changed/mismatched/never arrived, 2 fatal error.
"""
from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from survey.management.commands._options import add_data_root, iso_date, resolve_data_root, unit_name
from survey.reconcile import EXIT_FATAL, CheckOptions, ReconcileError, render, run_check

SKIP = {"stdout", "stderr", "skip_checks", "force_color", "no_color", "pythonpath", "settings", "traceback", "verbosity"}


class Command(BaseCommand):
    help = (
        "Compare the database with the data root folder by folder: files never ingested, excluded by rule, "
        "failed, gone from disk, changed, checksum mismatches, sequence gaps. Saves a MissingReport and writes "
        "logs/missing_files_analysis_<stamp>.log; exit 1 when anything is wrong."
    )

    def add_arguments(self, parser):
        add_data_root(parser)
        parser.add_argument("--start-date", type=iso_date, help="First night (folder date), YYYY-MM-DD.")
        parser.add_argument("--end-date", type=iso_date, help="Last night (folder date), YYYY-MM-DD.")
        parser.add_argument("--dates", nargs="+", type=iso_date, metavar="D", help="Only these nights (not with --start-date/--end-date).")
        parser.add_argument("--unit", action="append", type=unit_name, dest="units", help="Only this unit (repeatable).")
        parser.add_argument("--folder", action="append", dest="folders", metavar="PATH", help="Only this night folder (repeatable).")
        parser.add_argument("--quick-folders", action="store_true", help="Fast per-folder counts only (no stat, no per-file detail).")
        parser.add_argument("--verify-checksums", action="store_true", help="Re-hash catalogued files now against allfiles.hash (reads every byte).")
        parser.add_argument("--no-gaps", action="store_false", dest="gaps", help="Skip the frame-sequence gap analysis.")
        parser.add_argument("--include-test-folders", action="store_true", help="Also compare test folders (2023-00-00, *_test).")
        parser.add_argument("--format", choices=["text", "json", "csv"], default="text", help="Output format (default text).")
        parser.add_argument("--output", metavar="FILE", help="Write the output to FILE instead of standard output.")
        parser.add_argument("--summary-only", action="store_true", help="Only the totals and the per-date statistics.")
        parser.add_argument("--by-folders", action="store_true", help="A row for every folder, not only those with differences.")
        parser.add_argument("--list-missing-folders", action="store_true", help="Print only the folders flagged for reprocessing, one per line.")
        parser.add_argument("--workers", type=int, default=0, help="Folder-listing processes (0 = automatic, 1 = none).")
        parser.add_argument("--limit", type=int, default=20, help="Files listed per class and folder on screen (0 = all; the report file has all).")

    def handle(self, *args, **o):
        if o["dates"] and (o["start_date"] or o["end_date"]):
            return self._fatal("--dates cannot be combined with --start-date/--end-date")
        if o["start_date"] and o["end_date"] and o["start_date"] > o["end_date"]:
            return self._fatal("--start-date is after --end-date")
        arguments = {k: ([d.isoformat() for d in v] if k == "dates" and v else v.isoformat() if isinstance(v, date) else v)
                     for k, v in o.items() if k not in SKIP}
        try:
            root = o["data_root"] or settings.GWPORTAL["DATA_ROOT"]
            if not root and o["folders"]:
                root = os.path.commonpath([os.path.abspath(p) for p in o["folders"]])
            opts = CheckOptions(
                data_root=resolve_data_root(root), start_date=o["start_date"], end_date=o["end_date"],
                dates=o["dates"], units=o["units"], folder_paths=o["folders"], quick=o["quick_folders"],
                verify_checksums=o["verify_checksums"], include_test=o["include_test_folders"], gaps=o["gaps"],
                workers=o["workers"], arguments=arguments,
            )
            result = run_check(opts, arguments=arguments)
        except (ReconcileError, CommandError) as exc:
            return self._fatal(str(exc))
        except DatabaseError as exc:
            return self._fatal(f"database error: {exc}".strip())
        analysis = result.analysis
        if o["list_missing_folders"]:
            flagged = analysis.flagged()
            text = json.dumps(flagged, indent=1) + "\n" if o["format"] == "json" else "".join(p + "\n" for p in flagged)
        else:
            text = render(analysis, o["format"], summary_only=o["summary_only"], by_folders=o["by_folders"],
                          limit=o["limit"] or None, report_file=result.report_file)
        if o["output"]:
            Path(o["output"]).write_text(text, encoding="utf-8")
            verdict = "clean" if analysis.clean else f"{analysis.issues} issues"
            self.stdout.write(f"{verdict}; output written to {o['output']}; report file {result.report_file} "
                              f"(MissingReport {result.report.pk})")
        else:
            self.stdout.write(text, ending="")
        if result.exit_code:
            sys.exit(result.exit_code)

    def _fatal(self, message: str) -> None:
        self.stderr.write(f"check_missing_files: {message}")
        sys.exit(EXIT_FATAL)
