"""The ingest engine: plan -> read headers in parallel -> write batches -> statistics -> run record."""
from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from tqdm import tqdm

from rawdata.checksums import read_hash_file
from rawdata.classify import ExclusionRules
from rawdata.extract import COLUMN, ChunkResult, ChunkTask, ExtractConfig, FolderContext, Problem
from survey import stats
from survey.faults import crash_point
from survey.ingest.executors import ExecutorError, make_executor, warm_pool
from survey.ingest.plan import (
    FolderPlan,
    build_plan,
    discover,
    effective_range,
    mark_vanished_folders,
    vanished_pending,
    needs_work,
    refs_from_paths,
)
from survey.ingest.writer import BatchWriter, commits_without_waiting
from survey.models import FileProblem, Frame, IngestRun, NightFolder
from survey.runlog import HOST, ResourceMeter, mark_interrupted_runs, run_log_file

log = logging.getLogger("survey.ingest")

EXIT_OK, EXIT_FAILED_FILES, EXIT_FATAL, EXIT_DEFERRED = 0, 1, 2, 3
_EXCLUDED_BY, _IMAGE_TYPE = COLUMN["excluded_by"], COLUMN["image_type"]


@dataclass
class IngestOptions:
    data_root: str
    start_date: date | None = None
    end_date: date | None = None
    units: list[str] | None = None
    new_data_only: bool = False
    cutoff: date | None = None
    cleanup: bool = False
    dry_run: bool = False
    parallel: bool | None = None
    workers: int = 0
    executor: str = "local"
    force: bool = False
    folder_paths: list[str] | None = None
    trigger: str = "manual"
    verify_checksums: bool = True
    settle_seconds: float = 3600.0
    progress: bool = False
    chunk_size: int = 0
    include_test: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class IngestReport:
    run_id: int
    status: str
    exit_code: int
    counts: dict[str, int]
    table: dict[str, dict[str, int]]
    log_file: str
    duration_s: float
    files_per_s: float
    plan: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (wall s, main-process CPU s)


def extract_config(opts: IngestOptions) -> ExtractConfig:
    conf = settings.GWPORTAL
    rules = ExclusionRules.from_config({"focus": conf["EXCLUDE_FOCUS"], "test": conf["EXCLUDE_TEST"]})
    return ExtractConfig(
        rules=rules,
        verify_checksums=opts.verify_checksums,
        settle_seconds=opts.settle_seconds,
        pointing_tolerance_deg=conf["POINTING_TOLERANCE_DEG"],
        read_concurrency=max(1, int(conf.get("READ_CONCURRENCY", 1))),
    )


def run_ingest(opts: IngestOptions, *, on_plan: Callable[[list[FolderPlan]], bool] | None = None) -> IngestReport:
    """Run one ingest. `on_plan` may show the plan and return False to cancel (the confirmation prompt)."""
    opts.data_root = os.path.abspath(opts.data_root)
    mark_interrupted_runs()
    run = IngestRun.objects.create(
        trigger=opts.trigger, arguments=opts.arguments or _describe(opts), started_at=timezone.now(),
        heartbeat_at=timezone.now(), host=HOST, pid=os.getpid(), executor=opts.executor,
    )
    with run_log_file("ingest", run.id) as log_path:
        IngestRun.objects.filter(pk=run.pk).update(log_file=str(log_path))
        warm = None
        try:
            if not opts.dry_run:
                warm = warm_pool(opts.executor, opts.workers or settings.GWPORTAL["INGEST_WORKERS"], parallel=opts.parallel)
            with commits_without_waiting():
                return _run(run, opts, str(log_path), on_plan, warm)
        except BaseException as exc:
            log.exception("ingest run %s aborted", run.id)
            IngestRun.objects.filter(pk=run.pk).update(
                status=IngestRun.Status.ERROR, finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}"[:4000]
            )
            raise
        finally:
            if warm is not None:
                warm.close()  # unused (nothing to read, dry run) or already closed by _run


def _describe(opts: IngestOptions) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in vars(opts).items() if k != "arguments"}


def _run(run: IngestRun, opts: IngestOptions, log_path: str, on_plan, warm=None) -> IngestReport:
    started = time.perf_counter()
    phases = _Phases()
    meter = ResourceMeter()
    if opts.folder_paths is not None:
        refs = refs_from_paths(opts.folder_paths)
    else:
        start, end = effective_range(opts.start_date, opts.end_date, opts.new_data_only, opts.cutoff)
        refs = discover(opts.data_root, start=start, end=end, units=opts.units, include_test=opts.include_test)
        if not opts.dry_run and os.path.isdir(opts.data_root):  # an unmounted root must not look like deletion
            mark_vanished_folders(refs, start=start, end=end, units=opts.units)
    log.info("run %s: %d night folders under %s", run.id, len(refs), opts.data_root)
    plans = build_plan(refs, reread_all=opts.cleanup or opts.force)
    phases.mark("plan")
    crash_point("planned")
    counts: Counter[str] = Counter(
        folders=len(plans),
        files=sum(len(p.listing.files) for p in plans),
        unchanged=sum(p.unchanged for p in plans),
        failing=sum(p.failing for p in plans),
        to_read=sum(len(p.to_read) for p in plans),
        missing=sum(len(p.vanished) for p in plans),
        reappeared=sum(len(p.reappeared) for p in plans),
    )
    plan_rows = [
        {"folder": f"{p.ref.unit_dir}/{p.ref.name}", "files": len(p.listing.files), "to_read": len(p.to_read),
         "unchanged": p.unchanged, "vanished": len(p.vanished)}
        for p in plans
    ]
    if on_plan is not None and not on_plan(plans):
        opts.dry_run = True
    if opts.dry_run:
        return _finish(run, IngestRun.Status.DRY_RUN, EXIT_OK, counts, Counter(), log_path, started, meter, plan_rows, phases)

    table: Counter[tuple[str, str, str]] = Counter()
    touched: dict[str, set[int]] = {"nights": set(), "tiles": set(), "targets": set()}
    # Frames about to vanish, come back or be re-read may leave their tile/target: refresh those too.
    changing = [p.folder_id for p in plans if p.to_read or p.vanished or p.reappeared]
    before_tiles, before_targets = stats.tiles_and_targets_of_folders(changing)
    touched["tiles"].update(before_tiles)
    touched["targets"].update(before_targets)
    # Durable "statistics pending" marker: a run killed before its statistics leaves these folders in
    # 'ingesting', and the next run refreshes their statistics even when it has nothing to read.
    recovering = [p.folder_id for p in plans if p.state == NightFolder.State.INGESTING]
    gone_pending = vanished_pending()  # folders gone from disk, statistics pending
    NightFolder.objects.filter(id__in=[p.folder_id for p in plans if needs_work(p)]).update(state=NightFolder.State.INGESTING)
    _mark_presence(plans)
    crash_point("presence_marked")
    image_ids: set[str] = set()
    writer = BatchWriter(run.id)
    cfg = extract_config(opts)
    tasks, owners = _tasks(plans, cfg, opts)
    workers = opts.workers or settings.GWPORTAL["INGEST_WORKERS"]
    executor = make_executor(
        opts.executor, workers, n_files=counts["to_read"], parallel=opts.parallel,
        threshold=settings.GWPORTAL["PARALLEL_THRESHOLD"], warm=warm,
    )
    IngestRun.objects.filter(pk=run.pk).update(executor=executor.name, workers=executor.workers, n_folders=len(plans), n_files=counts["files"])
    log.info("reading %d files with %s executor (%d workers)", counts["to_read"], executor.name, executor.workers)
    bar = tqdm(total=counts["to_read"], unit="file", disable=not opts.progress, dynamic_ncols=True)
    last_beat = time.monotonic()
    # Outside --cleanup, consecutive chunks (of any folders) are written in one transaction of about
    # BATCH_SIZE frames: a commit costs SQLite a WAL flush and checkpoint work, folders are often small.
    group: list[tuple[ChunkResult, FolderPlan]] = []
    group_size = max(1, settings.GWPORTAL["BATCH_SIZE"])
    read_seconds = 0.0
    try:
        pending: list[ChunkResult] = []
        pending_owner: FolderPlan | None = None
        for result, owner in zip(executor.map(tasks), owners):
            crash_point("chunk_read")
            bar.update(result.headers_read)
            counts["headers_read"] += result.headers_read
            read_seconds += result.seconds
            counts["deferred"] += len(result.deferred)
            for d in result.deferred:
                log.info("deferred (still being written?): %s - %s", d.path, d.detail)
            if opts.cleanup and pending_owner is not None and owner is not pending_owner:
                _write(writer, pending, pending_owner, True, counts, table, touched, image_ids)
                pending = []
            pending.append(result)
            pending_owner = owner
            if not opts.cleanup:
                group.append((result, owner))
                pending = []
                if sum(len(r.frames) + len(r.problems) for r, _ in group) >= group_size:
                    _write_group(writer, group, counts, table, touched, image_ids)
                    group = []
            if time.monotonic() - last_beat > 5:
                meter.sample()
                IngestRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now(), n_headers_read=counts["headers_read"])
                last_beat = time.monotonic()
        if group:
            _write_group(writer, group, counts, table, touched, image_ids)
        if pending:
            _write(writer, pending, pending_owner, opts.cleanup, counts, table, touched, image_ids)
    except ExecutorError:
        if group:  # reading broke off (Celery): what was read stays catalogued, a rerun reads the rest
            _write_group(writer, group, counts, table, touched, image_ids)
        raise
    finally:
        meter.sample()
        bar.close()
        executor.close()

    phases.mark("read_write")
    if counts["headers_read"]:
        log.info("readers: %.0f us per header read (wall time inside the reader processes)",
                 read_seconds / counts["headers_read"] * 1e6)
    crash_point("all_written")
    if counts["new"] or counts["updated"]:
        writer.refresh_planner_statistics()
    _touch_recovering(recovering + gone_pending, touched, image_ids)
    counts["duplicates"] = _report_duplicates(writer, image_ids)
    phases.mark("duplicates")
    crash_point("duplicates_reported")
    # Nights whose figures can have changed: folders this run wrote to, or not (yet) marked ingested.
    # An unchanged, ingested folder keeps its statistics (a re-run over 1 M unchanged files must not
    # re-aggregate the archive).
    stale = [p.folder_id for p in plans if needs_work(p) or p.state != NightFolder.State.INGESTED]
    for start in range(0, len(stale), 900):
        touched["nights"].update(
            NightFolder.objects.filter(id__in=stale[start : start + 900]).values_list("night_id", flat=True)
        )
    stats.refresh_night_unit_stats(touched["nights"])
    phases.mark("night_stats")
    crash_point("night_stats")
    stats.refresh_tiles(touched["tiles"])
    crash_point("tile_stats")
    stats.refresh_targets(touched["targets"])
    phases.mark("tile_target_stats")
    _update_folders(plans, counts)
    NightFolder.objects.filter(id__in=gone_pending).update(state=NightFolder.State.INGESTED)
    phases.mark("folders")
    crash_point("folders_updated")
    if counts["new"] or counts["updated"] or counts["missing"] or counts["reappeared"] or recovering or gone_pending:
        _refresh_public_snapshots()
    phases.mark("snapshots")
    errors = counts["problems"] + counts["failing"]
    if errors:
        status, code = IngestRun.Status.FAILED, EXIT_FAILED_FILES
    elif counts["deferred"]:
        status, code = IngestRun.Status.SUCCESS, EXIT_DEFERRED
    else:
        status, code = IngestRun.Status.SUCCESS, EXIT_OK
    return _finish(run, status, code, counts, table, log_path, started, meter, plan_rows, phases)


class _Phases:
    """Wall and main-process CPU seconds per phase of a run, for the log: where did the time go?"""

    def __init__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        self.spent: dict[str, tuple[float, float]] = {}

    def mark(self, name: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.spent[name] = (wall - self._wall, cpu - self._cpu)
        self._wall, self._cpu = wall, cpu

    def __str__(self) -> str:
        return ", ".join(f"{k} {w:.2f}/{c:.2f}" for k, (w, c) in self.spent.items())


def _refresh_public_snapshots() -> None:
    """/status/, /tiles/ and the survey page follow the ingest at once; a failure here never fails the run."""
    from survey.status import refresh_snapshots

    try:
        refresh_snapshots()
    except Exception:  # noqa: BLE001 - the snapshots are recomputed on request when stale anyway
        log.exception("could not refresh the survey status snapshots")


def _tasks(plans: list[FolderPlan], cfg: ExtractConfig, opts: IngestOptions) -> tuple[list[ChunkTask], list[FolderPlan]]:
    size = opts.chunk_size or settings.GWPORTAL["BATCH_SIZE"]
    now = time.time()
    tasks, owners = [], []
    for plan in plans:
        if not plan.to_read:
            continue
        hashes = None
        if plan.listing.has_hash and cfg.verify_checksums:
            hashes = read_hash_file(os.path.join(plan.ref.path, "allfiles.hash"))
        for start in range(0, len(plan.to_read), size):
            part = plan.to_read[start : start + size]
            sub = {e.name: hashes[e.name] for e in part if e.name in hashes} if hashes is not None else None
            ctx = FolderContext(unit=plan.ref.unit, folder=plan.ref.info, path=plan.ref.path, hashes=sub)
            tasks.append(ChunkTask(context=ctx, files=part, config=cfg, now=now))
            owners.append(plan)
    return tasks, owners


def _write_group(writer, group, counts, table, touched, image_ids) -> None:
    """Several chunks (one or more folders, each written as by `_write`) in one transaction."""
    with transaction.atomic():
        for result, plan in group:
            _write(writer, [result], plan, False, counts, table, touched, image_ids)


def _write(writer, results, plan, replace, counts, table, touched, image_ids) -> None:
    out = writer.write(results, folder_id=plan.folder_id, unit_id=plan.unit_id, existing=plan.existing_ids, replace_folder=replace)
    counts["updated"] += out["updated"]
    counts["new"] += out["frames"] - out["updated"]
    touched["nights"].update(out["night_ids"])
    touched["tiles"].update(out["tile_ids"])
    touched["targets"].update(out["target_ids"])
    image_ids.update(out["image_ids"])
    for result in results:
        kinds = Counter((f.night, "excluded" if f.row[_EXCLUDED_BY] else f.row[_IMAGE_TYPE]) for f in result.frames)
        for (night, kind), n in kinds.items():
            table[(night.isoformat(), plan.ref.unit, kind)] += n
        counts["excluded"] += sum(n for (_, kind), n in kinds.items() if kind == "excluded")
        for problem in result.problems:
            counts["problems" if problem.severity == "error" else "warnings"] += 1
            log.warning("%s [%s]: %s", problem.path, problem.reason, problem.detail)


def _touch_recovering(folder_ids: list[int], touched: dict[str, set[int]], image_ids: set[str]) -> None:
    """Add what a killed run wrote but never summarised to this run's statistics work."""
    if not folder_ids:
        return
    log.info("completing statistics of %d folders left by an interrupted run", len(folder_ids))
    frames = Frame.objects.filter(folder_id__in=folder_ids)
    touched["tiles"].update(frames.exclude(tile_id=None).values_list("tile_id", flat=True).distinct())
    touched["targets"].update(frames.exclude(target_id=None).values_list("target_id", flat=True).distinct())
    touched["nights"].update(frames.values_list("night_id", flat=True).distinct())
    image_ids.update(frames.exclude(image_id="").values_list("image_id", flat=True))


def _mark_presence(plans: list[FolderPlan]) -> None:
    vanished = [i for p in plans for i in p.vanished]
    back = [i for p in plans for i in p.reappeared]
    for ids, present in ((vanished, False), (back, True)):
        for start in range(0, len(ids), 900):
            Frame.objects.filter(id__in=ids[start : start + 900]).update(present=present, updated_at=timezone.now())
    if vanished:
        log.warning("%d catalogued files are gone from disk (marked missing, not deleted)", len(vanished))


def _report_duplicates(writer: BatchWriter, image_ids: set[str]) -> int:
    """Frames sharing a TCSpy IMAGEID are all kept; every one after the first gets a warning."""
    ids = sorted(image_ids)
    problems = []
    dups: list[str] = []
    with connection.cursor() as cur:  # raw SQL: ORM query building costs more than the index lookups
        if connection.vendor == "postgresql" and ids:  # one array parameter, not 900 placeholders per query
            cur.execute("SELECT image_id FROM survey_frame WHERE image_id = ANY(%s) GROUP BY image_id HAVING COUNT(*) > 1", [ids])
            dups.extend(row[0] for row in cur.fetchall())
            ids = []
        for start in range(0, len(ids), 900):
            part = ids[start : start + 900]
            cur.execute(
                f"SELECT image_id FROM survey_frame WHERE image_id IN ({', '.join(['%s'] * len(part))}) "
                "GROUP BY image_id HAVING COUNT(*) > 1",
                part,
            )
            dups.extend(row[0] for row in cur.fetchall())
    for image_id in dups:
        rows = list(Frame.objects.filter(image_id=image_id).order_by("id").values_list("path", "file_size", "file_mtime_ns", "folder_id"))
        first = rows[0][0]
        for path, size, mtime, folder_id in rows[1:]:
            problems.append((folder_id, Problem(path, size, mtime, "duplicate_imageid", f"IMAGEID {image_id} also in {first}", "warning")))
    for folder_id, problem in problems:
        writer.record_problems([problem], folder_id)
    return len(problems)


def _update_folders(plans: list[FolderPlan], counts: Counter) -> None:
    """Every planned folder: its listing as ingested, and ingested/failed; one executemany."""
    now = timezone.now()
    ids = [p.folder_id for p in plans]
    open_errors: set[int] = set()
    for start in range(0, len(ids), 900):
        open_errors.update(
            FileProblem.objects.filter(folder_id__in=ids[start : start + 900], resolved=False, severity="error")
            .values_list("folder_id", flat=True).distinct()
        )
    rows = []
    for plan in plans:
        listing = plan.listing
        state = NightFolder.State.FAILED if plan.folder_id in open_errors else NightFolder.State.INGESTED
        rows.append((plan.folder_id, (
            len(listing.files), listing.total_bytes, listing.newest_mtime_ns, listing.fingerprint(), now, now, True, state,
        )))
    stats.update_by_id(NightFolder, _FOLDER_FIELDS, rows)


_FOLDER_FIELDS = ("file_count", "total_bytes", "newest_mtime_ns", "ingested_fingerprint", "ingested_at",
                  "last_checked_at", "present", "state")


def _finish(run, status, code, counts, table, log_path, started, meter, plan_rows, phases: _Phases) -> IngestReport:
    duration = time.perf_counter() - started
    rate = (counts["headers_read"] / duration) if duration > 0 else 0.0
    nested: dict[str, dict[str, int]] = {}
    for (night, unit, kind), n in sorted(table.items()):
        nested.setdefault(f"{night} {unit}", {})[kind] = n
    IngestRun.objects.filter(pk=run.pk).update(
        status=status, finished_at=timezone.now(), heartbeat_at=timezone.now(), duration_s=duration, files_per_s=rate,
        n_new=counts["new"], n_updated=counts["updated"], n_unchanged=counts["unchanged"], n_excluded=counts["excluded"],
        n_problems=counts["problems"] + counts["failing"], n_deferred=counts["deferred"], n_missing=counts["missing"],
        n_duplicates=counts["duplicates"], n_headers_read=counts["headers_read"],
        peak_rss_mb=meter.peak_rss / 2**20, cpu_s=meter.cpu_seconds,
        report={"counts": dict(counts), "table": nested, "plan": plan_rows[:500], "exit_code": code,
                "phases": {name: {"wall_s": round(w, 3), "cpu_s": round(c, 3)} for name, (w, c) in phases.spent.items()}},
    )
    log.info("phases (wall s / this process's CPU s): %s", phases)
    log.info("run %s %s: %d new, %d updated, %d unchanged, %d problems, %d deferred in %.2f s (exit %d)",
             run.id, status, counts["new"], counts["updated"], counts["unchanged"],
             counts["problems"] + counts["failing"], counts["deferred"], duration, code)
    return IngestReport(run.id, status, code, dict(counts), nested, log_path, duration, rate, plan_rows, dict(phases.spent))
