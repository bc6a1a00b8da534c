"""Plan an ingest: which folders, which files are new, changed, unchanged, vanished or still failing.

Only names, sizes and mtimes are compared here; no header is read for a file that has not changed.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import connection

from rawdata.folders import parse_folder_name
from rawdata.scan import FileEntry, FolderListing, NightFolderRef, iter_night_folders, list_folder
from rawdata.folders import parse_unit_dir
from survey.models import FileProblem, Frame, Night, NightFolder, Unit

log = logging.getLogger(__name__)


@dataclass
class FolderPlan:
    ref: NightFolderRef
    listing: FolderListing
    folder_id: int = 0
    unit_id: int = 0
    state: str = ""  # catalogue state before this run; 'ingesting' = a run died before its statistics
    to_read: list[FileEntry] = field(default_factory=list)
    existing_ids: dict[str, int] = field(default_factory=dict)  # path -> id of rows to replace
    unchanged: int = 0
    reappeared: list[int] = field(default_factory=list)
    vanished: list[int] = field(default_factory=list)
    failing: int = 0  # unchanged files whose problem persists


def effective_range(start: date | None, end: date | None, new_data_only: bool, cutoff: date | None) -> tuple[date | None, date | None]:
    """`--new-data-only` narrows the range to nights after the cutoff; it never widens or replaces it."""
    if new_data_only and cutoff is not None:
        floor = cutoff + timedelta(days=1)
        start = floor if start is None or start < floor else start
    return start, end


def refs_from_paths(paths: list[str]) -> list[NightFolderRef]:
    """Night folders named explicitly (monitor, reprocess): `<root>/<unit>/<folder>`."""
    import os

    refs = []
    for path in paths:
        path = os.path.abspath(path)
        unit_dir = os.path.basename(os.path.dirname(path))
        unit = parse_unit_dir(unit_dir)
        info = parse_folder_name(os.path.basename(path))
        if unit and info and info.date and os.path.isdir(path):
            refs.append(NightFolderRef(unit, unit_dir, info, path, os.stat(path).st_mtime_ns))
        else:
            log.warning("not a night folder, skipped: %s", path)
    return refs


def discover(root: str, *, start: date | None, end: date | None, units: list[str] | None, include_test: bool = False) -> list[NightFolderRef]:
    return list(iter_night_folders(root, units=units, start=start, end=end, include_test=include_test))


def ensure_rows(refs: list[NightFolderRef]) -> tuple[dict[str, int], dict[str, int]]:
    """Units, nights and folders exist as rows before any frame is written; returns id maps."""
    units = {u.name: u.id for u in Unit.objects.all()}
    for ref in refs:
        if ref.unit not in units:
            units[ref.unit] = Unit.objects.get_or_create(name=ref.unit, defaults={"dir_name": ref.unit_dir})[0].id
    dates = {ref.info.date for ref in refs}
    nights = dict(Night.objects.filter(date__in=dates).values_list("date", "id"))
    missing = dates - set(nights)
    if missing:
        Night.objects.bulk_create([Night(date=d) for d in missing], ignore_conflicts=True)
        nights = dict(Night.objects.filter(date__in=dates).values_list("date", "id"))
    folders: dict[str, int] = {}
    paths = [ref.path for ref in refs]
    for start in range(0, len(paths), 900):
        folders.update(NightFolder.objects.filter(path__in=paths[start : start + 900]).values_list("path", "id"))
    _follow_moved_folders([r for r in refs if r.path not in folders], units, folders)
    new = [
        NightFolder(
            unit_id=units[r.unit], night_id=nights[r.info.date], name=r.name, path=r.path, gain=r.info.gain,
            binning=r.info.binning, is_too=r.info.is_too, is_test=r.info.is_test, tags=list(r.info.tags),
            valid=r.info.valid, problems=list(r.info.problems), dir_mtime_ns=r.dir_mtime_ns,
        )
        for r in refs
        if r.path not in folders
    ]
    if new:
        NightFolder.objects.bulk_create(new, ignore_conflicts=True)
        for start in range(0, len(paths), 900):
            folders.update(NightFolder.objects.filter(path__in=paths[start : start + 900]).values_list("path", "id"))
    return units, folders


def _follow_moved_folders(refs: list[NightFolderRef], units: dict[str, int], folders: dict[str, int]) -> None:
    """A catalogued unit/folder found under another path (the archive was moved or remounted): move its
    row and its frames' paths, so nothing is read again and no frame is catalogued twice."""
    from django.db import transaction
    from django.db.models import F, Value
    from django.db.models.functions import Concat

    if not refs:
        return
    # One query per 900 names, not one per folder: a first ingest of a whole archive has thousands of
    # new folders, and almost none of them moved.
    names = sorted({r.name for r in refs})
    known: dict[tuple[int, str], tuple[int, str]] = {}
    for start in range(0, len(names), 900):
        rows = NightFolder.objects.filter(name__in=names[start : start + 900]).order_by("id")
        for folder_id, old_path, unit_id, name in rows.values_list("id", "path", "unit_id", "name"):
            known.setdefault((unit_id, name), (folder_id, old_path))  # the first row, as .first() gave
    for ref in refs:
        key = (units[ref.unit], ref.name)
        row = known.get(key)
        if row is None:
            continue
        folder_id, old_path = row
        if os.path.isdir(old_path):  # both exist (e.g. 7DT01 and 7DT-01): report, never guess
            log.error("%s skipped: the catalogue has this unit's folder %s at %s, which still exists", ref.path, ref.name, old_path)
            continue
        log.warning("night folder moved: %s -> %s (frame paths follow)", old_path, ref.path)
        with transaction.atomic():
            NightFolder.objects.filter(id=folder_id).update(path=ref.path, present=True)
            Frame.objects.filter(folder_id=folder_id).update(path=Concat(Value(ref.path + "/"), F("filename")))
            FileProblem.objects.filter(folder_id=folder_id).delete()  # re-checked under the new path
        folders[ref.path] = folder_id
        known[key] = (folder_id, ref.path)  # a second ref of this unit/folder now finds it here


def build_plan(refs: list[NightFolderRef], *, reread_all: bool) -> list[FolderPlan]:
    """List every folder and compare with the catalogue."""
    units, folders = ensure_rows(refs)
    plans = []
    for ref in refs:
        try:
            listing = list_folder(ref.path)
        except OSError as exc:
            log.error("cannot list %s: %s", ref.path, exc)
            listing = FolderListing()
        if ref.path not in folders:
            continue  # a conflicting duplicate of a catalogued folder (logged by _follow_moved_folders)
        plans.append(FolderPlan(ref=ref, listing=listing, folder_id=folders[ref.path], unit_id=units[ref.unit]))
    states = dict(NightFolder.objects.filter(id__in=[p.folder_id for p in plans]).values_list("id", "state"))
    for plan in plans:
        plan.state = states.get(plan.folder_id, "")
    by_id = {p.folder_id: p for p in plans}
    known: dict[int, dict[str, tuple[int, int, int, bool]]] = {p.folder_id: {} for p in plans}
    ids = list(by_id)
    table = Frame._meta.db_table
    with connection.cursor() as cur:  # raw rows: at 1 M frames the ORM's per-row work would dominate
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            cur.execute(
                f"SELECT folder_id, filename, id, file_size, file_mtime_ns, present FROM {table} "
                f"WHERE folder_id IN ({', '.join(['%s'] * len(part))})",
                part,
            )
            while batch := cur.fetchmany(20000):
                for folder_id, name, frame_id, size, mtime, present in batch:
                    known[folder_id][name] = (frame_id, size, mtime, bool(present))
    failing: dict[str, tuple[int, int]] = {}
    for start in range(0, len(ids), 500):
        failing.update(
            (path, (size, mtime))
            for path, size, mtime in FileProblem.objects.filter(
                folder_id__in=ids[start : start + 500], resolved=False, severity="error"
            ).values_list("path", "file_size", "file_mtime_ns")
        )
    for plan in plans:
        rows = known[plan.folder_id]
        prefix = plan.ref.path + "/"
        unchanged = 0
        for entry in plan.listing.files:
            # A file whose last read failed and that has not changed since stays failed: not re-read,
            # even when an older good row exists for it (a file corrupted after it was catalogued).
            if not reread_all and failing and failing.get(prefix + entry.name) == (entry.size, entry.mtime_ns):
                plan.failing += 1
                continue
            row = rows.get(entry.name)
            if row is not None:
                frame_id, size, mtime, present = row
                if reread_all or size != entry.size or mtime != entry.mtime_ns:
                    plan.to_read.append(entry)
                    plan.existing_ids[prefix + entry.name] = frame_id
                elif present:
                    unchanged += 1
                else:
                    plan.reappeared.append(frame_id)
                continue
            plan.to_read.append(entry)
        plan.unchanged += unchanged
        if len(rows) > unchanged:  # some catalogued file was not seen unchanged: look for vanished ones
            seen = {entry.name for entry in plan.listing.files}
            plan.vanished = [row[0] for name, row in rows.items() if name not in seen and row[3]]
    return plans


def needs_work(plan: FolderPlan) -> bool:
    """A folder whose catalogue rows this run changes."""
    return bool(plan.to_read or plan.vanished or plan.reappeared)


def mark_vanished_folders(refs: list[NightFolderRef], *, start: date | None, end: date | None, units: list[str] | None) -> list[int]:
    """Folders catalogued in the scanned range that are gone from disk: their frames become missing.

    The folders are left in state 'ingesting' (statistics pending, as for a folder being written), in
    the same transaction: a run killed before its statistics still leaves the marker, and the next run
    refreshes those nights, tiles and targets (see :func:`vanished_pending`). Returns their ids.
    """
    from django.db import transaction
    from django.utils import timezone

    seen = {(ref.unit, ref.name) for ref in refs}  # a folder found under another path has moved, not vanished
    folders = NightFolder.objects.filter(present=True)
    if start:
        folders = folders.filter(night__date__gte=start)
    if end:
        folders = folders.filter(night__date__lte=end)
    if units:
        folders = folders.filter(unit__name__in=units)
    gone = [fid for fid, unit, name in folders.values_list("id", "unit__name", "name") if (unit, name) not in seen]
    if gone:
        log.warning("%d catalogued night folders are gone from disk; their frames are marked missing", len(gone))
        with transaction.atomic():
            for k in range(0, len(gone), 900):
                part = gone[k : k + 900]
                Frame.objects.filter(folder_id__in=part, present=True).update(present=False, updated_at=timezone.now())
                NightFolder.objects.filter(id__in=part).update(present=False, state=NightFolder.State.INGESTING)
    return gone


def vanished_pending() -> list[int]:
    """Folders gone from disk whose statistics are not yet refreshed (this run's, or a killed run's)."""
    return list(NightFolder.objects.filter(present=False, state=NightFolder.State.INGESTING).values_list("id", flat=True))
