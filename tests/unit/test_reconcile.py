"""rawdata.reconcile without a database: per-file classification, sequence gaps, folder-name validation."""
from __future__ import annotations

import os
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from rawdata.checksums import read_hash_file, sha256_file
from rawdata.reconcile import (
    CHANGED,
    EXCLUDED,
    FAILED,
    GAP,
    MISMATCH,
    NOT_INGESTED,
    VANISHED,
    CatalogRow,
    FolderDiff,
    ProblemRow,
    compare_folder,
    count_frame_files,
    find_sequence_gaps,
    list_frames,
    list_many,
    make_rehash,
    tcspy_sequence_key,
    validate_tree,
)
from rawdata.sample import corrupt_helpers
from rawdata.scan import list_folder


def tcspy(seq: int, obj: str = "T01234", filt: str = "m425", t: str = "012345", exp: str = "100.0") -> str:
    return f"7DT01_20250701_{t}_{obj}_{filt}_1x1_{exp}s_{seq:04d}.fits"


# ------------------------------------------------------------------------------------------ names


def test_sequence_key_reads_tcspy_names_from_the_right():
    assert tcspy_sequence_key("7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fits") == (
        "7DT11_T00223_m425_1x1", "20250102050704", 1)
    key = tcspy_sequence_key("7DT01_20250630_230002_Defocus_test_WASP-178b_m650_1x1_10.0s_0002.fits.fz")
    assert key == ("7DT01_Defocus_test_WASP-178b_m650_1x1", "20250630230002", 2)


@pytest.mark.parametrize("name", [
    "LIGHT_Feige110_2023-10-11_23-31-11_i_30.00s_0009.fits",  # NINA v1
    "7DT01_LIGHT_COSMOS_2024-03-11_02-09-07_m675_2x2_120.00s_0005.fits",  # NINA v2 (date has '-')
    "7DT01-20240527-061352-M107-m400-10.0s-0000.fits",  # NINA hyphen
    "7DT01_20250701_012345_T01234_m425_1x1_100.0s_00a1.fits",
    "7DT01_20250701_012345_T01234_m425_1x1_100.0s_001.fits",  # FRAMENUM is %04d
    "7DT01_20250701_012345_T01234_m425_1x1_100.0s_0001.head",
    "7DT01_2025070_012345_T01234_m425_1x1_100.0s_0001.fits",
])
def test_sequence_key_ignores_other_names(name):
    assert tcspy_sequence_key(name) is None


# ------------------------------------------------------------------------------------------ gaps


def test_consecutive_runs_and_restarts_have_no_gap():
    names = [tcspy(i, t=f"0100{i:02d}") for i in range(4)]
    names += [tcspy(i, t=f"0200{i:02d}") for i in range(3)]  # the same target again later: a new run
    names += [tcspy(i, filt="m450", t=f"0300{i:02d}") for i in range(2)]
    assert find_sequence_gaps(names) == []


def test_gap_inside_a_run_counts_every_missing_number():
    names = [tcspy(i, t=f"0100{i:02d}") for i in (0, 1, 4, 5)]
    gaps = find_sequence_gaps(names)
    assert [(g.kind, g.reason, g.count) for g in gaps] == [(GAP, "inside_run", 2)]
    assert gaps[0].name == "7DT01_*_T01234_m425_1x1_*_0002..0003.fits"
    assert tcspy(1, t="010001") in gaps[0].detail and tcspy(4, t="010004") in gaps[0].detail


def test_missing_first_frames_of_a_run_after_a_restart():
    first = [tcspy(i, t=f"0100{i:02d}") for i in range(3)]
    second = [tcspy(i, t=f"0200{i:02d}") for i in (1, 2)]  # its 0000 never arrived
    gaps = find_sequence_gaps(first + second)
    assert [(g.reason, g.count, g.name) for g in gaps] == [("run_start", 1, "7DT01_*_T01234_m425_1x1_*_0000.fits")]
    assert find_sequence_gaps([tcspy(3)])[0].count == 3  # a lone 0003: 0000-0002 missing


def test_exposure_time_changes_within_a_run_and_repeats_are_not_gaps():
    flats = [tcspy(i, obj="FLAT", t=f"0100{i:02d}", exp=f"{0.3 * 1.45 ** i:.1f}") for i in range(5)]
    repeat = [tcspy(0, obj="T00001", t="020000"), tcspy(1, obj="T00001", t="020100"), tcspy(1, obj="T00001", t="020200")]
    assert find_sequence_gaps(flats + repeat) == []


def test_nina_names_never_give_gaps():
    names = ["LIGHT_Feige110_2023-10-11_23-31-11_i_30.00s_0009.fits", "LIGHT_Feige110_2023-10-11_23-32-11_i_30.00s_0021.fits"]
    assert find_sequence_gaps(names) == []


def test_pristine_sample_archive_has_no_gap(sample_root, manifest):
    """The generator's own record says nothing is missing: the rule must agree (no false positive)."""
    by_folder: dict[str, list[str]] = {}
    for f in manifest.files:
        if not f.excluded:
            by_folder.setdefault(f"{f.unit}/{f.folder}", []).append(f.path.rsplit("/", 1)[1])
    assert len(by_folder) >= 10
    for folder, names in by_folder.items():
        assert find_sequence_gaps(names) == [], folder


# ------------------------------------------------------------------------------------------ listing


def test_list_frames_selects_what_the_ingest_reads(sample_root, manifest):
    rec = next(f for f in manifest.files if f.software == "tcspy")
    folder = sample_root / rec.unit / rec.folder
    (folder / ".7DT01_x.fits.AbC123").write_bytes(b"partial")  # rsync temporary
    (folder / "notes.txt").write_text("x")
    (folder / "tmp").mkdir()
    listing = list_frames(folder)
    reference = list_folder(folder)
    assert listing is not None
    assert listing.files == {e.name: (e.size, e.mtime_ns) for e in reference.files}
    assert listing.temporaries == len(reference.temporaries) == 1
    assert listing.has_hash is reference.has_hash is True
    assert count_frame_files(folder) == len(reference.files)
    assert list_frames(folder / "gone") is None and count_frame_files(folder / "gone") is None


# ------------------------------------------------------------------------------------------ compare


def _write(folder: Path, name: str, data: bytes = b"x" * 100, mtime_ns: int = 1_700_000_000_000_000_000) -> tuple[int, int]:
    path = folder / name
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def test_every_class_with_exact_counts(tmp_path):
    folder = tmp_path / "7DT01" / "2025-07-01_gain2750"
    folder.mkdir(parents=True)
    rows: dict[str, CatalogRow] = {}
    problems: dict[str, ProblemRow] = {}
    t = iter(f"0100{i:02d}" for i in range(60))

    def row(name: str, **kw) -> None:
        size, mtime = _write(folder, name)
        rows[name] = CatalogRow(kw.get("size", size), kw.get("mtime", mtime), kw.get("present", True),
                                kw.get("excluded_by", ""), kw.get("checksum", "ok"))

    for i in range(3):
        row(tcspy(i, obj="OK", t=next(t)))
    new = tcspy(3, obj="OK", t=next(t))
    _write(folder, new)
    excl = [tcspy(0, obj="focusrun", t=next(t)), tcspy(5, obj="focusrun", t=next(t))]
    for name in excl:  # focus runs number their frames their own way: not gap-checked
        row(name, excluded_by="focus:object")
    bad = tcspy(0, obj="BAD", t=next(t))
    size, mtime = _write(folder, bad)
    problems[bad] = ProblemRow("not_fits", size, mtime, "does not start with SIMPLE")
    fixed = tcspy(1, obj="BAD", t=next(t))
    size, mtime = _write(folder, fixed)
    problems[fixed] = ProblemRow("truncated", size - 10, mtime, "short")  # the file changed since it failed
    stale = tcspy(2, obj="BAD", t=next(t))
    size, mtime = _write(folder, stale)  # catalogued once, corrupted later: the problem describes this version
    rows[stale] = CatalogRow(size + 5, mtime - 1, True, "", "ok")
    problems[stale] = ProblemRow("not_fits", size, mtime)
    row(grown := tcspy(0, obj="CHG", t=next(t)), size=1)
    row(touched := tcspy(1, obj="CHG", t=next(t)), mtime=5)
    row(back := tcspy(2, obj="CHG", t=next(t)), present=False)
    row(bad_hash := tcspy(0, obj="SHA", t=next(t)), checksum="mismatch")
    problems[bad_hash] = ProblemRow("checksum_mismatch", *rows[bad_hash][:2])  # not a failure: it is catalogued
    gone, gone_known, gone_bad = (tcspy(i, obj="SHA", t=next(t)) for i in (1, 2, 3))
    rows[gone] = CatalogRow(100, 1, True, "", "ok")
    rows[gone_known] = CatalogRow(100, 1, False, "", "ok")
    problems[gone_bad] = ProblemRow("not_fits", 10, 1)
    row(tcspy(0, obj="GAP", t=next(t)))
    row(tcspy(3, obj="GAP", t=next(t)))

    diff = compare_folder(FolderDiff(str(folder)), list_frames(folder), rows, problems)
    by_kind: dict[str, set[str]] = {}
    for f in diff.findings:
        by_kind.setdefault(f.kind, set()).add(f.name)
    assert by_kind[NOT_INGESTED] == {new}
    assert by_kind[EXCLUDED] == set(excl)
    assert by_kind[FAILED] == {bad, fixed, stale}
    assert by_kind[CHANGED] == {grown, touched, back}
    assert by_kind[MISMATCH] == {bad_hash}
    assert by_kind[VANISHED] == {gone, gone_known, gone_bad}
    assert by_kind[GAP] == {"7DT01_*_GAP_m425_1x1_*_0001..0002.fits"}
    assert diff.counts() == Counter({NOT_INGESTED: 1, EXCLUDED: 2, FAILED: 3, CHANGED: 3, MISMATCH: 1, VANISHED: 3, GAP: 2})
    assert diff.issues == 1 + 3 + 3 + 1 + 3 + 2
    reasons = {f.name: f.reason for f in diff.findings}
    assert reasons[fixed] == "changed_since_failure" and reasons[stale] == "not_fits"
    assert (reasons[back], reasons[gone], reasons[gone_known], reasons[gone_bad]) == ("reappeared", "unmarked", "marked", "failed_file_gone")
    reingest = {f.name for f in diff.findings if f.reingest}
    assert reingest == {new, fixed, grown, touched, back, gone}
    assert diff.needs_reprocess
    on_disk = len(list(folder.iterdir()))
    assert diff.on_disk == on_disk
    assert diff.catalogued == sum(1 for r in rows.values() if r.present and not r.excluded_by)
    assert diff.excluded_rows == 2
    assert diff.failed_rows == 3  # bad, fixed, gone_bad: problems without a row
    assert diff.ok == 3 + 2  # OK x3 and GAP x2


def test_gaps_precomputed_by_a_listing_process_are_used_only_when_the_catalogue_adds_nothing(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    names = [tcspy(i, t=f"0100{i:02d}") for i in range(4)]
    rows = {n: CatalogRow(*_write(folder, n), True, "", "ok") for n in names}
    os.remove(folder / names[1])  # catalogued, then deleted: vanished, not a frame that never arrived
    (listing,) = list_many([str(folder)], with_gaps=True)
    assert listing is not None and [g.count for g in listing.gaps] == [1]  # the disk alone shows a hole
    diff = compare_folder(FolderDiff(str(folder)), listing, rows, {})
    assert diff.counts() == Counter({VANISHED: 1})
    del rows[names[1]]  # now nobody knows the name: the pool's answer stands
    diff = compare_folder(FolderDiff(str(folder)), listing, rows, {})
    assert diff.counts() == Counter({GAP: 1})
    assert list_many([None]) == [None]


def test_clean_folder_and_folder_gone(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    rows = {}
    for i in range(3):
        name = tcspy(i, t=f"0100{i:02d}")
        rows[name] = CatalogRow(*_write(folder, name), True, "", "no_hash")
    clean = compare_folder(FolderDiff(str(folder)), list_frames(folder), rows, {})
    assert clean.findings == [] and clean.issues == 0 and clean.ok == 3 and clean.known == clean.on_disk == 3
    gone = compare_folder(FolderDiff(str(folder / "x")), None, rows, {})
    assert not gone.exists and gone.counts() == Counter({VANISHED: 3})
    assert not gone.needs_reprocess  # an ingest cannot visit a folder that is gone


def test_rehash_finds_a_flipped_data_byte(sample_root, manifest):
    rec = next(f for f in manifest.files if f.software == "tcspy" and not f.excluded)
    folder = sample_root / rec.unit / rec.folder
    name = rec.path.rsplit("/", 1)[1]
    path = folder / name
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) - 100] ^= 0xFF  # in the data part, the header is untouched
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime: only a re-hash can tell
    listing = list_frames(folder)
    assert listing is not None
    rows = {n: CatalogRow(size, mtime, True, "", "ok") for n, (size, mtime) in listing.files.items()}
    rehash = make_rehash(str(folder), read_hash_file(folder / "allfiles.hash"), sha256_file)
    plain = compare_folder(FolderDiff(str(folder)), listing, rows, {})
    assert plain.issues == 0
    checked = compare_folder(FolderDiff(str(folder)), listing, rows, {}, rehash=rehash)
    assert [(f.kind, f.name, f.reason) for f in checked.findings] == [(MISMATCH, name, "rehash")]


def test_corruption_helpers_change_what_the_check_sees(sample_root, manifest):
    rec = next(f for f in manifest.files if f.software == "tcspy" and f.folder.endswith("_gain2750"))
    folder = sample_root / rec.unit / rec.folder
    listing = list_frames(folder)
    rows = {n: CatalogRow(size, mtime, True, "", "ok") for n, (size, mtime) in listing.files.items()}
    name = rec.path.rsplit("/", 1)[1]
    corrupt_helpers.write_garbage(folder / name)
    diff = compare_folder(FolderDiff(str(folder)), list_frames(folder), rows, {})
    assert [(f.kind, f.name) for f in diff.findings] == [(CHANGED, name)]


# ------------------------------------------------------------------------------------------ names


def test_validate_tree_reports_each_convention(tmp_path):
    root = tmp_path / "obsdata"
    good = ["2025-06-30_gain2750", "2025-06-30_gain0", "2024-03-10_2x2_gain0", "2023-11-14", "2026-05-16_gain2750_ToO"]
    for name in good + ["2025-13-01_gain2750", "2023-00-00", "2025-07-01_gain2750_foo", "2022-01-01", "2030-01-01_gain2750",
                        "image", "2025-07-02_test", "2023-12-10_flat"]:
        (root / "7DT01" / name).mkdir(parents=True)
    (root / "7DT01" / "readme.txt").write_text("x")
    (root / "7DT-02" / "2025-06-30_gain2750").mkdir(parents=True)
    (root / "7DT-01" / "2025-06-30_gain2750").mkdir(parents=True)
    (root / "lost+found").mkdir()
    (root / ".snapshot").mkdir()
    verdicts = {v.relpath: v for v in validate_tree(root, today=date(2026, 6, 1))}
    status = {k: v.status for k, v in verdicts.items()}
    assert ".snapshot" not in status
    assert status["lost+found"] == "notice"
    assert status["7DT01"] == "invalid" and "also present as 7DT-01" in verdicts["7DT01"].messages[0]
    assert status["7DT-02"] == "invalid" and "use 7DT02" in verdicts["7DT-02"].messages[0]
    for name in ("2025-13-01_gain2750", "2025-07-01_gain2750_foo", "2022-01-01", "2030-01-01_gain2750", "image"):
        assert status[f"7DT01/{name}"] == "invalid", name
    assert "unknown suffix token: foo" in verdicts["7DT01/2025-07-01_gain2750_foo"].messages
    assert "date in the future" in verdicts["7DT01/2030-01-01_gain2750"].messages
    for name in ("2023-00-00", "2025-07-02_test", "2023-12-10_flat", "readme.txt", "2025-06-30_gain2750", "2025-06-30_gain0"):
        assert status[f"7DT01/{name}"] == "notice", name
    assert any("preferred: 2025-06-30_gain2750" in m for m in verdicts["7DT01/2025-06-30_gain0"].messages)
    for name in ("2024-03-10_2x2_gain0", "2023-11-14", "2026-05-16_gain2750_ToO"):
        assert status[f"7DT01/{name}"] == "ok", name
    assert status["7DT-02/2025-06-30_gain2750"] == "ok"
