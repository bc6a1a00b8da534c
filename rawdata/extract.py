"""Turn one night folder's files into catalogue records: the work a reader process does.

Framework-free so that a local process pool and a Celery worker run the very same code. A file
ends as exactly one outcome: a frame record, a problem with a reason code, or deferred (still
being written). One bad file never affects another: every file is handled in its own try block.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from rawdata.checksums import sha256_file
from rawdata.classify import ExclusionRules, classify
from rawdata.folders import FolderInfo
from rawdata.header import HeaderError, parse_header, promote, read_header_bytes
from rawdata.names import ParsedName, parse_filename
from rawdata.nightdate import night_date
from rawdata.scan import FileEntry
from rawdata.tiles import angular_distance_deg, tile_by_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractConfig:
    """Settings a reader needs; plain values so they pickle to any worker."""

    rules: ExclusionRules = field(default_factory=ExclusionRules)
    verify_checksums: bool = True
    settle_seconds: float = 3600.0
    pointing_tolerance_deg: float = 1.0


@dataclass(frozen=True)
class FolderContext:
    unit: str
    folder: FolderInfo
    path: str
    hashes: dict[str, str] | None = None  # None: the folder has no allfiles.hash


@dataclass
class FrameRecord:
    """Everything the writer needs for one frame row plus its header row."""

    path: str
    columns: dict[str, Any]
    night: date
    header_json: str
    target: tuple[str, str, float | None, float | None] | None  # (kind, name, ra, dec)
    tile: str | None
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (reason, detail)


@dataclass(frozen=True)
class Problem:
    path: str
    size: int
    mtime_ns: int
    reason: str
    detail: str
    severity: str = "error"


@dataclass(frozen=True)
class Deferred:
    path: str
    detail: str


@dataclass
class ChunkTask:
    context: FolderContext
    files: list[FileEntry]
    config: ExtractConfig
    now: float = 0.0


@dataclass
class ChunkResult:
    frames: list[FrameRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)
    headers_read: int = 0
    seconds: float = 0.0


def read_chunk(task: ChunkTask) -> ChunkResult:
    """Read every file of the chunk; never raises for a single file."""
    started = time.perf_counter()
    result = ChunkResult()
    now = task.now or time.time()
    for entry in task.files:
        path = os.path.join(task.context.path, entry.name)
        try:
            outcome = extract_file(path, entry, task.context, task.config, now)
        except Exception as exc:  # a bug must cost one file, not the run
            log.exception("unexpected error reading %s", path)
            outcome = Problem(path, entry.size, entry.mtime_ns, "internal_error", f"{type(exc).__name__}: {exc}")
        result.headers_read += 1
        if isinstance(outcome, FrameRecord):
            result.frames.append(outcome)
            result.problems.extend(
                Problem(path, entry.size, entry.mtime_ns, reason, detail, severity)
                for reason, detail, severity in _problem_warnings(outcome)
            )
        elif isinstance(outcome, Problem):
            result.problems.append(outcome)
        else:
            result.deferred.append(outcome)
    result.seconds = time.perf_counter() - started
    return result


def _problem_warnings(record: FrameRecord) -> list[tuple[str, str, str]]:
    """Warnings that deserve a problem row (the frame itself is still catalogued)."""
    rows = []
    for reason, detail in record.warnings:
        severity = "error" if reason == "checksum_mismatch" else "warning"
        if reason in {"checksum_mismatch", "unknown_name"}:
            rows.append((reason, detail, severity))
    return rows


def extract_file(path: str, entry: FileEntry, ctx: FolderContext, cfg: ExtractConfig, now: float) -> FrameRecord | Problem | Deferred:
    """Read one file's primary header and build its record, or say why not."""
    settling = (now - entry.mtime_ns / 1e9) < cfg.settle_seconds
    try:
        raw = read_header_bytes(path)
        header = parse_header(raw)
    except HeaderError as exc:
        if exc.reason in {"truncated_header", "empty"} and settling:
            return Deferred(path, f"{exc.reason}: still being written?")
        if exc.reason == "unreadable" and not os.path.lexists(path):
            return Deferred(path, "vanished between the scan and the read")
        return Problem(path, entry.size, entry.mtime_ns, exc.reason, exc.detail)
    if entry.size < header.expected_size and not entry.name.endswith(".fz"):
        detail = f"file has {entry.size} bytes, header and data need {header.expected_size}"
        if settling:
            return Deferred(path, detail)
        return Problem(path, entry.size, entry.mtime_ns, "truncated", detail)

    cards = header.cards
    if entry.name.endswith(".fz"):
        cards = _compressed_cards(path, cards)
    meta = promote(cards)
    parsed = parse_filename(entry.name)
    record = build_record(path, entry, ctx, cfg, cards, meta, parsed)
    if parsed is None:
        record.warnings.append(("unknown_name", f"file name {entry.name!r} matches no known 7DT pattern"))
    for warning in meta.get("_warnings") or ():
        record.warnings.append(("bad_value", str(warning)))
    if cfg.verify_checksums and ctx.hashes is not None:
        expected = ctx.hashes.get(entry.name)
        if expected is None:
            record.columns["checksum"] = "no_hash"
        elif sha256_file(path) == expected:
            record.columns["checksum"] = "ok"
        else:
            record.columns["checksum"] = "mismatch"
            record.warnings.append(("checksum_mismatch", "SHA-256 differs from allfiles.hash"))
    return record


def _compressed_cards(path: str, primary: dict[str, Any]) -> dict[str, Any]:
    """A tile-compressed `.fits.fz` keeps the real header in extension 1; astropy reads it."""
    from astropy.io import fits

    try:
        ext = fits.getheader(path, 1)
    except Exception:  # noqa: BLE001 - an unreadable extension leaves the primary header
        return primary
    merged = dict(primary)
    merged.update({k: v for k, v in ext.items() if k and k not in {"COMMENT", "HISTORY"}})
    return merged


def build_record(
    path: str,
    entry: FileEntry,
    ctx: FolderContext,
    cfg: ExtractConfig,
    cards: dict[str, Any],
    meta: dict[str, Any],
    parsed: ParsedName | None,
) -> FrameRecord:
    cls = classify(
        imagetyp=meta.get("imagetyp"),
        object_name=meta.get("object") or (parsed.object if parsed else None),
        objtype=meta.get("objtype"),
        filename=entry.name,
        parsed=parsed,
        folder=ctx.folder,
        is_too_card=meta.get("is_too"),
        rules=cfg.rules,
    )
    date_obs: datetime | None = meta.get("date_obs") or (parsed.obs_time if parsed else None)
    night = night_date(date_obs) if date_obs else ctx.folder.date
    binning = meta.get("xbinning") or (parsed.binning if parsed else None)
    exptime = meta.get("exptime")
    if exptime is None and parsed:
        exptime = parsed.exptime
    mjd = meta.get("mjd")
    if mjd is None and date_obs is not None:
        mjd = (date_obs - _MJD_EPOCH).total_seconds() / 86400.0
    gain = meta.get("gain")
    columns: dict[str, Any] = {
        "path": path,
        "filename": entry.name,
        "image_type": cls.image_type,
        "type_source": cls.type_source,
        "excluded_by": cls.excluded_by or "",
        "object": (meta.get("object") or (parsed.object if parsed else "") or "")[:80],
        "program": (cls.program or "")[:24],
        "filter": (meta.get("filter") or (parsed.filter if parsed else "") or "")[:16],
        "exptime": exptime,
        "date_obs": date_obs,
        "mjd": mjd,
        "gain": int(round(gain)) if isinstance(gain, (int, float)) and math.isfinite(gain) else None,
        "binning": binning,
        "ccd_temp": meta.get("ccd_temp") if meta.get("ccd_temp") is not None else (parsed.ccd_temp if parsed else None),
        "camera": str(meta.get("cam_id") or meta.get("instrume") or "")[:64],
        "ra": meta.get("ra"),
        "dec": meta.get("dec"),
        "obj_ra": meta.get("obj_ra"),
        "obj_dec": meta.get("obj_dec"),
        "airmass": meta.get("airmass"),
        "naxis1": meta.get("naxis1"),
        "naxis2": meta.get("naxis2"),
        "image_id": str(meta.get("image_id") or "")[:64],
        "is_too": bool(cls.target_kind == "too" or ctx.folder.is_too or meta.get("is_too")),
        "is_shift": bool(getattr(cls, "is_shift", False)),
        "software": meta.get("software") or "",
        "name_family": parsed.family if parsed else "",
        "sequence": parsed.sequence if parsed else None,
        "obsnote": str(meta.get("note") or "")[:255] if meta.get("note") not in (None, "None") else "",
        "seeing": meta.get("seeing"),
        "sky_brightness": meta.get("sky_brightness"),
        "cloud_frac": meta.get("cloud_frac"),
        "humidity": meta.get("humidity"),
        "wind_speed": meta.get("wind_speed"),
        "pointing_offset": None,
        "pointing_warning": False,
        "file_size": entry.size,
        "file_mtime_ns": entry.mtime_ns,
        "checksum": "unknown",
        "present": True,
    }
    for key in ("exptime", "mjd", "ra", "dec", "obj_ra", "obj_dec", "airmass", "ccd_temp", "seeing",
                "sky_brightness", "cloud_frac", "humidity", "wind_speed"):
        value = columns[key]
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value)):
            columns[key] = None
    tile_name = cls.target_name if cls.target_kind == "tile" else None
    target = None
    if cls.target_kind in {"named", "standard", "too"} and cls.target_name:
        target = (cls.target_kind, cls.target_name[:100], columns["obj_ra"] or columns["ra"], columns["obj_dec"] or columns["dec"])
    if tile_name and columns["ra"] is not None and columns["dec"] is not None:
        grid = tile_by_name(tile_name)
        if grid is not None:
            offset = angular_distance_deg(columns["ra"], columns["dec"], grid.ra, grid.dec)
            columns["pointing_offset"] = offset
            columns["pointing_warning"] = offset > cfg.pointing_tolerance_deg
    return FrameRecord(
        path=path,
        columns=columns,
        night=night,
        header_json=header_to_json(cards),
        target=target,
        tile=tile_name,
    )


_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=timezone.utc)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def header_to_json(cards: dict[str, Any]) -> str:
    """JSON text of the header cards; non-finite floats become strings (jsonb refuses NaN)."""
    try:
        return json.dumps(cards, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return json.dumps({k: _jsonable(v) for k, v in cards.items()}, separators=(",", ":"))
