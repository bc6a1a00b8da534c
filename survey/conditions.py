"""Night conditions per night x unit, from the weather values the header reader normalised into Frame.

Both eras are already in common units in the Frame columns (seeing arcsec, sky mag/arcsec^2, cloud
fraction 0..1, humidity %, wind m/s; empty cards are None), so one summary covers TCSpy and NINA nights.
The summaries are cached in ``NightUnitStats.conditions`` by the ingest's statistics refresh, so pages
never aggregate frames per request. The same JSON also carries two night figures the status payload
needs and that have no column of their own: flagged pointings per unit and distinct tiles per night.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from django.db.models import Q

from survey.models import Frame, Night, NightUnitStats

#: Frame column -> (label, unit) of every condition kept per night x unit.
MEASURES: dict[str, tuple[str, str]] = {
    "seeing": ("Seeing (FWHM)", "arcsec"),
    "sky_brightness": ("Sky brightness", "mag/arcsec²"),
    "cloud_frac": ("Cloud fraction", "0-1"),
    "humidity": ("Humidity", "%"),
    "wind_speed": ("Wind speed", "m/s"),
}
#: Conditions are those at the science exposures (calibrations are taken in daylight or with the dome shut).
SCIENCE = Q(excluded_by="", present=True, image_type="science")
CHUNK = 200


def summarise(values: list[float]) -> dict[str, float | int] | None:
    """median/min/max/n of the non-empty values; None when there is none."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {
        "median": round(float(statistics.median(vals)), 4),
        "min": round(float(min(vals)), 4),
        "max": round(float(max(vals)), 4),
        "n": len(vals),
    }


class ConditionsTally:
    """The conditions JSON of (night, unit) pairs, from their catalogued science frames fed one by one.

    Fed by :func:`compute_conditions` and by the statistics refresh (survey.stats), which reads each
    touched night's frames once for all its figures."""

    __slots__ = ("values", "counts", "tiles")

    def __init__(self) -> None:
        self.values: dict[tuple[int, int], list[list[float]]] = {}
        self.counts: dict[tuple[int, int], list[int]] = {}
        self.tiles: dict[int, set[int]] = defaultdict(set)

    def add(self, night_id: int, unit_id: int, tile_id: int | None, warning: bool, measures: Sequence[float | None]) -> None:
        """One catalogued science frame; ``measures`` in :data:`MEASURES` order."""
        key = (night_id, unit_id)
        count = self.counts.get(key)
        if count is None:
            count = self.counts[key] = [0, 0]
            self.values[key] = [[] for _ in MEASURES]
        count[0] += 1
        count[1] += bool(warning)
        if tile_id is not None:
            self.tiles[night_id].add(tile_id)
        for bucket, val in zip(self.values[key], measures):
            if val is not None:
                bucket.append(val)

    def docs(self) -> dict[tuple[int, int], dict[str, Any]]:
        out: dict[tuple[int, int], dict[str, Any]] = {}
        for key, (n, warnings) in self.counts.items():
            doc: dict[str, Any] = {"n_frames": n, "pointing_warnings": warnings, "night_tiles": len(self.tiles[key[0]])}
            for col, vals in zip(MEASURES, self.values[key]):
                summary = summarise(vals)
                if summary is not None:
                    doc[col] = summary
            out[key] = doc
        return out


def compute_conditions(night_ids: Iterable[int]) -> dict[tuple[int, int], dict[str, Any]]:
    """Conditions JSON for every (night_id, unit_id) with catalogued science frames on the given nights.

    Keys: one ``{median, min, max, n}`` block per measure that has values, ``n_frames`` (science
    frames considered), ``pointing_warnings`` (of them, pointed beyond the tolerance from their tile)
    and ``night_tiles`` (distinct grid tiles of the whole night, all units: the same on every unit row).
    """
    out: dict[tuple[int, int], dict[str, Any]] = {}
    ids = sorted(set(night_ids))
    for start in range(0, len(ids), CHUNK):
        tally = ConditionsTally()
        rows = Frame.objects.filter(SCIENCE, night_id__in=ids[start : start + CHUNK]).values_list(
            "night_id", "unit_id", "tile_id", "pointing_warning", *MEASURES
        )
        for night_id, unit_id, tile_id, warn, *vals in rows.iterator(chunk_size=5000):
            tally.add(night_id, unit_id, tile_id, warn, vals)
        out.update(tally.docs())
    return out


def refresh_conditions(night_ids: Iterable[int]) -> int:
    """Rewrite ``NightUnitStats.conditions`` of the given nights (rows must exist); returns rows updated."""
    ids = sorted(set(night_ids))
    docs = compute_conditions(ids)
    changed = []
    for start in range(0, len(ids), CHUNK):
        for row in NightUnitStats.objects.filter(night_id__in=ids[start : start + CHUNK]):
            doc = docs.get((row.night_id, row.unit_id), {})
            if row.conditions != doc:
                row.conditions = doc
                changed.append(row)
    NightUnitStats.objects.bulk_update(changed, ["conditions"], batch_size=500)
    return len(changed)


def night_conditions(night: Night) -> dict[str, Any]:
    """Conditions of one night for its page: per-unit summaries and per-frame time series."""
    summaries = {
        unit: cond
        for unit, cond in NightUnitStats.objects.filter(night=night).order_by("unit__name").values_list("unit__name", "conditions")
    }
    # Per unit one time axis (ms since the epoch, which plotly reads as dates) and one value list
    # per measure with None where a card was empty.
    series: dict[str, dict[str, list]] = {}
    rows = (
        Frame.objects.filter(SCIENCE, night=night)
        .exclude(date_obs=None)
        .order_by("date_obs")
        .values_list("unit__name", "date_obs", *MEASURES)
    )
    for unit, when, *vals in rows:
        per_unit = series.get(unit)
        if per_unit is None:
            per_unit = series[unit] = {"t": [], **{m: [] for m in MEASURES}}
        per_unit["t"].append(round(when.timestamp() * 1000))
        for measure, val in zip(MEASURES, vals):
            per_unit[measure].append(val)
    has_values = any(m in cond for cond in summaries.values() for m in MEASURES)
    return {
        "measures": [{"key": k, "label": label, "unit": unit} for k, (label, unit) in MEASURES.items()],
        "summaries": summaries,
        "series": series,
        "has_values": has_values,
    }


def conditions_series(n_nights: int = 90) -> dict[str, Any]:
    """Night-by-night conditions of the last ``n_nights`` nights with science, for the dashboard.

    Per night and measure: the median of the units' medians, and the lowest minimum / highest
    maximum over units (the spread of the night). Reads only NightUnitStats.
    """
    dates = list(
        NightUnitStats.objects.filter(n_science__gt=0)
        .values_list("night__date", flat=True)
        .distinct()
        .order_by("-night__date")[:n_nights]
    )
    if not dates:
        return {"nights": [], "measures": [], "series": {}}
    per_night: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for night_date, cond in NightUnitStats.objects.filter(night__date__in=dates).values_list("night__date", "conditions"):
        if cond:
            per_night[night_date].append(cond)
    nights = sorted(dates)
    series: dict[str, dict[str, list]] = {}
    for measure in MEASURES:
        med, lo, hi = [], [], []
        for d in nights:
            blocks = [c[measure] for c in per_night.get(d, []) if isinstance(c.get(measure), dict)]
            if blocks:
                med.append(round(float(statistics.median(b["median"] for b in blocks)), 4))
                lo.append(min(b["min"] for b in blocks))
                hi.append(max(b["max"] for b in blocks))
            else:
                med.append(None)
                lo.append(None)
                hi.append(None)
        series[measure] = {"median": med, "min": lo, "max": hi}
    return {
        "nights": [d.isoformat() for d in nights],
        "measures": [{"key": k, "label": label, "unit": unit} for k, (label, unit) in MEASURES.items()],
        "series": series,
    }
