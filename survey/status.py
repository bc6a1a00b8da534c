"""The survey's aggregate payloads: `/status/` and `/tiles/` for the 7DS website, and the survey map.

Everything here reads the cached statistics (NightUnitStats, Tile, TileFilterProgress, Target) that
the ingest keeps current, never the frame table as a whole, and the results are stored as
PublicSnapshot rows: refreshed after every ingest (``refresh_snapshots``) and, when a request finds
one older than ``STATUS_MAX_AGE_S`` (15 minutes), recomputed behind that request while it gets the
stored one. The definitions of every figure are in ``docs/survey-status.md`` and in the ``notes`` of
the `/status/` payload itself.
"""
from __future__ import annotations

import json
import logging
import re
import statistics
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import Count, F, IntegerField, Max, Q, Sum, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from rawdata import tiles as grid
from survey.models import Frame, NightUnitStats, PublicSnapshot, Target, Tile, TileFilterProgress, Unit

log = logging.getLogger(__name__)

STATUS_VERSION = "0.6"
SOURCE = "7DT GW Portal"
#: Units in the array's design (7DT01..7DT20).
DESIGN_UNITS = 20
RIS_TILE_NAME_BOUND = grid.tile_name(grid.EXTENSION_FIRST_INDEX)  # "T25472"
RIS_TILES_DEFINED = grid.RIS_LAST_INDEX + 1  # T00000..T25471
CATALOGUED = Q(excluded_by="", present=True)

#: Public LVK superevent ids: S + 6 digits (YYMMDD) + 1-3 lowercase letters.
PUBLIC_SUPEREVENT = re.compile(r"^S\d{6}[a-z]{1,3}$")
#: Event identifiers a ToO target name starts with (the rest, after '_', names a field or pointing).
_EVENT_ID = re.compile(
    r"^(?:[GM]?S\d{6}[a-z]{1,3}|GW\d{6}(?:_\d{6})?|GRB\s?\d{6}[A-Z]?|(?:AT|SN)\s?\d{4}[a-z]{1,3}|SN\s?\d{4}[A-Z]"
    r"|EP\d{6}[a-z]?|FRB\s?\d{6,8}[A-Z]?|ZTF\d{2}[a-z]{7}|IceCube-\d{6}[A-Z]?)(?=$|_)"
)
_GW_EVENT = re.compile(r"^(?:[GM]?S\d{6}[a-z]{1,3}|GW\d{6}(?:_\d{6})?)$")

def max_age() -> timedelta:
    return timedelta(seconds=float(settings.GWPORTAL.get("STATUS_MAX_AGE_S", 900)))


# ----------------------------------------------------------------------------- small helpers


def summarize(values: Iterable[float], digits: int = 1) -> dict[str, Any]:
    """{n, mean, median, mode, min, max} of the values; the mode is over values rounded to integers.

    Ties of the mode go to the smallest value. Empty input gives n = 0 and nulls.
    """
    vals = [float(v) for v in values]
    if not vals:
        return {"n": 0, "mean": None, "median": None, "mode": None, "min": None, "max": None}
    counts = Counter(int(round(v)) for v in vals)
    top = max(counts.values())
    return {
        "n": len(vals),
        "mean": round(statistics.fmean(vals), digits),
        "median": round(float(statistics.median(vals)), digits),
        "mode": min(v for v, c in counts.items() if c == top),
        "min": _num(min(vals), digits),
        "max": _num(max(vals), digits),
    }


def _num(value: float, digits: int) -> float | int:
    rounded = round(value, digits)
    return int(rounded) if float(rounded).is_integer() and digits <= 1 else rounded


def event_id(target_name: str) -> str:
    """The event a ToO target belongs to: its leading event identifier, else the whole name."""
    m = _EVENT_ID.match(target_name.strip())
    return m.group(0) if m else target_name.strip()


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


# ----------------------------------------------------------------------------- /status/


NOTES = [
    "An observing night is a night (local evening date, UTC of exposure start minus 15 h) with catalogued science frames; "
    "observing_nights and nightly.n_nights agree.",
    "Science frames are catalogued frames of image type science (IMAGETYP LIGHT or equivalent), all programmes, "
    "excluding focus/test frames and files gone from disk; exposure_hours is the sum of their exposure times.",
    "Each nightly block uses the observing nights, all units together, and leaves out nights where that metric is zero; "
    "n is the number of nights the block used and mode is taken over values rounded to integers.",
    "tiles_per_night counts distinct 7DS grid tiles (T#####) with science frames on the night, whatever the programme.",
    "raw_gb_per_night counts every catalogued raw frame of the night (science and calibration frames), in 10^9 bytes.",
    "A tile counts as observed once it has a catalogued science frame of any programme. RIS coverage counts tiles of "
    "the original grid (T00000-T25471); the _extended fields count the whole grid including the northern extension "
    "(T25472 and up) and tile names beyond the computed grid.",
    "IMS cycles are distinct observing nights per IMS tile (a tile with science frames of OBJTYPE IMS), counting "
    "every night the tile was observed.",
    "followup_events counts distinct ToO events (ToO targets grouped by their leading event id); gw_campaigns counts "
    "the gravitational-wave events among them (LVK superevents, including mock/test ones, and GW names); gw_event_ids "
    "lists only public LVK superevent ids (S + 6 digits + letters). No other ToO target is named.",
    "telescopes.total is the array's design (20 units) or the number of units seen, if larger; online counts units "
    "with frames on any of the most recent ONLINE_NIGHTS nights with frames; status_updated_at is the newest DATE-OBS "
    "in the archive.",
]


def build_status(now: datetime | None = None) -> dict[str, Any]:
    """The `/status/` payload (shape of the website's snapshot version 0.6) from cached statistics."""
    now = now or timezone.now()
    conf = settings.GWPORTAL
    online_nights = int(conf.get("ONLINE_NIGHTS", 30))

    sci: dict[date, int] = {}
    size: dict[date, int] = {}
    exposure: dict[date, float] = {}
    tiles_night: dict[date, int] = {}
    has_frames: list[date] = []
    per_night = (
        NightUnitStats.objects.values("night__date")
        .annotate(
            sci=Sum("n_science"), size=Sum("total_bytes"), exp=Sum("science_exptime"),
            frames=Sum(F("n_bias") + F("n_dark") + F("n_flat") + F("n_science")),
            tiles=Max(Cast(KT("conditions__night_tiles"), IntegerField())),
        )
        .order_by("night__date")
    )
    for r in per_night:
        night = r["night__date"]
        sci[night], size[night], exposure[night] = r["sci"] or 0, r["size"] or 0, r["exp"] or 0.0
        tiles_night[night] = r["tiles"] or 0
        if r["frames"]:
            has_frames.append(night)

    observing = sorted(d for d, n in sci.items() if n > 0)
    recent = has_frames[-online_nights:] if online_nights > 0 else []
    online = (
        NightUnitStats.objects.filter(night__date__in=recent)
        .filter(Q(n_bias__gt=0) | Q(n_dark__gt=0) | Q(n_flat__gt=0) | Q(n_science__gt=0))
        .order_by().values_list("unit_id", flat=True).distinct()
    ) if recent else []
    newest = Frame.objects.aggregate(t=Max("date_obs"))["t"]

    observed = Tile.objects.filter(n_frames__gt=0)
    ris_observed = observed.filter(index__lte=grid.RIS_LAST_INDEX).count()
    ims = _ims_cycles()
    too = _too_summary()
    cycles = list(ims.values())
    return {
        "version": STATUS_VERSION,
        "source": SOURCE,
        "generated_at": now.isoformat(),
        "telescopes": {
            "total": max(DESIGN_UNITS, Unit.objects.count()),
            "online": len(set(online)),
            "status_updated_at": newest.isoformat() if newest else None,
        },
        "totals": {
            "science_frames": sum(sci.values()),
            "observing_nights": len(observing),
            "exposure_hours": round(sum(exposure.values()) / 3600.0, 1),
        },
        "nightly": {
            "basis": "per observing night (a night with catalogued science frames), all units together; "
                     "nights where a metric is zero are left out of its block",
            "n_nights": len(observing),
            "first_night": _iso(observing[0]) if observing else None,
            "last_night": _iso(observing[-1]) if observing else None,
            "tiles_per_night": summarize([tiles_night[d] for d in observing if tiles_night[d] > 0]),
            "exposures_per_night": summarize([sci[d] for d in observing]),
            "raw_gb_per_night": summarize([size[d] / 1e9 for d in observing if size[d] > 0], digits=3),
        },
        "ris": {
            "tiles_observed": ris_observed,
            "tiles_defined": RIS_TILES_DEFINED,
            "coverage_pct": round(100.0 * ris_observed / RIS_TILES_DEFINED, 1),
            "tiles_observed_extended": observed.count(),
            "tiles_extended": max(grid.N_TILES, Tile.objects.count()),
        },
        "ims": {
            "n_tiles": len(ims),
            "min_cycles_per_tile": min(cycles) if cycles else None,
            "max_cycles_per_tile": max(cycles) if cycles else None,
            "cycles_per_tile": ims,
        },
        "too": too,
        "notes": list(NOTES),
    }


def _programs_text():
    """Tile.programs as text (a JSON list), so that a programme can be matched without decoding each row."""
    return Cast("programs", TextField())


def _ims_cycles() -> dict[str, int]:
    """Distinct observing nights per IMS tile (a tile with IMS science frames), from the Tile counters."""
    rows = (
        Tile.objects.annotate(p=_programs_text()).filter(n_frames__gt=0, p__contains='"IMS"')
        .order_by("index").values_list("name", "n_nights")
    )
    return dict(rows)


def _too_summary() -> dict[str, Any]:
    names = Target.objects.filter(kind=Target.Kind.TOO, n_frames__gt=0).values_list("name", flat=True)
    events = {event_id(n) for n in names}
    gw = {e for e in events if _GW_EVENT.match(e)}
    return {
        "followup_events": len(events),
        "gw_campaigns": len(gw),
        "gw_event_ids": sorted(e for e in gw if PUBLIC_SUPEREVENT.match(e)),
    }


# ----------------------------------------------------------------------------- /tiles/


def build_tiles(now: datetime | None = None) -> dict[str, Any]:
    """The `/tiles/` payload: one entry per observed tile (a catalogued science frame of any programme)."""
    now = now or timezone.now()
    rows = (
        Tile.objects.filter(n_frames__gt=0).order_by("index")
        .values_list("name", "ra", "dec", "n_frames", "n_nights", "first_night", "last_night")
    )
    return {
        "generated_at": now.isoformat(),
        "ris_tile_name_bound": RIS_TILE_NAME_BOUND,
        "tiles": [
            {
                "name": name,
                "ra": round(ra, 4) if ra is not None else None,
                "dec": round(dec, 4) if dec is not None else None,
                "n_frames": n_frames,
                "n_nights": n_nights,
                "first_night": _iso(first),
                "last_night": _iso(last),
            }
            for name, ra, dec, n_frames, n_nights, first, last in rows.iterator(chunk_size=5000)
        ],
    }


# ----------------------------------------------------------------------------- survey page data


def survey_filters() -> list[str]:
    """The filters the survey uses: setting SURVEY_FILTERS, else every filter with RIS science frames.

    One indexed probe per filter name known to TileFilterProgress (frame_filter_dateobs index),
    instead of a scan of the frame table.
    """
    configured = settings.GWPORTAL.get("SURVEY_FILTERS")
    if configured:
        return sorted(configured)
    names = sorted(f for f in TileFilterProgress.objects.order_by().values_list("filter", flat=True).distinct() if f and f != "-")
    return [f for f in names if Frame.objects.filter(CATALOGUED, image_type="science", program="RIS", filter=f).exists()]


def _program_list(text: str | None) -> list[str]:
    """'["IMS", "RIS"]' -> ['IMS', 'RIS'] without a JSON decoder (programme names are plain words)."""
    inner = (text or "").strip().strip("[]")
    return [w.strip().strip('"') for w in inner.split(",") if w.strip().strip('"')]


def build_survey_tiles(now: datetime | None = None) -> dict[str, Any]:
    """The survey map's data: every observed tile with each colour measure, plus the grid rule."""
    now = now or timezone.now()
    cols: dict[str, list] = {k: [] for k in ("index", "name", "n_frames", "n_nights", "n_filters", "exptime_h", "last_night", "programs")}
    rows = (
        Tile.objects.filter(n_frames__gt=0).annotate(p=_programs_text()).order_by("index")
        .values_list("index", "name", "n_frames", "n_nights", "n_filters", "total_exptime", "last_night", "p")
    )
    for idx, name, nf, nn, nfil, exp, last, progs in rows.iterator(chunk_size=5000):
        cols["index"].append(idx)
        cols["name"].append(name)
        cols["n_frames"].append(nf)
        cols["n_nights"].append(nn)
        cols["n_filters"].append(nfil)
        cols["exptime_h"].append(round((exp or 0.0) / 3600.0, 3))
        cols["last_night"].append(_iso(last))
        cols["programs"].append(_program_list(progs))
    return {
        "generated_at": now.isoformat(),
        "ring_counts": list(grid.RING_COUNTS),
        "ring_step_deg": grid.RING_STEP_DEG,
        "ris_last_index": grid.RIS_LAST_INDEX,
        "tiles": cols,
    }


def build_survey_map(now: datetime | None = None) -> dict[str, Any]:
    """The survey page's figures: per-filter and per-programme progress, survey filters, pointing warnings."""
    now = now or timezone.now()
    per_filter = []
    for r in (
        TileFilterProgress.objects.values("filter")
        .annotate(
            tiles=Count("id"), frames=Sum("n_frames"), exptime=Sum("total_exptime"),
            ris_tiles=Count("id", filter=Q(tile__index__lte=grid.RIS_LAST_INDEX)),
        )
        .order_by("filter")
    ):
        per_filter.append({
            "filter": r["filter"], "tiles": r["tiles"], "frames": r["frames"] or 0,
            "exptime_h": round((r["exptime"] or 0.0) / 3600.0, 2),
            "ris_coverage_pct": round(100.0 * r["ris_tiles"] / RIS_TILES_DEFINED, 2),
        })
    programs: Counter[str] = Counter()
    for text, n in (
        Tile.objects.filter(n_frames__gt=0).annotate(p=_programs_text()).values("p").annotate(n=Count("id")).order_by().values_list("p", "n")
    ):
        for name in _program_list(text):
            programs[name] += n
    warn = Cast(KT("conditions__pointing_warnings"), IntegerField())
    per_night = (
        NightUnitStats.objects.values("night__date").annotate(w=Sum(warn)).filter(w__gt=0).order_by("-night__date")
    )
    nights = [(r["night__date"], r["w"]) for r in per_night]
    return {
        "generated_at": now.isoformat(),
        "per_filter": per_filter,
        "programs": dict(sorted(programs.items())),
        "survey_filters": survey_filters(),
        "pointing_warnings": sum(w for _, w in nights),
        "pointing_warning_nights": [d.isoformat() for d, _ in nights[:20]],
        "tolerance_deg": settings.GWPORTAL.get("POINTING_TOLERANCE_DEG", 1.0),
    }


def build_calibration_recent(now: datetime | None = None) -> dict[str, Any]:
    from survey.calibration import recent_summary

    now = now or timezone.now()
    doc = recent_summary(int(settings.GWPORTAL.get("CALIB_DASHBOARD_NIGHTS", 14)))
    doc["generated_at"] = now.isoformat()
    return doc


# ----------------------------------------------------------------------------- snapshots


BUILDERS: dict[str, Callable[[datetime | None], dict[str, Any]]] = {
    "status": build_status,
    "tiles": build_tiles,
    "survey-map": build_survey_map,
    "survey-tiles": build_survey_tiles,
    "calibration-recent": build_calibration_recent,
}

_serialised: dict[str, tuple[datetime, bytes]] = {}
_lock = threading.Lock()


def store_snapshot(name: str, payload: dict[str, Any], now: datetime) -> PublicSnapshot:
    """Save a payload under ``name``: one row per name, never reading the old payload back."""
    for _ in range(3):
        with transaction.atomic():
            if PublicSnapshot.objects.filter(name=name).update(payload=payload, generated_at=now):
                break
            try:
                with transaction.atomic():
                    PublicSnapshot.objects.create(name=name, payload=payload, generated_at=now)
                break
            except IntegrityError:  # created by a concurrent refresh: the next pass updates it
                continue
    else:  # pragma: no cover - three lost races in a row
        raise RuntimeError(f"could not store snapshot {name!r}")
    return PublicSnapshot(name=name, payload=payload, generated_at=now)


def build_snapshot(name: str) -> PublicSnapshot:
    if name not in BUILDERS:
        raise KeyError(f"unknown snapshot {name!r}; known: {', '.join(BUILDERS)}")
    now = timezone.now()
    payload = BUILDERS[name](now)
    snap = store_snapshot(name, payload, now)
    log.info("snapshot %s refreshed", name)
    return snap


def refresh_snapshots(names: Iterable[str] | None = None) -> dict[str, PublicSnapshot]:
    """Recompute the snapshots (all by default); the ingest calls this after its statistics refresh."""
    out = {}
    for name in names or BUILDERS:
        out[name] = build_snapshot(name)
    return out


def _inline(wait: bool | None) -> bool:
    if wait is not None:
        return wait
    return str(settings.GWPORTAL.get("STATUS_REFRESH", "background")).lower() == "inline"


_refreshing: set[str] = set()
_threads: list[threading.Thread] = []


def refresh_in_background(name: str) -> bool:
    """Recompute a snapshot in a daemon thread (one per name at a time); False if one already runs.

    A stale snapshot is served at once while this runs (stale-while-revalidate), so no request ever
    waits for a rebuild of the 2 MB tile list.
    """
    with _lock:
        if name in _refreshing:
            return False
        _refreshing.add(name)

    def run() -> None:
        try:
            build_snapshot(name)
        except Exception:  # noqa: BLE001 - logged; the next stale request tries again
            log.exception("background refresh of snapshot %s failed", name)
        finally:
            with _lock:
                _refreshing.discard(name)
            connections.close_all()  # this thread's own connections

    thread = threading.Thread(target=run, name=f"snapshot-{name}", daemon=True)
    with _lock:
        _threads[:] = [t for t in _threads if t.is_alive()]
        _threads.append(thread)
    thread.start()
    return True


def wait_for_background_refreshes(timeout: float = 60.0) -> None:
    """Join the refresh threads started by this process (tests, orderly shutdown)."""
    with _lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(timeout)


def get_snapshot(name: str, max_age_: timedelta | None = None, wait: bool | None = None) -> PublicSnapshot:
    """The stored snapshot; built first when missing. When older than ``max_age_`` (default 15 min)
    it is recomputed: in the background while the stored one is returned (default), or before
    returning with ``wait=True`` or ``GWPORTAL['STATUS_REFRESH'] = 'inline'``."""
    limit = max_age() if max_age_ is None else max_age_
    snap = PublicSnapshot.objects.filter(name=name).first()
    if snap is None:
        return build_snapshot(name)
    if snap.generated_at < timezone.now() - limit:
        if _inline(wait):
            return build_snapshot(name)
        refresh_in_background(name)
    return snap


def snapshot_bytes(name: str, max_age_: timedelta | None = None, wait: bool | None = None) -> tuple[bytes, datetime]:
    """The snapshot as compact JSON bytes, serialised once per process and per snapshot generation.

    Only ``generated_at`` is read per request while the stored payload is unchanged, so a request
    for the 2 MB `/tiles/` document costs one indexed row lookup. Staleness as in ``get_snapshot``.
    """
    limit = max_age() if max_age_ is None else max_age_
    stamp = PublicSnapshot.objects.filter(name=name).values_list("generated_at", flat=True).first()
    if stamp is not None and stamp < timezone.now() - limit:
        if _inline(wait):
            stamp = build_snapshot(name).generated_at
        else:
            refresh_in_background(name)
    cached = _serialised.get(name)
    if stamp is not None and cached and cached[0] == stamp:
        return cached[1], stamp
    snap = PublicSnapshot.objects.filter(name=name).first() if stamp is not None else None
    if snap is None:
        snap = build_snapshot(name)
    body = json.dumps(snap.payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    with _lock:
        _serialised[name] = (snap.generated_at, body)
    return body, snap.generated_at


_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def snapshot_script_json(name: str) -> str:
    """The snapshot as JSON safe inside <script type="application/json"> (as json_script escapes),
    cached per process like ``snapshot_bytes``: the survey page embeds ~1 MB without re-encoding it."""
    body, stamp = snapshot_bytes(name)
    cached = _escaped.get(name)
    if cached and cached[0] == stamp:
        return cached[1]
    text = body.decode("utf-8").translate(_SCRIPT_ESCAPES)
    with _lock:
        _escaped[name] = (stamp, text)
    return text


_escaped: dict[str, tuple[datetime, str]] = {}


# ----------------------------------------------------------------------------- portal snippets


def dashboard_context(n_nights: int = 90) -> dict[str, Any]:
    """What `survey/status/dashboard_extra.html` shows: calibration readiness of recent nights,
    conditions time series and pointing warnings. Cheap: snapshots and NightUnitStats only."""
    from survey.conditions import conditions_series

    calib = get_snapshot("calibration-recent").payload
    survey_map = get_snapshot("survey-map").payload
    return {
        "calibration": calib,
        "conditions": conditions_series(n_nights),
        "pointing_warnings": survey_map.get("pointing_warnings", 0),
        "pointing_warning_nights": survey_map.get("pointing_warning_nights", []),
    }


def night_context(night) -> dict[str, Any]:
    """What `survey/status/night_extra.html` shows for one Night: readiness matrix, conditions, pointings."""
    from survey.calibration import night_readiness
    from survey.conditions import night_conditions

    tolerance = settings.GWPORTAL.get("POINTING_TOLERANCE_DEG", 1.0)
    flagged = list(
        Frame.objects.filter(night=night, pointing_warning=True)
        .select_related("unit", "tile").order_by("date_obs", "id")[:200]
    )
    return {
        "night": night,
        "readiness": night_readiness(night.date),
        "conditions": night_conditions(night),
        "pointing_frames": flagged,
        "tolerance_deg": tolerance,
    }
