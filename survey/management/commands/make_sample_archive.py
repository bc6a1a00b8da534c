"""`make_sample_archive DIR`: write a realistic sample 7DT data root (argument parsing only)."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from rawdata.sample import generate_archive
from survey.management.commands._options import iso_date


class Command(BaseCommand):
    help = "Generate a sample 7DT archive in the real layout (TCSpy and NINA-era nights, ToO, calibrations, hashes)."

    def add_arguments(self, parser):
        parser.add_argument("directory", help="Data root to create (must not exist or be empty).")
        parser.add_argument("--units", type=int, default=3, help="Units 7DT01..7DTnn (1-16).")
        parser.add_argument("--nights", type=int, default=3, help="TCSpy-era nights.")
        parser.add_argument("--frames-per-night", type=int, default=12, help="Science frames per unit and night.")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--start-night", type=iso_date, default=None, help="First TCSpy night (default 2025-06-30).")
        parser.add_argument("--shape", default="16x24", help="Data array NAXIS2xNAXIS1 (tiny by default).")
        parser.add_argument("--full-size", action="store_true", help="Real 9576x6388 frames (~122 MB each).")
        parser.add_argument("--no-nina", action="store_true", help="Leave out the NINA-era night.")
        parser.add_argument("--no-too", action="store_true", help="Leave out the ToO folder.")
        parser.add_argument("--no-hash", action="store_true", help="Do not write allfiles.hash.")
        parser.add_argument("--fits-strict", action="store_true", help="Strictly standard headers (no TCSpy quirks).")

    def handle(self, *args, **o):
        root = Path(o["directory"])
        if root.exists() and any(root.iterdir()):
            raise CommandError(f"{root} exists and is not empty")
        try:
            rows, cols = (int(x) for x in o["shape"].lower().split("x"))
        except ValueError as exc:
            raise CommandError("--shape must look like 16x24") from exc
        extra = {"start_night": o["start_night"]} if o["start_night"] else {}
        manifest = generate_archive(
            root, units=o["units"], nights=o["nights"], frames_per_night=o["frames_per_night"], seed=o["seed"],
            data_shape=(rows, cols), full_size=o["full_size"], with_nina_night=not o["no_nina"],
            with_too=not o["no_too"], with_hash=not o["no_hash"], fits_strict=o["fits_strict"], **extra,
        )
        self.stdout.write(f"wrote {len(manifest.files)} frames under {root}")
