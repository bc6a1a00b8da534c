"""Raw FITS file names of 7DT -> typed fields.

Five families are recognised (the original GW Portal's 17 regex variants collapse into these):

``tcspy``        ``7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fits`` (mid-2024 on)
``nina_hyphen``  ``7DT01-20240527-061352-M107-m400-10.0s-0000.fits``
``nina_v2``      ``7DT01_LIGHT_COSMOS_2024-03-11_02-09-07_m675_2x2_120.00s_0005.fits``
``nina_v1``      ``LIGHT_FOCUS7522__WD0123-262_2023-11-02_01-29-23_u_60.00s_0091.fits``
``nina_v0``      ``ObjectName_2023-10-12_03-01-14_r_-9.82_60.00s_0021.fits`` (CCD temperature in the name)

Every pattern is anchored at both ends and the fixed fields are read from the right, because
OBJECT may itself contain ``_`` (``NGC6121_shift``) or ``-`` (``WD0123-262``).

NINA-era timestamps are assumed to be UTC, as the original did: the reference material could not
establish whether NINA wrote local time or UTC. Header DATE-OBS should win whenever it exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = ["FAMILIES", "TYPE_TOKEN_FAMILIES", "ParsedName", "parse_filename", "unified_name"]

FAMILIES = ("tcspy", "nina_v0", "nina_v1", "nina_v2", "nina_hyphen")
# Families whose names carry an explicit image-type token (as opposed to an OBJECT of BIAS/DARK/FLAT).
TYPE_TOKEN_FAMILIES = frozenset({"nina_v0", "nina_v1", "nina_v2"})

_CALIB_OBJECTS = frozenset({"BIAS", "DARK", "FLAT"})

_EXT = r"\.fits(?P<fz>\.fz)?"
_EXP = r"(?P<exptime>\d+(?:\.\d+)?)s"
_SEQ = r"(?P<seq>\d{4,6})"
_BIN = r"(?P<bin>\d{1,2})x(?P=bin)"  # square binning only; 7DT never bins asymmetrically
_UNIT = r"(?P<unit>7DT\d{2})"
_TYPE = r"(?P<type>LIGHT|DARK|BIAS|FLAT)"
_NINA_DT = r"(?P<date>\d{4}-\d{2}-\d{2})_(?P<time>\d{2}-\d{2}-\d{2})"

_TCSPY_RE = re.compile(
    rf"^{_UNIT}_(?P<date>\d{{8}})_(?P<time>\d{{6}})_(?P<object>.*)_(?P<filter>[^_]+)_{_BIN}_{_EXP}_{_SEQ}{_EXT}$",
    re.ASCII,
)
_HYPHEN_RE = re.compile(
    rf"^{_UNIT}-(?P<date>\d{{8}})-(?P<time>\d{{6}})-(?P<object>.+)-(?P<filter>[^-]+)-{_EXP}-{_SEQ}{_EXT}$",
    re.ASCII,
)
_V2_RE = re.compile(
    rf"^{_UNIT}_{_TYPE}_(?P<object>.*)_{_NINA_DT}_(?P<filter>[^_]*)_(?:{_BIN}_)?{_EXP}_{_SEQ}{_EXT}$",
    re.ASCII,
)
_V1_RE = re.compile(
    rf"^{_TYPE}_(?P<middle>.*)_{_NINA_DT}_(?P<filter>[^_]*)_(?:{_BIN}_)?{_EXP}_{_SEQ}{_EXT}$",
    re.ASCII,
)
# v0: optional object, CCD temperature (or a '$$$$' placeholder), sequence (or '$$FRAMENR$').
_V0_RE = re.compile(
    rf"^(?:(?P<object>.+)_)?{_NINA_DT}_(?P<filter>[^_]*)_(?P<temp>-?\d+(?:\.\d+)?|\$+)_{_EXP}_"
    rf"(?P<seq>\d{{1,6}}|\$+FRAMENR\$+){_EXT}$",
    re.ASCII,
)
# NINA v1 puts a sequence label in front of the target: 'FOCUS7522__WD0123-262', 'focustest_NGC1980'.
_V1_FOCUS_PREFIX_RE = re.compile(r"^(FOCUS\d+|focustest)_+(.*)$", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class ParsedName:
    """Fields a raw file name carries. ``None`` means "not in this name", never "zero".

    (The ``_parse_*`` builders below fill every field by name without __init__: keep them in step.)
    """

    family: str
    unit: str | None
    obs_time: datetime | None  # aware, UTC (NINA names assumed UTC)
    object: str | None
    filter: str | None
    binning: int | None
    exptime: float | None
    sequence: int | None
    imagetyp: str | None  # 'LIGHT'/'BIAS'/'DARK'/'FLAT' only when the name itself says so
    ccd_temp: float | None = None  # nina_v0 only
    compressed: bool = False  # .fits.fz
    prefix: str | None = None  # nina_v1 label before the target, e.g. 'FOCUS7522', 'focustest'


_UTC = timezone.utc


def _time(ymd: int, hms: int) -> datetime | None:
    """The UTC datetime of YYYYMMDD and HHMMSS read as integers, None if impossible.

    Replaces strptime (~10 us). The patterns give ASCII digits in fixed two-digit fields, where
    strptime accepts exactly the values datetime() accepts, and reads them the same way.
    """
    try:
        return datetime(ymd // 10000, ymd // 100 % 100, ymd % 100,
                        hms // 10000, hms // 100 % 100, hms % 100, 0, _UTC)
    except ValueError:  # e.g. 20250230 or 250000: the pattern matched but the timestamp is impossible
        return None


_new = object.__new__
_set = object.__setattr__


def _parsed(fields: dict[str, Any]) -> ParsedName:
    """``ParsedName(**fields)`` (all fields, in order) without the frozen dataclass's __init__,
    which sets each field through object.__setattr__ (~1.2 us); the instance is the same."""
    obj = _new(ParsedName)
    _set(obj, "__dict__", fields)
    return obj


def _int(s: str | None) -> int | None:
    return int(s) if s is not None and s.isdigit() else None


def _none_if_empty(s: str | None) -> str | None:
    return s if s else None


def _split_v1_middle(middle: str) -> tuple[str | None, str | None]:
    """'FOCUS7522__WD0123-262' -> ('FOCUS7522', 'WD0123-262'); 'Feige110' -> (None, 'Feige110')."""
    if "__" in middle:
        prefix, _, rest = middle.partition("__")
        return _none_if_empty(prefix), _none_if_empty(rest.strip("_"))
    m = _V1_FOCUS_PREFIX_RE.match(middle)
    if m:
        return m.group(1), _none_if_empty(m.group(2))
    return None, _none_if_empty(middle)


def _parse_tcspy(m: re.Match[str], family: str) -> ParsedName:
    unit, date, time, obj, filt, binning, exptime, seq, fz = m.groups()
    obj = obj or None
    return _parsed({
        "family": family, "unit": unit, "obs_time": _time(int(date), int(time)), "object": obj,
        "filter": filt, "binning": int(binning), "exptime": float(exptime), "sequence": int(seq),
        "imagetyp": obj if obj in _CALIB_OBJECTS else None, "ccd_temp": None, "compressed": fz is not None,
        "prefix": None,
    })


def _parse_hyphen(m: re.Match[str], family: str) -> ParsedName:
    unit, date, time, obj, filt, exptime, seq, fz = m.groups()
    obj = obj or None
    return _parsed({
        "family": family, "unit": unit, "obs_time": _time(int(date), int(time)), "object": obj,
        "filter": filt, "binning": None, "exptime": float(exptime), "sequence": int(seq),
        "imagetyp": obj if obj in _CALIB_OBJECTS else None, "ccd_temp": None, "compressed": fz is not None,
        "prefix": None,
    })


def _parse_nina(m: re.Match[str], family: str) -> ParsedName:
    groups = m.groupdict()
    prefix: str | None = None
    imagetyp = groups.get("type")
    obj = _none_if_empty(groups.get("object"))
    if family == "nina_v1":
        prefix, obj = _split_v1_middle(m.group("middle"))
    elif family == "nina_v0" and obj in _CALIB_OBJECTS:
        imagetyp, obj = obj, None  # 'DARK_2023-10-11_...': the leading token is a type, not a target
    temp = groups.get("temp")
    return _parsed({
        "family": family,
        "unit": groups.get("unit"),
        "obs_time": _time(int(m.group("date").replace("-", "")), int(m.group("time").replace("-", ""))),
        "object": obj,
        "filter": _none_if_empty(m.group("filter")),
        "binning": _int(groups.get("bin")),
        "exptime": float(m.group("exptime")),
        "sequence": _int(m.group("seq")),
        "imagetyp": imagetyp,
        "ccd_temp": float(temp) if temp and not temp.startswith("$") else None,
        "compressed": m.group("fz") is not None,
        "prefix": prefix,
    })


_GRAMMAR = (
    (_TCSPY_RE, "tcspy", _parse_tcspy),
    (_HYPHEN_RE, "nina_hyphen", _parse_hyphen),
    (_V2_RE, "nina_v2", _parse_nina),
    (_V1_RE, "nina_v1", _parse_nina),
    (_V0_RE, "nina_v0", _parse_nina),
)


def parse_filename(name: str) -> ParsedName | None:
    """Parse a file's base name; ``None`` for anything that is not a known raw-frame name.

    Only ``.fits`` and ``.fits.fz`` (lower case) are accepted. Never raises.
    """
    if not isinstance(name, str) or "/" in name or not (name.endswith(".fits") or name.endswith(".fits.fz")):
        return None
    for regex, family, build in _GRAMMAR:
        m = regex.fullmatch(name)
        if m:
            return build(m, family)
    return None


def unified_name(p: ParsedName, *, unit: str | None = None) -> str:
    """The original's unified name, kept so old and new names can be matched across systems:

    ``<unit>_<YYYYMMDD_HHMMSS>_<object|BIAS|DARK|FLAT>_[<filter>_]<N>x<N>_<exp:.1f>s_<seq:04d>.fits``

    Bias and dark omit the filter (it is whatever sat in the wheel). ``unit`` is used when the name
    has none (NINA v0/v1; take it from the folder). Missing fields get the original's placeholders.
    """
    unit_part = p.unit or unit or "UNKNOWN"
    time_part = p.obs_time.astimezone(timezone.utc).strftime("%Y%m%d_%H%M%S") if p.obs_time else "UNKNOWN"
    if p.imagetyp in ("BIAS", "DARK"):
        middle = p.imagetyp
    elif p.imagetyp == "FLAT":
        middle = f"FLAT_{p.filter or 'unknown'}"
    else:
        middle = f"{p.object or 'UNKNOWN'}_{p.filter or 'unknown'}"
    binning = p.binning or 1
    exptime = p.exptime if p.exptime is not None else 0.0
    return f"{unit_part}_{time_part}_{middle}_{binning}x{binning}_{exptime:.1f}s_{p.sequence or 0:04d}.fits"
