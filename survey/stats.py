"""Keep the cached statistics current for what an ingest touched (never recomputed per request)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum

from survey.models import FileProblem, Frame, NightFolder, NightUnitStats, Target, Tile, TileFilterProgress

CHUNK = 500
CATALOGUED = Q(excluded_by="", present=True)


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ids = sorted(set(ids))
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def refresh_night_unit_stats(night_ids: Iterable[int]) -> int:
    """Recompute NightUnitStats rows for the given nights (all units); returns rows written."""
    written = 0
    for part in _chunks(night_ids):
        rows: dict[tuple[int, int], dict] = defaultdict(lambda: {"by_filter": {}})
        frames = Frame.objects.filter(night_id__in=part)
        for r in frames.filter(CATALOGUED).values("night_id", "unit_id", "image_type").annotate(
            n=Count("id"), size=Sum("file_size"), exp=Sum("exptime")
        ):
            row = rows[(r["night_id"], r["unit_id"])]
            row[f"n_{r['image_type']}"] = r["n"]
            row["total_bytes"] = row.get("total_bytes", 0) + (r["size"] or 0)
            if r["image_type"] == "science":
                row["science_exptime"] = r["exp"] or 0.0
        for r in frames.filter(CATALOGUED).values("night_id", "unit_id", "image_type", "filter").annotate(
            n=Count("id"), exp=Sum("exptime")
        ):
            by = rows[(r["night_id"], r["unit_id"])]["by_filter"].setdefault(r["filter"] or "-", {})
            by[r["image_type"]] = {"n": r["n"], "exptime": round(r["exp"] or 0.0, 3)}
        for r in frames.filter(CATALOGUED, image_type="science").values("night_id", "unit_id").annotate(
            tiles=Count("tile_id", distinct=True)
        ):
            rows[(r["night_id"], r["unit_id"])]["n_tiles"] = r["tiles"]
        for r in frames.exclude(excluded_by="").values("night_id", "unit_id").annotate(n=Count("id")):
            rows[(r["night_id"], r["unit_id"])]["n_excluded"] = r["n"]
        for r in frames.filter(present=False).values("night_id", "unit_id").annotate(n=Count("id")):
            rows[(r["night_id"], r["unit_id"])]["n_missing"] = r["n"]
        for r in (
            FileProblem.objects.filter(resolved=False, severity="error", folder__night_id__in=part)
            .values("folder__night_id", "folder__unit_id")
            .annotate(n=Count("id"))
        ):
            rows[(r["folder__night_id"], r["folder__unit_id"])]["n_problems"] = r["n"]
        for folder in NightFolder.objects.filter(night_id__in=part).values("night_id", "unit_id"):
            rows[(folder["night_id"], folder["unit_id"])]  # a folder with nothing yet still gets a row
        with transaction.atomic():
            NightUnitStats.objects.filter(night_id__in=part).delete()
            NightUnitStats.objects.bulk_create(
                [NightUnitStats(night_id=n, unit_id=u, **values) for (n, u), values in rows.items()]
            )
        written += len(rows)
    return written


def _science(**filters):
    return Frame.objects.filter(CATALOGUED, image_type="science", **filters)


def refresh_tiles(tile_ids: Iterable[int]) -> None:
    """Tile totals and tile x filter progress for the touched tiles."""
    for part in _chunks(tile_ids):
        totals = {
            r["tile_id"]: r
            for r in _science(tile_id__in=part).values("tile_id").annotate(
                n=Count("id"), exp=Sum("exptime"), nights=Count("night_id", distinct=True),
                filters=Count("filter", distinct=True), first=Min("night__date"), last=Max("night__date"),
            )
        }
        programs: dict[int, set[str]] = defaultdict(set)
        for r in _science(tile_id__in=part).exclude(program="").values("tile_id", "program").distinct():
            programs[r["tile_id"]].add(r["program"])
        tiles = list(Tile.objects.filter(id__in=part))
        for tile in tiles:
            r = totals.get(tile.id, {})
            tile.n_frames = r.get("n", 0)
            tile.total_exptime = r.get("exp") or 0.0
            tile.n_nights = r.get("nights", 0)
            tile.n_filters = r.get("filters", 0)
            tile.first_night, tile.last_night = r.get("first"), r.get("last")
            tile.programs = sorted(programs.get(tile.id, ()))
        progress = [
            TileFilterProgress(
                tile_id=r["tile_id"], filter=r["filter"] or "-", n_frames=r["n"], total_exptime=r["exp"] or 0.0,
                n_nights=r["nights"], first_night=r["first"], last_night=r["last"],
            )
            for r in _science(tile_id__in=part).values("tile_id", "filter").annotate(
                n=Count("id"), exp=Sum("exptime"), nights=Count("night_id", distinct=True),
                first=Min("night__date"), last=Max("night__date"),
            )
        ]
        with transaction.atomic():
            Tile.objects.bulk_update(
                tiles, ["n_frames", "total_exptime", "n_nights", "n_filters", "first_night", "last_night", "programs"]
            )
            TileFilterProgress.objects.filter(tile_id__in=part).delete()
            TileFilterProgress.objects.bulk_create(progress)


def refresh_targets(target_ids: Iterable[int]) -> None:
    for part in _chunks(target_ids):
        totals = {
            r["target_id"]: r
            for r in _science(target_id__in=part).values("target_id").annotate(
                n=Count("id"), exp=Sum("exptime"), nights=Count("night_id", distinct=True),
                first=Min("night__date"), last=Max("night__date"),
            )
        }
        filters: dict[int, set[str]] = defaultdict(set)
        for r in _science(target_id__in=part).values("target_id", "filter").distinct():
            filters[r["target_id"]].add(r["filter"])
        targets = list(Target.objects.filter(id__in=part))
        for t in targets:
            r = totals.get(t.id, {})
            t.n_frames, t.total_exptime, t.n_nights = r.get("n", 0), r.get("exp") or 0.0, r.get("nights", 0)
            t.first_night, t.last_night = r.get("first"), r.get("last")
            t.filters = sorted(f for f in filters.get(t.id, ()) if f)
        Target.objects.bulk_update(targets, ["n_frames", "total_exptime", "n_nights", "first_night", "last_night", "filters"])


def refresh_all() -> None:
    """Recompute every cached statistic (after a bulk repair; the ingest refreshes incrementally)."""
    from survey.models import Night

    refresh_night_unit_stats(Night.objects.values_list("id", flat=True))
    refresh_tiles(Frame.objects.exclude(tile_id=None).values_list("tile_id", flat=True).distinct())
    refresh_targets(Frame.objects.exclude(target_id=None).values_list("target_id", flat=True).distinct())
