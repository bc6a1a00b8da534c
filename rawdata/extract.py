"""Turn one night folder's files into catalogue records: the work a reader process does.

Framework-free so that a local process pool and a Celery worker run the very same code. A file
ends as exactly one outcome: a frame record, a problem with a reason code, or deferred (still
being written). One bad file never affects another: every file is handled in its own try block.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import partial
from operator import is_not
from typing import Any

from rawdata.checksums import sha256_file
from rawdata.classify import Classification, ExclusionRules, classify
from rawdata.folders import FolderInfo
from rawdata.header import HeaderError, Layout, parse_header, promote, read_header_bytes
from rawdata.names import ParsedName, parse_filename
from rawdata.nightdate import night_date
from rawdata.scan import FileEntry
from rawdata.tiles import Tile, angular_distance_deg, tile_by_name

try:  # ~8x faster than json for a 180-card header; json stays the fallback (and the reference)
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; a bare reader host may lack it
    orjson = None

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractConfig:
    """Settings a reader needs; plain values so they pickle to any worker."""

    rules: ExclusionRules = field(default_factory=ExclusionRules)
    verify_checksums: bool = True
    settle_seconds: float = 3600.0
    pointing_tolerance_deg: float = 1.0
    # Header reads in flight per reader process. 1 suits local disks (the read costs ~30 us); on
    # network storage a read waits milliseconds, so 8-32 threads keep the parser busy.
    read_concurrency: int = 1


@dataclass(frozen=True)
class FolderContext:
    unit: str
    folder: FolderInfo
    path: str
    hashes: dict[str, str] | None = None  # None: the folder has no allfiles.hash


#: The frame columns a reader fills, in the order of :attr:`FrameRecord.row`. A tuple, not a dict
#: per frame: rows cross a process boundary (or a broker) and the writer hands them to the
#: database driver, so every per-frame key costs pickling and lookups thousands of times a second.
FRAME_COLUMNS: tuple[str, ...] = (
    "path", "filename", "image_type", "type_source", "excluded_by", "object", "program", "filter", "exptime",
    "date_obs", "mjd", "gain", "binning", "ccd_temp", "camera", "ra", "dec", "obj_ra", "obj_dec", "airmass",
    "naxis1", "naxis2", "image_id", "is_too", "is_shift", "software", "name_family", "sequence", "obsnote",
    "seeing", "sky_brightness", "cloud_frac", "humidity", "wind_speed", "pointing_offset", "pointing_warning",
    "file_size", "file_mtime_ns", "checksum", "present",
)
COLUMN: dict[str, int] = {name: i for i, name in enumerate(FRAME_COLUMNS)}


@dataclass
class FrameRecord:
    """Everything the writer needs for one frame row plus its header row."""

    path: str
    row: tuple[Any, ...]  # values in FRAME_COLUMNS order
    night: date
    header_json: str  # JSON of the header's cards; with ``layout``, of those that differ from it
    target: tuple[str, str, float | None, float | None] | None  # (kind, name, ra, dec)
    tile: str | None
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (reason, detail)
    layout: str | None = None  # digest of the shared cards (ChunkResult.layouts), or None: header_json is whole

    @property
    def columns(self) -> dict[str, Any]:
        """The row as a dict (for people and tests; the hot path uses ``row``)."""
        return dict(zip(FRAME_COLUMNS, self.row))

    def __getitem__(self, column: str) -> Any:
        return self.row[COLUMN[column]]


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
    layouts: dict[str, str] = field(default_factory=dict)  # digest -> JSON of the cards its frames share


def read_chunk(task: ChunkTask) -> ChunkResult:
    """Read every file of the chunk; never raises for a single file."""
    started = time.perf_counter()
    result = ChunkResult()
    now = task.now or time.time()
    ctx, cfg = task.context, task.config
    prefix = ctx.path if ctx.path.endswith("/") else ctx.path + "/"  # = os.path.join(ctx.path, name)
    classifier = _Classifier.for_folder(ctx.folder, cfg.rules)
    frames, problems, deferred = result.frames, result.problems, result.deferred
    raws = _prefetch(prefix, task.files, cfg.read_concurrency)
    for entry in task.files:
        path = prefix + entry.name
        try:
            outcome = extract_file(path, entry, ctx, cfg, now, raw=next(raws), classifier=classifier)
        except Exception as exc:  # a bug must cost one file, not the run
            log.exception("unexpected error reading %s", path)
            outcome = Problem(path, entry.size, entry.mtime_ns, "internal_error", f"{type(exc).__name__}: {exc}")
        result.headers_read += 1
        if type(outcome) is FrameRecord:
            frames.append(outcome)
            if outcome.layout is not None and outcome.layout not in result.layouts:
                result.layouts[outcome.layout] = _layout_text[outcome.layout]
            if outcome.warnings:
                problems.extend(
                    Problem(path, entry.size, entry.mtime_ns, reason, detail, severity)
                    for reason, detail, severity in _problem_warnings(outcome)
                )
        elif type(outcome) is Problem:
            problems.append(outcome)
        else:
            deferred.append(outcome)
    result.seconds = time.perf_counter() - started
    return result


def _read_raw(path: str) -> bytes | Exception:
    """The header bytes, or the error as a value: it crosses a thread boundary, and an unexpected one
    must cost this file only, not end the prefetching generator."""
    try:
        return read_header_bytes(path)
    except Exception as exc:  # noqa: BLE001 - re-raised for this file by extract_file
        return exc


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _thread_pool(size: int) -> ThreadPoolExecutor:
    """One reader-thread pool per process, reused by every chunk (threads are not free to start)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != size:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="header-read")
            _pool_size = size
        return _pool


def _prefetch(prefix: str, files: list[FileEntry], concurrency: int) -> Iterator[bytes | Exception]:
    """Header bytes of ``files`` in order; with concurrency > 1, up to 2x that many reads in flight.

    The parser runs in this thread while other threads wait on the storage (I/O releases the GIL),
    which hides the latency of network storage; a local disk needs none of it.
    """
    if concurrency <= 1:
        for entry in files:
            yield _read_raw(prefix + entry.name)
        return
    pool = _thread_pool(concurrency)
    window: deque = deque()
    names = iter(files)
    for entry in names:
        window.append(pool.submit(_read_raw, prefix + entry.name))
        if len(window) >= 2 * concurrency:
            break
    while window:
        done = window.popleft().result()
        entry = next(names, None)
        if entry is not None:
            window.append(pool.submit(_read_raw, prefix + entry.name))
        yield done


class _Classifier:
    """``classify`` with a memo: frames of one folder repeat the same few objects, types and programs.

    The outcome depends on the header and name values below, on the folder and the rules (fixed per
    instance), and on the file name only through the exclusion rules that look at it: the first
    matching file-name rule is part of the key, computed by the rules' own ``matches``.
    """

    _instances: dict[tuple[FolderInfo, ExclusionRules], _Classifier] = {}

    def __init__(self, folder: FolderInfo, rules: ExclusionRules) -> None:
        self.folder = folder
        self.rules = rules
        self.name_rules = tuple(r for r in rules.rules if r.field == "filename")
        # Every file-name rule (equals, prefix, contains) needs its value inside the name, so one
        # regex over the case-folded name rules most names out; the rules decide the rest.
        needles = sorted({r.value.casefold() for r in self.name_rules if r.value}, key=len, reverse=True)
        self.name_prefilter = re.compile("|".join(map(re.escape, needles))) if needles else None
        self.memo: dict[tuple, Classification] = {}

    @classmethod
    def for_folder(cls, folder: FolderInfo, rules: ExclusionRules) -> _Classifier:
        key = (folder, rules)
        inst = cls._instances.get(key)
        if inst is None:
            if len(cls._instances) > 256:
                cls._instances.clear()
            inst = cls._instances[key] = cls(folder, rules)
        return inst

    def __call__(self, meta: dict[str, Any], name: str, parsed: ParsedName | None) -> Classification:
        name_hit = None
        prefilter = self.name_prefilter
        if prefilter is not None and prefilter.search(name.casefold()) is not None:
            values = {"filename": name}
            for rule in self.name_rules:
                if rule.matches(values, None):
                    name_hit = rule.id
                    break
        key = (
            meta["imagetyp"], meta["object"], meta["objtype"], meta["is_too"], name_hit,
            (parsed.object, parsed.family, parsed.imagetyp) if parsed is not None else None,
        )
        cls = self.memo.get(key)
        if cls is None:
            cls = classify(
                imagetyp=meta["imagetyp"],
                object_name=meta["object"] or (parsed.object if parsed else None),
                objtype=meta["objtype"],
                filename=name,
                parsed=parsed,
                folder=self.folder,
                is_too_card=meta["is_too"],
                rules=self.rules,
            )
            if len(self.memo) > 4096:
                self.memo.clear()
            self.memo[key] = cls
        return cls


def _problem_warnings(record: FrameRecord) -> list[tuple[str, str, str]]:
    """Warnings that deserve a problem row (the frame itself is still catalogued)."""
    rows = []
    for reason, detail in record.warnings:
        severity = "error" if reason == "checksum_mismatch" else "warning"
        if reason in {"checksum_mismatch", "unknown_name"}:
            rows.append((reason, detail, severity))
    return rows


def extract_file(
    path: str,
    entry: FileEntry,
    ctx: FolderContext,
    cfg: ExtractConfig,
    now: float,
    *,
    raw: bytes | Exception | None = None,
    classifier: _Classifier | None = None,
) -> FrameRecord | Problem | Deferred:
    """Read one file's primary header and build its record, or say why not.

    ``raw`` is the header bytes (or the read's error) when a prefetching thread read them already.
    """
    settling = (now - entry.mtime_ns / 1e9) < cfg.settle_seconds
    try:
        if raw is None:
            raw = read_header_bytes(path)
        elif isinstance(raw, Exception):
            raise raw
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
    fast_cards = not header.via_astropy  # the fast parser's values: str, int, finite float, bool, None
    layout = header.layout
    if entry.name.endswith(".fz"):
        cards = _compressed_cards(path, cards)
        fast_cards = False
        layout = None
    meta = promote(cards)
    parsed = parse_filename(entry.name)
    checksum = "unknown"
    if cfg.verify_checksums and ctx.hashes is not None:
        expected = ctx.hashes.get(entry.name)
        if expected is None:
            checksum = "no_hash"
        else:
            checksum = "ok" if sha256_file(path) == expected else "mismatch"
    record = build_record(
        path, entry, ctx, cfg, cards, meta, parsed, classifier=classifier, checked_json=fast_cards, checksum=checksum,
        layout=layout,
    )
    if parsed is None:
        record.warnings.append(("unknown_name", f"file name {entry.name!r} matches no known 7DT pattern"))
    for warning in meta["_warnings"]:
        record.warnings.append(("bad_value", str(warning)))
    if checksum == "mismatch":
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
    *,
    classifier: _Classifier | None = None,
    checked_json: bool = False,
    checksum: str = "unknown",
    layout: Layout | None = None,
) -> FrameRecord:
    """The frame row of one file: header values first, the file name as fallback.

    ``checked_json``: the cards come from the fast parser, so every float in them is finite.
    ``layout``: the header parser's layout of these cards; the record then carries only the cards
    that may differ from it (a few hundred bytes instead of ~6 KB to pickle, write and store).
    """
    if classifier is None:
        classifier = _Classifier.for_folder(ctx.folder, cfg.rules)
    cls = classifier(meta, entry.name, parsed)
    date_obs: datetime | None = meta["date_obs"]
    if date_obs is None and parsed is not None:
        date_obs = parsed.obs_time
    night = night_date(date_obs) if date_obs else ctx.folder.date
    exptime = meta["exptime"]
    binning = meta["xbinning"]
    ccd_temp = meta["ccd_temp"]
    obj = meta["object"]
    filt = meta["filter"]
    if parsed is not None:
        if exptime is None:
            exptime = parsed.exptime
        binning = binning or parsed.binning  # (a 0 in the header falls back too, as before)
        if ccd_temp is None:
            ccd_temp = parsed.ccd_temp
        obj = obj or parsed.object
        filt = filt or parsed.filter
    mjd = meta["mjd"]
    if mjd is None and date_obs is not None:
        mjd = (date_obs - _MJD_EPOCH).total_seconds() / 86400.0
    gain = meta["gain"]
    note = meta["note"]
    ra, dec, obj_ra, obj_dec = meta["ra"], meta["dec"], meta["obj_ra"], meta["obj_dec"]
    exptime, mjd, ra, dec, obj_ra, obj_dec, airmass, ccd_temp, seeing, sky, cloud, humidity, wind = _finite_numbers((
        exptime, mjd, ra, dec, obj_ra, obj_dec, meta["airmass"], ccd_temp, meta.get("seeing"),
        meta.get("sky_brightness"), meta.get("cloud_frac"), meta["humidity"], meta.get("wind_speed"),
    ))
    gain, binning, naxis1, naxis2, sequence, warnings = _fit_ints((
        int(round(gain)) if isinstance(gain, (int, float)) and math.isfinite(gain) else None,
        binning, meta["naxis1"], meta["naxis2"], parsed.sequence if parsed else None,
    ))
    tile_name = cls.target_name if cls.target_kind == "tile" else None
    target = None
    if cls.target_kind in _TARGET_KINDS and cls.target_name:
        target = (cls.target_kind, cls.target_name[:100], obj_ra or ra, obj_dec or dec)
    pointing_offset, pointing_warning = None, False
    if tile_name and ra is not None and dec is not None:
        grid = _grid_tile(tile_name)
        if grid is not None:
            pointing_offset = angular_distance_deg(ra, dec, grid.ra, grid.dec)
            pointing_warning = pointing_offset > cfg.pointing_tolerance_deg
    row = (  # FRAME_COLUMNS order
        path,
        entry.name,
        cls.image_type,
        cls.type_source,
        cls.excluded_by or "",
        (obj or "")[:80],
        (cls.program or "")[:24],
        (filt or "")[:16],
        exptime,
        date_obs,
        mjd,
        gain,
        binning,
        ccd_temp,
        str(meta["cam_id"] or meta["instrume"] or "")[:64],
        ra,
        dec,
        obj_ra,
        obj_dec,
        airmass,
        naxis1,
        naxis2,
        str(meta["image_id"] or "")[:64],
        bool(cls.target_kind == "too" or ctx.folder.is_too or meta["is_too"]),
        bool(cls.is_shift),
        meta["software"] or "",
        parsed.family if parsed else "",
        sequence,
        str(note)[:255] if note not in (None, "None") else "",
        seeing,
        sky,
        cloud,
        humidity,
        wind,
        pointing_offset,
        pointing_warning,
        entry.size,
        entry.mtime_ns,
        checksum,
        True,
    )
    if layout is not None:
        digest = layout.key
        if digest not in _layout_text:  # (None, or forgotten: the texts are bounded, layouts live on)
            digest = _layout_digest(layout)
        header_json = header_to_json(layout.changes(cards), checked=True)
    else:
        digest = None
        header_json = header_to_json(cards, checked=checked_json)
    return FrameRecord(
        path=path,
        row=row,
        night=night,
        header_json=header_json,
        target=target,
        tile=tile_name,
        warnings=warnings,
        layout=digest,
    )


_layout_text: dict[str, str] = {}  # digest -> JSON of a layout's cards, for this process's layouts


def _layout_digest(layout: Layout) -> str:
    """The stored identity of a layout's shared cards: a digest of their JSON (once per layout).

    A digest, not a number: reader processes (and runs) find layouts independently, and the same
    cards must be stored once whichever process met them first. The changed cards are None in them,
    so that a layout does not depend on which of its headers it was learnt from."""
    text = header_to_json(layout.shared(), checked=True)
    digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    if len(_layout_text) > 4096:
        _layout_text.clear()
    _layout_text[digest] = text
    layout.key = digest
    return digest


def _finite(value: Any) -> float | int | None:
    """A number column's value, or None for anything not a finite number (or an int beyond a float)."""
    try:
        if isinstance(value, (int, float)) and math.isfinite(value):
            return value
    except OverflowError:
        pass
    return None


# Integer columns a reader fills, with their database type's range: a header value beyond it (GAIN
# = 1E12, NAXIS1 = 99999999999) is a bad value, never a failed batch (nor, in PostgreSQL's binary
# COPY, a silently wrapped number).
_INT2, _INT4 = (-(2**15), 2**15 - 1), (-(2**31), 2**31 - 1)
_INT_COLUMNS = (("GAIN", _INT4), ("XBINNING", _INT2), ("NAXIS1", _INT4), ("NAXIS2", _INT4), ("sequence", _INT4))


def _fit_ints(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """``values`` (gain, binning, naxis1, naxis2, sequence) with those out of their column's range as
    None, and the list of ('bad_value', why) warnings for them, last."""
    warnings: list[tuple[str, str]] = []
    lo, hi = _INT2  # the narrowest range: within it, every column's (the common case, one pass)
    if all(v is None or lo <= v <= hi for v in values):
        return (*values, warnings)
    out = list(values)
    for i, (value, (name, (lo, hi))) in enumerate(zip(values, _INT_COLUMNS)):
        if value is not None and not lo <= value <= hi:
            out[i] = None
            warnings.append(("bad_value", f"{name}: {value} is out of the catalogue's range {lo}..{hi}"))
    return (*out, warnings)


_NUMBER_TYPES = frozenset({float, int, type(None)})
_not_none = partial(is_not, None)


def _finite_numbers(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """``values`` with anything that is not a finite number as None.

    promote() and the name parser give finite numbers; this makes sure, in two C-level checks for the
    common case (numbers or None, finite sum) instead of a test per value."""
    if set(map(type, values)) <= _NUMBER_TYPES:
        try:
            if math.isfinite(math.fsum(filter(_not_none, values))):
                return values
        except OverflowError:  # an int too large for a float: sort it out value by value
            pass
    return tuple(map(_finite, values))


_TARGET_KINDS = frozenset({"named", "standard", "too"})
_grid_tiles: dict[str, Tile | None] = {}


def _grid_tile(name: str) -> Tile | None:
    """``tile_by_name`` memoised: the grid is fixed and a night revisits the same tiles."""
    try:
        return _grid_tiles[name]
    except KeyError:
        if len(_grid_tiles) > 50_000:
            _grid_tiles.clear()
        tile = _grid_tiles[name] = tile_by_name(name)
        return tile


_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=timezone.utc)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def header_to_json(cards: dict[str, Any], *, checked: bool = False) -> str:
    """JSON text of the header cards; non-finite floats become strings (jsonb refuses NaN).

    ``checked``: the caller knows every value is a str, int, finite float, bool, None or a list of
    str (the fast header parser's output), so orjson may encode it (it would write NaN as null).
    """
    if checked and orjson is not None:
        try:
            return orjson.dumps(cards).decode()
        except TypeError:  # an int beyond 64 bits: json handles it
            pass
    try:
        return json.dumps(cards, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return json.dumps({k: _jsonable(v) for k, v in cards.items()}, separators=(",", ":"))
