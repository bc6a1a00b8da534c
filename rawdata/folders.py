"""Unit and night-folder names -> unit, date and suffix tags.

Night folders are ``YYYY-MM-DD[_suffix...]`` one level below a unit folder. Real suffixes seen over the
years: ``gain2750`` (current), ``gain0``, ``1x1``..``4x4``, ``ToO`` (either side of the gain),
``flat``/``dark``/``bias``/``morning_dark``/``morning_flat`` and ``test``/``eng``/``engineering``.
Tokens are matched whole (the original matched known tokens as substrings, so anything containing
"gain0" passed) and every oddity becomes a readable problem instead of a silent skip.

A folder with an unknown token is reported (``valid`` False) but stays ``kind='night'``: its frames
are real data that callers may still ingest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

__all__ = [
    "KNOWN_GAINS",
    "SURVEY_START",
    "FolderInfo",
    "group_by_date",
    "is_standard_unit_dir",
    "parse_folder_name",
    "parse_unit_dir",
    "preferred_folder",
]

SURVEY_START = date(2023, 10, 9)
KNOWN_GAINS = frozenset({0, 1000, 1500, 2000, 2750})
KNOWN_BINNINGS = frozenset({1, 2, 3, 4})
PREFERRED_GAIN = 2750

_UNIT_RE = re.compile(r"7DT(\d{2})", re.ASCII)
_UNIT_HYPHEN_RE = re.compile(r"7DT-(\d{2})", re.ASCII)
_FOLDER_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:_(.*))?", re.ASCII | re.DOTALL)
_GAIN_RE = re.compile(r"gain(\d{1,6})", re.ASCII | re.IGNORECASE)
_BIN_RE = re.compile(r"(\d{1,2})x(\d{1,2})", re.ASCII)

_CALIBRATION_TOKENS = frozenset({"flat", "dark", "bias"})
_TEST_TOKENS = frozenset({"test", "eng", "engineering"})


def parse_unit_dir(name: str) -> str | None:
    """'7DT01' -> '7DT01'; '7DT-01' (the README's spelling, report it) -> '7DT01'; else None."""
    m = _UNIT_RE.fullmatch(name) or _UNIT_HYPHEN_RE.fullmatch(name)
    return f"7DT{m.group(1)}" if m else None


def is_standard_unit_dir(name: str) -> bool:
    """True only for the canonical spelling ``7DTnn``."""
    return _UNIT_RE.fullmatch(name) is not None


@dataclass(frozen=True)
class FolderInfo:
    """What a night-folder name says. ``date`` is None when the written date is impossible."""

    name: str
    date: date | None
    tags: tuple[str, ...]
    gain: int | None
    binning: int | None
    is_too: bool
    kind: str  # 'night' | 'calibration' | 'test'
    is_test: bool
    valid: bool
    problems: tuple[str, ...]


def _real_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def parse_folder_name(name: str, *, today: date | None = None) -> FolderInfo | None:
    """Parse a night-folder name; None if it is not ``YYYY-MM-DD[_suffix...]`` at all.

    Pass ``today`` to have dates in the future reported.
    """
    m = _FOLDER_RE.fullmatch(name)
    if not m:
        return None
    year, month, day = (int(g) for g in m.group(1, 2, 3))
    suffix = m.group(4)
    tags = tuple(suffix.split("_")) if suffix is not None else ()

    problems: list[str] = []
    invalid = False  # a problem that makes the name non-conforming (vs. merely notable)
    is_test = "test" in name.lower()
    is_calibration = False
    is_too = False
    gains: list[int] = []
    binnings: list[int] = []

    the_date = _real_date(year, month, day)
    if month == 0:
        is_test = True
        problems.append("month 00 marks test data")
    elif the_date is None:
        invalid = True
        problems.append("impossible date")
    elif the_date < SURVEY_START:
        invalid = True
        problems.append(f"date before survey start {SURVEY_START.isoformat()}")
    elif today is not None and the_date > today:
        invalid = True
        problems.append("date in the future")

    for i, tag in enumerate(tags):
        low = tag.lower()
        gain_m = _GAIN_RE.fullmatch(tag)
        bin_m = _BIN_RE.fullmatch(tag)
        if not tag:
            invalid = True
            problems.append("empty suffix token")
        elif gain_m:
            gains.append(int(gain_m.group(1)))
        elif bin_m:
            bx, by = int(bin_m.group(1)), int(bin_m.group(2))
            if bx != by or bx not in KNOWN_BINNINGS:
                problems.append(f"unusual binning: {tag}")
            binnings.append(bx)
        elif low == "too":
            is_too = True
        elif low in _CALIBRATION_TOKENS:
            is_calibration = True
        elif low == "morning" and i + 1 < len(tags) and tags[i + 1].lower() in _CALIBRATION_TOKENS:
            is_calibration = True
        elif low in _TEST_TOKENS or "test" in low:
            is_test = True
        else:
            invalid = True
            problems.append(f"unknown suffix token: {tag}")

    for label, values in (("gain", gains), ("binning", binnings)):
        if len(set(values)) > 1:
            invalid = True
            problems.append(f"conflicting {label} tokens")
    gain = gains[0] if gains else None
    if gain is not None and gain not in KNOWN_GAINS:
        problems.append(f"unusual gain: {gain}")

    kind = "test" if is_test else "calibration" if is_calibration else "night"
    return FolderInfo(
        name=name,
        date=the_date,
        tags=tags,
        gain=gain,
        binning=binnings[0] if binnings else None,
        is_too=is_too,
        kind=kind,
        is_test=is_test,
        valid=not invalid,
        problems=tuple(problems),
    )


def group_by_date(folder_names: Iterable[str | FolderInfo]) -> dict[date, list[FolderInfo]]:
    """Group folder names by their date (ascending; each list sorted by name).

    Names that are not night folders, and folders without a real date (``2023-00-00``), are left
    out; test and calibration folders are kept, callers decide what to do with them.
    """
    groups: dict[date, list[FolderInfo]] = {}
    for item in folder_names:
        info = item if isinstance(item, FolderInfo) else parse_folder_name(item)
        if info is not None and info.date is not None:
            groups.setdefault(info.date, []).append(info)
    return {d: sorted(groups[d], key=lambda f: f.name) for d in sorted(groups)}


def _preference(info: FolderInfo) -> tuple[bool, bool, bool, bool, bool, bool, int, str]:
    return (
        info.is_test,
        info.kind != "night",
        info.is_too,
        info.gain != PREFERRED_GAIN,
        info.binning not in (None, 1),
        not info.valid,
        len(info.tags),
        info.name,
    )


def preferred_folder(infos: Iterable[FolderInfo]) -> FolderInfo:
    """The folder that represents a night: non-test, non-ToO, gain 2750, 1x1 (as the pipeline prefers).

    Ties go to the plainest name, then alphabetical order, so the choice is deterministic.
    Raises ValueError on an empty input.
    """
    candidates = list(infos)
    if not candidates:
        raise ValueError("preferred_folder() needs at least one folder")
    return min(candidates, key=_preference)
