"""`check_calibrations`: can every science setup of a date range be calibrated? (argument parsing only)

Exit 0: every science setup has bias, dark and flat groups within the windows; 1: some science frames
cannot be calibrated (listed in the report in LOG_DIR); 2: bad arguments or settings.
"""
from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from survey.calibration import CalibrationRules, check, format_report, write_report
from survey.management.commands._options import iso_date, unit_name


class Command(BaseCommand):
    help = "Check calibration readiness (bias/dark/flat groups by the pipeline's rules) of the science frames of a date range."

    def add_arguments(self, parser):
        parser.add_argument("--start-date", type=iso_date, required=True, help="First night, YYYY-MM-DD.")
        parser.add_argument("--end-date", type=iso_date, required=True, help="Last night, YYYY-MM-DD.")
        parser.add_argument("--unit", action="append", type=unit_name, dest="units", help="Only this unit (repeatable).")
        parser.add_argument("--bias-window", type=int, default=None, help="Nights either side to look for bias (default CALIB_WINDOW_BIAS, 7).")
        parser.add_argument("--dark-window", type=int, default=None, help="Nights either side to look for darks (default CALIB_WINDOW_DARK, 7).")
        parser.add_argument("--flat-window", type=int, default=None, help="Nights either side to look for flats (default CALIB_WINDOW_FLAT, 3).")
        parser.add_argument("--dark-exptime", choices=["nearest", "exact"], default=None, help="Accept darks of another exposure time (nearest, scaled) or only the same (exact).")
        parser.add_argument("--quiet", action="store_true", help="Print the summary only, not the whole report.")

    def handle(self, *args, **o):
        if o["start_date"] > o["end_date"]:
            raise CommandError("--start-date is after --end-date", returncode=2)
        overrides = {k: o[k] for k in ("bias_window", "dark_window", "flat_window", "dark_exptime") if o[k] is not None}
        try:
            rules = CalibrationRules.from_settings(**overrides)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        result = check(o["start_date"], o["end_date"], o["units"], rules)
        path = write_report(result, settings.GWPORTAL["LOG_DIR"])
        text = format_report(result)
        self.stdout.write(text.split("\n\n", 1)[0] if o["quiet"] else text)
        self.stdout.write(f"report: {path}")
        if not result.ok:
            sys.exit(1)
