"""Frame search as one query builder, shared by the portal's result table and its CSV export.

Every filter is written so that PostgreSQL can answer it from an index on a 3 M-row frame table:
small lookup tables (units, nights, targets, tiles) are resolved to id sub-queries instead of joins,
the object search is an exact match (wildcards are allowed but documented as slower), and the cone
search narrows on the ``(dec, ra)`` index with a declination band and an RA window before the exact
spherical distance (haversine) is evaluated in SQL. Counting is capped (see :class:`CappedPaginator`):
an exact ``COUNT(*)`` over millions of rows costs seconds on PostgreSQL.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone as dt_timezone
from functools import cached_property
from typing import Any, Iterator

from django.core.paginator import Paginator
from django.db.models import F, FloatField, Q, QuerySet, Value
from django.db.models.functions import ASin, Cos, Degrees, Least, Power, Radians, Sin, Sqrt

from rawdata.nightdate import NIGHT_OFFSET
from survey.models import Frame, Night, Target, Tile, Unit

#: The paginator counts at most this many rows; beyond it the page says "more than".
COUNT_CAP = 10_000
#: Cone searches wider than this are refused (the band prefilter stops being selective).
MAX_RADIUS_DEG = 10.0

#: Sort keys offered to users -> model ordering (an `id` tie-breaker keeps pages stable).
SORTS: dict[str, tuple[str, ...]] = {
    "date": ("date_obs", "id"),
    "unit": ("unit__name", "date_obs", "id"),
    "type": ("image_type", "date_obs", "id"),
    "filter": ("filter", "date_obs", "id"),
    "exptime": ("exptime", "id"),
    "object": ("object", "date_obs", "id"),
    "airmass": ("airmass", "id"),
    "filename": ("filename", "id"),
    "distance": ("_hav", "id"),
}
DEFAULT_SORT = "-date"

#: Columns of the CSV export, in order: (header, queryset field).
CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("filename", "filename"),
    ("unit", "unit__name"),
    ("night", "night__date"),
    ("image_type", "image_type"),
    ("excluded_by", "excluded_by"),
    ("object", "object"),
    ("program", "program"),
    ("filter", "filter"),
    ("exptime", "exptime"),
    ("date_obs", "date_obs"),
    ("mjd", "mjd"),
    ("ra", "ra"),
    ("dec", "dec"),
    ("airmass", "airmass"),
    ("gain", "gain"),
    ("binning", "binning"),
    ("ccd_temp", "ccd_temp"),
    ("image_id", "image_id"),
    ("file_size", "file_size"),
    ("checksum", "checksum"),
    ("present", "present"),
    ("path", "path"),
)


@dataclass(frozen=True)
class Cone:
    """A circle on the sky, degrees (ICRS), matched against the telescope pointing (RA/DEC cards)."""

    ra: float
    dec: float
    radius: float


@dataclass
class FrameFilter:
    """What the user asked for; every field is optional. Built by the search form, or directly in code."""

    date_from: date | None = None
    date_to: date | None = None
    night: date | None = None
    units: list[str] = field(default_factory=list)
    image_types: list[str] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    object: str = ""
    exptime_min: float | None = None
    exptime_max: float | None = None
    cone: Cone | None = None
    include_excluded: bool = False
    sort: str = DEFAULT_SORT


# ---------------------------------------------------------------------------------------- cone


@dataclass(frozen=True)
class ConeBounds:
    """Index-friendly box around a cone: a declination band and zero, one or two RA intervals."""

    dec_min: float
    dec_max: float
    ra_ranges: tuple[tuple[float, float], ...] | None  # None: every RA (the cone reaches a pole)


def cone_bounds(ra: float, dec: float, radius: float) -> ConeBounds:
    """The smallest (dec band, RA window) box containing the cone, RA split where it wraps at 0/360.

    The RA half-width asin(sin r / cos dec) is exact for a circle on the sphere (the circle's
    extreme longitudes); near a pole the circle contains every RA and no RA window is used.
    """
    ra = ra % 360.0
    dec_min, dec_max = max(-90.0, dec - radius), min(90.0, dec + radius)
    if abs(dec) + radius >= 89.999:
        return ConeBounds(dec_min, dec_max, None)
    ratio = math.sin(math.radians(radius)) / math.cos(math.radians(dec))
    if ratio >= 1.0:
        return ConeBounds(dec_min, dec_max, None)
    half = math.degrees(math.asin(ratio)) + 1e-9
    lo, hi = ra - half, ra + half
    if lo < 0.0:
        ranges = ((0.0, hi), (lo + 360.0, 360.0))
    elif hi > 360.0:
        ranges = ((lo, 360.0), (0.0, hi - 360.0))
    else:
        ranges = ((lo, hi),)
    return ConeBounds(dec_min, dec_max, ranges)


def _haversine(ra0: float, dec0: float):
    """SQL expression for hav(distance) between (ra, dec) and the centre: sin²(Δδ/2) + cosδ cosδ0 sin²(Δα/2)."""
    half_ddec = Sin(Radians(F("dec") - Value(dec0)) / Value(2.0))
    half_dra = Sin(Radians(F("ra") - Value(ra0)) / Value(2.0))
    return Power(half_ddec, 2) + Cos(Radians(F("dec"))) * Value(math.cos(math.radians(dec0))) * Power(half_dra, 2)


def apply_cone(qs: QuerySet[Frame], cone: Cone) -> QuerySet[Frame]:
    """Prefilter on the (dec, ra) index, then keep rows whose exact spherical distance <= radius."""
    bounds = cone_bounds(cone.ra, cone.dec, cone.radius)
    qs = qs.filter(dec__gte=bounds.dec_min, dec__lte=bounds.dec_max)
    if bounds.ra_ranges is not None:
        ra_q = Q()
        for lo, hi in bounds.ra_ranges:
            ra_q |= Q(ra__gte=lo, ra__lte=hi)
        qs = qs.filter(ra_q)
    limit = math.sin(math.radians(cone.radius) / 2.0) ** 2
    hav = _haversine(cone.ra % 360.0, cone.dec)
    qs = qs.annotate(_hav=hav).filter(_hav__lte=limit)
    # hav can exceed 1 by rounding only; clamp before asin.
    return qs.annotate(
        distance_deg=Degrees(Value(2.0) * ASin(Sqrt(Least(F("_hav"), Value(1.0)))), output_field=FloatField())
    )


# ------------------------------------------------------------------------------------- filters


def split_list(value: str) -> list[str]:
    """'m650, m675 r' -> ['m650', 'm675', 'r'] (commas and/or spaces)."""
    return [part for part in re.split(r"[\s,]+", value.strip()) if part]


def _object_q(text: str) -> Q:
    """Exact OBJECT, or a target/tile of that name; '*' and '?' are wildcards (slower: no index)."""
    text = text.strip()
    if "*" in text or "?" in text:
        pattern = "^" + re.escape(text).replace(r"\*", ".*").replace(r"\?", ".") + "$"
        return Q(object__iregex=pattern)
    q = Q(object=text)
    target_ids = _ids(Target.objects.filter(name=text))
    if target_ids:
        q |= Q(target_id__in=target_ids)
    tile_ids = _ids(Tile.objects.filter(name=text.upper()))
    if tile_ids:
        q |= Q(tile_id__in=tile_ids)
    return q


def _ids(qs: QuerySet) -> list[int]:
    """Ids of a small table's rows as a literal list.

    A literal list (not a sub-query) lets PostgreSQL estimate how selective the frame filter is;
    with a sub-query it guesses, and may walk the whole date index for an `ORDER BY ... LIMIT`.
    """
    return list(qs.values_list("id", flat=True))


def frame_queryset(f: FrameFilter) -> QuerySet[Frame]:
    """The frames matching `f`, in the requested order (not yet sliced)."""
    qs = Frame.objects.all()
    if not f.include_excluded:
        qs = qs.filter(excluded_by="")
    nights = Night.objects.all()
    if f.night:
        nights = nights.filter(date=f.night)
    if f.date_from:
        nights = nights.filter(date__gte=f.date_from)
    if f.date_to:
        nights = nights.filter(date__lte=f.date_to)
    if f.night or f.date_from or f.date_to:
        night_ids = _ids(nights)
        qs = qs.filter(night_id__in=night_ids)
        qs = _bound_date_obs(qs, f, night_ids)
    if f.units:
        qs = qs.filter(unit_id__in=_ids(Unit.objects.filter(name__in=f.units)))
    if f.image_types:
        qs = qs.filter(image_type__in=f.image_types)
    if f.filters:
        qs = qs.filter(filter__in=f.filters)
    if f.object:
        qs = qs.filter(_object_q(f.object))
    if f.exptime_min is not None:
        qs = qs.filter(exptime__gte=f.exptime_min)
    if f.exptime_max is not None:
        qs = qs.filter(exptime__lte=f.exptime_max)
    if f.cone is not None:
        qs = apply_cone(qs, f.cone)
    return qs.order_by(*ordering(f.sort, has_cone=f.cone is not None))


def _bound_date_obs(qs: QuerySet[Frame], f: FrameFilter, night_ids: list[int]) -> QuerySet[Frame]:
    """Add the DATE-OBS window that the night range implies, so the date indexes can be range-scanned.

    The ingest sets a frame's night from DATE-OBS (UTC - 15 h), so for frames with a DATE-OBS the
    window is implied by the night filter and changes nothing; it only lets PostgreSQL read the
    (date_obs, id) / (filter, date_obs) / (image_type, date_obs) indexes between two bounds instead
    of walking them from the newest frame. A frame without DATE-OBS takes its folder's date, so when
    such frames exist in these nights the window is left out (slower, still exact).
    """
    if Frame.objects.filter(night_id__in=night_ids, date_obs__isnull=True).exists():
        return qs
    first = max(d for d in (f.night, f.date_from) if d) if (f.night or f.date_from) else None
    last = min(d for d in (f.night, f.date_to) if d) if (f.night or f.date_to) else None
    if first is not None:
        qs = qs.filter(date_obs__gte=_night_start(first))
    if last is not None:
        qs = qs.filter(date_obs__lt=_night_start(last + timedelta(days=1)))
    return qs


def _night_start(night: date) -> datetime:
    """The first UTC instant that belongs to `night` (rawdata.nightdate: night = date(UTC - 15 h))."""
    return datetime.combine(night, time(0), tzinfo=dt_timezone.utc) + NIGHT_OFFSET


def ordering(sort: str, *, has_cone: bool) -> list[str]:
    """Model ordering for a sort key such as '-date'; unknown keys fall back to newest first."""
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORTS or (key == "distance" and not has_cone):
        desc, key = True, DEFAULT_SORT.lstrip("-")
    return [("-" + name) if desc else name for name in SORTS[key]]


# ------------------------------------------------------------------------------------- counting


class CappedPaginator(Paginator):
    """A paginator that counts at most `cap` rows (`LIMIT cap+1` in a sub-query) and says so.

    An exact COUNT over millions of rows takes seconds on PostgreSQL; users can narrow the search
    or export the full result as CSV (the export is never capped).
    """

    def __init__(self, object_list: QuerySet, per_page: int, cap: int | None = None, **kwargs: Any) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.cap = COUNT_CAP if cap is None else cap

    @cached_property
    def _raw_count(self) -> int:
        return self.object_list.order_by().values("pk")[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return min(self._raw_count, self.cap)

    @property
    def capped(self) -> bool:
        """True when more than `cap` rows match: the count and the last page are lower bounds."""
        return self._raw_count > self.cap


# ------------------------------------------------------------------------------------- CSV


def csv_rows(qs: QuerySet[Frame], chunk_size: int = 2000) -> Iterator[list[Any]]:
    """Header row, then one row per frame, read with a server-side cursor (never the whole result in memory)."""
    yield [name for name, _ in CSV_COLUMNS]
    fields = [col for _, col in CSV_COLUMNS]
    for row in qs.values_list(*fields).iterator(chunk_size=chunk_size):
        yield [_csv_value(v) for v in row]


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
