"""Keep the cached statistics current for what an ingest touched (never recomputed per request).

Every figure is aggregated by the database (GROUP BY over the touched ids only) and written back with
one prepared statement executed for all rows (`executemany`): Django's `bulk_update` builds one
CASE WHEN per field over every row, which costs seconds for a few thousand tiles.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from math import fsum
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.models import Count, Q, Sum

from survey.conditions import CHUNK as NIGHT_CHUNK  # the pass keeps per-frame values until the medians, as there
from survey.conditions import MEASURES, ConditionsTally
from survey.copyrows import copy_rows
from survey.models import FileProblem, Frame, Night, NightFolder, NightUnitStats, Target, Tile, TileFilterProgress

# Ids per aggregate query: `IN (...)` of up to 2,000 ids is one index range scan per id for either
# database (SQLite allows 32,766 parameters); fewer, larger queries cost less per id.
CHUNK = 2000
CATALOGUED = Q(excluded_by="", present=True)
# Catalogued science frames, used as an aggregate filter: the WHERE clause then holds only `<fk> IN
# (...)`, which the planner serves from that key's index. With `image_type = 'science'` in the WHERE,
# SQLite (without statistics) walks the image_type index instead: every science frame of the archive.
SCIENCE = Q(CATALOGUED, image_type="science")


def _adapters(cols: Sequence[models.Field]) -> list[Any]:
    """Per column: None where the driver takes the Python value as it is, else the field's adapter.

    Dates (not datetimes) go as they are: psycopg sends them as dates, and Django registers the sqlite3
    adapter that writes them as ISO text, as DateField does."""
    conn = connections[DEFAULT_DB_ALIAS]  # the real connection: the `connection` proxy costs per access
    plain = (models.IntegerField, models.FloatField, models.CharField, models.BooleanField, models.ForeignKey)

    def as_is(c: models.Field) -> bool:
        return isinstance(c, plain) or (isinstance(c, models.DateField) and not isinstance(c, models.DateTimeField))

    return [None if as_is(c) else (lambda v, c=c: c.get_db_prep_save(v, conn)) for c in cols]


def _adapt(adapters: list[Any], values: Sequence[Any]) -> list[Any]:
    return [v if a is None else a(v) for a, v in zip(adapters, values)]


def update_by_id(model: type[models.Model], fields: Sequence[str], rows: Iterable[tuple[int, Sequence[Any]]]) -> None:
    """``UPDATE <table> SET f1 = ?, ... WHERE id = ?`` for every (id, values) row, in one executemany.

    Values are Python values of the named model fields (adapted by the fields, e.g. JSON, dates).
    """
    meta = model._meta
    cols = [meta.get_field(name) for name in fields]
    qn = connection.ops.quote_name
    sql = f"UPDATE {qn(meta.db_table)} SET {', '.join(f'{qn(c.column)} = %s' for c in cols)} WHERE {qn(meta.pk.column)} = %s"
    adapters = _adapters(cols)
    params = [[*_adapt(adapters, values), pk] for pk, values in rows]
    if not params:
        return
    if connection.vendor == "postgresql" and len(params) > 20:
        _update_from_copy(meta, cols, params)
        return
    with connection.cursor() as cur:
        cur.executemany(sql, params)


def _update_from_copy(meta: Any, cols: Sequence[models.Field], params: list[list[Any]]) -> None:
    """PostgreSQL: COPY the rows into a temporary table, then one ``UPDATE ... FROM`` (an executemany
    costs the server a statement per row: ~0.15 ms x 1,600 tiles per ingest)."""
    qn = connection.ops.quote_name
    table, pk = qn(meta.db_table), qn(meta.pk.column)
    names = [qn(c.column) for c in cols]
    tmp = qn(f"_update_{meta.db_table}")
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"CREATE TEMPORARY TABLE {tmp} AS SELECT {', '.join(names)}, {pk} FROM {table} WITH NO DATA")
        copy_rows(tmp, [*names, pk], params)
        cur.execute(f"UPDATE {table} AS t SET {', '.join(f'{n} = u.{n}' for n in names)} FROM {tmp} AS u WHERE t.{pk} = u.{pk}")
        cur.execute(f"DROP TABLE {tmp}")


def _insert_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``INSERT INTO <table> (f1, ...) VALUES (?, ...)`` for every row, in one executemany."""
    meta = model._meta
    cols = [meta.get_field(name) for name in fields]
    qn = connection.ops.quote_name
    sql = (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(c.column) for c in cols)}) "
           f"VALUES ({', '.join(['%s'] * len(cols))})")
    adapters = _adapters(cols)
    params = [_adapt(adapters, values) for values in rows]
    if not params:
        return
    if connection.vendor == "postgresql":  # COPY: a pipelined executemany costs the server a statement per row
        copy_rows(qn(meta.db_table), [qn(c.column) for c in cols], params)
        return
    with connection.cursor() as cur:
        cur.executemany(sql, params)


def _chunks(ids: Iterable[int], size: int = CHUNK) -> Iterable[list[int]]:
    ids = sorted(set(ids))
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# One pass over the touched nights' frames gives every NightUnitStats figure (five GROUP BY queries and
# a sixth pass for the conditions cost twice as much, mostly in reading the same rows again).
_NIGHT_COLUMNS = ("night_id", "unit_id", "image_type", "filter", "excluded_by", "present", "file_size", "exptime",
                  "tile_id", "pointing_warning", *MEASURES)


def refresh_night_unit_stats(night_ids: Iterable[int]) -> int:
    """Recompute NightUnitStats rows for the given nights (all units); returns rows written."""
    written = 0
    for part in _chunks(night_ids, NIGHT_CHUNK):
        rows: dict[tuple[int, int], dict[str, Any]] = {}
        science_tiles: dict[tuple[int, int], set[int]] = defaultdict(set)
        by_filter: dict[tuple[int, int, str, str], list[float | None]] = defaultdict(list)  # catalogued exposure times
        conditions = ConditionsTally()
        frames = Frame.objects.filter(night_id__in=part).order_by().values_list(*_NIGHT_COLUMNS)
        for night_id, unit_id, image_type, filt, excluded_by, present, size, exptime, tile_id, warn, *measures in (
            frames.iterator(chunk_size=5000)
        ):
            key = (night_id, unit_id)
            row = rows.get(key)
            if row is None:
                row = rows[key] = {"by_filter": {}, "total_bytes": 0, "n_excluded": 0, "n_missing": 0}
            if excluded_by:
                row["n_excluded"] += 1
            if not present:
                row["n_missing"] += 1
            if excluded_by or not present:
                continue
            count = f"n_{image_type}"
            row[count] = row.get(count, 0) + 1
            row["total_bytes"] += size or 0
            by_filter[(night_id, unit_id, filt or "-", image_type)].append(exptime)
            if image_type == "science":
                if tile_id is not None:
                    science_tiles[key].add(tile_id)
                conditions.add(night_id, unit_id, tile_id, warn, measures)
        science_times: dict[tuple[int, int], list[float]] = defaultdict(list)
        for (night_id, unit_id, filt, image_type), times in by_filter.items():
            known = [t for t in times if t is not None]
            rows[(night_id, unit_id)]["by_filter"].setdefault(filt, {})[image_type] = {"n": len(times), "exptime": round(fsum(known), 3)}
            if image_type == "science":
                science_times[(night_id, unit_id)] += known
        for key, times in science_times.items():
            rows[key]["science_exptime"] = fsum(times)
        for key, tiles in science_tiles.items():
            rows[key]["n_tiles"] = len(tiles)
        for night_id, unit_id, n in (
            FileProblem.objects.filter(resolved=False, severity="error", folder__night_id__in=part)
            .values("folder__night_id", "folder__unit_id")
            .annotate(n=Count("id"))
            .values_list("folder__night_id", "folder__unit_id", "n")
        ):
            rows.setdefault((night_id, unit_id), {"by_filter": {}})["n_problems"] = n
        for key in NightFolder.objects.filter(night_id__in=part).values_list("night_id", "unit_id"):
            rows.setdefault(key, {"by_filter": {}})  # a folder with nothing yet still gets a row
        # Night conditions (and the night's pointing warnings and tile count) in the same transaction.
        for key, doc in conditions.docs().items():
            rows[key]["conditions"] = doc
        with transaction.atomic():
            NightUnitStats.objects.filter(night_id__in=part).delete()
            NightUnitStats.objects.bulk_create(
                [NightUnitStats(night_id=n, unit_id=u, **values) for (n, u), values in rows.items()]
            )
        written += len(rows)
    return written


class _Totals:
    """Catalogued science frames, exposure and nights of one tile, target or tile x filter."""

    __slots__ = ("n", "exptimes", "nights")

    def __init__(self) -> None:
        self.n = 0
        self.exptimes: list[float] = []
        self.nights: set[int] = set()

    def add(self, night_id: int, n: int, exptime: float | None) -> None:
        self.n += n
        if exptime is not None:
            self.exptimes.append(exptime)
        self.nights.add(night_id)

    def figures(self, dates: dict[int, date]) -> tuple[int, float, int, date | None, date | None]:
        """n_frames, total_exptime, n_nights, first_night, last_night."""
        days = [dates[n] for n in self.nights if n in dates]  # (a night row deleted by hand: no date)
        return self.n, fsum(self.exptimes), len(self.nights), min(days, default=None), max(days, default=None)


_EMPTY = _Totals()


def _science_groups(fk: str, ids: list[int], *keys: str) -> list[tuple[Any, ...]]:
    """(fk, *keys, night_id, n, exptime) per fk, ``keys`` and night, of catalogued science frames.

    One query at the finest grain the callers need; they sum it up per fk and per fk x filter
    (three GROUP BY queries over the same frames cost twice as much)."""
    rows = Frame.objects.filter(**{f"{fk}__in": ids}).order_by().values_list(fk, *keys, "night_id").annotate(
        n=Count("id", filter=SCIENCE), exp=Sum("exptime", filter=SCIENCE),
    )
    return [r for r in rows if r[-2]]


def _night_dates(night_ids: Iterable[int]) -> dict[int, date]:
    dates: dict[int, date] = {}
    for part in _chunks(night_ids):
        dates.update(Night.objects.filter(id__in=part).values_list("id", "date"))
    return dates


def refresh_tiles(tile_ids: Iterable[int]) -> None:
    """Tile totals and tile x filter progress for the touched tiles."""
    for part in _chunks(tile_ids):
        totals: dict[int, _Totals] = defaultdict(_Totals)
        progress: dict[tuple[int, str], _Totals] = defaultdict(_Totals)
        programs: dict[int, set[str]] = defaultdict(set)
        groups = _science_groups("tile_id", part, "filter", "program")
        for tile_id, filt, program, night_id, n, exptime in groups:
            totals[tile_id].add(night_id, n, exptime)
            progress[(tile_id, filt or "-")].add(night_id, n, exptime)
            if program:
                programs[tile_id].add(program)
        dates = _night_dates(g[3] for g in groups)
        filters: dict[int, int] = defaultdict(int)  # frames without FILTER ("-") are no filter of the tile
        for tile_id, filt in progress:
            filters[tile_id] += filt != "-"
        rows = []
        for tile_id in part:  # a touched tile that lost all its frames is set back to zero
            n, exptime, nights, first, last = totals.get(tile_id, _EMPTY).figures(dates)
            rows.append((tile_id, (n, exptime, nights, filters.get(tile_id, 0), first, last, sorted(programs.get(tile_id, ())))))
        with transaction.atomic():
            update_by_id(Tile, _TILE_FIELDS, rows)
            TileFilterProgress.objects.filter(tile_id__in=part).delete()
            _insert_rows(TileFilterProgress, _PROGRESS_FIELDS, [(*key, *t.figures(dates)) for key, t in progress.items()])


_TILE_FIELDS = ("n_frames", "total_exptime", "n_nights", "n_filters", "first_night", "last_night", "programs")
_PROGRESS_FIELDS = ("tile_id", "filter", "n_frames", "total_exptime", "n_nights", "first_night", "last_night")
_TARGET_FIELDS = ("n_frames", "total_exptime", "n_nights", "first_night", "last_night", "filters")


def refresh_targets(target_ids: Iterable[int]) -> None:
    for part in _chunks(target_ids):
        totals: dict[int, _Totals] = defaultdict(_Totals)
        filters: dict[int, set[str]] = defaultdict(set)
        groups = _science_groups("target_id", part, "filter")
        for target_id, filt, night_id, n, exptime in groups:
            totals[target_id].add(night_id, n, exptime)
            if filt:
                filters[target_id].add(filt)
        dates = _night_dates(g[2] for g in groups)
        rows = [
            (target_id, (*totals.get(target_id, _EMPTY).figures(dates), sorted(filters.get(target_id, ()))))
            for target_id in part
        ]
        with transaction.atomic():
            update_by_id(Target, _TARGET_FIELDS, rows)


def tiles_and_targets_of_folders(folder_ids: Iterable[int]) -> tuple[set[int], set[int]]:
    """Tiles and targets of the frames now catalogued in these folders.

    The ingest adds them to what it refreshes, because frames that vanish, come back or are re-read
    (and so may change tile) move a tile's figures although no new frame names it.
    """
    tiles: set[int] = set()
    targets: set[int] = set()
    for part in _chunks(folder_ids):
        rows = Frame.objects.filter(folder_id__in=part).filter(Q(tile_id__isnull=False) | Q(target_id__isnull=False))
        for tile_id, target_id in rows.order_by().values_list("tile_id", "target_id").distinct():
            if tile_id is not None:
                tiles.add(tile_id)
            if target_id is not None:
                targets.add(target_id)
    return tiles, targets


def refresh_all() -> None:
    """Recompute every cached statistic (after a bulk repair; the ingest refreshes incrementally)."""
    refresh_night_unit_stats(Night.objects.values_list("id", flat=True))
    # Tiles that still show frames are included: their frames may all be gone since.
    tiles = set(Frame.objects.exclude(tile_id=None).values_list("tile_id", flat=True).distinct())
    refresh_tiles(tiles | set(Tile.objects.filter(n_frames__gt=0).values_list("id", flat=True)))
    refresh_targets(Frame.objects.exclude(target_id=None).values_list("target_id", flat=True).distinct())
