"""Sky-position searches as plain SQL expressions, so filtering and page counts happen in the database.

No q3c or PostGIS: the same code runs on PostgreSQL and SQLite (Django registers SIN, COS, RADIANS, POWER,
MOD on SQLite). Every search is two steps:

1. an index-friendly prefilter on the `(dec, ra)` index: a declination band plus an RA window that is
   widened by 1/cos(dec) and split in two where it wraps through RA 0/360; a band that reaches a pole keeps
   every RA;
2. the exact test on the prefiltered rows: haversine distance for a cone, a gnomonic projection for
   "point inside the frame's field", even-odd ray casting for a polygon.

Coordinates are degrees (ICRS); galactic input is converted with astropy.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Abs, Cos, Mod, Power, Radians, Sin

# One 7DT frame covers 1.34 deg (RA axis) x 0.90 deg (Dec axis): survey-status.md, section 2.
FIELD_WIDTH_DEG = 1.34
FIELD_HEIGHT_DEG = 0.90
FIELD_AREA_SQ_DEG = round(FIELD_WIDTH_DEG * FIELD_HEIGHT_DEG, 4)
FIELD_HALF_DIAGONAL_DEG = math.degrees(
    math.acos(math.cos(math.radians(FIELD_WIDTH_DEG / 2)) * math.cos(math.radians(FIELD_HEIGHT_DEG / 2)))
)
MAX_POLYGON_VERTICES = 100
_EPS = 1e-9  # degrees of slack on prefilter bounds (rounding only; the exact test decides)


class SkyError(ValueError):
    """A sky-search parameter that cannot be honoured; the message is shown to the API client."""


@dataclass(frozen=True)
class Cone:
    ra: float
    dec: float
    radius: float


@dataclass(frozen=True)
class FieldPoint:
    """A position that must fall inside the frame's (or tile's) field of view."""

    ra: float
    dec: float


@dataclass(frozen=True)
class Polygon:
    """A ring in (ra, dec), RA unwrapped to be continuous (it may run below 0 or above 360)."""

    vertices: tuple[tuple[float, float], ...]


def galactic_to_icrs(lon: Sequence[float] | float, lat: Sequence[float] | float):
    """(l, b) -> (ra, dec) in degrees, scalars or sequences alike."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    c = SkyCoord(l=lon, b=lat, unit=u.deg, frame="galactic").icrs
    return c.ra.deg, c.dec.deg


def icrs_to_galactic(ra: Sequence[float], dec: Sequence[float]) -> tuple[list[float | None], list[float | None]]:
    """(ra, dec) -> (l, b) lists in degrees; a missing coordinate gives None (one astropy call per page)."""
    idx = [i for i, (a, d) in enumerate(zip(ra, dec)) if a is not None and d is not None]
    lon: list[float | None] = [None] * len(ra)
    lat: list[float | None] = [None] * len(ra)
    if idx:
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        g = SkyCoord(ra=[ra[i] for i in idx], dec=[dec[i] for i in idx], unit=u.deg, frame="icrs").galactic
        for k, i in enumerate(idx):
            lon[i], lat[i] = round(float(g.l.deg[k]), 6), round(float(g.b.deg[k]), 6)
    return lon, lat


# -- prefilter ---------------------------------------------------------------------------------
def ra_window(ra: float, dec: float, radius: float) -> tuple[float, float] | None:
    """RA interval (may extend below 0 / above 360) holding every point within `radius`; None = all RA."""
    if radius >= 90 or abs(dec) + radius >= 90 - _EPS:
        return None
    half = math.degrees(math.asin(min(1.0, math.sin(math.radians(radius)) / math.cos(math.radians(dec)))))
    if half >= 180 - _EPS:
        return None
    return ra - half - _EPS, ra + half + _EPS


def ra_interval_q(lo: float, hi: float, ra_field: str = "ra") -> Q:
    """RA within [lo, hi] where the interval may wrap through 0/360 (hi - lo < 360)."""
    if hi - lo >= 360:
        return Q()
    if lo < 0:
        return Q(**{f"{ra_field}__gte": lo + 360}) | Q(**{f"{ra_field}__lte": hi})
    if hi >= 360:
        return Q(**{f"{ra_field}__gte": lo}) | Q(**{f"{ra_field}__lte": hi - 360})
    return Q(**{f"{ra_field}__gte": lo, f"{ra_field}__lte": hi})


def cone_prefilter_q(ra: float, dec: float, radius: float, ra_field: str = "ra", dec_field: str = "dec") -> Q:
    q = Q(**{f"{dec_field}__gte": max(-90.0, dec - radius - _EPS), f"{dec_field}__lte": min(90.0, dec + radius + _EPS)})
    window = ra_window(ra, dec, radius)
    if window is not None:
        q &= ra_interval_q(*window, ra_field=ra_field)
    return q


# -- exact tests -------------------------------------------------------------------------------
def _haversine(ra: float, dec: float, ra_field: str, dec_field: str):
    """hav(distance) between each row and (ra, dec); compared with hav(radius), no inverse trig needed."""
    d_dec = Radians(F(dec_field) - Value(dec)) / Value(2.0)
    d_ra = Radians(F(ra_field) - Value(ra)) / Value(2.0)
    return Power(Sin(d_dec), Value(2)) + Value(math.cos(math.radians(dec))) * Cos(Radians(F(dec_field))) * Power(
        Sin(d_ra), Value(2)
    )


def apply_cone(qs: QuerySet, cone: Cone, ra_field: str = "ra", dec_field: str = "dec") -> QuerySet:
    if cone.radius >= 180:
        return qs.exclude(**{f"{ra_field}__isnull": True}).exclude(**{f"{dec_field}__isnull": True})
    limit = math.sin(math.radians(cone.radius) / 2) ** 2
    qs = qs.filter(cone_prefilter_q(cone.ra, cone.dec, cone.radius, ra_field, dec_field))
    return qs.alias(_cone_hav=_haversine(cone.ra, cone.dec, ra_field, dec_field)).filter(_cone_hav__lte=limit + 1e-15)


def apply_field_point(qs: QuerySet, point: FieldPoint, ra_field: str = "ra", dec_field: str = "dec") -> QuerySet:
    """Rows whose field (FIELD_WIDTH x FIELD_HEIGHT centred on the row, position angle 0) contains the point.

    Gnomonic projection of the point onto each row's tangent plane: xi, eta must lie within the half
    sizes. Written with products instead of divisions (cos c > 0 is required: the point is in front).
    """
    qs = qs.filter(cone_prefilter_q(point.ra, point.dec, FIELD_HALF_DIAGONAL_DEG + 1e-6, ra_field, dec_field))
    sin_d, cos_d = math.sin(math.radians(point.dec)), math.cos(math.radians(point.dec))
    d_ra = Radians(Value(point.ra) - F(ra_field))
    dec_f = Radians(F(dec_field))
    cos_c = Sin(dec_f) * Value(sin_d) + Cos(dec_f) * Value(cos_d) * Cos(d_ra)
    xi = Value(cos_d) * Sin(d_ra)
    eta = Cos(dec_f) * Value(sin_d) - Sin(dec_f) * Value(cos_d) * Cos(d_ra)
    tx = math.tan(math.radians(FIELD_WIDTH_DEG / 2))
    ty = math.tan(math.radians(FIELD_HEIGHT_DEG / 2))
    return qs.alias(_fp_c=cos_c, _fp_x=Abs(xi) - Value(tx) * cos_c, _fp_y=Abs(eta) - Value(ty) * cos_c).filter(
        _fp_c__gt=0, _fp_x__lte=0, _fp_y__lte=0
    )


def parse_polygon(raw: str | Sequence, galactic: bool = False) -> Polygon:
    """A polygon from the API: a JSON ring `[[lon, lat], ...]` or repeated flat values lon, lat, lon, lat.

    The ring may be closed or not. RA is unwrapped along the ring so an edge never jumps by more than
    180 deg; a ring that encloses a pole (RA does not come back to its start) is refused.
    """
    points: list
    if isinstance(raw, str):
        try:
            points = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SkyError(f"polygon is not valid JSON: {exc.msg}") from None
    else:
        values = list(raw)
        parsed = []
        for v in values:
            try:
                parsed.append(json.loads(v) if isinstance(v, str) else v)
            except json.JSONDecodeError:
                raise SkyError(f"polygon value {v!r} is not a number or [lon, lat] pair") from None
        if parsed and all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in parsed):
            if len(parsed) % 2:
                raise SkyError("polygon given as repeated values needs an even count (lon, lat, lon, lat, ...)")
            points = [parsed[i : i + 2] for i in range(0, len(parsed), 2)]
        elif len(parsed) == 1 and isinstance(parsed[0], list):
            points = parsed[0]
        else:
            points = parsed
    if not isinstance(points, list):
        raise SkyError("polygon must be a list of [lon, lat] pairs")
    ring: list[tuple[float, float]] = []
    for p in points:
        if (
            not isinstance(p, (list, tuple))
            or len(p) != 2
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in p)
        ):
            raise SkyError("polygon must be a list of [lon, lat] pairs of finite numbers")
        lon, lat = float(p[0]), float(p[1])
        if not -90 <= lat <= 90:
            raise SkyError(f"polygon latitude {lat} is outside -90..90")
        ring.append((lon, lat))
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring.pop()
    if len(set(ring)) < 3:
        raise SkyError("polygon needs at least 3 distinct vertices")
    if len(ring) > MAX_POLYGON_VERTICES:
        raise SkyError(f"polygon has {len(ring)} vertices; at most {MAX_POLYGON_VERTICES} are supported")
    if galactic:
        ras, decs = galactic_to_icrs([p[0] for p in ring], [p[1] for p in ring])
        ring = [(float(a), float(d)) for a, d in zip(ras, decs)]
    unwrapped = [(ring[0][0] % 360.0, ring[0][1])]
    for lon, lat in ring[1:] + ring[:1]:
        prev = unwrapped[-1][0]
        unwrapped.append((prev + ((lon - prev + 180.0) % 360.0 - 180.0), lat))
    if abs(unwrapped[-1][0] - unwrapped[0][0]) > 1e-6:
        raise SkyError("polygon encloses a celestial pole; use a cone search (ra, dec, radius) there")
    return Polygon(tuple(unwrapped[:-1]))


def _inside_q(vertices: Sequence[tuple[float, float]], ra_field: str, dec_field: str):
    """Even-odd ray casting (towards +RA) as a SQL expression: 1 inside, 0 outside."""
    crossings = None
    n = len(vertices)
    for i in range(n):
        (x1, y1), (x2, y2) = vertices[i], vertices[(i + 1) % n]
        if y1 == y2:
            continue
        lo, hi = (y1, y2) if y1 < y2 else (y2, y1)
        slope = (x2 - x1) / (y2 - y1)
        cond = Q(**{f"{dec_field}__gte": lo, f"{dec_field}__lt": hi}) & Q(
            **{f"{ra_field}__lt": F(dec_field) * Value(slope) + Value(x1 - slope * y1)}
        )
        term = Case(When(cond, then=Value(1)), default=Value(0), output_field=IntegerField())
        crossings = term if crossings is None else crossings + term
    return Mod(crossings, Value(2), output_field=IntegerField())


def apply_polygon(qs: QuerySet, polygon: Polygon, ra_field: str = "ra", dec_field: str = "dec") -> QuerySet:
    """Rows whose (ra, dec) lies inside the ring (edges straight in ra/dec: fine for fields of a few deg)."""
    xs = [v[0] for v in polygon.vertices]
    ys = [v[1] for v in polygon.vertices]
    lo, hi = min(xs), max(xs)
    qs = qs.filter(
        ra_interval_q(lo - _EPS, hi + _EPS, ra_field)
        & Q(**{f"{dec_field}__gte": min(ys) - _EPS, f"{dec_field}__lte": max(ys) + _EPS})
    )
    # The ring may run below 0 or above 360 after unwrapping: test the copies shifted by -360/+360 too.
    shifts = [0.0] + ([360.0] if lo < 0 else []) + ([-360.0] if hi >= 360 else [])
    inside = Q()
    aliases = {}
    for k, shift in enumerate(shifts):
        name = f"_poly_in{k}"
        aliases[name] = _inside_q([(x + shift, y) for x, y in polygon.vertices], ra_field, dec_field)
        inside |= Q(**{name: 1})
    return qs.alias(**aliases).filter(inside)
