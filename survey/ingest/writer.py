"""Write readers' results in batches, one transaction each: COPY on PostgreSQL, executemany on SQLite.

Per-row ORM saves cost ~1 ms each; this path writes a 2,000-frame batch in a few tens of ms. Frame ids
are reserved up front so headers can be written in the same pass without reading ids back.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from rawdata.extract import ChunkResult, FrameRecord, Problem
from survey.models import FileProblem, Frame, FrameHeader, Night, Target, Tile
from rawdata.tiles import tile_by_name
from survey.faults import crash_point

log = logging.getLogger(__name__)

FK_COLUMNS = ("unit_id", "night_id", "folder_id", "target_id", "tile_id", "run_id")
TIME_COLUMNS = ("ingested_at", "updated_at")


def _frame_value_columns() -> list[str]:
    """Frame columns filled from a record, derived from the model so they never drift apart."""
    skip = {"id", *FK_COLUMNS, *TIME_COLUMNS}
    return [f.column for f in Frame._meta.concrete_fields if f.column not in skip]


VALUE_COLUMNS = _frame_value_columns()
ALL_COLUMNS = ["id", *VALUE_COLUMNS, *FK_COLUMNS, *TIME_COLUMNS]


class Resolver:
    """Name -> id caches for nights, tiles and targets; creates what is missing in bulk."""

    def __init__(self) -> None:
        self.nights: dict[date, int] = dict(Night.objects.values_list("date", "id"))
        self.tiles: dict[str, int] = {}
        self.targets: dict[str, int] = {}
        self._tiles_loaded = False

    def night_ids(self, dates: Iterable[date]) -> dict[date, int]:
        missing = {d for d in dates if d not in self.nights}
        if missing:
            Night.objects.bulk_create([Night(date=d) for d in missing], ignore_conflicts=True)
            self.nights.update(Night.objects.filter(date__in=missing).values_list("date", "id"))
        return self.nights

    def tile_ids(self, names: set[str]) -> dict[str, int]:
        if not self._tiles_loaded:
            self.tiles = dict(Tile.objects.values_list("name", "id"))
            self._tiles_loaded = True
        missing = {n for n in names if n not in self.tiles}
        if missing:
            new = []
            for name in missing:
                grid = tile_by_name(name)
                if grid is not None:
                    new.append(Tile(name=name, index=grid.index, ra=grid.ra, dec=grid.dec, ring=grid.ring, extension=grid.extension))
                else:  # beyond the grid: a real tile with unknown position, never a dropped frame
                    new.append(Tile(name=name, index=int(name[1:]), in_grid=False))
            Tile.objects.bulk_create(new, ignore_conflicts=True)
            self.tiles.update(Tile.objects.filter(name__in=missing).values_list("name", "id"))
        return self.tiles

    def target_ids(self, targets: dict[str, tuple[str, float | None, float | None]]) -> dict[str, int]:
        missing = {n for n in targets if n not in self.targets}
        if missing:
            self.targets.update(Target.objects.filter(name__in=missing).values_list("name", "id"))
            missing = {n for n in missing if n not in self.targets}
        if missing:
            Target.objects.bulk_create(
                [Target(name=n, kind=targets[n][0], ra=targets[n][1], dec=targets[n][2]) for n in missing],
                ignore_conflicts=True,
            )
            self.targets.update(Target.objects.filter(name__in=missing).values_list("name", "id"))
        return self.targets


class BatchWriter:
    """Writes frames, headers and problems of a batch inside one transaction."""

    def __init__(self, run_id: int | None) -> None:
        self.run_id = run_id
        self.resolver = Resolver()
        self.vendor = connection.vendor

    # -- ids -----------------------------------------------------------------------------------
    def _reserve_ids(self, n: int) -> list[int]:
        if n == 0:
            return []
        with connection.cursor() as cur:
            if self.vendor == "postgresql":
                cur.execute(
                    "SELECT nextval(pg_get_serial_sequence('survey_frame', 'id')) FROM generate_series(1, %s)", [n]
                )
                return [row[0] for row in cur.fetchall()]
            cur.execute("SELECT COALESCE(MAX(id), 0) FROM survey_frame")
            top = cur.fetchone()[0]
            cur.execute("SELECT seq FROM sqlite_sequence WHERE name = 'survey_frame'")
            row = cur.fetchone()
            start = max(top, row[0] if row else 0) + 1
        return list(range(start, start + n))

    # -- public ----------------------------------------------------------------------------------
    def write(
        self,
        results: Sequence[ChunkResult],
        *,
        folder_id: int,
        unit_id: int,
        existing: dict[str, int],
        replace_folder: bool = False,
    ) -> dict[str, Any]:
        """Write one folder's results. `existing` maps path -> frame id of rows to replace in place."""
        frames = [f for r in results for f in r.frames]
        problems = [p for r in results for p in r.problems]
        now = timezone.now()
        nights = self.resolver.night_ids({f.night for f in frames if f.night})
        tiles = self.resolver.tile_ids({f.tile for f in frames if f.tile})
        target_specs = {f.target[1]: (f.target[0], f.target[2], f.target[3]) for f in frames if f.target}
        targets = self.resolver.target_ids(target_specs) if target_specs else {}
        crash_point("batch_begin")
        with transaction.atomic():
            if replace_folder:
                self._delete_folder(folder_id)
                existing = {}
                crash_point("cleanup_deleted")
            keep_ids = [existing[f.path] for f in frames if f.path in existing]
            if keep_ids:
                self._delete_frames(keep_ids)
            fresh = self._reserve_ids(sum(1 for f in frames if f.path not in existing))
            fresh_iter = iter(fresh)
            rows, header_rows = [], []
            for record in frames:
                frame_id = existing.get(record.path) or next(fresh_iter)
                rows.append(self._row(frame_id, record, folder_id, unit_id, nights, tiles, targets, now))
                header_rows.append((frame_id, record.header_json))
            self._insert("survey_frame", ALL_COLUMNS, rows)
            crash_point("frames_inserted")
            self._insert("survey_frameheader", ["frame_id", "cards"], header_rows)
            self._resolve_problems([f.path for f in frames], problems, now)
            self._record_problems(problems, folder_id, now)
            crash_point("batch_uncommitted")
        crash_point("batch_committed")
        return {
            "frames": len(frames),
            "updated": len(keep_ids),
            "tile_ids": {tiles[f.tile] for f in frames if f.tile},
            "target_ids": {targets[f.target[1]] for f in frames if f.target},
            "night_ids": {nights[f.night] for f in frames if f.night},
            "image_ids": {f.columns["image_id"] for f in frames if f.columns["image_id"]},
        }

    def record_problems(self, problems: Sequence[Problem], folder_id: int | None) -> None:
        with transaction.atomic():
            self._record_problems(problems, folder_id, timezone.now())

    # -- helpers ---------------------------------------------------------------------------------
    def _row(self, frame_id, record: FrameRecord, folder_id, unit_id, nights, tiles, targets, now) -> list[Any]:
        cols = record.columns
        row: list[Any] = [frame_id]
        row.extend(cols[c] for c in VALUE_COLUMNS)
        row.extend(
            [
                unit_id,
                nights[record.night],
                folder_id,
                targets.get(record.target[1]) if record.target else None,
                tiles.get(record.tile) if record.tile else None,
                self.run_id,
                now,
                now,
            ]
        )
        return row

    def _delete_folder(self, folder_id: int) -> None:
        with connection.cursor() as cur:
            cur.execute(
                "DELETE FROM survey_frameheader WHERE frame_id IN (SELECT id FROM survey_frame WHERE folder_id = %s)",
                [folder_id],
            )
            cur.execute("DELETE FROM survey_frame WHERE folder_id = %s", [folder_id])
        FileProblem.objects.filter(folder_id=folder_id).delete()

    def _delete_frames(self, ids: list[int]) -> None:
        for start in range(0, len(ids), 900):
            part = ids[start : start + 900]
            FrameHeader.objects.filter(frame_id__in=part)._raw_delete(using="default")
            Frame.objects.filter(id__in=part)._raw_delete(using="default")

    def _insert(self, table: str, columns: list[str], rows: list[list[Any]] | list[tuple]) -> None:
        if not rows:
            return
        cols = ", ".join(columns)
        if self.vendor == "postgresql":
            raw = connection.connection  # psycopg 3 connection inside Django's transaction
            with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        adapt = _sqlite_adapter()
        marks = ", ".join(["%s"] * len(columns))
        with connection.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", [[adapt(v) for v in row] for row in rows])

    def _resolve_problems(self, paths: list[str], problems: Sequence[Problem], now: datetime) -> None:
        """A file now catalogued cleanly closes its old problem."""
        still = {p.path for p in problems}
        fixed = [p for p in paths if p not in still]
        for start in range(0, len(fixed), 900):
            FileProblem.objects.filter(path__in=fixed[start : start + 900], resolved=False).update(
                resolved=True, resolved_at=now
            )

    def _record_problems(self, problems: Sequence[Problem], folder_id: int | None, now: datetime) -> None:
        if not problems:
            return
        known = {p.path: p for p in FileProblem.objects.filter(path__in=[p.path for p in problems])}
        new, changed = [], []
        for p in problems:
            row = known.get(p.path)
            if row is None:
                new.append(
                    FileProblem(
                        path=p.path, folder_id=folder_id, reason=p.reason, detail=p.detail[:4000], severity=p.severity,
                        file_size=p.size, file_mtime_ns=p.mtime_ns, first_seen=now, last_seen=now, run_id=self.run_id,
                    )
                )
                continue
            row.reason, row.detail, row.severity = p.reason, p.detail[:4000], p.severity
            row.file_size, row.file_mtime_ns, row.last_seen, row.run_id = p.size, p.mtime_ns, now, self.run_id
            row.attempts += 1
            row.resolved, row.resolved_at = False, None
            changed.append(row)
        FileProblem.objects.bulk_create(new)
        FileProblem.objects.bulk_update(
            changed,
            ["reason", "detail", "severity", "file_size", "file_mtime_ns", "last_seen", "run_id", "attempts", "resolved", "resolved_at"],
        )


def _sqlite_adapter():
    ops = connection.ops

    def adapt(value: Any) -> Any:
        if isinstance(value, datetime):
            return ops.adapt_datetimefield_value(value)
        if isinstance(value, date):
            return value.isoformat()
        return value

    return adapt
