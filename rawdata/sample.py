"""Generator of a realistic sample 7DT raw-data root, for tests, demos and benchmarks.

Writes ``<root>/7DTnn/<night folder>/*.fits`` with the real folder and file names and
header keyword sets of both eras (TCSpy 2024+, NINA 2023-24), as described in
``shared/reference/7dt-raw-data.md``, plus the ``.head`` and ``allfiles.hash`` side files
TCSpy writes.  The generator also returns (and stores as ``<root>/.sample-manifest.json``)
its own record of what it wrote, computed from its plan and never by reading files back,
so that ingest tests can compare a database against an independent truth.

Everything is a pure function of the parameters and ``seed``: no clock, no network.
Astronomy (sidereal time, alt/az, Moon) uses short closed-form approximations, which is
plenty for plausible header values and keeps astropy's IERS machinery out of the way.

Real quirks are reproduced on purpose, because the ingest must survive them:
TCSpy's ``DATE-LOC`` uses a space instead of ``T`` (``fitsverify`` reports that as an
error, for the real files too) and TCSpy writes keywords without value as null cards
(``fitsverify`` warnings).  ``fits_strict=True`` writes ``DATE-LOC`` with ``T`` and drops
null cards, for callers that need files ``fitsverify`` passes without any finding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from rawdata import tiles
from rawdata._sample_render import (
    TCSPY_SITE,
    TZ,
    FrameSpec,
    altaz,
    card,
    data_bytes,
    head_text,
    header_bytes,
    iso_ms,
    jd,
    local_night_time,
    lst_deg,
    nina_cards,
    pixels,
    sexa,
    tcspy_cards,
    whole_ms,
)

log = logging.getLogger(__name__)

__all__ = [
    "MANIFEST_NAME",
    "FULL_SHAPE",
    "UNIT_FILTERS",
    "NINA_NIGHT",
    "TOO_EVENT",
    "FrameRecord",
    "Manifest",
    "generate_archive",
    "generate_flat_files",
    "corrupt_helpers",
]

MANIFEST_NAME = ".sample-manifest.json"
#: numpy shape (NAXIS2, NAXIS1) of a real 1x1 frame: 9576 x 6388 px, 122,345,280 data bytes.
FULL_SHAPE: tuple[int, int] = (6388, 9576)
#: ``specall`` filter pairs per unit, May 2026 (reference section 6).
UNIT_FILTERS: dict[str, tuple[str, str]] = {
    "7DT01": ("m650", "m769w"), "7DT02": ("m675", "m832w"), "7DT03": ("m700", "r"),
    "7DT04": ("m725", "m438"), "7DT05": ("m750", "m483"), "7DT06": ("m775", "m512"),
    "7DT07": ("m800", "m534"), "7DT08": ("m825", "m561"), "7DT09": ("m850", "m586"),
    "7DT10": ("m875", "m615"), "7DT11": ("m500", "m640"), "7DT12": ("m525", "m661"),
    "7DT13": ("m400", "m550"), "7DT14": ("m425", "m575"), "7DT15": ("m450", "m600"),
    "7DT16": ("m475", "m625"),
}  # fmt: skip
NINA_NIGHT = date(2024, 2, 10)
TOO_EVENT = "S250206dm"
N_BIAS = N_DARK = N_FLAT = 5
DARK_EXPTIME = 100.0
SCI_EXPTIME = 100.0

# Named targets (ICRS deg).
_TARGETS: dict[str, tuple[float, float]] = {
    "NGC6121": (245.8967, -26.5258),
    "LTT1020": (28.7095, -27.4766),
    "WASP-178b": (227.2704, -42.7049),
    "COSMOS": (150.1192, 2.2058),
    "LTT3218": (130.3850, -32.9424),
    "WD0123-262": (21.3542, -25.9631),
    "NGC1980": (83.8500, -5.9100),
}


# ---------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameRecord:
    """What the generator wrote for one FITS file (the truth ingest tests compare to)."""

    path: str  # relative to root, POSIX
    unit: str  # 7DTnn
    folder: str  # night folder name
    night: str  # ISO night date (= folder date)
    image_type: str  # bias | dark | flat | science
    object: str | None  # OBJECT card (None when the file has none)
    filter: str
    exptime: float
    date_obs: str  # DATE-OBS as written (UTC, ISO with T, ms)
    objtype: str | None  # OBJTYPE card (None for NINA)
    tile: str | None  # T##### when OBJECT is a grid tile
    is_too: bool
    excluded: str | None  # focus | test | None
    off_pointing: bool  # telescope pointed ~2 deg away from the tile centre
    gain: int
    software: str  # tcspy | nina
    name_family: str  # tcspy | nina_v1 | nina_v2
    image_id: str | None  # IMAGEID card (TCSpy only)
    ra: float  # telescope pointing RA card
    dec: float  # telescope pointing DEC card
    size: int  # bytes
    sha256: str
    weather: bool  # weather cards carry values


@dataclass
class Manifest:
    """The generator's own record of a sample archive (``<root>/.sample-manifest.json``)."""

    params: dict[str, Any]
    units: dict[str, list[str]]
    folders: list[dict[str, Any]]
    scenarios: dict[str, Any]
    files: list[FrameRecord] = field(default_factory=list)
    sidecars: list[str] = field(default_factory=list)
    format: str = "gwportal-sample-manifest/1"

    def to_json(self) -> str:
        doc = {
            "format": self.format,
            "params": self.params,
            "units": self.units,
            "folders": self.folders,
            "scenarios": self.scenarios,
            "files": [asdict(f) for f in self.files],
            "sidecars": self.sidecars,
        }
        return json.dumps(doc, indent=1, sort_keys=False) + "\n"

    def write(self, root: Path) -> Path:
        path = Path(root) / MANIFEST_NAME
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, root: Path | str) -> Manifest:
        doc = json.loads((Path(root) / MANIFEST_NAME).read_text(encoding="utf-8"))
        names = {f.name for f in fields(FrameRecord)}
        return cls(
            params=doc["params"],
            units=doc["units"],
            folders=doc["folders"],
            scenarios=doc["scenarios"],
            files=[FrameRecord(**{k: v for k, v in f.items() if k in names}) for f in doc["files"]],
            sidecars=doc.get("sidecars", []),
            format=doc.get("format", "gwportal-sample-manifest/1"),
        )

    def count_by(self, *keys: str, where: dict[str, Any] | None = None) -> Counter[Any]:
        """Count files by one key (plain values) or several (tuples), optionally filtered."""
        if not keys:
            raise ValueError("count_by needs at least one key")
        out: Counter[Any] = Counter()
        for f in self.select(**(where or {})):
            vals = tuple(getattr(f, k) for k in keys)
            out[vals[0] if len(keys) == 1 else vals] += 1
        return out

    def select(self, **where: Any) -> list[FrameRecord]:
        """Files whose attributes equal all given values."""
        return [f for f in self.files if all(getattr(f, k) == v for k, v in where.items())]

    def by_path(self) -> dict[str, FrameRecord]:
        return {f.path: f for f in self.files}


# ---------------------------------------------------------------------------------------
# Planning: what to write, computed from the parameters only
# ---------------------------------------------------------------------------------------


def _tcspy_name(unit: str, t: datetime, obj: str, filt: str, exptime: float, seq: int) -> str:
    return f"{unit}_{t:%Y%m%d_%H%M%S}_{obj}_{filt}_1x1_{exptime:.1f}s_{seq:04d}.fits"


def _nina_name(
    family: str, unit: str, imagetyp: str, obj: str, t_local: datetime, filt: str, exptime: float, seq: int
) -> str:
    """NINA names carry the PC's local time (NINA's ``$$DATETIME$$``), two-decimal exposure."""
    stamp = f"{t_local:%Y-%m-%d_%H-%M-%S}"
    if family == "nina_v2":
        return f"{unit}_{imagetyp}_{obj}_{stamp}_{filt}_1x1_{exptime:.2f}s_{seq:04d}.fits"
    return f"{imagetyp}_{obj}_{stamp}_{filt}_{exptime:.2f}s_{seq:04d}.fits"


@dataclass
class _Visit:
    object: str
    objtype: str
    target: tuple[float, float]
    tile: str | None
    counts: tuple[int, int]  # frames in the unit's first / second filter
    exptime: float = SCI_EXPTIME
    is_too: bool = False
    start: datetime | None = None
    note: str = "None"


def _tile_near(ra: float, dec: float, avoid: set[str]) -> tiles.Tile:
    t = tiles.nearest_tile(ra, dec)
    step = 0
    while t.name in avoid:
        step += 1
        t = tiles.nearest_tile(ra + 1.5 * step, dec)
    return t


def _night_visits(
    n: int, night: date, nights: int, frames: int, rng: np.random.Generator, ims: tiles.Tile, with_too: bool
) -> list[_Visit]:
    """Science visits shared by all units on one night (7DT units observe together)."""
    lat, lon, _ = TCSPY_SITE
    budget = frames - 2
    fixed: list[_Visit] = [_Visit(ims.name, "IMS", (ims.ra, ims.dec), ims.name, (1, 1))]
    if budget >= 4:
        fixed.append(_Visit("LTT1020", "target", _TARGETS["LTT1020"], None, (1, 1), exptime=60.0))
        budget -= 2
    pair = n == 0 and budget >= 6
    if pair:
        budget -= 4
    ris_sizes: list[int] = []
    while budget > 0:
        ris_sizes.append(min(6, budget))
        budget -= ris_sizes[-1]
    too_night = with_too and n == min(1, nights - 1)
    n_slots = len(fixed) + 2 * pair + len(ris_sizes) + too_night
    t0 = local_night_time(night, 19, 30)
    span = (local_night_time(night, 5, 45) - t0) / n_slots
    slots: list[_Visit | None] = [None] * n_slots
    mid = [t0 + span * (k + 0.5) for k in range(n_slots)]

    def alt(k: int, radec: tuple[float, float]) -> float:
        return altaz(radec[0], radec[1], mid[k], lat, lon)[0]

    if too_night:  # the alert comes in around 01:10 local
        k = min(range(n_slots), key=lambda k: abs((mid[k] - local_night_time(night, 1, 10)).total_seconds()))
        ra = (lst_deg(mid[k], lon) - 10.0) % 360.0
        slots[k] = _Visit(TOO_EVENT, "ToO", (round(ra, 4), -35.2461), None, (2, 2), is_too=True, note="GW follow-up")
    if pair:
        free = [k for k in range(n_slots - 1) if slots[k] is None and slots[k + 1] is None]
        k = max(free, key=lambda k: alt(k, _TARGETS["NGC6121"]))
        slots[k] = _Visit("NGC6121", "target", _TARGETS["NGC6121"], None, (1, 1))
        slots[k + 1] = _Visit("NGC6121_shift", "target", _TARGETS["NGC6121"], None, (1, 1))
    for v in fixed:
        k = max((k for k in range(n_slots) if slots[k] is None), key=lambda k: alt(k, v.target))
        slots[k] = v
    used = {ims.name}
    ris_iter = iter(ris_sizes)
    ris_free = [k for k in range(n_slots) if slots[k] is None]
    for j, k in enumerate(ris_free):
        size = next(ris_iter)
        northern = n == nights - 1 and len(ris_free) >= 2 and j == len(ris_free) - 1
        dec = float(rng.uniform(20.6, 29.0)) if northern else float(rng.uniform(-60.0, -5.0))
        ra = (lst_deg(mid[k], lon) + float(rng.uniform(-15.0, 15.0))) % 360.0
        t = _tile_near(ra, dec, used)
        used.add(t.name)
        slots[k] = _Visit(t.name, "RIS", (t.ra, t.dec), t.name, ((size + 1) // 2, size // 2))
    for k, v in enumerate(slots):
        assert v is not None
        v.start = t0 + span * k
    return [v for v in slots if v is not None]


@dataclass(frozen=True)
class _Anomalies:
    """Where the deliberate irregularities go (always present, placed by the parameters)."""

    missing_flats: tuple[str, date, str]  # unit, night, filter without any flat
    weather_outage: tuple[str, date]  # unit, night with empty weather cards
    off_pointing: tuple[str, date]  # unit, night whose first RIS visit has a frame 2 deg off


def _plan(
    units: list[str],
    nights: int,
    frames_per_night: int,
    start_night: date,
    seed: int,
    with_nina_night: bool,
    with_too: bool,
    with_focus_test: bool,
) -> tuple[list[FrameSpec], dict[str, Any]]:
    rng = np.random.default_rng([seed, 1])
    lon = TCSPY_SITE[1]
    u1, n1 = units[min(1, len(units) - 1)], start_night + timedelta(days=min(1, nights - 1))
    last = start_night + timedelta(days=nights - 1)
    odd = _Anomalies((u1, n1, UNIT_FILTERS[u1][1]), (units[0], last), (units[-1], last))
    ims = tiles.nearest_tile((lst_deg(local_night_time(start_night, 21, 0), lon) + 5.0) % 360.0, -30.0)
    focus0 = {u: 6000.0 + 250.0 * i + float(rng.uniform(-80, 80)) for i, u in enumerate(units)}
    frames: list[FrameSpec] = []
    for n in range(nights):
        night = start_night + timedelta(days=n)
        visits = _night_visits(n, night, nights, frames_per_night, rng, ims, with_too)
        af_time = whole_ms(local_night_time(night, 18, 50) + timedelta(seconds=float(rng.uniform(0, 300))))
        for i, unit in enumerate(units):
            tests = with_focus_test and n == 0 and i == 0
            frames += _plan_unit_night(unit, i, night, visits, af_time, focus0[unit], rng, odd, tests)
    if with_nina_night:
        frames += _plan_nina(units, rng, with_focus_test)
    frames.sort(key=lambda f: (f.unit, f.folder, f.t, f.name))
    scen: dict[str, Any] = {
        "missing_flats": [{"unit": odd.missing_flats[0], "night": odd.missing_flats[1].isoformat(),
                           "filter": odd.missing_flats[2]}],
        "weather_outage": [{"unit": odd.weather_outage[0], "night": odd.weather_outage[1].isoformat()}],
        "off_pointing": [f.relpath for f in frames if f.off_pointing],
        "ims_tile": ims.name,
        "too_event": TOO_EVENT if with_too else None,
        "nina_night": NINA_NIGHT.isoformat() if with_nina_night else None,
        "nina_name_time": "local (= DATE-LOC), as NINA's $$DATETIME$$",
    }  # fmt: skip
    return frames, scen


def _plan_unit_night(
    unit: str,
    i: int,
    night: date,
    visits: list[_Visit],
    af_time: datetime,
    focus0: float,
    rng: np.random.Generator,
    odd: _Anomalies,
    tests: bool,
) -> list[FrameSpec]:
    """One unit's night: afternoon bias and darks, twilight flats, then the shared visits."""
    f1, f2 = UNIT_FILTERS[unit]
    folder = f"{night:%Y-%m-%d}_gain2750"
    off = timedelta(seconds=4.0 * i + float(rng.uniform(0, 3)))
    base: dict[str, Any] = dict(unit=unit, folder=folder, night=night, software="tcspy", family="tcspy",
                                weather=(unit, night) != odd.weather_outage, focus=focus0 + float(rng.normal(0, 15)))
    cal_base = dict(base, af_time=af_time - timedelta(days=1))  # calibrations predate tonight's autofocus
    sci_base = dict(base, af_time=af_time, obsmode="Spec", specmode="specall")
    park, flat_pos = (40.0, 300.0), (40.0, 270.0)  # TCSpy mount.config park, autoflat.config position
    out: list[FrameSpec] = []

    def frame(t: datetime, obj: str, filt: str, exp: float, seq: int, kind: str = "science",
              **kw: Any) -> FrameSpec:
        t = whole_ms(t)
        imagetyp = "LIGHT" if kind == "science" else kind.upper()
        fields_ = {**(sci_base if kind == "science" else cal_base), "objtype": obj if kind != "science" else None,
                   **kw}
        fr = FrameSpec(name=_tcspy_name(unit, t, obj, filt, exp, seq), image_type=kind, imagetyp=imagetyp,
                       object=obj, filter=filt, exptime=exp, t=t, **fields_)
        out.append(fr)
        return fr

    def wait(t: datetime, seconds: float) -> datetime:
        return t + timedelta(seconds=seconds + float(rng.uniform(0, 0.4)))

    if tests:  # filter check at gain 0 (its own _gain0 folder), in the afternoon
        t = local_night_time(night, 16, 30) + off
        for seq, filt in enumerate((f1, f2)):
            frame(t, "filtercheck", filt, 1.0, seq, objtype="test", gain=0, altaz=park, excluded="test",
                  folder=f"{night:%Y-%m-%d}_gain0", af_time=cal_base["af_time"])
            t = wait(t, 10.5)
    t = local_night_time(night, 17, 0) + off
    for seq in range(N_BIAS):  # bias and darks keep whatever filter is in the wheel
        frame(t, "BIAS", f2, 0.0, seq, "bias", altaz=park)
        t = wait(t, 3.1)
    t += timedelta(seconds=20)
    for seq in range(N_DARK):
        frame(t, "DARK", f2, DARK_EXPTIME, seq, "dark", altaz=park)
        t = wait(t, DARK_EXPTIME + 3.1)
    t, exp = local_night_time(night, 18, 5) + off, 0.3
    for filt in (f1, f2):
        if (unit, night, filt) == odd.missing_flats:
            continue
        for seq in range(N_FLAT):  # evening sky darkens: exposures grow
            frame(t, "FLAT", filt, round(exp, 1), seq, "flat", altaz=flat_pos)
            t = wait(t, round(exp, 1) + 10.0 + float(rng.uniform(0, 2)))
            exp = min(20.0, exp * 1.45)
        t += timedelta(seconds=25)
    if tests:
        t = local_night_time(night, 19, 0) + off
        for seq in range(3):
            frame(t, "Defocus_test_WASP-178b", f1, 10.0, seq, objtype="Test", target=_TARGETS["WASP-178b"],
                  excluded="test", note="None")
            t = wait(t, 25.0)
    pending_off = (unit, night) == odd.off_pointing
    for v in visits:
        assert v.start is not None
        t = max(v.start + off, t)  # a long visit pushes the next one back
        fold = f"{folder}_ToO" if v.is_too else folder
        k = 0
        for filt, count in zip((f1, f2), v.counts):
            for seq in range(count):
                fr = frame(t, v.object, filt, v.exptime, seq, objtype=v.objtype, target=v.target, tile=v.tile,
                           is_too=v.is_too, note=v.note, folder=fold)
                if pending_off and v.objtype == "RIS" and k == min(1, sum(v.counts) - 1):
                    fr.off_pointing, fr.pointing, pending_off = True, (v.target[0], v.target[1] + 2.0), False
                k += 1
                t = wait(t, v.exptime + 14.0 + float(rng.uniform(0, 2)))
            t += timedelta(seconds=12.0)
    return out


def _plan_nina(units: list[str], rng: np.random.Generator, with_focus_test: bool) -> list[FrameSpec]:
    """One NINA-era night (bare-date folder, v1 and v2 file names, NINA keyword set)."""
    night = NINA_NIGHT
    folder = f"{night:%Y-%m-%d}"
    out: list[FrameSpec] = []
    t09614 = tiles.tile_by_name("T09614")
    assert t09614 is not None
    for i, unit in enumerate(units):
        f1, f2 = UNIT_FILTERS[unit]
        off = timedelta(seconds=5.0 * i + float(rng.uniform(0, 3)))
        focus = 7500.0 + 40 * i + float(rng.integers(-30, 30))
        base = dict(unit=unit, folder=folder, night=night, software="nina", focus=focus)

        def add(family: str, imagetyp: str, name_obj: str, obj: str | None, kind: str, filt: str, exp: float,
                t: datetime, n: int, **kw: Any) -> datetime:
            for seq in range(n):
                t = whole_ms(t)
                loc = t.astimezone(TZ)
                name = _nina_name(family, unit, imagetyp, name_obj, loc, filt, exp, seq)
                out.append(FrameSpec(name=name, family=family, image_type=kind, imagetyp=imagetyp, object=obj,
                                     objtype=None, filter=filt, exptime=exp, t=t, **{**base, **kw}))
                t += timedelta(seconds=exp + 4.0 + float(rng.uniform(0, 1.5)))
            return t + timedelta(seconds=20)

        park = (40.0, 300.0)
        t = local_night_time(night, 19, 0) + off
        t = add("nina_v1", "BIAS", "", None, "bias", f1, 0.0, t, N_BIAS, altaz=park)
        add("nina_v1", "DARK", "", None, "dark", f1, DARK_EXPTIME, t, N_DARK, altaz=park)
        t = local_night_time(night, 21, 5) + off
        for filt, exp in ((f1, 2.0), (f2, 4.0)):
            t = add("nina_v2", "FLAT", "FlatWizard", "FlatWizard", "flat", filt, exp, t, N_FLAT, altaz=(75.0, 90.0))
        if with_focus_test:
            t = local_night_time(night, 21, 20) + off
            t = add("nina_v1", "LIGHT", "FOCUS7522__WD0123-262", "WD0123-262", "science", f1, 60.0, t, 2,
                    target=_TARGETS["WD0123-262"], excluded="focus", focus=7522.0)
            add("nina_v1", "LIGHT", "focustest_NGC1980", "NGC1980", "science", f1, 6.0, t, 2,
                target=_TARGETS["NGC1980"], excluded="focus")
        t = local_night_time(night, 21, 45) + off
        add("nina_v1", "LIGHT", "LTT3218", "LTT3218", "science", f1, 30.0, t, 2, target=_TARGETS["LTT3218"])
        t = local_night_time(night, 22, 50) + off
        for filt in (f1, f2):
            t = add("nina_v2", "LIGHT", "T09614", "T09614", "science", filt, 120.0, t, 2,
                    target=(t09614.ra, t09614.dec), tile="T09614")
        t = local_night_time(night, 2, 9, 7.0) + off
        add("nina_v2", "LIGHT", "COSMOS", "COSMOS", "science", f1, 120.0, t, 3, target=_TARGETS["COSMOS"])
    return out


# ---------------------------------------------------------------------------------------
# Public generators
# ---------------------------------------------------------------------------------------


def generate_archive(
    root: Path,
    *,
    units: int = 3,
    nights: int = 3,
    frames_per_night: int = 12,
    seed: int = 7,
    data_shape: tuple[int, int] = (16, 24),
    full_size: bool = False,
    start_night: date = date(2025, 6, 30),
    with_nina_night: bool = True,
    with_too: bool = True,
    with_hash: bool = True,
    with_head: bool = True,
    with_focus_test: bool = True,
    fits_strict: bool = False,
) -> Manifest:
    """Write a sample 7DT data root under ``root`` and return (and store) its manifest.

    ``units`` are 7DT01..7DTnn (1..16); ``nights`` TCSpy nights start at ``start_night``;
    ``frames_per_night`` science frames per unit and night (>= 4; calibrations, ToO and
    test frames come on top).  ``data_shape`` is the numpy shape (NAXIS2, NAXIS1);
    ``full_size=True`` writes real 9576 x 6388 frames: about 122.35 MB each on disk and
    in memory while written, so keep such archives tiny.  ``fits_strict=True`` avoids the
    real TCSpy quirks that fitsverify flags (see the module docstring).
    """
    if not 1 <= units <= len(UNIT_FILTERS):
        raise ValueError(f"units must be 1..{len(UNIT_FILTERS)}")
    if nights < 1 or frames_per_night < 4:
        raise ValueError("need nights >= 1 and frames_per_night >= 4")
    root = Path(root)
    shape = FULL_SHAPE if full_size else (int(data_shape[0]), int(data_shape[1]))
    unit_names = [f"7DT{i:02d}" for i in range(1, units + 1)]
    plan, scen = _plan(unit_names, nights, frames_per_night, start_night, seed, with_nina_night, with_too,
                       with_focus_test)
    if len({f.relpath for f in plan}) != len(plan):  # pragma: no cover - planning bug guard
        raise RuntimeError("sample plan produced duplicate file names")
    records: list[FrameRecord] = []
    sidecars: list[str] = []
    digests: dict[Path, dict[str, str]] = {}
    for fr in plan:
        rng = np.random.default_rng([seed, 3, zlib.crc32(fr.relpath.encode())])
        if fr.pointing is None and fr.altaz is None:
            assert fr.target is not None
            jitter = rng.normal(0, 0.0004, 2)
            fr.pointing = (fr.target[0] + float(jitter[0]), fr.target[1] + float(jitter[1]))
        cards = (tcspy_cards(fr, shape, rng, seed, fits_strict) if fr.software == "tcspy"
                 else nina_cards(fr, shape, rng, seed))
        raw = header_bytes(cards) + data_bytes(pixels(fr, shape, rng))
        folder = root / fr.unit / fr.folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / fr.name).write_bytes(raw)
        digest = hashlib.sha256(raw).hexdigest()
        digests.setdefault(folder, {})[fr.name] = digest
        if with_head and fr.software == "tcspy":
            head_name = fr.name[: -len(".fits")] + ".head"
            text = head_text(cards).encode("ascii")
            (folder / head_name).write_bytes(text)
            digests[folder][head_name] = hashlib.sha256(text).hexdigest()
            sidecars.append(f"{fr.unit}/{fr.folder}/{head_name}")
        values = {c[:8].rstrip(): c for c in cards}
        image_id = values["IMAGEID"][11:43] if "IMAGEID" in values else None
        records.append(FrameRecord(
            path=fr.relpath, unit=fr.unit, folder=fr.folder, night=fr.night.isoformat(), image_type=fr.image_type,
            object=fr.object, filter=fr.filter, exptime=fr.exptime, date_obs=iso_ms(fr.t), objtype=fr.objtype,
            tile=fr.tile, is_too=fr.is_too, excluded=fr.excluded, off_pointing=fr.off_pointing, gain=fr.gain,
            software=fr.software, name_family=fr.family, image_id=image_id,
            ra=float(values["RA"][10:30]), dec=float(values["DEC"][10:30]), size=len(raw), sha256=digest,
            weather=fr.weather,
        ))  # fmt: skip
    folders_doc: list[dict[str, Any]] = []
    for folder, names in sorted(digests.items()):
        unit, name = folder.parent.name, folder.name
        tcspy = any(r.software == "tcspy" for r in records if r.unit == unit and r.folder == name)
        hashed = with_hash and tcspy  # allfiles.hash comes from TCSpy's transfer code
        if hashed:
            lines = "".join(f"{names[n]} {n}\n" for n in sorted(names))
            (folder / "allfiles.hash").write_text(lines, encoding="ascii")
            sidecars.append(f"{unit}/{name}/allfiles.hash")
        kind = "nina" if not tcspy else "too" if name.endswith("_ToO") else "gain0" if "_gain0" in name else "nightly"
        folders_doc.append({"unit": unit, "folder": name, "night": name[:10], "kind": kind, "has_hash": hashed,
                            "has_head": with_head and tcspy, "n_fits": sum(1 for n in names if n.endswith(".fits"))})
    manifest = Manifest(
        params={"units": units, "nights": nights, "frames_per_night": frames_per_night, "seed": seed,
                "data_shape": list(shape), "full_size": full_size, "start_night": start_night.isoformat(),
                "with_nina_night": with_nina_night, "with_too": with_too, "with_hash": with_hash,
                "with_head": with_head, "with_focus_test": with_focus_test, "fits_strict": fits_strict},
        units={u: list(UNIT_FILTERS[u]) for u in unit_names},
        folders=folders_doc,
        scenarios=scen,
        files=records,
        sidecars=sorted(sidecars),
    )  # fmt: skip
    manifest.write(root)
    log.info("sample archive: %d frames, %d folders under %s", len(records), len(folders_doc), root)
    return manifest


def generate_flat_files(
    root: Path,
    n_files: int,
    *,
    units: int = 2,
    cards: int = 180,
    seed: int = 11,
    per_folder: int = 200,
    start_night: date = date(2025, 6, 30),
) -> list[Path]:
    """Write ``n_files`` small valid TCSpy science frames fast, for benchmarks.

    One header (the TCSpy set, padded with HISTORY cards to ``cards`` cards) is rendered
    once; per file only the varying cards are re-rendered in place, so card positions never
    move. As in real TCSpy frames, ~40 cards vary from frame to frame: time, pointing, target,
    focus, CCD temperature and the weather station's readings.  Frames go round-robin over units, ``per_folder`` frames per unit night folder
    (``YYYY-MM-DD_gain2750``), RIS tiles of the original grid.  No side files, no manifest.
    """
    if not 1 <= units <= len(UNIT_FILTERS):
        raise ValueError(f"units must be 1..{len(UNIT_FILTERS)}")
    root = Path(root)
    shape = (16, 24)
    proto = FrameSpec(unit="7DT01", folder="x", night=start_night, name="x.fits", software="tcspy", family="tcspy",
                      image_type="science", imagetyp="LIGHT", object="T00000", objtype="RIS", filter="m650",
                      exptime=SCI_EXPTIME, t=local_night_time(start_night, 20, 0), target=(0.0, 0.0),
                      pointing=(0.0, 0.0), obsmode="Spec", specmode="specall", focus=6500.0)
    rng = np.random.default_rng([seed, 4])
    tmpl = tcspy_cards(proto, shape, rng, seed, strict=True)
    pad = [card("HISTORY", f"sample padding card {k:04d} for header-size realism") for k in range(cards - len(tmpl))]
    tmpl += pad
    head = bytearray(header_bytes(tmpl))
    body = data_bytes(pixels(proto, shape, rng))
    # keyword -> (byte offset, comment) of each card of the template
    slot = {c[:8].rstrip(): (k * 80, c[10:].split(" / ", 1)[1].rstrip() if " / " in c[10:] else "")
            for k, c in enumerate(tmpl)}
    lat, lon, _ = TCSPY_SITE
    paths: list[Path] = []
    made: set[Path] = set()
    for i in range(n_files):
        u, j = i % units, i // units
        unit = f"7DT{u + 1:02d}"
        night = start_night + timedelta(days=j // per_folder)
        t = local_night_time(night, 19, 30) + timedelta(seconds=(j % per_folder) * 115.0 + 3.0 * u + (i % 7) * 0.137)
        t = whole_ms(t)
        tile = tiles.tile((9000 + 16 * (j // 6)) % (tiles.RIS_LAST_INDEX + 1))
        filt = UNIT_FILTERS[unit][(j // 3) % 2]
        alt, az, _ = altaz(tile.ra, tile.dec, t, lat, lon)
        jdate = jd(t)
        for key, val in (
            ("RA", round(tile.ra, 6)), ("DEC", round(tile.dec, 6)), ("ALTITUDE", round(alt, 6)),
            ("AZIMUTH", round(az, 6)), ("CENTALT", round(alt, 6)), ("CENTAZ", round(az, 6)),
            ("FILTER", filt), ("TELESCOP", unit), ("OBJECT", tile.name),
            ("IMAGEID", uuid.UUID(bytes=rng.bytes(16), version=4).hex),
            ("DATE-OBS", iso_ms(t)), ("DATE-LOC", iso_ms(t.astimezone(TZ))),
            ("JD", jdate), ("MJD", jdate - 2400000.5),
            ("OBJCTRA", sexa(round(tile.ra, 3) / 15.0, ":", 2, False)),
            ("OBJCTDEC", sexa(round(tile.dec, 4), ":", 2, False)),
            ("OBJCTRA_", round(tile.ra, 3)), ("OBJCTDE_", round(tile.dec, 4)),
            ("LOGPATH", f"/home/kds/.tcspy/sync/log/{unit}"),
            ("AIRMASS", round(1.0 / max(np.sin(np.radians(alt)), 0.05), 6)), ("OBJCTALT", round(alt, 6)),
            ("OBJCTAZ", round(az, 6)), ("OBJCTHA", sexa(float(rng.uniform(0, 24)), " ", 8, False)),
            ("OBJCTID", uuid.UUID(bytes=rng.bytes(16), version=4).hex),
            ("MOONSEP", round(float(rng.uniform(20, 170)), 2)), ("MOONPHAS", round(0.32 + j * 1e-5, 6)),
            ("FOCUSPOS", round(6500 + float(rng.normal(0, 3)), 3)), ("CCD-TEMP", round(-10 + float(rng.normal(0, 0.05)), 2)),
            ("COLPOWER", round(61 + float(rng.normal(0, 2)), 1)),
            ("DATE-WEA", iso_ms(t - timedelta(seconds=float(rng.uniform(0, 60))))),
            ("AMBTEMP", round(11 + float(rng.normal(0, 0.3)), 1)), ("HUMIDITY", round(43 + float(rng.normal(0, 1)), 1)),
            ("PRESSURE", round(1017 + float(rng.normal(0, 0.2)), 1)), ("DEWPOINT", round(-1 + float(rng.normal(0, 0.3)), 1)),
            ("WINDSPED", round(abs(float(rng.normal(2, 1))), 1)), ("WINDDIR", round(float(rng.uniform(0, 360)), 1)),
            ("WINDGUST", round(abs(float(rng.normal(3, 1))), 1)), ("SKYBRGHT", round(21 + float(rng.normal(0, 0.1)), 2)),
            ("SKYTEMP", round(-25 + float(rng.normal(0, 0.5)), 1)), ("SKYFWHM", round(abs(float(rng.normal(2, 0.3))), 2)),
        ):  # fmt: skip
            off, comment = slot[key]
            head[off : off + 80] = card(key, val, comment).encode("ascii")
        folder = root / unit / f"{night:%Y-%m-%d}_gain2750"
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        path = folder / _tcspy_name(unit, t, tile.name, filt, SCI_EXPTIME, j % 3)
        with open(path, "wb") as fh:
            fh.write(head)
            fh.write(body)
        paths.append(path)
    return paths


class corrupt_helpers:  # noqa: N801 - a namespace, named as the reliability tests use it
    """Ways to damage files for reliability tests; all deterministic."""

    @staticmethod
    def truncate(path: Path, keep_bytes: int) -> None:
        """Cut the file to its first ``keep_bytes`` bytes (an interrupted transfer)."""
        with open(path, "r+b") as fh:
            fh.truncate(keep_bytes)

    @staticmethod
    def flip_bytes(path: Path, n: int, seed: int = 0) -> list[int]:
        """Invert ``n`` distinct bytes at seeded offsets; returns the offsets."""
        data = bytearray(Path(path).read_bytes())
        if not data:
            return []
        pick = np.random.default_rng(seed).choice(len(data), size=min(n, len(data)), replace=False)
        offsets = sorted(int(o) for o in pick)
        for o in offsets:
            data[o] ^= 0xFF
        Path(path).write_bytes(bytes(data))
        return offsets

    @staticmethod
    def write_garbage(path: Path, size: int = 5000, seed: int = 0) -> None:
        """A ``.fits``-named file that is not FITS at all."""
        rnd = np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8).tobytes()
        Path(path).write_bytes(b"This is not a FITS file.\n" + rnd)

    @staticmethod
    def write_no_end(path: Path, cards: Sequence[tuple[str, Any]] = ()) -> None:
        """A FITS-looking primary header with no END card (36 cards, no data)."""
        base: list[tuple[str, Any]] = [("SIMPLE", True), ("BITPIX", 16), ("NAXIS", 0), *cards]
        body = "".join(card(k, v) for k, v in base).encode("ascii")
        while len(body) % 2880:
            body += b" " * 80  # blank cards, valid filler
        Path(path).write_bytes(body)
