"""rawdata.extract's speed-ups change nothing: memoised classification, orjson headers, prefetching reads."""
from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

from rawdata.classify import ExclusionRules, classify
from rawdata.extract import ChunkTask, ExtractConfig, FolderContext, header_to_json, read_chunk
from rawdata.header import parse_header, promote, read_header
from rawdata.names import parse_filename
from rawdata.sample import corrupt_helpers
from rawdata.scan import iter_night_folders, list_folder

RULES = ExclusionRules.from_config({"focus": ["xfocus"], "test": {"filename_contains": ["_0003"]}})


def tasks_for(root: Path, **config) -> list[ChunkTask]:
    cfg = ExtractConfig(rules=RULES, settle_seconds=0.0, **config)
    return [
        ChunkTask(FolderContext(ref.unit, ref.info, ref.path), list_folder(ref.path).files, cfg, time.time())
        for ref in iter_night_folders(str(root))
    ]


def damage(root: Path) -> None:
    folder = sorted(root.glob("7DT01/*_gain2750"))[0]
    fits = sorted(folder.glob("*.fits"))
    corrupt_helpers.truncate(fits[0], 4000)
    corrupt_helpers.write_garbage(folder / "7DT01_20250701_000000_garbage.fits")
    corrupt_helpers.write_no_end(folder / "7DT01_20250701_000001_noend.fits")
    (folder / "7DT01_20250701_000002_empty.fits").write_bytes(b"")


def outcome(result):
    return ([(f.path, f.columns, f.night, f.header_json, f.target, f.tile, f.warnings) for f in result.frames],
            result.problems, result.deferred, result.headers_read)


def test_memoised_classification_equals_classify(sample_root):
    """Every frame's type, source, exclusion, programme and target are exactly classify()'s, file-name
    exclusion rules included (the memo keys on the first file-name rule that matches)."""
    checked = excluded_by_name = 0
    for task in tasks_for(sample_root):
        for frame in read_chunk(task).frames:
            name = frame.columns["filename"]
            meta = promote(read_header(frame.path).cards)
            parsed = parse_filename(name)
            cls = classify(imagetyp=meta["imagetyp"], object_name=meta["object"] or (parsed.object if parsed else None),
                           objtype=meta["objtype"], filename=name, parsed=parsed, folder=task.context.folder,
                           is_too_card=meta["is_too"], rules=RULES)
            assert frame.columns["image_type"] == cls.image_type and frame.columns["type_source"] == cls.type_source
            assert frame.columns["excluded_by"] == (cls.excluded_by or "")
            assert frame.columns["program"] == (cls.program or "")[:24]
            assert frame.tile == (cls.target_name if cls.target_kind == "tile" else None)
            checked += 1
            excluded_by_name += cls.excluded_by == "test:filename-contains-_0003"
    assert checked > 300 and excluded_by_name > 0


def test_prefetching_reads_give_identical_results(sample_root):
    """READ_CONCURRENCY > 1 (threads reading ahead) yields the same records, problems and deferrals."""
    damage(sample_root)
    serial = [outcome(read_chunk(t)) for t in tasks_for(sample_root)]
    for level in (2, 8):
        assert [outcome(read_chunk(t)) for t in tasks_for(sample_root, read_concurrency=level)] == serial
    reasons = {p.reason for _, problems, _, _ in serial for p in problems}
    assert {"not_fits", "empty", "truncated_header"} <= reasons


def test_fast_header_json_decodes_to_the_cards(sample_root):
    """orjson's text (fast-parser cards) and json's text decode to the same values."""
    seen = 0
    for path in sorted(sample_root.rglob("*.fits"))[:80]:
        header = read_header(path)
        if header.via_astropy:
            continue
        fast = header_to_json(header.cards, checked=True)
        assert json.loads(fast) == json.loads(json.dumps(header.cards)) == header.cards
        seen += 1
    assert seen > 50


def test_overflowing_number_never_reaches_json_as_null():
    """A card the fast parser would read as inf goes to astropy; the stored JSON is strict and keeps it."""
    cards = ["SIMPLE  =                    T", "BITPIX  =                    8", "NAXIS   =                    0",
             "EXPTIME =                1E999", "END"]
    raw = b"".join(c.ljust(80).encode() for c in cards).ljust(2880, b" ")
    header = parse_header(raw)
    assert header.via_astropy and math.isinf(header.cards["EXPTIME"])
    text = header_to_json(header.cards, checked=not header.via_astropy)
    assert json.loads(text)["EXPTIME"] == "inf"
    json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # no NaN/Infinity tokens


def test_config_field_travels_to_workers():
    """read_concurrency is part of the task, so Celery workers use the coordinator's setting."""
    from rawdata.serialize import chunk_task_from_dict, chunk_task_to_dict

    task = ChunkTask(FolderContext("7DT01", None, "/x"), [], replace(ExtractConfig(), read_concurrency=16), 1.0)
    assert chunk_task_from_dict(json.loads(json.dumps(chunk_task_to_dict(task)))).config.read_concurrency == 16


def test_file_name_prefilter_never_hides_a_rule():
    """The one-regex pre-check over file names lets through every name that some file-name rule
    (equals, prefix, contains; any case) matches, so the memoised classifier still finds the rule."""
    from rawdata.extract import _Classifier
    from rawdata.folders import parse_folder_name

    rules = ExclusionRules.from_config({
        "focus": {"filename_prefix": ["AF_"], "filename_contains": ["FoCuS"]},
        "test": {"filename_equals": ["test.fits"], "filename_contains": ["ß-scan"]},
    }, extend_defaults=False)
    folder = parse_folder_name("2025-07-01_gain2750")
    names = ["af_0001.fits", "x_AF_1.fits", "7DT01_xfocusx.fits", "FOCUS.fits", " test.fits ", "TEST.FITS",
             "a_test.fits", "SS-scan.fits", "ss-SCAN.fits", "7DT01_20250701_000000_T00001_m400_1x1_100.0s_0001.fits"]
    meta = {"imagetyp": "LIGHT", "object": "T00001", "objtype": "RIS", "is_too": None}
    classifier = _Classifier(folder, rules)
    for name in names:
        expected = next((r.id for r in rules.rules if r.field == "filename" and r.matches({"filename": name}, None)), None)
        got = classifier(meta, name, None).excluded_by
        assert got == expected, name
    assert classifier.name_prefilter.search("7dt01_plain.fits") is None


def test_number_columns_keep_only_finite_numbers():
    """The one-check fast path and the value-by-value path agree: anything not a finite number is None."""
    import math

    from rawdata.extract import _finite, _finite_numbers

    cases = [(1.0, None, 2, 3.5), (1.0, math.nan, None), (math.inf, 1e308, 1e308), (1e308, 1e308),
             (10**400, 1.0), (True, "x", 1.0), (-math.inf,), (None, None)]
    for values in cases:
        assert _finite_numbers(values) == tuple(_finite(v) for v in values)
    assert _finite_numbers((1e308, 1e308)) == (1e308, 1e308)
    assert _finite_numbers((10**400, 2.0)) == (None, 2.0)
