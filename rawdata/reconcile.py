"""Catalogue vs file system, one night folder at a time; sequence gaps; folder-name validation.

Framework-free: the caller hands over what the database says about a folder (plain tuples) and this
module lists the folder and classifies every difference. It never imports Django, so the rules can be
tested without a database and reused by any front end.

Every frame file on disk ends in exactly one class, in this order of precedence:

``failed``            an unresolved error problem was recorded for exactly this file version (same size
                      and mtime): the last read failed (reason code from the ingest), or the file changed
                      since it failed (``changed_since_failure``: a re-ingest will read it again);
``changed``           catalogued, but size or mtime differ from the catalogue (or it was marked gone and
                      is back: ``reappeared``);
``checksum_mismatch`` catalogued with ``checksum == 'mismatch'`` against ``allfiles.hash`` (or, when the
                      caller re-hashes, the SHA-256 differs now);
``excluded``          catalogued but excluded by a rule (the rule id is the reason): not missing;
ok                    catalogued and unchanged (counted, never listed);
``not_ingested``      on disk, no catalogue row, no problem.

Names the catalogue knows but the disk no longer shows are ``vanished`` (``unmarked`` while the
catalogue still says present, ``marked`` once an ingest recorded the absence, ``failed_file_gone`` for a
problem whose file was deleted). ``sequence_gap`` counts frame numbers that never arrived; see
:func:`find_sequence_gaps` for the rule.

Speed (the SPEC asks for 1 M files in <= 10 s): one ``scandir`` per folder, names and ``stat`` results
kept as plain tuples in dicts, catalogue rows read by position (plain cursor tuples are accepted),
dictionary look-ups instead of per-file queries, one anchored regular expression per name for the
sequence analysis, and :func:`list_many` so that a process pool can do the listing and the parsing.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from rawdata.folders import group_by_date, is_standard_unit_dir, parse_folder_name, parse_unit_dir, preferred_folder
from rawdata.scan import HASH_FILE, is_frame_name, is_rsync_temporary

__all__ = [
    "CHANGED",
    "EXCLUDED",
    "FAILED",
    "GAP",
    "ISSUE_KINDS",
    "KINDS",
    "MISMATCH",
    "NOT_INGESTED",
    "VANISHED",
    "CHECKSUM_PROBLEM",
    "CatalogRow",
    "DiskListing",
    "Finding",
    "FolderDiff",
    "FolderVerdict",
    "ProblemRow",
    "compare_folder",
    "count_frame_files",
    "find_sequence_gaps",
    "list_frames",
    "list_many",
    "make_rehash",
    "tcspy_sequence_key",
    "validate_tree",
]

NOT_INGESTED = "not_ingested"
EXCLUDED = "excluded"
FAILED = "failed"
VANISHED = "vanished"
CHANGED = "changed"
MISMATCH = "checksum_mismatch"
GAP = "sequence_gap"
#: Every class, in report order.
KINDS = (NOT_INGESTED, EXCLUDED, FAILED, VANISHED, CHANGED, MISMATCH, GAP)
#: Classes that make the archive inconsistent (``excluded`` is a decision, not a fault).
ISSUE_KINDS = (NOT_INGESTED, FAILED, VANISHED, CHANGED, MISMATCH, GAP)
CHECKSUM_PROBLEM = "checksum_mismatch"  # the ingest's reason code for a catalogued file with a bad hash


class CatalogRow(NamedTuple):
    """What the catalogue holds for one file of the folder (a Frame row). :func:`compare_folder` reads
    rows by position, so a plain tuple in this order (straight from a database cursor) works too."""

    size: int
    mtime_ns: int
    present: bool
    excluded_by: str
    checksum: str


class ProblemRow(NamedTuple):
    """An unresolved error-severity problem recorded for one file of the folder."""

    reason: str
    size: int | None
    mtime_ns: int | None
    detail: str = ""


@dataclass(frozen=True)
class Finding:
    """One difference. ``count`` > 1 only for a gap spanning several frame numbers.

    ``reingest`` is True when ingesting the folder again changes the catalogue for this file (a new or
    changed file is read, a vanished file is marked gone): such folders are flagged for reprocessing.
    """

    kind: str
    name: str
    reason: str = ""
    detail: str = ""
    reingest: bool = False
    count: int = 1

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "name": self.name}
        if self.reason:
            out["reason"] = self.reason
        if self.detail:
            out["detail"] = self.detail
        if self.reingest:
            out["reingest"] = True
        if self.count != 1:
            out["count"] = self.count
        return out


@dataclass
class DiskListing:
    """One ``scandir`` of a night folder: frame name -> (size, mtime_ns), plus what else was there."""

    files: dict[str, tuple[int, int]] = field(default_factory=dict)
    temporaries: int = 0
    has_hash: bool = False
    gaps: list[Finding] | None = None  # sequence gaps of the disk names, when a listing process computed them


@dataclass
class FolderDiff:
    """The comparison of one folder. The four row-based counts are what ``--quick-folders`` also computes.

    ``catalogued``/``excluded_rows``: Frame rows the catalogue believes present (excluded or not);
    ``failed_rows``: unresolved error problems for names without a Frame row. ``known`` is their sum,
    which must equal ``on_disk`` for a consistent folder.
    """

    path: str
    unit: str = ""
    name: str = ""
    date: date | None = None
    exists: bool = True
    on_disk: int = 0
    catalogued: int = 0
    excluded_rows: int = 0
    failed_rows: int = 0
    ok: int = 0
    temporaries: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def known(self) -> int:
        return self.catalogued + self.excluded_rows + self.failed_rows

    def counts(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for f in self.findings:
            out[f.kind] += f.count
        return out

    @property
    def issues(self) -> int:
        return sum(f.count for f in self.findings if f.kind in ISSUE_KINDS)

    @property
    def needs_reprocess(self) -> bool:
        return any(f.reingest for f in self.findings)

    def excluded_by_rule(self) -> Counter[str]:
        return Counter(f.reason for f in self.findings if f.kind == EXCLUDED)


# ------------------------------------------------------------------------------------------ disk


def list_frames(path: str | os.PathLike[str]) -> DiskListing | None:
    """Frame files of a folder with size and mtime (one ``scandir``); None if the folder is gone.

    Same selection as :func:`rawdata.scan.list_folder` (what the ingest reads), but into plain tuples:
    a frozen dataclass per file costs about a second per million files.
    """
    listing = DiskListing()
    files = listing.files
    try:
        it = os.scandir(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    with it:
        for entry in it:
            name = entry.name
            if is_frame_name(name):
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # vanished between listing and stat
                files[name] = (st.st_size, st.st_mtime_ns)
            elif name == HASH_FILE:
                listing.has_hash = True
            elif is_rsync_temporary(name):
                listing.temporaries += 1
    return listing


def list_many(paths: Iterable[str | None], with_gaps: bool = False) -> list[DiskListing | None]:
    """:func:`list_frames` for several folders (None = not on disk): one task of a listing process pool.

    ``with_gaps`` also runs :func:`find_sequence_gaps` over the disk names there, so the parsing of every
    name happens in the pool; :func:`compare_folder` uses that result whenever the catalogue adds no name.
    """
    out = []
    for path in paths:
        listing = list_frames(path) if path is not None else None
        if listing is not None and with_gaps:
            listing.gaps = find_sequence_gaps(listing.files)
        out.append(listing)
    return out


def count_frame_files(path: str | os.PathLike[str]) -> int | None:
    """Number of frame files in a folder without any ``stat`` (the quick mode); None if it is gone."""
    try:
        it = os.scandir(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    n = 0
    with it:
        for entry in it:
            name = entry.name
            if is_frame_name(name) and entry.is_file(follow_symlinks=False):
                n += 1
    return n


# ------------------------------------------------------------------------------------------ compare


def compare_folder(
    diff: FolderDiff,
    listing: DiskListing | None,
    rows: Mapping[str, CatalogRow],
    problems: Mapping[str, ProblemRow],
    *,
    rehash: Callable[[str], bool | None] | None = None,
    gaps: bool = True,
) -> FolderDiff:
    """Fill ``diff`` with the classification of every file of one folder and return it.

    ``rehash(name)`` (optional, ``--verify-checksums``) hashes a catalogued file now: True/False when it
    matches/differs from ``allfiles.hash``, None when the hash file has no entry (see :func:`make_rehash`).
    """
    files = listing.files if listing is not None else {}
    diff.exists = listing is not None
    diff.on_disk = len(files)
    diff.temporaries = listing.temporaries if listing is not None else 0
    out = diff.findings
    ok = 0
    # Rows are read by position: the caller may pass plain (size, mtime_ns, present, excluded_by,
    # checksum) tuples straight from a database cursor (a CatalogRow per row costs ~0.3 s per million).
    for row in rows.values():
        if row[2]:
            if row[3]:
                diff.excluded_rows += 1
            else:
                diff.catalogued += 1
    diff.failed_rows = sum(1 for name in problems if name not in rows)

    for name, (size, mtime) in files.items():
        problem = problems.get(name) if problems else None
        row = rows.get(name)
        if problem is not None and not (row is not None and problem.reason == CHECKSUM_PROBLEM):
            if problem.size == size and problem.mtime_ns == mtime:
                out.append(Finding(FAILED, name, problem.reason, problem.detail))
                continue
            if row is None:
                out.append(Finding(FAILED, name, "changed_since_failure",
                                   f"last failure {problem.reason}; the file changed since, a re-ingest reads it again",
                                   reingest=True))
                continue
        if row is None:
            out.append(Finding(NOT_INGESTED, name, reingest=True))
            continue
        if row[0] != size or row[1] != mtime:
            out.append(Finding(CHANGED, name, "size_mtime", _change_detail(row, size, mtime), reingest=True))
            continue
        if not row[2]:
            out.append(Finding(CHANGED, name, "reappeared", "catalogued as gone from disk, but it is back", reingest=True))
            continue
        if row[4] == "mismatch":
            out.append(Finding(MISMATCH, name, "catalogue", "SHA-256 differed from allfiles.hash when ingested"))
            continue
        if rehash is not None:
            if rehash(name) is False:
                out.append(Finding(MISMATCH, name, "rehash", "SHA-256 differs from allfiles.hash now"))
                continue
        if row[3]:
            out.append(Finding(EXCLUDED, name, row[3]))
            continue
        ok += 1
    diff.ok = ok

    for name, row in rows.items():
        if name not in files:
            if row[2]:
                # An ingest records the absence, if it can still visit the folder.
                out.append(Finding(VANISHED, name, "unmarked", "catalogued as present, gone from disk",
                                   reingest=listing is not None))
            else:
                out.append(Finding(VANISHED, name, "marked", "gone from disk (already recorded)"))
    for name, problem in problems.items():
        if name not in files and name not in rows:
            out.append(Finding(VANISHED, name, "failed_file_gone", f"unresolved problem {problem.reason}; the file is gone"))

    if gaps:
        ignore = {name for name, row in rows.items() if row[3]}
        precomputed = listing.gaps if listing is not None else None
        if precomputed is not None and not ignore and files.keys() >= rows.keys() and files.keys() >= problems.keys():
            out.extend(precomputed)  # the catalogue knows no other name: the disk names decide
        else:
            known = set(files)
            known.update(rows)
            known.update(problems)
            known.difference_update(ignore)
            out.extend(find_sequence_gaps(known))
    out.sort(key=_finding_order)
    return diff


_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}


def _finding_order(f: Finding) -> tuple[int, str]:
    return _KIND_ORDER.get(f.kind, len(KINDS)), f.name


def _change_detail(row: tuple, size: int, mtime: int) -> str:
    parts = []
    if row[0] != size:
        parts.append(f"size {row[0]} -> {size}")
    if row[1] != mtime:
        parts.append(f"mtime moved {(mtime - row[1]) / 1e9:+.3f} s")
    return ", ".join(parts)


def make_rehash(folder: str, hashes: Mapping[str, str], sha256: Callable[[str], str]) -> Callable[[str], bool | None]:
    """A ``rehash`` callback for :func:`compare_folder`: True/False = matches/differs, None = no entry."""

    def rehash(name: str) -> bool | None:
        expected = hashes.get(name)
        if expected is None:
            return None
        try:
            return sha256(os.path.join(folder, name)) == expected
        except OSError:
            return False

    return rehash


# ------------------------------------------------------------------------------------------ gaps


_TCSPY_RE = re.compile(
    r"(7DT\d{2})_(\d{8})_(\d{6})_(.+_[^_]+_\d{1,2}x\d{1,2})_\d+(?:\.\d+)?s_(\d{4,})\.fits(?:\.fz)?", re.ASCII
)


def tcspy_sequence_key(name: str) -> tuple[str, str, int] | None:
    """``7DT01_20250701_012345_T01234_m425_1x1_100.0s_0003.fits`` -> ('7DT01_T01234_m425_1x1',
    '20250701012345', 3): the run stem (unit, OBJECT, FILTER, binning), the UTC stamp, FRAMENUM.
    None for anything that is not a TCSpy name. One anchored regular expression: this runs once per file.
    """
    m = _TCSPY_RE.fullmatch(name)
    if m is None:
        return None
    unit, day, hms, stem, seq = m.groups()
    return f"{unit}_{stem}", day + hms, int(seq)


def _pattern(stem: str, first: int, last: int) -> str:
    unit, _, rest = stem.partition("_")
    seq = f"{first:04d}" if first == last else f"{first:04d}..{last:04d}"
    return f"{unit}_*_{rest}_*_{seq}.fits"


def find_sequence_gaps(names: Iterable[str]) -> list[Finding]:
    """Frame numbers that never arrived, from the names of one unit's night folder.

    Rule (TCSpy names only). TCSpy's FRAMENUM counts the frames of one exposure request from ``0000``
    and restarts with the next request, so frames are grouped by name stem (unit, OBJECT, FILTER,
    binning; not exposure time, which changes within a twilight-flat series) and ordered by the UTC
    time in the name. A number lower than the previous one starts a new run. Within a run, a jump
    (3 -> 5) is a gap; a run that starts above ``0000`` lacks its first frames. A repeated number is not
    a gap. Frames missing at the end of a run cannot be seen (the planned count is not in the name).
    NINA-era names are skipped: NINA's counters span targets and filters and would give false gaps.
    Callers pass every name they know (on disk, catalogued, failed) minus rule-excluded frames (focus
    runs and filter checks number their frames their own way), so a gap is never a file that merely
    vanished after it was catalogued.
    """
    groups: dict[str, list[tuple[str, int, str]]] = {}
    match = _TCSPY_RE.fullmatch
    for name in names:
        m = match(name)
        if m is not None:
            unit, day, hms, stem, seq = m.groups()
            groups.setdefault(f"{unit}_{stem}", []).append((day + hms, int(seq), name))
    out: list[Finding] = []
    for stem, items in groups.items():
        items.sort()
        prev_seq = -1
        prev_name = ""
        for _stamp, seq, name in items:
            if seq < prev_seq or prev_seq < 0:
                if seq > 0:
                    out.append(Finding(GAP, _pattern(stem, 0, seq - 1), "run_start",
                                       f"run starts at {seq:04d} ({name})", count=seq))
            elif seq > prev_seq + 1:
                out.append(Finding(GAP, _pattern(stem, prev_seq + 1, seq - 1), "inside_run",
                                   f"between {prev_name} and {name}", count=seq - prev_seq - 1))
            prev_seq, prev_name = seq, name
    out.sort(key=lambda f: f.name)
    return out


# ------------------------------------------------------------------------------------------ names


@dataclass(frozen=True)
class FolderVerdict:
    """The validation of one unit folder (``folder`` empty) or night folder.

    ``status``: ``ok``; ``notice`` (conforming but worth knowing: test or calibration folder, several
    folders for one date, unusual gain, an entry the ingest ignores); ``invalid`` (breaks the naming
    convention: fix the name or the ingest may skip or misfile it).
    """

    unit_dir: str
    folder: str
    status: str
    messages: tuple[str, ...] = ()
    date: date | None = None
    kind: str = ""

    @property
    def relpath(self) -> str:
        return f"{self.unit_dir}/{self.folder}" if self.folder else self.unit_dir


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def validate_tree(root: str | os.PathLike[str], *, today: date | None = None) -> list[FolderVerdict]:
    """Check unit and night-folder names under a data root against the 7DT conventions.

    Unit folders must be spelled ``7DTnn`` (``7DT-nn`` is read but reported); night folders
    ``YYYY-MM-DD[_suffix...]`` with known whole-token suffixes (:mod:`rawdata.folders`), a real date
    between the survey start and ``today``; month ``00`` and ``test`` folders are test data; several
    folders for one date are reported with the one the pipeline prefers. Names starting with ``.`` or
    ``_`` are skipped, as every 7DT tool skips them. Raises FileNotFoundError if the root is missing.
    """
    out: list[FolderVerdict] = []
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    units_seen: dict[str, list[str]] = {}
    unit_entries = []
    for entry in entries:
        if _hidden(entry.name):
            continue
        unit = parse_unit_dir(entry.name)
        is_dir = entry.is_dir(follow_symlinks=True)
        if unit is None or not is_dir:
            what = "a file" if not is_dir else "a folder"
            out.append(FolderVerdict(entry.name, "", "notice", (f"{what} that is not a unit folder (7DTnn): ignored",)))
            continue
        units_seen.setdefault(unit, []).append(entry.name)
        unit_entries.append((unit, entry))
    for unit, entry in unit_entries:
        messages: list[str] = []
        status = "ok"
        if not is_standard_unit_dir(entry.name):
            status = "invalid"
            messages.append(f"non-standard unit folder name: use {unit}")
        others = [n for n in units_seen[unit] if n != entry.name]
        if others:
            status = "invalid"
            messages.append(f"unit {unit} also present as {', '.join(others)}")
        if entry.is_symlink():
            status = "invalid" if status == "invalid" else "notice"
            messages.append("a symbolic link: the ingest does not follow it")
        out.append(FolderVerdict(entry.name, "", status, tuple(messages)))
        out.extend(_validate_unit(entry.path, entry.name, today))
    return out


def _validate_unit(path: str, unit_dir: str, today: date | None) -> list[FolderVerdict]:
    verdicts: dict[str, FolderVerdict] = {}
    infos = []
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        return [FolderVerdict(unit_dir, "", "invalid", (f"cannot list the unit folder: {exc.strerror}",))]
    for entry in entries:
        name = entry.name
        if _hidden(name):
            continue
        if not entry.is_dir(follow_symlinks=True):
            verdicts[name] = FolderVerdict(unit_dir, name, "notice", ("a file in the unit folder, not a night folder: ignored",))
            continue
        info = parse_folder_name(name, today=today)
        if info is None:
            verdicts[name] = FolderVerdict(unit_dir, name, "invalid", ("not a night folder name (YYYY-MM-DD[_suffix])",))
            continue
        messages = list(info.problems)
        if not info.valid:
            status = "invalid"
        elif info.is_test:
            status = "notice"
            messages.append("test folder: not ingested by default")
        elif info.kind == "calibration":
            status = "notice"
            messages.append("calibration-only folder")
        else:
            status = "notice" if messages else "ok"
        if entry.is_symlink():
            status = "invalid" if status == "invalid" else "notice"
            messages.append("a symbolic link: the ingest does not follow it")
        verdicts[name] = FolderVerdict(unit_dir, name, status, tuple(messages), info.date, info.kind)
        infos.append(info)
    for day, group in group_by_date(i for i in infos if not i.is_test).items():
        if len(group) < 2:
            continue
        best = preferred_folder(group).name
        for info in group:
            v = verdicts[info.name]
            note = f"one of {len(group)} folders for {day.isoformat()} (preferred: {best})"
            verdicts[info.name] = FolderVerdict(
                v.unit_dir, v.folder, "invalid" if v.status == "invalid" else "notice", (*v.messages, note), v.date, v.kind
            )
    return list(verdicts.values())
