"""Calibration readiness: can the pipeline calibrate each science setup, by its own grouping rules?

The 7DT pipeline (``pipeline/const/observation.py``) groups calibration frames like this:
bias = night + unit + binning + gain + camera; dark = the bias keys + exposure time (a dark's FILTER
is whatever sat in the wheel and is ignored); flat = the bias keys + filter. A master needs at least
``NUM_MIN_CALIB`` (5) frames. When a night lacks a group, the pipeline's master query takes the nearest
night (``nightdate``/``neighbors``/``exptime_near``). Here that becomes, per science setup (night, unit,
gain, binning, camera, filter, exposure time) and per kind: a group on the same night ("night"), else on
the nearest night within a window per kind ("nearby"), else none ("missing").

Camera: 2026 TCSpy headers carry ``CAM_ID``; older frames only ``INSTRUME`` (a model name, the same
string on every unit). ``Frame.camera`` holds CAM_ID when present, else INSTRUME, so an INSTRUME value
means "the unit's camera of that time": such a side matches any camera of the same unit, while two
known CAM_IDs must be equal (a camera moved between units is never matched across the swap).

Darks: the same exposure time is preferred; with ``dark_exptime="nearest"`` (default, the pipeline's
``exptime_near``) a dark group of another exposure time on the same or nearest night is accepted and
marked ``exptime_scaled``; ``"exact"`` accepts only the same exposure time.
"""
from __future__ import annotations

import json
import math
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Count, Q

from survey.models import Frame, NightUnitStats

NUM_MIN_CALIB = 5
KINDS = ("bias", "dark", "flat")
#: Which calibration groups a frame of each type needs.
NEEDS: dict[str, tuple[str, ...]] = {
    "science": ("bias", "dark", "flat"),
    "flat": ("bias", "dark"),
    "dark": ("bias",),
    "bias": ("bias",),
}
CATALOGUED = Q(excluded_by="", present=True)
_INSTRUME_LIKE = re.compile(r"\s|camera|moravian", re.IGNORECASE)


def camera_key(value: str | None) -> str:
    """The camera part of a group key: a CAM_ID, or '' when only INSTRUME (a model name) is known."""
    text = (value or "").strip()
    if not text or _INSTRUME_LIKE.search(text):
        return ""
    return text


def cameras_match(a: str, b: str) -> bool:
    """Two known CAM_IDs must be equal; an unknown camera ('') is the unit's camera and matches."""
    return a == b or not a or not b


def _exptime_key(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


@dataclass(frozen=True)
class CalibrationRules:
    """Grouping thresholds and search windows (nights either side); from settings.GWPORTAL."""

    min_frames: int = NUM_MIN_CALIB
    bias_window: int = 7
    dark_window: int = 7
    flat_window: int = 3
    dark_exptime: str = "nearest"  # nearest | exact

    @classmethod
    def from_settings(cls, **overrides: Any) -> CalibrationRules:
        conf = settings.GWPORTAL
        rules = cls(
            min_frames=int(conf.get("CALIB_MIN_FRAMES", NUM_MIN_CALIB)),
            bias_window=int(conf.get("CALIB_WINDOW_BIAS", 7)),
            dark_window=int(conf.get("CALIB_WINDOW_DARK", 7)),
            flat_window=int(conf.get("CALIB_WINDOW_FLAT", 3)),
            dark_exptime=str(conf.get("CALIB_DARK_EXPTIME", "nearest")),
        )
        rules = replace(rules, **overrides) if overrides else rules
        if rules.dark_exptime not in ("nearest", "exact"):
            raise ValueError(f"CALIB_DARK_EXPTIME must be 'nearest' or 'exact', not {rules.dark_exptime!r}")
        if min(rules.bias_window, rules.dark_window, rules.flat_window) < 0 or rules.min_frames < 1:
            raise ValueError("calibration windows must be >= 0 and the minimum group size >= 1")
        return rules

    def window(self, kind: str) -> int:
        return {"bias": self.bias_window, "dark": self.dark_window, "flat": self.flat_window}[kind]

    @property
    def max_window(self) -> int:
        return max(self.bias_window, self.dark_window, self.flat_window)

    def as_dict(self) -> dict[str, Any]:
        return {
            "min_frames": self.min_frames,
            "windows_nights": {"bias": self.bias_window, "dark": self.dark_window, "flat": self.flat_window},
            "dark_exptime": self.dark_exptime,
        }


@dataclass
class Setup:
    """A science setup of one night and unit; ``camera`` is the key ('' = the unit's camera)."""

    night: date
    unit: str
    gain: int | None
    binning: int | None
    camera: str
    filter: str
    exptime: float | None
    n_science: int = 0
    cameras: set[str] = field(default_factory=set)  # raw Frame.camera values

    def as_dict(self) -> dict[str, Any]:
        return {
            "night": self.night.isoformat(), "unit": self.unit, "gain": self.gain, "binning": self.binning,
            "camera": self.camera or None, "filter": self.filter, "exptime": self.exptime,
            "n_science": self.n_science,
        }


@dataclass
class Group:
    """A calibration group by the pipeline's keys, with its frame count on one night."""

    kind: str
    night: date
    unit: str
    gain: int | None
    binning: int | None
    camera: str
    filter: str  # flats only ('' otherwise)
    exptime: float | None  # darks only
    n: int = 0
    cameras: set[str] = field(default_factory=set)
    exptimes: set[float | None] = field(default_factory=set)  # raw values of the member frames


@dataclass
class Match:
    """How one calibration kind of a setup is covered."""

    kind: str
    state: str  # night | nearby | missing
    group: Group | None = None
    offset: int | None = None  # group night minus setup night, in nights
    scaled: bool = False  # dark of another exposure time

    def as_dict(self) -> dict[str, Any]:
        g = self.group
        return {
            "state": self.state,
            "night": g.night.isoformat() if g else None,
            "offset_nights": self.offset,
            "n_frames": g.n if g else 0,
            "exptime": g.exptime if g and self.kind == "dark" else None,
            "exptime_scaled": self.scaled,
        }

    @property
    def label(self) -> str:
        if self.group is None:
            return "none"
        text = "this night" if self.offset == 0 else f"{self.group.night.isoformat()} ({self.offset:+d} n)"
        if self.scaled:
            text += f", {self.group.exptime:g} s scaled"
        return f"{text}, {self.group.n} fr"


@dataclass
class Readiness:
    setup: Setup
    matches: dict[str, Match]

    @property
    def status(self) -> str:
        states = {m.state for m in self.matches.values()}
        if "missing" in states:
            return "missing"
        return "fallback" if "nearby" in states else "ready"

    @property
    def missing(self) -> list[str]:
        return [k for k, m in self.matches.items() if m.state == "missing"]

    def as_dict(self) -> dict[str, Any]:
        doc = self.setup.as_dict()
        doc["status"] = self.status
        doc["missing"] = self.missing
        for kind, m in self.matches.items():
            doc[kind] = m.as_dict()
        return doc


class GroupIndex:
    """Calibration groups of a night range, indexed by (unit, kind) -> night -> groups."""

    def __init__(self, rules: CalibrationRules) -> None:
        self.rules = rules
        self.by: dict[tuple[str, str], dict[date, list[Group]]] = defaultdict(lambda: defaultdict(list))

    @classmethod
    def load(cls, start: date, end: date, rules: CalibrationRules, units: list[str] | None = None, pad: int | None = None) -> GroupIndex:
        """Groups of the nights ``start - pad`` .. ``end + pad`` (pad defaults to the widest window)."""
        index = cls(rules)
        pad = rules.max_window if pad is None else pad
        lo, hi = start - timedelta(days=pad), end + timedelta(days=pad)
        qs = Frame.objects.filter(CATALOGUED, image_type__in=KINDS, night__date__gte=lo, night__date__lte=hi)
        if units:
            qs = qs.filter(unit__name__in=units)
        rows = qs.values_list("night__date", "unit__name", "image_type", "gain", "binning", "camera", "filter", "exptime")
        groups: dict[tuple, Group] = {}
        for night, unit, kind, gain, binning, camera, filt, exptime, n in rows.annotate(n=Count("id")).order_by():
            cam = camera_key(camera)
            fkey = (filt or "") if kind == "flat" else ""
            ekey = _exptime_key(exptime) if kind == "dark" else None
            key = (kind, night, unit, gain, binning, cam, fkey, ekey)
            group = groups.get(key)
            if group is None:
                group = groups[key] = Group(kind, night, unit, gain, binning, cam, fkey, ekey)
            group.n += n
            group.cameras.add(camera)
            group.exptimes.add(exptime)
        for g in groups.values():
            if g.n >= rules.min_frames:
                index.by[(g.unit, g.kind)][g.night].append(g)
        return index

    def match(self, setup: Setup, kind: str) -> Match:
        """The nearest usable group of ``kind`` for ``setup`` within the kind's window."""
        nights = self.by.get((setup.unit, kind))
        if nights:
            for distance in range(self.rules.window(kind) + 1):
                found: list[tuple[tuple, Group, int]] = []
                for offset in ((0,) if distance == 0 else (-distance, distance)):
                    for g in nights.get(setup.night + timedelta(days=offset), ()):
                        rank = self._rank(setup, g, offset)
                        if rank is not None:
                            found.append((rank, g, offset))
                if found:
                    _, g, offset = min(found, key=lambda item: item[0])
                    scaled = kind == "dark" and g.exptime != _exptime_key(setup.exptime)
                    return Match(kind, "night" if offset == 0 else "nearby", g, offset, scaled)
        return Match(kind, "missing")

    def _rank(self, setup: Setup, g: Group, offset: int) -> tuple | None:
        """None when the group cannot serve the setup, else a sort key (smaller is better)."""
        if g.gain != setup.gain or g.binning != setup.binning or not cameras_match(g.camera, setup.camera):
            return None
        if g.kind == "flat" and g.filter != (setup.filter or ""):
            return None
        diff = 0.0
        if g.kind == "dark":
            want = _exptime_key(setup.exptime)
            if g.exptime != want:
                if self.rules.dark_exptime == "exact":
                    return None
                diff = abs(g.exptime - want) if g.exptime is not None and want is not None else math.inf
        # same camera id beats an unknown one; earlier night wins a tie (the pipeline looks back first)
        return (diff, g.camera != setup.camera, offset > 0, -g.n)


def science_setups(start: date, end: date, units: list[str] | None = None) -> list[Setup]:
    """Science setups (catalogued science frames) per night x unit in the range."""
    qs = Frame.objects.filter(CATALOGUED, image_type="science", night__date__gte=start, night__date__lte=end)
    if units:
        qs = qs.filter(unit__name__in=units)
    rows = qs.values_list("night__date", "unit__name", "gain", "binning", "camera", "filter", "exptime")
    setups: dict[tuple, Setup] = {}
    for night, unit, gain, binning, camera, filt, exptime, n in rows.annotate(n=Count("id")).order_by():
        cam = camera_key(camera)
        ekey = _exptime_key(exptime)
        key = (night, unit, gain, binning, cam, filt or "", ekey)
        setup = setups.get(key)
        if setup is None:
            setup = setups[key] = Setup(night, unit, gain, binning, cam, filt or "", ekey)
        setup.n_science += n
        setup.cameras.add(camera)
    return sorted(
        setups.values(),
        key=lambda s: (s.night, s.unit, s.filter, s.exptime if s.exptime is not None else -1.0, s.gain or 0, s.binning or 0, s.camera),
    )


def readiness(start: date, end: date, units: list[str] | None = None, rules: CalibrationRules | None = None) -> list[Readiness]:
    """Readiness of every science setup of the nights ``start``..``end`` (inclusive)."""
    rules = rules or CalibrationRules.from_settings()
    setups = science_setups(start, end, units)
    if not setups:
        return []
    # Nearly every setup is calibrated on its own night: look there first, and search the windows
    # only for the units whose setups lack a group on the night (keeps a night page to one small query).
    index = GroupIndex.load(start, end, rules, units, pad=0)
    rows = [Readiness(s, {k: index.match(s, k) for k in KINDS}) for s in setups]
    pending = [r for r in rows if r.status != "ready"]
    if pending and rules.max_window > 0:
        wide = GroupIndex.load(start, end, rules, sorted({r.setup.unit for r in pending}))
        for r in pending:
            r.matches = {k: m if m.state == "night" else wide.match(r.setup, k) for k, m in r.matches.items()}
    return rows


def calibration_gaps(
    start: date, end: date, units: list[str] | None = None, rules: CalibrationRules | None = None, include_fallback: bool = False
) -> list[Readiness]:
    """Setups that cannot be calibrated within the windows (and, if asked, those that need another night)."""
    wanted = {"missing", "fallback"} if include_fallback else {"missing"}
    return [r for r in readiness(start, end, units, rules) if r.status in wanted]


def frame_setup(frame: Frame) -> Setup:
    return Setup(
        frame.night.date, frame.unit.name, frame.gain, frame.binning, camera_key(frame.camera),
        frame.filter or "", _exptime_key(frame.exptime), cameras={frame.camera},
    )


def frame_calibrations(frame: Frame, rules: CalibrationRules | None = None, limit: int = 200) -> dict[str, Any]:
    """The calibration frames the pipeline would use for ``frame``: one group per kind it needs."""
    rules = rules or CalibrationRules.from_settings()
    setup = frame_setup(frame)
    index = GroupIndex.load(setup.night, setup.night, rules, [setup.unit])
    kinds = NEEDS.get(frame.image_type, KINDS)
    out: dict[str, Any] = {"frame": frame.pk, "image_type": frame.image_type, "setup": setup.as_dict(), "rules": rules.as_dict()}
    out["setup"].pop("n_science")
    matches = {}
    for kind in kinds:
        m = index.match(setup, kind)
        doc = m.as_dict()
        doc["frames"] = _members(m.group, limit) if m.group else []
        matches[kind] = doc
    states = {d["state"] for d in matches.values()}
    out["status"] = "missing" if "missing" in states else "fallback" if "nearby" in states else "ready"
    out["calibrations"] = matches
    return out


def _members(g: Group, limit: int) -> list[dict[str, Any]]:
    qs = Frame.objects.filter(
        CATALOGUED, unit__name=g.unit, night__date=g.night, image_type=g.kind, gain=g.gain, binning=g.binning,
        camera__in=sorted(g.cameras),
    )
    if g.kind == "flat":
        qs = qs.filter(filter=g.filter)
    if g.kind == "dark":
        raw = [e for e in g.exptimes if e is not None]
        qs = qs.filter(Q(exptime__in=raw) | Q(exptime=None)) if None in g.exptimes else qs.filter(exptime__in=raw)
    rows = qs.order_by("date_obs", "id").values("id", "filename", "date_obs", "exptime", "filter")[:limit]
    return [
        {"id": r["id"], "filename": r["filename"], "date_obs": r["date_obs"].isoformat() if r["date_obs"] else None,
         "exptime": r["exptime"], "filter": r["filter"]}
        for r in rows
    ]


def night_readiness(night_date: date, rules: CalibrationRules | None = None) -> dict[str, Any]:
    """The readiness matrix of one night for its page: rows per unit x setup."""
    rules = rules or CalibrationRules.from_settings()
    rows = readiness(night_date, night_date, rules=rules)
    counts = {"ready": 0, "fallback": 0, "missing": 0}
    for r in rows:
        counts[r.status] += 1
    return {"rows": rows, "counts": counts, "rules": rules, "kinds": KINDS}


def recent_summary(n_nights: int = 14, rules: CalibrationRules | None = None) -> dict[str, Any]:
    """Readiness of the last ``n_nights`` nights with science frames (the dashboard summary)."""
    rules = rules or CalibrationRules.from_settings()
    dates = sorted(
        NightUnitStats.objects.filter(n_science__gt=0)
        .values_list("night__date", flat=True).distinct().order_by("-night__date")[:n_nights]
    )
    nights: dict[date, dict[str, Any]] = {
        d: {"night": d.isoformat(), "ready": 0, "fallback": 0, "missing": 0, "gaps": []} for d in dates
    }
    if dates:
        for r in readiness(dates[0], dates[-1], rules=rules):
            row = nights.get(r.setup.night)
            if row is None:  # a night inside the span without science stats (should not happen)
                continue
            row[r.status] += 1
            if r.status == "missing":
                row["gaps"].append({**r.setup.as_dict(), "missing": r.missing})
    rows = [nights[d] for d in sorted(dates, reverse=True)]
    return {
        "rules": rules.as_dict(),
        "nights": rows,
        "totals": {k: sum(r[k] for r in rows) for k in ("ready", "fallback", "missing")},
    }


@dataclass
class CheckResult:
    start: date
    end: date
    units: list[str] | None
    rules: CalibrationRules
    rows: list[Readiness]

    @property
    def missing(self) -> list[Readiness]:
        return [r for r in self.rows if r.status == "missing"]

    @property
    def fallback(self) -> list[Readiness]:
        return [r for r in self.rows if r.status == "fallback"]

    @property
    def n_uncalibratable_frames(self) -> int:
        return sum(r.setup.n_science for r in self.missing)

    @property
    def ok(self) -> bool:
        return not self.missing


def check(start: date, end: date, units: list[str] | None = None, rules: CalibrationRules | None = None) -> CheckResult:
    """Readiness of a date range, for the `check_calibrations` command."""
    rules = rules or CalibrationRules.from_settings()
    return CheckResult(start, end, units, rules, readiness(start, end, units, rules))


def format_report(result: CheckResult) -> str:
    """Plain-text report: summary, then every setup that is missing a calibration or needs another night."""
    r = result.rules
    lines = [
        f"Calibration check {result.start.isoformat()} .. {result.end.isoformat()}"
        f" units: {', '.join(result.units) if result.units else 'all'}",
        f"rules: groups of >= {r.min_frames} frames; windows bias {r.bias_window}, dark {r.dark_window},"
        f" flat {r.flat_window} nights; dark exposure time {r.dark_exptime}",
        f"science setups: {len(result.rows)}; ready on the night: {len(result.rows) - len(result.missing) - len(result.fallback)};"
        f" need another night: {len(result.fallback)}; cannot be calibrated: {len(result.missing)}"
        f" ({result.n_uncalibratable_frames} science frames)",
        "",
    ]
    header = f"{'night':10} {'unit':5} {'filter':7} {'exptime':>7} {'gain':>5} {'bin':>3} {'camera':8} {'n':>5}  bias / dark / flat"
    for title, rows in (("CANNOT BE CALIBRATED", result.missing), ("NEEDS ANOTHER NIGHT", result.fallback)):
        lines.append(f"== {title}: {len(rows)}")
        if rows:
            lines.append(header)
        for row in rows:
            s = row.setup
            cal = " / ".join(f"{k}: {row.matches[k].label}" for k in KINDS)
            exptime = "-" if s.exptime is None else f"{s.exptime:g}"
            lines.append(
                f"{s.night.isoformat():10} {s.unit:5} {s.filter or '-':7} {exptime:>7} {s.gain if s.gain is not None else '-':>5}"
                f" {s.binning if s.binning is not None else '-':>3} {s.camera or 'unit':8} {s.n_science:>5}  {cal}"
            )
        lines.append("")
    return "\n".join(lines)


def write_report(result: CheckResult, log_dir: str | Path) -> Path:
    """Write the text report and a JSON twin to ``log_dir``; returns the text file's path."""
    folder = Path(log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"check_calibrations_{time.strftime('%Y%m%d_%H%M%S')}"
    path = folder / f"{stem}.txt"
    k = 1
    while path.exists():
        path = folder / f"{stem}_{k}.txt"
        k += 1
    path.write_text(format_report(result) + "\n", encoding="utf-8")
    doc = {
        "start": result.start.isoformat(), "end": result.end.isoformat(), "units": result.units,
        "rules": result.rules.as_dict(), "ok": result.ok,
        "counts": {"setups": len(result.rows), "missing": len(result.missing), "fallback": len(result.fallback),
                   "uncalibratable_frames": result.n_uncalibratable_frames},
        "missing": [r.as_dict() for r in result.missing],
        "fallback": [r.as_dict() for r in result.fallback],
    }
    path.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path
