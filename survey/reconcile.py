"""Reconciliation, the Django side: which folders, what the catalogue says, the saved report, reprocessing.

The per-file rules live in :mod:`rawdata.reconcile`; this module feeds them with the catalogue's rows,
one query per batch of folders (``values_list``, never ORM objects, never one query per file), saves
every analysis as a :class:`~survey.models.MissingReport` (what the portal shows and what
``reprocess_nights`` acts on) and always writes a report file ``missing_files_analysis_<stamp>.log``
in ``GWPORTAL['LOG_DIR']``.
"""
from __future__ import annotations

import csv
import gc
import io
import itertools
import json
import logging
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from rawdata.checksums import read_hash_file, sha256_file
from rawdata.folders import parse_folder_name, parse_unit_dir
from rawdata.reconcile import (
    CHECKSUM_PROBLEM,
    EXCLUDED,
    FAILED,
    ISSUE_KINDS,
    KINDS,
    DiskListing,
    FolderDiff,
    FolderVerdict,
    ProblemRow,
    compare_folder,
    count_frame_files,
    list_frames,
    list_many,
    make_rehash,
    validate_tree,
)
from rawdata.scan import HASH_FILE, iter_night_folders
from survey.models import FileProblem, Frame, MissingReport, NightFolder

log = logging.getLogger(__name__)

EXIT_CLEAN, EXIT_ISSUES, EXIT_FATAL = 0, 1, 2
BATCH_FOLDERS = 200  # folders per catalogue query: ~100-200 k rows, a few tens of MB of tuples
PARALLEL_MIN_FOLDERS = 50  # below this, listing in this process is faster than starting a pool
LIST_CHUNK = 10  # folders per listing task
DETAIL_LIMIT = 500  # findings per folder kept in MissingReport.details (the report file has all)
QUICK_KINDS = ("unaccounted_on_disk", "missing_from_disk", "recorded_gone", "failed", "checksum_mismatch")
DETAIL_BUDGET = 20_000  # findings kept in MissingReport.details in all: the row stays a few MB at most
LABELS = {
    "not_ingested": "on disk, never ingested",
    "excluded": "excluded by rule (not missing)",
    "failed": "failed (recorded problem)",
    "vanished": "in the database, gone from disk",
    "changed": "changed since ingest",
    "checksum_mismatch": "checksum mismatch (allfiles.hash)",
    "sequence_gap": "sequence gaps (frames never arrived)",
    "unaccounted_on_disk": "more files on disk than catalogued",
    "missing_from_disk": "more catalogued than on disk",
    "recorded_gone": "recorded as gone from disk",
}
SHORT = {
    "difference": "diff", "failed_rows": "failed", "recorded_gone": "gone",
    "not_ingested": "new", "excluded": "excl", "failed": "failed", "vanished": "gone",
    "changed": "changed", "checksum_mismatch": "sha256", "sequence_gap": "gaps",
}  # fmt: skip


class ReconcileError(Exception):
    """A fatal problem (no data root, nothing to compare): the commands exit with 2."""


# ------------------------------------------------------------------------------------------ options


@dataclass
class CheckOptions:
    """What to compare. ``folder_paths`` overrides the date/unit selection (the re-check after reprocessing)."""

    data_root: str
    start_date: date | None = None
    end_date: date | None = None
    dates: list[date] | None = None
    units: list[str] | None = None
    folder_paths: list[str] | None = None
    quick: bool = False
    verify_checksums: bool = False
    include_test: bool = False
    gaps: bool = True
    workers: int = 0  # listing processes: 0 = automatic (a pool for large checks), 1 = this process only
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FolderSel:
    """One folder to compare: on disk, in the catalogue, or both."""

    path: str
    unit: str
    name: str
    date: date | None
    folder_id: int | None
    on_disk: bool


@dataclass
class QuickFolder:
    """``--quick-folders``: counts only; files on disk (no stat) against catalogued + excluded + failed rows.

    ``failed_rows`` (problems of names without a Frame row) is part of ``known``; ``failed`` counts every
    unresolved error problem except checksum mismatches (those are ``mismatches``), ``gone_rows`` the rows
    an ingest already recorded as gone from disk.
    """

    path: str
    unit: str
    name: str
    date: date | None
    exists: bool = True
    on_disk: int = 0
    catalogued: int = 0
    excluded_rows: int = 0
    failed_rows: int = 0
    failed: int = 0
    gone_rows: int = 0
    mismatches: int = 0

    @property
    def known(self) -> int:
        return self.catalogued + self.excluded_rows + self.failed_rows

    @property
    def difference(self) -> int:
        return self.on_disk - self.known

    @property
    def flagged(self) -> bool:
        return self.exists and self.on_disk != self.known

    @property
    def issues(self) -> int:
        return abs(self.difference) + self.gone_rows + self.failed + self.mismatches


@dataclass
class Analysis:
    """The result of one check, full or quick."""

    mode: str
    data_root: str
    started_at: datetime
    duration_s: float
    folders: list[Any]  # FolderDiff (full) or QuickFolder (quick)
    options: CheckOptions

    @property
    def full(self) -> bool:
        return self.mode == "full"

    def totals(self) -> Counter[str]:
        out: Counter[str] = Counter()
        if self.full:
            for d in self.folders:
                out.update(d.counts())
        else:
            for q in self.folders:
                out["unaccounted_on_disk"] += max(q.difference, 0)
                out["missing_from_disk"] += max(-q.difference, 0)
                out["recorded_gone"] += q.gone_rows
                out["failed"] += q.failed
                out["checksum_mismatch"] += q.mismatches
        return out

    @property
    def issues(self) -> int:
        return sum(d.issues for d in self.folders)

    @property
    def clean(self) -> bool:
        return self.issues == 0

    @property
    def exit_code(self) -> int:
        return EXIT_CLEAN if self.clean else EXIT_ISSUES

    def flagged(self) -> list[str]:
        """Folders a re-ingest would change: the input of ``reprocess_nights``."""
        if self.full:
            return [d.path for d in self.folders if d.needs_reprocess]
        return [q.path for q in self.folders if q.flagged]

    def with_issues(self) -> list[Any]:
        return [d for d in self.folders if d.issues]

    def by_date(self) -> dict[str, dict[str, int]]:
        """Per-date statistics (the folder date, i.e. the night)."""
        table: dict[str, Counter[str]] = {}
        for d in self.folders:
            row = table.setdefault(d.date.isoformat() if d.date else "unknown", Counter())
            row["folders"] += 1
            row["on_disk"] += d.on_disk
            row["catalogued"] += d.catalogued
            row["excluded_rows"] += d.excluded_rows
            row["failed_rows"] += d.failed_rows
            if self.full:
                row.update(d.counts())
            else:
                row["difference"] += d.difference
                row["recorded_gone"] += d.gone_rows
                row["failed"] += d.failed
                row["checksum_mismatch"] += d.mismatches
            row["issues"] += d.issues
        return {k: dict(table[k]) for k in sorted(table)}

    def summary(self) -> dict[str, Any]:
        totals = self.totals()
        out: dict[str, Any] = {
            "mode": self.mode,
            "data_root": self.data_root,
            "started_at": self.started_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "folders": len(self.folders),
            "folders_with_issues": len(self.with_issues()),
            "folders_flagged": len(self.flagged()),
            "files_on_disk": sum(d.on_disk for d in self.folders),
            "catalogued": sum(d.catalogued for d in self.folders),
            "excluded_rows": sum(d.excluded_rows for d in self.folders),
            "failed_rows": sum(d.failed_rows for d in self.folders),
            "counts": {k: totals.get(k, 0) for k in (KINDS if self.full else QUICK_KINDS)},
            "issues": self.issues,
            "clean": self.clean,
            "exit_code": self.exit_code,
            "by_date": self.by_date(),
        }
        if self.full:
            out["ok"] = sum(d.ok for d in self.folders)
            out["excluded_by_rule"] = dict(sorted(_reason_counts(self.folders, EXCLUDED).items()))
            out["failed_by_reason"] = dict(sorted(_reason_counts(self.folders, FAILED).items()))
            out["verify_checksums"] = self.options.verify_checksums
        return out


def _reason_counts(folders: Iterable[FolderDiff], kind: str) -> Counter[str]:
    return Counter(f.reason for d in folders for f in d.findings if f.kind == kind)


# ------------------------------------------------------------------------------------------ selection


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def select_folders(opts: CheckOptions) -> list[FolderSel]:
    """The folders to compare: every night folder on disk in the selection, plus every catalogued one
    under the data root (so a folder deleted from disk still shows its vanished frames)."""
    root = os.path.abspath(opts.data_root)
    if opts.folder_paths is not None:
        return _explicit_folders(opts.folder_paths)
    if not os.path.isdir(root):
        raise ReconcileError(f"data root not found or not a folder: {root}")
    wanted_dates = set(opts.dates) if opts.dates else None
    start, end = opts.start_date, opts.end_date
    if wanted_dates:
        start, end = min(wanted_dates), max(wanted_dates)
    found: dict[str, FolderSel] = {}
    for ref in iter_night_folders(root, units=opts.units, start=start, end=end, include_test=opts.include_test):
        if wanted_dates and ref.info.date not in wanted_dates:
            continue
        found[ref.path] = FolderSel(ref.path, ref.unit, ref.name, ref.info.date, None, True)
    qs = NightFolder.objects.filter(path__startswith=root.rstrip(os.sep) + os.sep)
    if opts.units:
        qs = qs.filter(unit__name__in=[u.upper() for u in opts.units])
    if wanted_dates:
        qs = qs.filter(night__date__in=sorted(wanted_dates))
    else:
        if start:
            qs = qs.filter(night__date__gte=start)
        if end:
            qs = qs.filter(night__date__lte=end)
    if not opts.include_test:
        qs = qs.filter(is_test=False)
    for folder_id, path, name, unit, night in qs.values_list("id", "path", "name", "unit__name", "night__date"):
        sel = found.get(path)
        if sel is not None:
            found[path] = FolderSel(path, sel.unit, sel.name, sel.date, folder_id, True)
        else:
            found[path] = FolderSel(path, unit, name, night, folder_id, os.path.isdir(path))
    return sorted(found.values(), key=lambda s: (s.date or date.min, s.unit, s.name))


def _explicit_folders(paths: Iterable[str]) -> list[FolderSel]:
    abs_paths = list(dict.fromkeys(os.path.abspath(p) for p in paths))
    ids: dict[str, tuple[int, str, date | None]] = {}
    for part in _chunks(abs_paths, 500):
        ids.update((p, (i, u, d)) for i, p, u, d in
                   NightFolder.objects.filter(path__in=part).values_list("id", "path", "unit__name", "night__date"))
    out = []
    for path in abs_paths:
        name = os.path.basename(path)
        info = parse_folder_name(name)
        known = ids.get(path)
        unit = known[1] if known else parse_unit_dir(os.path.basename(os.path.dirname(path))) or ""
        night = known[2] if known else (info.date if info else None)
        if known is None and not os.path.isdir(path):
            log.warning("neither a folder on disk nor a catalogued folder, skipped: %s", path)
            continue
        out.append(FolderSel(path, unit, name, night, known[0] if known else None, os.path.isdir(path)))
    return out


# ------------------------------------------------------------------------------------------ analysis


def analyse(opts: CheckOptions) -> Analysis:
    """Compare catalogue and disk for the selected folders (read-only)."""
    started_at = timezone.now()
    t0 = time.perf_counter()
    sels = select_folders(opts)
    # Millions of short-lived tuples would trigger the cyclic garbage collector again and again
    # (~20 % of the run); nothing here builds reference cycles.
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        folders = _quick(sels) if opts.quick else _full(sels, opts)
    finally:
        if gc_was_on:
            gc.enable()
    duration = time.perf_counter() - t0
    log.info("checked %d folders (%s) in %.2f s", len(sels), "quick" if opts.quick else "full", duration)
    return Analysis("quick" if opts.quick else "full", os.path.abspath(opts.data_root), started_at, duration, folders, opts)


_FRAME_COLUMNS = ("folder_id", "filename", "file_size", "file_mtime_ns", "present", "excluded_by", "checksum")


def _catalogue(ids: list[int]) -> tuple[dict[int, dict[str, tuple]], dict[int, dict[str, ProblemRow]]]:
    """Frame rows and unresolved error problems of a batch of folders: two queries, plain tuples.

    The frame query goes through a plain cursor: ``values_list`` runs Django's per-value converters,
    about 2 s per million rows; the columns here need none (``present`` as 0/1 on SQLite is truthy).
    """
    rows: dict[int, dict[str, tuple]] = {i: {} for i in ids}
    problems: dict[int, dict[str, ProblemRow]] = {}
    if not ids:
        return rows, problems
    opts = Frame._meta
    cols = ", ".join(connection.ops.quote_name(opts.get_field(c).column if c != "folder_id" else "folder_id")
                     for c in _FRAME_COLUMNS)
    sql = (f"SELECT {cols} FROM {connection.ops.quote_name(opts.db_table)} "
           f"WHERE folder_id IN ({', '.join(['%s'] * len(ids))})")
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        for row in cursor.fetchall():
            rows[row[0]][row[1]] = row[2:]
    open_errors = FileProblem.objects.filter(
        folder_id__in=ids, resolved=False, severity=FileProblem.Severity.ERROR
    ).values_list("folder_id", "path", "reason", "file_size", "file_mtime_ns", "detail")
    for folder_id, path, reason, size, mtime, detail in open_errors:
        problems.setdefault(folder_id, {})[path.rpartition("/")[2]] = ProblemRow(reason, size, mtime, detail[:300])
    return rows, problems


def listing_workers(opts: CheckOptions, n_folders: int) -> int:
    """Processes that list folders while this one queries and compares (``stat`` is most of the cost)."""
    if opts.workers:
        return max(1, opts.workers)
    from survey.ingest.executors import default_workers

    return min(2, default_workers()) if n_folders >= PARALLEL_MIN_FOLDERS else 1


def _listings(sels: Sequence[FolderSel], workers: int, gaps: bool) -> Iterator[DiskListing | None]:
    """Folder listings in selection order; with workers > 1 from a spawned pool that stays a bounded
    number of chunks ahead (so a slow database never makes it buffer the whole archive in memory)."""
    paths = [s.path if s.on_disk else None for s in sels]
    if workers <= 1:
        for path in paths:
            yield list_frames(path) if path is not None else None
        return
    chunks = iter(_chunks(paths, LIST_CHUNK))
    try:
        pool = multiprocessing.get_context("spawn").Pool(workers)
    except (AssertionError, OSError) as exc:  # e.g. inside a daemonic worker process: list here instead
        log.warning("no listing pool (%s); listing in this process", exc)
        for path in paths:
            yield list_frames(path) if path is not None else None
        return
    with pool:
        # Two catalogue batches ahead: the pool keeps listing while this process runs a batch's query.
        window = max(4 * workers, 2 * BATCH_FOLDERS // LIST_CHUNK)
        pending = deque(pool.apply_async(list_many, (c, gaps)) for c in itertools.islice(chunks, window))
        while pending:
            done = pending.popleft().get()
            following = next(chunks, None)
            if following is not None:
                pending.append(pool.apply_async(list_many, (following, gaps)))
            yield from done


def _full(sels: list[FolderSel], opts: CheckOptions) -> list[FolderDiff]:
    out: list[FolderDiff] = []
    empty_rows: dict[str, tuple] = {}
    empty_problems: dict[str, ProblemRow] = {}
    listings = _listings(sels, listing_workers(opts, len(sels)), opts.gaps)
    for batch in _chunks(sels, BATCH_FOLDERS):
        rows, problems = _catalogue([s.folder_id for s in batch if s.folder_id])
        for sel in batch:
            listing = next(listings)
            rehash = None
            if opts.verify_checksums and listing is not None and listing.has_hash:
                rehash = make_rehash(sel.path, read_hash_file(os.path.join(sel.path, HASH_FILE)), sha256_file)
            diff = FolderDiff(path=sel.path, unit=sel.unit, name=sel.name, date=sel.date)
            compare_folder(
                diff, listing,
                rows.get(sel.folder_id, empty_rows) if sel.folder_id else empty_rows,
                problems.get(sel.folder_id, empty_problems) if sel.folder_id else empty_problems,
                rehash=rehash, gaps=opts.gaps,
            )
            out.append(diff)
    return out


def _quick(sels: list[FolderSel]) -> list[QuickFolder]:
    out: list[QuickFolder] = []
    for batch in _chunks(sels, BATCH_FOLDERS):
        ids = [s.folder_id for s in batch if s.folder_id]
        frame_counts: dict[int, dict[str, int]] = {}
        problem_counts: dict[int, dict[str, int]] = {}
        if ids:
            present = Q(present=True)
            frame_counts = {
                row["folder_id"]: row
                for row in Frame.objects.filter(folder_id__in=ids).values("folder_id").annotate(
                    cat=Count("id", filter=present & Q(excluded_by="")),
                    exc=Count("id", filter=present & ~Q(excluded_by="")),
                    gone=Count("id", filter=Q(present=False)),
                    mis=Count("id", filter=present & Q(checksum=Frame.Checksum.MISMATCH)),
                )
            }
            problem_counts = {
                row["folder_id"]: row
                for row in FileProblem.objects.filter(
                    folder_id__in=ids, resolved=False, severity=FileProblem.Severity.ERROR
                ).values("folder_id").annotate(
                    rowless=Count("id", filter=~Exists(Frame.objects.filter(path=OuterRef("path")))),
                    failed=Count("id", filter=~Q(reason=CHECKSUM_PROBLEM)),
                )
            }
        for sel in batch:
            n = count_frame_files(sel.path) if sel.on_disk else None
            c = frame_counts.get(sel.folder_id or 0, {})
            p = problem_counts.get(sel.folder_id or 0, {})
            out.append(QuickFolder(
                sel.path, sel.unit, sel.name, sel.date, exists=n is not None, on_disk=n or 0,
                catalogued=c.get("cat", 0), excluded_rows=c.get("exc", 0), failed_rows=p.get("rowless", 0),
                failed=p.get("failed", 0), gone_rows=c.get("gone", 0), mismatches=c.get("mis", 0),
            ))  # fmt: skip
    return out


# ------------------------------------------------------------------------------------------ saving


def _folder_dict(d: Any, full: bool, limit: int | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "path": d.path, "unit": d.unit, "folder": d.name, "date": d.date.isoformat() if d.date else None,
        "exists": d.exists, "on_disk": d.on_disk, "catalogued": d.catalogued, "excluded_rows": d.excluded_rows,
        "failed_rows": d.failed_rows, "known": d.known, "issues": d.issues,
    }  # fmt: skip
    if full:
        row["ok"] = d.ok
        row["temporaries"] = d.temporaries
        row["counts"] = dict(d.counts())
        row["reprocess"] = d.needs_reprocess
        ordered = sorted(d.findings, key=lambda f: f.kind == EXCLUDED)  # issues before rule exclusions
        findings = ordered if limit is None else ordered[: max(limit, 0)]
        row["findings"] = [f.as_dict() for f in findings]
        if len(findings) < len(d.findings):
            row["findings_truncated"] = len(d.findings) - len(findings)
    else:
        row["difference"] = d.difference
        row["failed"] = d.failed
        row["recorded_gone"] = d.gone_rows
        row["checksum_mismatch"] = d.mismatches
        row["reprocess"] = d.flagged
    return row


def analysis_dict(
    analysis: Analysis, *, limit: int | None = None, budget: int | None = None, all_folders: bool = True
) -> dict[str, Any]:
    """JSON-ready form of an analysis: everything for ``--format json``; for MissingReport.details at most
    ``limit`` findings per folder and ``budget`` in all (counts stay exact; the report file lists all)."""
    folders = analysis.folders if all_folders else [d for d in analysis.folders if d.issues or _has_findings(d)]
    rows = []
    for d in folders:
        cap = limit
        if budget is not None:
            cap = budget if cap is None else min(cap, budget)
        row = _folder_dict(d, analysis.full, cap)
        if budget is not None:
            budget -= len(row.get("findings", ()))
        rows.append(row)
    return {"summary": analysis.summary(), "flagged_folders": analysis.flagged(), "folders": rows}


def _has_findings(d: Any) -> bool:
    return bool(getattr(d, "findings", None))


def report_path(prefix: str = "missing_files_analysis") -> Path:
    """``<LOG_DIR>/<prefix>_<YYYYmmdd_HHMMSS>.log``, never overwriting an earlier report."""
    directory = Path(settings.GWPORTAL["LOG_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    path = directory / f"{prefix}_{stamp}.log"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{prefix}_{stamp}_{n}.log"
    return path


def save(analysis: Analysis, *, report_file: str = "", arguments: dict[str, Any] | None = None) -> MissingReport:
    """Store the analysis: the portal reads it, ``reprocess_nights`` acts on its ``flagged_folders``."""
    details = analysis_dict(analysis, limit=DETAIL_LIMIT, budget=DETAIL_BUDGET, all_folders=False)
    return MissingReport.objects.create(
        arguments=arguments if arguments is not None else analysis.options.arguments,
        summary=details["summary"],
        flagged_folders=details["flagged_folders"],
        details={"mode": analysis.mode, "folders": details["folders"], "detail_limit": DETAIL_LIMIT,
                 "detail_budget": DETAIL_BUDGET},
        report_file=report_file,
        clean=analysis.clean,
    )


@dataclass
class CheckResult:
    analysis: Analysis
    report: MissingReport
    report_file: str

    @property
    def exit_code(self) -> int:
        return self.analysis.exit_code


def run_check(opts: CheckOptions, *, arguments: dict[str, Any] | None = None) -> CheckResult:
    """Analyse, write the report file (always) and save the MissingReport row."""
    analysis = analyse(opts)
    path = report_path()
    path.write_text(render_text(analysis, limit=None, report_file=None), encoding="utf-8")
    report = save(analysis, report_file=str(path), arguments=arguments)
    log.info("missing-files report %s: %d issues, %d folders flagged; %s",
             report.pk, analysis.issues, len(report.flagged_folders), path)
    return CheckResult(analysis, report, str(path))


# ------------------------------------------------------------------------------------------ rendering


def render_text(
    analysis: Analysis,
    *,
    summary_only: bool = False,
    by_folders: bool = False,
    limit: int | None = 20,
    report_file: str | None = None,
) -> str:
    """The human report: summary, per-date statistics, folders with differences and their files."""
    s = analysis.summary()
    lines = [
        f"Missing-files analysis ({analysis.mode}) of {analysis.data_root}",
        f"{s['folders']} folders, {s['files_on_disk']} frame files on disk; catalogue: {s['catalogued']} present, "
        f"{s['excluded_rows']} excluded, {s['failed_rows']} failed without a row; {s['duration_s']:.2f} s",
        "",
    ]
    if analysis.full:
        for kind in KINDS:
            n = s["counts"][kind]
            extra = ""
            if kind == EXCLUDED and s["excluded_by_rule"]:
                extra = "  (" + ", ".join(f"{k}: {v}" for k, v in s["excluded_by_rule"].items()) + ")"
            elif kind == FAILED and s["failed_by_reason"]:
                extra = "  (" + ", ".join(f"{k}: {v}" for k, v in s["failed_by_reason"].items()) + ")"
            lines.append(f"  {LABELS[kind]:40} {n:8d}{extra}")
        if analysis.options.verify_checksums:
            lines.append("  (checksums re-computed now against allfiles.hash)")
    else:
        for kind, n in s["counts"].items():
            lines.append(f"  {LABELS.get(kind, kind):40} {n:8d}")
        lines.append("  (counts only: changed files and sequence gaps need the full check)")
    verdict = "CLEAN" if analysis.clean else f"{s['issues']} issues in {s['folders_with_issues']} folders"
    lines += ["", f"Result: {verdict}; {s['folders_flagged']} folders flagged for reprocessing", ""]

    lines.append("Per date:")
    cols = list(KINDS) if analysis.full else ["difference", "recorded_gone", "failed", "checksum_mismatch"]
    head = f"  {'date':10} {'folders':>7} {'on disk':>8} {'catal.':>8} {'excl.':>6} " + " ".join(
        f"{SHORT.get(c, c[:8]):>8}" for c in cols
    )
    lines.append(head)
    for day, row in s["by_date"].items():
        lines.append(
            f"  {day:10} {row['folders']:7d} {row['on_disk']:8d} {row['catalogued']:8d} {row['excluded_rows']:6d} "
            + " ".join(f"{row.get(c, 0):8d}" for c in cols)
        )
    if summary_only:
        return _tail(lines, analysis, report_file)

    rows = [d for d in analysis.folders if by_folders or d.issues]
    if rows and (by_folders or not analysis.full):
        lines += ["", "Per folder:", f"  {'folder':44} {'on disk':>8} {'known':>8} {'diff':>6} {'failed':>6} {'issues':>6}"]
        for d in rows:
            mark = "" if d.exists else "  (folder gone)"
            failed = d.counts().get(FAILED, 0) if analysis.full else d.failed
            lines.append(f"  {d.unit + '/' + d.name:44} {d.on_disk:8d} {d.known:8d} {d.on_disk - d.known:6d} "
                         f"{failed:6d} {d.issues:6d}{mark}")
    if analysis.full:
        lines += _findings_text(analysis.folders, limit)
    flagged = analysis.flagged()
    if flagged:
        lines += ["", "Flagged for reprocessing (python manage.py reprocess_nights):"]
        lines += [f"  {p}" for p in flagged]
    return _tail(lines, analysis, report_file)


def _findings_text(folders: Sequence[FolderDiff], limit: int | None) -> list[str]:
    """Issues file by file; excluded files as counts per rule (their names only in the report file)."""
    lines: list[str] = []
    listed = [d for d in folders if d.issues]
    if listed:
        lines += ["", "Differences by folder:"]
    for d in listed:
        counts = d.counts()
        lines.append(f"  {d.unit}/{d.name}  ({d.path}{'' if d.exists else ', folder gone'}): "
                     + ", ".join(f"{SHORT[k]} {counts[k]}" for k in ISSUE_KINDS if counts.get(k)))
        shown: Counter[str] = Counter()
        for f in d.findings:
            if f.kind == EXCLUDED:
                continue
            shown[f.kind] += 1
            if limit is not None and shown[f.kind] > limit:
                continue
            reason = f" [{f.reason}]" if f.reason else ""
            detail = f" {f.detail}" if f.detail else ""
            lines.append(f"    {f.kind:18} {f.name}{reason}{detail}")
        for kind, n in shown.items():
            if limit is not None and n > limit:
                lines.append(f"    {kind:18} ... {n - limit} more (see the report file)")
    excluded = [d for d in folders if any(f.kind == EXCLUDED for f in d.findings)]
    if excluded:
        lines += ["", "Excluded by rule (catalogued, not missing):"]
    for d in excluded:
        rules = d.excluded_by_rule()
        lines.append(f"  {d.unit}/{d.name}: " + ", ".join(f"{rule} {n}" for rule, n in sorted(rules.items())))
        if limit is None:
            lines += [f"    {f.name} [{f.reason}]" for f in d.findings if f.kind == EXCLUDED]
    return lines


def _tail(lines: list[str], analysis: Analysis, report_file: str | None) -> str:
    if report_file:
        lines += ["", f"Report file: {report_file}"]
    return "\n".join(lines) + "\n"


def render_json(analysis: Analysis) -> str:
    return json.dumps(analysis_dict(analysis), indent=1) + "\n"


def render_csv(analysis: Analysis, *, by_folders: bool = False) -> str:
    """One row per finding (full mode) or per folder (quick mode, ``--by-folders``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if by_folders or not analysis.full:
        cols = ["date", "unit", "folder", "path", "exists", "on_disk", "catalogued", "excluded_rows", "failed_rows",
                "known", "issues"]
        extra = list(KINDS) if analysis.full else ["difference", "recorded_gone", "failed", "checksum_mismatch"]
        writer.writerow(cols + extra)
        for d in analysis.folders:
            row = _folder_dict(d, analysis.full, 0)
            values = [row["date"] or "", d.unit, d.name, d.path, d.exists, d.on_disk, d.catalogued, d.excluded_rows,
                      d.failed_rows, d.known, d.issues]
            values += ([row["counts"].get(k, 0) for k in KINDS] if analysis.full
                       else [d.difference, d.gone_rows, d.failed, d.mismatches])
            writer.writerow(values)
        return buf.getvalue()
    writer.writerow(["date", "unit", "folder", "path", "kind", "name", "reason", "detail", "count", "reprocess"])
    for d in analysis.folders:
        for f in d.findings:
            writer.writerow([d.date.isoformat() if d.date else "", d.unit, d.name, d.path, f.kind, f.name, f.reason,
                             f.detail, f.count, f.reingest])
    return buf.getvalue()


def render(analysis: Analysis, fmt: str, **kw: Any) -> str:
    if fmt == "json":
        return render_json(analysis)
    if fmt == "csv":
        return render_csv(analysis, by_folders=kw.get("by_folders", False))
    return render_text(analysis, **kw)


# ------------------------------------------------------------------------------------------ reprocessing


@dataclass
class ReprocessOptions:
    """Which folders to re-ingest: explicit folders, dates/units, else the latest analysis' flagged folders."""

    data_root: str
    dates: list[date] | None = None
    start_date: date | None = None
    end_date: date | None = None
    units: list[str] | None = None
    folder_paths: list[str] | None = None
    report_id: int | None = None
    force: bool = False
    dry_run: bool = False
    verify_checksums: bool = True
    settle_seconds: float = 3600.0
    workers: int = 0
    parallel: bool | None = None
    executor: str = "local"
    progress: bool = False
    include_test: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReprocessResult:
    exit_code: int
    folders: list[str]
    source: str
    messages: list[str] = field(default_factory=list)
    ingest: Any = None  # survey.ingest.engine.IngestReport
    check: CheckResult | None = None
    report: MissingReport | None = None  # the analysis the folders came from, if any


def plan_reprocess(opts: ReprocessOptions) -> tuple[list[str], str, MissingReport | None, list[str]]:
    """(folder paths, where they came from, source report, messages) without changing anything."""
    messages: list[str] = []
    paths: list[str] = []
    source_parts: list[str] = []
    report = None
    if opts.folder_paths:
        paths.extend(os.path.abspath(p) for p in opts.folder_paths)
        source_parts.append("--folder")
    if opts.dates or opts.start_date or opts.end_date:
        if not opts.data_root:
            raise ReconcileError("no data root: pass --data-root or set GWPORTAL_DATA_ROOT")
        root = os.path.abspath(opts.data_root)
        if not os.path.isdir(root):
            raise ReconcileError(f"data root not found or not a folder: {root}")
        wanted = set(opts.dates or ())
        start = min(wanted) if wanted else opts.start_date
        end = max(wanted) if wanted else opts.end_date
        refs = [r for r in iter_night_folders(root, units=opts.units, start=start, end=end, include_test=opts.include_test)
                if not wanted or r.info.date in wanted]
        for day in sorted(wanted - {r.info.date for r in refs}):
            where = f" ({', '.join(opts.units)})" if opts.units else ""
            messages.append(f"no night folder on disk for {day.isoformat()}{where}")
        paths.extend(r.path for r in refs)
        source_parts.append("dates")
    if not source_parts:
        qs = MissingReport.objects.all()
        report = qs.filter(pk=opts.report_id).first() if opts.report_id else qs.order_by("-created_at", "-id").first()
        if report is None:
            raise ReconcileError(
                f"missing-files report {opts.report_id} not found" if opts.report_id
                else "no missing-files analysis yet: run `python manage.py check_missing_files` first, or name --dates/--folder"
            )
        flagged = list(report.flagged_folders or [])
        if opts.units:
            wanted_units = {u.upper() for u in opts.units}
            flagged = [p for p in flagged if parse_unit_dir(os.path.basename(os.path.dirname(p))) in wanted_units]
        paths.extend(flagged)
        source_parts.append(f"report #{report.pk} of {report.created_at:%Y-%m-%d %H:%M:%S}")
    unique = list(dict.fromkeys(paths))
    gone = [p for p in unique if not os.path.isdir(p)]
    for p in gone:
        messages.append(f"not a folder on disk, cannot be re-ingested: {p}")
    return [p for p in unique if p not in gone], " + ".join(source_parts), report, messages


def reprocess(opts: ReprocessOptions) -> ReprocessResult:
    """Re-ingest the chosen folders, then re-check exactly those folders; the exit code is the re-check's.

    0: everything in those folders is now consistent; 1: something is still missing, failed, changed or
    mismatched (or there was nothing to do while the source analysis is not clean); 2: fatal.
    """
    from survey.ingest.engine import EXIT_FATAL as INGEST_FATAL
    from survey.ingest.engine import IngestOptions, run_ingest

    folders, source, report, messages = plan_reprocess(opts)
    result = ReprocessResult(EXIT_CLEAN, folders, source, messages, report=report)
    if not folders:
        if report is not None:
            if report.clean:
                messages.append(f"nothing to reprocess: {source} is clean")
                result.exit_code = EXIT_CLEAN
            else:
                issues = (report.summary or {}).get("issues", "some")
                messages.append(f"nothing a re-ingest can fix in {source}, but it lists {issues} issues "
                                "(corrupt, vanished or never-arrived files): see its report file")
                result.exit_code = EXIT_ISSUES
        else:
            messages.append("nothing to reprocess: no night folder matched")
            result.exit_code = EXIT_ISSUES
        return result
    if opts.dry_run:
        messages.append(f"dry run: would re-ingest {len(folders)} folders ({source})")
        return result
    # The data root only names the run: explicit folders are ingested wherever they are.
    data_root = opts.data_root or ((report.summary or {}).get("data_root") if report else "") \
        or os.path.dirname(os.path.dirname(folders[0]))
    try:
        ingest = run_ingest(IngestOptions(
            data_root=data_root, folder_paths=folders, trigger="reprocess", force=opts.force,
            verify_checksums=opts.verify_checksums, settle_seconds=opts.settle_seconds, workers=opts.workers,
            parallel=opts.parallel, executor=opts.executor, progress=opts.progress, include_test=opts.include_test,
            arguments={**opts.arguments, "source": source, "folders": folders[:1000]},
        ))  # fmt: skip
    except DatabaseError:
        raise  # the command reports it (exit 2)
    except Exception as exc:  # noqa: BLE001 - e.g. no Celery worker: the run is recorded as 'error'
        log.exception("reprocessing ingest aborted")
        messages.append(f"ingest aborted: {type(exc).__name__}: {exc}")
        result.exit_code = EXIT_FATAL
        return result
    result.ingest = ingest
    if ingest.exit_code == INGEST_FATAL:
        messages.append(f"ingest run {ingest.run_id} ended with a fatal error")
        result.exit_code = EXIT_FATAL
        return result
    check = run_check(
        CheckOptions(data_root=data_root, folder_paths=folders),
        arguments={"trigger": "reprocess_nights", "source": source, "ingest_run": ingest.run_id, "folders": folders[:1000]},
    )
    result.check = check
    result.exit_code = check.exit_code
    return result


# ------------------------------------------------------------------------------------------ folder names


@dataclass
class ValidationResult:
    verdicts: list[FolderVerdict]
    log_file: str

    @property
    def invalid(self) -> list[FolderVerdict]:
        return [v for v in self.verdicts if v.status == "invalid"]

    @property
    def exit_code(self) -> int:
        return EXIT_ISSUES if self.invalid else EXIT_CLEAN


def validate_folders(root: str, *, today: date | None = None) -> ValidationResult:
    """Validate unit and night-folder names under the data root and write ``validate_folders.log``."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise ReconcileError(f"data root not found or not a folder: {root}")
    today = today or timezone.localdate()
    verdicts = validate_tree(root, today=today)
    directory = Path(settings.GWPORTAL["LOG_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "validate_folders.log"
    text = render_validation(verdicts, root=root, detailed=True)
    path.write_text(f"# validate_folders {timezone.now().isoformat()} (today = {today.isoformat()})\n{text}", encoding="utf-8")
    return ValidationResult(verdicts, str(path))


def render_validation(verdicts: Sequence[FolderVerdict], *, root: str, detailed: bool = False, invalid_only: bool = False) -> str:
    counts = Counter(v.status for v in verdicts)
    units = sum(1 for v in verdicts if not v.folder and parse_unit_dir(v.unit_dir))
    lines = [
        f"Folder names under {root}: {units} unit folders, {sum(1 for v in verdicts if v.folder)} entries in them",
        f"  ok {counts.get('ok', 0)}, notice {counts.get('notice', 0)}, invalid {counts.get('invalid', 0)}",
    ]
    shown = [v for v in verdicts if (v.status == "invalid" if invalid_only else detailed or v.status != "ok")]
    if shown:
        lines.append("")
    for v in shown:
        extra = f" [{v.kind}]" if detailed and v.kind else ""
        msg = "; ".join(v.messages)
        lines.append(f"  {v.status:8} {v.relpath}{extra}" + (f": {msg}" if msg else ""))
    return "\n".join(lines) + "\n"
