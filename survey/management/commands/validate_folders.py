"""`validate_folders`: check unit and night-folder names against the 7DT conventions (parsing and output only).

Writes logs/validate_folders.log (full detail); exit 1 if any folder name is invalid, 2 on a fatal error.
"""
from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from survey.management.commands._options import add_data_root, iso_date, resolve_data_root
from survey.reconcile import EXIT_FATAL, ReconcileError, render_validation, validate_folders


class Command(BaseCommand):
    help = (
        "Validate unit folders (7DTnn) and night folders (YYYY-MM-DD[_gain2750|_ToO|_NxN|...]) under the data "
        "root; writes logs/validate_folders.log; exit 1 if any name is invalid."
    )

    def add_arguments(self, parser):
        add_data_root(parser)
        parser.add_argument("--detailed", action="store_true", help="List every folder, including conforming ones.")
        parser.add_argument("--invalid-only", action="store_true", help="List only invalid names.")
        parser.add_argument("--today", type=iso_date, default=None, help="Reference date for 'in the future' (default: today).")

    def handle(self, *args, **o):
        try:
            root = resolve_data_root(o["data_root"])
            result = validate_folders(root, today=o["today"])
        except (ReconcileError, CommandError, OSError) as exc:
            self.stderr.write(f"validate_folders: {exc}")
            sys.exit(EXIT_FATAL)
        text = render_validation(result.verdicts, root=root, detailed=o["detailed"], invalid_only=o["invalid_only"])
        self.stdout.write(text, ending="")
        self.stdout.write(f"Log: {result.log_file}")
        if result.exit_code:
            sys.exit(result.exit_code)
