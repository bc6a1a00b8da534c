"""Write readers' results in batches, one transaction each: COPY on PostgreSQL, executemany on SQLite.

Per-row ORM saves cost ~1 ms each; this path writes a 2,000-frame batch in a few tens of ms. Frame ids
are reserved up front so headers can be written in the same pass without reading ids back. The writer
is the one serial stage of an ingest (readers run in parallel), so each row costs as little Python as
possible: values are picked from the record by one C-level itemgetter and handed to the driver as they
are; only datetimes are adapted (SQLite), once per value.
"""
from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, models, transaction
from django.utils import timezone

from rawdata.extract import COLUMN, ChunkResult, FrameRecord, Problem
from survey.copyrows import copy_rows
from survey.models import FileProblem, Frame, FrameHeader, HeaderLayout, Night, Target, Tile
from rawdata.tiles import tile_by_name
from survey.faults import crash_point

log = logging.getLogger(__name__)

SQLITE_ANALYSIS_LIMIT = 1000  # rows sampled per index by ANALYZE
SQLITE_WAL_CHECKPOINT_PAGES = 10_000  # pages (4 KB): the WAL grows to ~40 MB between checkpoints
SQLITE_CACHE_KIB = 256 * 1024  # page cache of the ingest's connection (an upper bound, allocated as used)
FK_COLUMNS = ("unit_id", "night_id", "folder_id", "target_id", "tile_id", "run_id")
TIME_COLUMNS = ("ingested_at", "updated_at")


def _frame_value_fields() -> list[models.Field]:
    """Frame fields filled from a record, derived from the model so they never drift apart."""
    skip = {"id", *FK_COLUMNS, *TIME_COLUMNS}
    return [f for f in Frame._meta.concrete_fields if f.column not in skip]


_VALUE_FIELDS = _frame_value_fields()
# Date/datetime values go last among the values: on SQLite they are the only ones the driver cannot
# take as they are, and adapting them at a fixed place of the row needs no per-row list surgery.
_DATE_FIELDS = [f for f in _VALUE_FIELDS if isinstance(f, models.DateField)]
VALUE_COLUMNS = [f.column for f in _VALUE_FIELDS if f not in _DATE_FIELDS] + [f.column for f in _DATE_FIELDS]
ALL_COLUMNS = ["id", *VALUE_COLUMNS, *FK_COLUMNS, *TIME_COLUMNS]
# record.row (rawdata.extract.FRAME_COLUMNS order) -> the values before the dates in VALUE_COLUMNS order, in
# C. A model field no reader fills is a KeyError here, at import: loud, never a silently empty column.
_N_PLAIN = len(VALUE_COLUMNS) - len(_DATE_FIELDS)
_pick_plain = operator.itemgetter(*(COLUMN[c] for c in VALUE_COLUMNS[:_N_PLAIN]))
_DATE_INDEXES = tuple(COLUMN[f.column] for f in _DATE_FIELDS)
_IMAGE_ID = COLUMN["image_id"]


class Resolver:
    """Name -> id caches for nights, tiles and targets; creates what is missing in bulk."""

    def __init__(self) -> None:
        self.nights: dict[date, int] = dict(Night.objects.values_list("date", "id"))
        self.tiles: dict[str, int] = {}
        self.targets: dict[str, int] = {}
        self.layouts: dict[str, int] = {}
        self._tiles_loaded = False

    def layout_ids(self, layouts: dict[str, str]) -> dict[str, int]:
        """Ids of header layouts (digest -> cards JSON), storing the new ones as they are."""
        missing = sorted(d for d in layouts if d not in self.layouts)  # one lock order for concurrent writers
        if missing:
            table = HeaderLayout._meta.db_table
            with connection.cursor() as cur:
                cur.executemany(  # the readers' JSON text as it is (the model field would re-encode it)
                    f"INSERT INTO {table} (digest, cards) VALUES (%s, %s) ON CONFLICT (digest) DO NOTHING",
                    [(d, layouts[d]) for d in missing],
                )
            self.layouts.update(HeaderLayout.objects.filter(digest__in=missing).values_list("digest", "id"))
        return self.layouts

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
        self._copy_types: dict[tuple[str, tuple[str, ...]], list[str] | None] = {}
        if self.vendor == "sqlite":
            # A bulk load touches 15 frame indexes: SQLite's default 2 MB page cache makes every
            # batch re-read index pages through the OS. Per connection, memory only, not persistent.
            with connection.cursor() as cur:
                cur.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
                # Checkpoint the WAL every ~40 MB instead of every 4 MB: index pages rewritten by
                # consecutive batches are then copied to the database once, not once per batch.
                cur.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_CHECKPOINT_PAGES}")

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
        layouts = self.resolver.layout_ids({d: text for r in results for d, text in r.layouts.items()})
        crash_point("batch_begin")
        with transaction.atomic():
            if replace_folder:
                self._delete_folder(folder_id)
                existing = {}
                crash_point("cleanup_deleted")
            keep_ids = [existing[f.path] for f in frames if f.path in existing] if existing else []
            if keep_ids:
                self._delete_frames(keep_ids)
            fresh = self._reserve_ids(len(frames) - len(keep_ids))
            if keep_ids:
                fresh_iter = iter(fresh)
                ids = [existing.get(f.path) or next(fresh_iter) for f in frames]
            else:
                ids = fresh
            rows = self._rows(ids, frames, folder_id, unit_id, nights, tiles, targets, now)
            self._insert("survey_frame", ALL_COLUMNS, rows)
            crash_point("frames_inserted")
            self._insert(
                "survey_frameheader", ["frame_id", "layout_id", "cards"],
                list(zip(ids, [None if f.layout is None else layouts[f.layout] for f in frames], [f.header_json for f in frames])),
            )
            self._resolve_problems(folder_id, [f.path for f in frames], problems, now)
            self._record_problems(problems, folder_id, now)
            crash_point("batch_uncommitted")
        crash_point("batch_committed")
        return {
            "frames": len(frames),
            "updated": len(keep_ids),
            "tile_ids": {tiles[f.tile] for f in frames if f.tile},
            "target_ids": {targets[f.target[1]] for f in frames if f.target},
            "night_ids": {nights[f.night] for f in frames if f.night},
            "image_ids": {f.row[_IMAGE_ID] for f in frames} - {""},
        }

    def refresh_planner_statistics(self) -> None:
        """SQLite: sampled ANALYZE of the frame table after a load (~30 ms at any size).

        Without statistics SQLite serves `night_id IN (...) AND image_type = 'science'` from the
        image_type index, i.e. by walking every science frame of the archive; with them it uses the
        night, tile or target index. PostgreSQL's autovacuum keeps its own statistics.
        """
        if self.vendor != "sqlite":
            return
        with connection.cursor() as cur:
            cur.execute(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
            cur.execute(f"ANALYZE {Frame._meta.db_table}")

    def record_problems(self, problems: Sequence[Problem], folder_id: int | None) -> None:
        with transaction.atomic():
            self._record_problems(problems, folder_id, timezone.now())

    # -- helpers ---------------------------------------------------------------------------------
    def _rows(self, ids, frames: Sequence[FrameRecord], folder_id, unit_id, nights, tiles, targets, now) -> list[tuple]:
        """Full survey_frame rows in ALL_COLUMNS order, ready for the driver (psycopg's COPY adapts
        every value itself; sqlite3 needs the dates as Django's text)."""
        run_id = self.run_id
        adapt = _sqlite_date_adapter() if self.vendor != "postgresql" else _aware
        now = adapt(now)
        return [
            (frame_id, *_pick_plain(record.row), *[adapt(record.row[i]) for i in _DATE_INDEXES], unit_id,
             nights[record.night], folder_id, targets.get(record.target[1]) if record.target else None,
             tiles.get(record.tile) if record.tile else None, run_id, now, now)
            for frame_id, record in zip(ids, frames)
        ]

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
        if self.vendor == "postgresql":
            copy_rows(table, columns, rows, types=self._binary_types(table, columns))
            return
        cols = ", ".join(columns)
        marks = ", ".join(["?"] * len(columns))
        raw = connection.connection  # the sqlite3 connection inside Django's transaction: no %s rewriting
        raw.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)

    def _binary_types(self, table: str, columns: list[str]) -> list[str] | None:
        """Types for a binary COPY of these columns, or None if one has a type not sent that way.

        Binary, because the text format costs both sides: psycopg formats every number and
        timestamp as text and the server parses it back (-25 us per frame of ~150, client and
        server, bench/bench_stages.py). Strings go as ``text``, whose binary form is the bytes, as
        is ``varchar``'s and ``json``'s (the header, already JSON text); the server still checks
        lengths and JSON.
        """
        key = (table, tuple(columns))
        if key not in self._copy_types:
            with connection.connection.cursor() as cur:
                cur.execute(
                    "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
                    " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                    [table],
                )
                found = dict(cur.fetchall())
            types = [_BINARY_COPY_TYPES.get(found.get(c, "")) for c in columns]
            self._copy_types[key] = None if None in types else types  # type: ignore[assignment]
        return self._copy_types[key]

    def _resolve_problems(self, folder_id: int, paths: list[str], problems: Sequence[Problem], now: datetime) -> None:
        """A file now catalogued cleanly closes its old problem.

        Problems are rare: first fetch the folder's open ones (one indexed query), then update only
        the paths that have one, instead of sending every path of the batch to the database.
        """
        with connection.cursor() as cur:  # raw SQL: this runs once per batch, the ORM would cost ~ms
            cur.execute(
                f"SELECT path FROM {FileProblem._meta.db_table} WHERE resolved = %s AND (folder_id = %s OR folder_id IS NULL)",
                [False, folder_id],
            )
            open_paths = {row[0] for row in cur.fetchall()}
        if not open_paths:
            return
        still = {p.path for p in problems}
        fixed = [p for p in paths if p in open_paths and p not in still]
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


@contextmanager
def commits_without_waiting() -> Iterator[None]:
    """PostgreSQL: within this block, this session's commits return before their WAL reaches the disk.

    Each batch commit otherwise waits for a flush of ~15 MB of WAL, during which nothing is written,
    and each statistics, folder and snapshot commit after it for ~10-40 ms. It is safe here:
    PostgreSQL stays consistent, and a server crash can only lose the last few hundred milliseconds
    of commits, in commit order - the same state as an ingest killed at that moment, which the next
    run completes (tests/reliability kill runs at every step). The session's setting is restored
    after the block (the monitor's lease and everything else keep the server's setting).
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cur:
        cur.execute("SHOW synchronous_commit")
        before = cur.fetchone()[0]
        cur.execute("SET synchronous_commit = off")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT set_config('synchronous_commit', %s, false)", [before])
        except DatabaseError:  # the connection is not usable: drop it, a new one has the server's setting
            log.warning("could not restore synchronous_commit; closing the connection", exc_info=True)
            connection.close()


# PostgreSQL column type -> the type a binary COPY sends the Python value as (see _binary_types).
_BINARY_COPY_TYPES = {
    "bigint": "int8", "integer": "int4", "smallint": "int2", "boolean": "bool", "double precision": "float8",
    "real": "float4", "date": "date", "timestamp with time zone": "timestamptz",
    "character varying": "text", "character": "text", "text": "text", "json": "text",
}


def _aware(value: Any) -> Any:
    """A datetime for a binary ``timestamptz``: naive ones are UTC (as every time in the readers is)."""
    if type(value) is datetime and value.tzinfo is None:
        return value.replace(tzinfo=dt_timezone.utc)
    return value


def _sqlite_date_adapter() -> Callable[[Any], Any]:
    """Django's SQLite date/datetime adaptation (aware -> naive in the connection's zone -> text), minus
    the per-call overhead; anything unusual goes to Django's own adapters."""
    conn = connections[DEFAULT_DB_ALIAS]  # the real wrapper, not the `connection` proxy
    django_adapt = conn.ops.adapt_datetimefield_value
    tz = conn.timezone if settings.USE_TZ else None
    utc = tz is not None and tz.utcoffset(None) == timedelta(0) and str(tz) in ("UTC", "UTC+00:00")

    def adapt(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is datetime:
            if utc and value.tzinfo is dt_timezone.utc:  # the readers' case: 'YYYY-MM-DD HH:MM:SS[.ffffff]'
                return value.isoformat(" ")[:-6]
            if tz is not None and value.tzinfo is not None:
                return str(value.astimezone(tz).replace(tzinfo=None))
            return django_adapt(value)
        if isinstance(value, datetime):
            return django_adapt(value)
        return value.isoformat() if isinstance(value, date) else value

    return adapt
