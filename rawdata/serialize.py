"""ChunkTask / ChunkResult <-> plain JSON values, for read tasks that travel through a message broker.

Why not pickle: a broker message must never be able to execute code on the host that reads it, and
unpickling is code execution. JSON can only ever produce str/int/float/bool/None/list/dict.

The format is JSON-native values plus a few tagged objects ``{"__t": tag, ...}``:

- ``{"__t": "dc", "cls": "FrameRecord", "v": {field: value}}``: one of the dataclasses in
  ``ALLOWED`` (a fixed whitelist: nothing is ever imported by name from a message);
- ``{"__t": "tuple", "v": [...]}``, ``{"__t": "date", "v": "2025-07-01"}``,
  ``{"__t": "datetime", "v": "2025-07-01T01:23:45.123000+00:00"}``, ``{"__t": "float", "v": "nan"}``.

Every field of a dataclass is written, so a field added later travels without touching this module;
decoding refuses unknown classes and unknown fields with `SerializeError` (a coordinator and workers
of different versions fail loudly instead of dropping data). Floats round-trip exactly (JSON uses
``repr``), tuples stay tuples, timezone-aware datetimes keep their offset.
"""
from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime
from typing import Any

from rawdata.classify import ExclusionRule, ExclusionRules
from rawdata.extract import (
    ChunkResult,
    ChunkTask,
    Deferred,
    ExtractConfig,
    FolderContext,
    FrameRecord,
    Problem,
)
from rawdata.folders import FolderInfo
from rawdata.scan import FileEntry

__all__ = [
    "ALLOWED",
    "SCHEMA",
    "SerializeError",
    "chunk_result_from_dict",
    "chunk_result_to_dict",
    "chunk_task_from_dict",
    "chunk_task_to_dict",
    "decode",
    "encode",
]

#: Bumped when the message layout changes incompatibly; both sides check it.
SCHEMA = 2  # 2: frames carry their header layout (FrameRecord.layout, ChunkResult.layouts)

#: The only classes a message may construct.
ALLOWED: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        ChunkTask, FolderContext, FolderInfo, FileEntry, ExtractConfig, ExclusionRules, ExclusionRule,
        ChunkResult, FrameRecord, Problem, Deferred,
    )
}

_TAG = "__t"
_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_PASS = frozenset({str, int, bool, type(None)})  # JSON-native and never tagged (exact types only)
_PLAIN = _PASS | {float}  # what JSON gives back untagged


class SerializeError(ValueError):
    """A message that this version cannot decode (wrong schema, unknown class or field, bad value)."""


def encode(value: Any) -> Any:
    """Any supported value -> JSON-native value (see the module docstring for the tags)."""
    kind = type(value)
    if kind in _PASS or (kind is float and math.isfinite(value)):
        return value  # fast path: most values of a record
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {_TAG: "float", "v": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, datetime):  # before date: datetime is a date subclass
        return {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {_TAG: "tuple", "v": [encode(v) for v in value]}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if type(key) is not str or key == _TAG:
                raise SerializeError(f"cannot encode dict key {key!r}")
            kind = type(item)
            out[key] = item if kind in _PASS or (kind is float and math.isfinite(item)) else encode(item)
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if ALLOWED.get(name) is not type(value):
            raise SerializeError(f"class {type(value).__qualname__} is not allowed in a message")
        return {_TAG: "dc", "cls": name,
                "v": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    raise SerializeError(f"cannot encode a value of type {type(value).__name__}")


def decode(value: Any) -> Any:
    """Inverse of `encode`; raises SerializeError for anything it did not write."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list:
        return [v if type(v) in _PLAIN else decode(v) for v in value]
    if kind is not dict:
        raise SerializeError(f"unexpected JSON value of type {kind.__name__}")
    tag = value.get(_TAG)
    if tag is None:
        return {key: (item if type(item) in _PLAIN else decode(item)) for key, item in value.items()}
    try:
        if tag == "dc":
            return _decode_dataclass(value)
        if tag == "tuple":
            return tuple(decode(v) for v in value["v"])
        if tag == "datetime":
            return datetime.fromisoformat(value["v"])
        if tag == "date":
            return date.fromisoformat(value["v"])
        if tag == "float":
            return _FLOATS[value["v"]]
    except SerializeError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise SerializeError(f"malformed {tag!r} value: {exc}") from exc
    raise SerializeError(f"unknown tag {tag!r}")


def _decode_dataclass(value: dict[str, Any]) -> Any:
    cls = ALLOWED.get(value.get("cls"))  # type: ignore[arg-type]
    if cls is None:
        raise SerializeError(f"class {value.get('cls')!r} is not allowed in a message")
    fields = value.get("v")
    if not isinstance(fields, dict):
        raise SerializeError(f"{cls.__name__}: fields missing")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(fields) - known
    if unknown:
        raise SerializeError(f"{cls.__name__} has no field(s) {sorted(unknown)}: coordinator and worker differ in version?")
    try:
        return cls(**{name: decode(item) for name, item in fields.items()})
    except TypeError as exc:
        raise SerializeError(f"{cls.__name__}: {exc}") from exc


def _wrap(kind: str, obj: Any, cls: type) -> dict[str, Any]:
    if not isinstance(obj, cls):
        raise SerializeError(f"expected a {cls.__name__}, got {type(obj).__name__}")
    return {"schema": SCHEMA, "kind": kind, "body": encode(obj)}


def _unwrap(kind: str, data: Any, cls: type) -> Any:
    if not isinstance(data, dict):
        raise SerializeError(f"a {kind} message must be a JSON object, got {type(data).__name__}")
    if data.get("schema") != SCHEMA:
        raise SerializeError(
            f"{kind} message has schema {data.get('schema')!r}, this code reads schema {SCHEMA}: "
            "run the same GW Portal version on the coordinator and every worker"
        )
    if data.get("kind") != kind:
        raise SerializeError(f"expected a {kind} message, got {data.get('kind')!r}")
    obj = decode(data.get("body"))
    if not isinstance(obj, cls):
        raise SerializeError(f"{kind} message does not hold a {cls.__name__}")
    return obj


def chunk_task_to_dict(task: ChunkTask) -> dict[str, Any]:
    """What the coordinator sends: folder context, file entries, reader configuration."""
    return _wrap("chunk_task", task, ChunkTask)


def chunk_task_from_dict(data: Any) -> ChunkTask:
    return _unwrap("chunk_task", data, ChunkTask)


def chunk_result_to_dict(result: ChunkResult) -> dict[str, Any]:
    """What a worker sends back: frame records, problems, deferred files, counters."""
    return _wrap("chunk_result", result, ChunkResult)


def chunk_result_from_dict(data: Any) -> ChunkResult:
    return _unwrap("chunk_result", data, ChunkResult)
