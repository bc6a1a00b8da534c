"""rawdata.serialize: chunk tasks and results survive a JSON round trip exactly, and nothing else gets in."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from rawdata.checksums import read_hash_file
from rawdata.classify import ExclusionRules
from rawdata.extract import ChunkResult, ChunkTask, Deferred, ExtractConfig, FolderContext, Problem, read_chunk
from rawdata.sample import corrupt_helpers
from rawdata.scan import iter_night_folders, list_folder
from rawdata.serialize import (
    ALLOWED,
    SCHEMA,
    SerializeError,
    chunk_result_from_dict,
    chunk_result_to_dict,
    chunk_task_from_dict,
    chunk_task_to_dict,
    decode,
    encode,
)


def wire(data):
    """What a broker does to a message: strict JSON text and back (NaN is not JSON)."""
    return json.loads(json.dumps(data, allow_nan=False))


def tasks_for(root: Path, *, rules: ExclusionRules | None = None) -> list[ChunkTask]:
    tasks = []
    cfg = ExtractConfig(rules=rules or ExclusionRules.from_config({"focus": ["xfocus"]}), settle_seconds=0.0)
    for ref in iter_night_folders(str(root)):
        listing = list_folder(ref.path)
        hashes = read_hash_file(os.path.join(ref.path, "allfiles.hash")) if listing.has_hash else None
        ctx = FolderContext(unit=ref.unit, folder=ref.info, path=ref.path, hashes=hashes)
        tasks.append(ChunkTask(context=ctx, files=listing.files, config=cfg, now=time.time()))
    return tasks


def test_real_chunks_round_trip_exactly(sample_root):
    """Every task and result of the sample archive (frames, problems, checksum states) survives."""
    folder = next(p for p in sorted(sample_root.glob("7DT01/*_gain2750")))
    fits = sorted(folder.glob("*.fits"))
    corrupt_helpers.truncate(fits[0], 4000)  # truncated header -> problem
    corrupt_helpers.write_garbage(folder / "7DT01_20250701_000000_garbage.fits")
    corrupt_helpers.write_no_end(folder / "7DT01_20250701_000001_noend.fits")
    data = bytearray(fits[1].read_bytes())
    data[-1] ^= 0xFF  # a data byte: the header reads, the SHA-256 does not match
    fits[1].write_bytes(bytes(data))

    tasks = tasks_for(sample_root)
    assert tasks
    seen = {"frames": 0, "problems": set(), "checksum": set()}
    for task in tasks:
        assert chunk_task_from_dict(wire(chunk_task_to_dict(task))) == task
        result = read_chunk(task)
        back = chunk_result_from_dict(wire(chunk_result_to_dict(result)))
        assert back == result
        for a, b in zip(back.frames, result.frames):
            assert a.columns == b.columns and list(a.columns) == list(b.columns)
            assert type(a.target) is type(b.target) and a.night == b.night
            if b.columns["date_obs"] is not None:
                assert a.columns["date_obs"].utcoffset() == b.columns["date_obs"].utcoffset()
        seen["frames"] += len(result.frames)
        seen["problems"].update(p.reason for p in result.problems)
        seen["checksum"].update(f.columns["checksum"] for f in result.frames)
    assert seen["frames"] > 300
    assert {"checksum_mismatch"} <= seen["problems"] and len(seen["problems"]) >= 3
    assert {"ok", "mismatch", "unknown"} <= seen["checksum"]


def test_values_keep_their_types():
    """Tuples stay tuples, aware datetimes keep their offset, non-finite floats survive strict JSON."""
    value = {
        "t": (1, "a", None),
        "nested": [(1.5, 2), {"d": date(2025, 7, 1)}],
        "when": datetime(2025, 7, 1, 1, 2, 3, 456789, tzinfo=timezone(timedelta(hours=-4))),
        "naive": datetime(2025, 7, 1, 1, 2, 3),
        "floats": [0.1, 1e-300, -0.0, 123456789.123456789, math.inf, -math.inf],
        "big": 2**62,
        "flags": [True, False],
        "text": "ñ ☃ \x00",
    }
    back = decode(wire(encode(value)))
    assert back == value
    assert isinstance(back["t"], tuple) and isinstance(back["nested"][0], tuple)
    assert back["when"].utcoffset() == timedelta(hours=-4) and back["naive"].tzinfo is None
    assert math.copysign(1, back["floats"][2]) == -1.0
    assert math.isnan(decode(wire(encode(math.nan))))
    assert type(back["flags"][0]) is bool and type(back["big"]) is int


def test_every_field_travels():
    """A field added to a message class later is carried without touching the codec."""
    result = ChunkResult(
        problems=[Problem("/a/b.fits", 10, 20, "not_fits", "detail", "warning")],
        deferred=[Deferred("/a/c.fits", "still being written")],
        headers_read=2, seconds=0.25,
    )
    encoded = chunk_result_to_dict(result)
    assert encoded["schema"] == SCHEMA
    body = encoded["body"]["v"]
    assert set(body) == {f.name for f in dataclasses.fields(ChunkResult)}
    assert set(body["problems"][0]["v"]) == {f.name for f in dataclasses.fields(Problem)}
    assert chunk_result_from_dict(wire(encoded)) == result


@pytest.mark.parametrize(
    "bad",
    [
        {"__t": "dc", "cls": "Popen", "v": {"args": ["rm", "-rf", "/"]}},  # not whitelisted
        {"__t": "dc", "cls": "Problem", "v": {"path": "x", "evil": 1}},  # unknown field
        {"__t": "dc", "cls": "Problem", "v": {"path": "x"}},  # missing fields
        {"__t": "pickle", "v": "gASVAAAAAAAAAAA="},  # unknown tag
        {"__t": "datetime", "v": "not a date"},
        {"__t": "float", "v": "1e400"},
    ],
)
def test_hostile_or_foreign_values_are_refused(bad):
    with pytest.raises(SerializeError):
        decode(bad)


def test_messages_check_schema_and_kind(sample_root):
    task = tasks_for(sample_root)[0]
    message = wire(chunk_task_to_dict(task))
    with pytest.raises(SerializeError, match="schema"):
        chunk_task_from_dict({**message, "schema": SCHEMA + 1})
    with pytest.raises(SerializeError, match="chunk_result"):
        chunk_result_from_dict(message)
    with pytest.raises(SerializeError):
        chunk_task_from_dict("not a dict")
    with pytest.raises(SerializeError):
        encode(object())
    with pytest.raises(SerializeError):
        encode({1: "non-string key"})


def test_whitelist_is_only_message_classes():
    import rawdata.classify
    import rawdata.extract
    import rawdata.folders
    import rawdata.scan

    homes = {rawdata.extract, rawdata.classify, rawdata.folders, rawdata.scan}
    for name, cls in ALLOWED.items():
        assert dataclasses.is_dataclass(cls) and cls.__name__ == name
        assert any(getattr(m, name, None) is cls for m in homes)
