"""Argument helpers shared by the thin management commands."""
from __future__ import annotations

import argparse
from datetime import date

from django.conf import settings


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def unit_name(text: str) -> str:
    from rawdata.folders import parse_unit_dir

    unit = parse_unit_dir(text.upper())
    if unit is None:
        raise argparse.ArgumentTypeError(f"not a unit name like 7DT01: {text!r}")
    return unit


def add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root", "--base-path", dest="data_root", default=None,
        help="Folder holding 7DT01..7DT20 (default: GWPORTAL_DATA_ROOT).",
    )


def resolve_data_root(value: str | None) -> str:
    from django.core.management.base import CommandError

    root = value or settings.GWPORTAL["DATA_ROOT"]
    if not root:
        raise CommandError("No data root: pass --data-root or set GWPORTAL_DATA_ROOT.")
    return root
