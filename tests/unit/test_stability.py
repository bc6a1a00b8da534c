"""The transfer-complete gate and the interval rule (rawdata.stability), on generated 7DT files."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from rawdata.header import read_header
from rawdata.sample import corrupt_helpers
from rawdata.scan import list_folder
from rawdata.stability import (
    COMPLETE,
    INCOMPLETE,
    INVALID,
    Fingerprint,
    SmartInterval,
    check_files,
    first_change_estimate,
    fits_completeness,
    is_transfer_temporary,
    probe_signature,
    quiet_remaining,
    split_temporaries,
)

HOUR = 3600.0


def fits_files(root: Path) -> list[Path]:
    return sorted(root.glob("7DT*/*/*.fits"))


def age(path: Path, seconds: float) -> None:
    """Make a file or folder look untouched for ``seconds``."""
    t = time.time() - seconds
    os.utime(path, (t, t))


# ------------------------------------------------------------------------------------ fingerprints


def test_fingerprint_matches_the_listing_and_the_ingest(sample_root):
    folder = sample_root / "7DT01" / "2025-06-30_gain2750"
    listing = list_folder(folder)
    fp = Fingerprint.from_listing(listing)
    assert str(fp) == listing.fingerprint()  # the ingest stores this text as ingested_fingerprint
    sizes = [p.stat().st_size for p in folder.glob("*.fits")]
    assert (fp.file_count, fp.total_bytes) == (len(sizes), sum(sizes))
    shutil.copy(folder / listing.files[0].name, folder / "7DT01_20250701_000000_T00001_m650_1x1_100.0s_0009.fits")
    assert Fingerprint.from_listing(list_folder(folder)) != fp


def test_first_change_estimate_uses_the_newest_mtime_and_never_the_future(sample_root):
    folder = sample_root / "7DT02" / "2025-07-01_gain2750"
    for p in folder.iterdir():
        age(p, 5 * HOUR)
    age(folder, 2 * HOUR)
    listing = list_folder(folder)
    now = time.time()
    est = first_change_estimate(listing, folder.stat().st_mtime_ns, now)
    assert est == pytest.approx(now - 2 * HOUR, abs=5)  # the folder mtime (tar restores it last) is newest
    assert first_change_estimate(listing, folder.stat().st_mtime_ns, now - 3 * HOUR) == now - 3 * HOUR


def test_quiet_remaining():
    assert quiet_remaining(1000.0, 1800.0, 1000.0) == 1800.0
    assert quiet_remaining(1000.0, 1800.0, 2800.0) == 0.0
    assert quiet_remaining(1000.0, 0.0, 1000.0) == 0.0
    assert quiet_remaining(1000.0, 60.0, 2000.0) < 0


# ------------------------------------------------------------------------------------ temporaries


@pytest.mark.parametrize("name,temp", [
    (".7DT01_20250701_012345_T01234_m425_1x1_100.0s_0001.fits.Xa81Qz", True),  # rsync
    ("7DT01_20250701_012345_T01234_m425_1x1_100.0s_0001.fits.part", True),
    ("frame.fits.filepart", True),
    ("frame.fits.tmp", True),
    ("7DT01_20250701_012345_T01234_m425_1x1_100.0s_0001.fits", False),
    ("allfiles.hash", False),
])
def test_transfer_temporaries_are_recognised(name, temp):
    assert is_transfer_temporary(name) is temp


def test_stale_temporaries_do_not_block(tmp_path):
    (tmp_path / ".a.fits.AbC123").write_bytes(b"x")
    (tmp_path / ".b.fits.XyZ789").write_bytes(b"x")
    age(tmp_path / ".b.fits.XyZ789", 2 * HOUR)
    listing = list_folder(tmp_path)
    assert sorted(listing.temporaries) == [".a.fits.AbC123", ".b.fits.XyZ789"]
    active, stale = split_temporaries(str(tmp_path), listing.temporaries, time.time(), HOUR)
    assert active == [".a.fits.AbC123"] and stale == [".b.fits.XyZ789"]


# ------------------------------------------------------------------------------------ FITS structure


def test_every_generated_frame_is_complete(sample_root):
    files = fits_files(sample_root)
    assert len(files) > 100
    for path in files:
        check = fits_completeness(path)
        assert check.status == COMPLETE, (path, check)
        assert check.expected_size == path.stat().st_size


def test_a_file_cut_anywhere_is_incomplete(sample_root):
    path = fits_files(sample_root)[0]
    header = read_header(path)
    full = path.stat().st_size
    assert header.expected_size == full
    # header cut mid-card, at a block boundary, just after the header, inside the data, one byte short
    for keep in (1, 100, 2880, header.header_bytes - 80, header.header_bytes, header.header_bytes + 10, full - 1):
        trial = path.with_name(f"cut_{keep}.fits")
        shutil.copy(path, trial)
        corrupt_helpers.truncate(trial, keep)
        check = fits_completeness(trial)
        assert check.status == INCOMPLETE, (keep, check)
        assert check.size == keep


def test_empty_and_garbage_files(tmp_path):
    (tmp_path / "empty.fits").write_bytes(b"")
    assert fits_completeness(tmp_path / "empty.fits").status == INCOMPLETE  # a transfer that just started
    corrupt_helpers.write_garbage(tmp_path / "garbage.fits")
    check = fits_completeness(tmp_path / "garbage.fits")
    assert check.status == INVALID and "not_fits" in check.detail  # for the ingest to record, not to wait for
    assert fits_completeness(tmp_path / "gone.fits").status == INCOMPLETE


def test_trailing_bytes_after_a_complete_hdu_are_not_a_transfer_state(sample_root):
    path = fits_files(sample_root)[0]
    with open(path, "ab") as fh:
        fh.write(b"\0" * 100)
    assert fits_completeness(path).status == COMPLETE


def _multi_hdu(path: Path) -> int:
    rng = np.random.default_rng(1)
    hdus = fits.HDUList([
        fits.PrimaryHDU(rng.integers(0, 1000, (30, 20)).astype(np.int16)),
        fits.ImageHDU(rng.normal(size=(7, 11)).astype(np.float32), name="SCI"),
        fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=np.arange(50, dtype=np.float32))]),
    ])
    hdus.writeto(path)
    return path.stat().st_size


def test_multi_extension_and_compressed_files(tmp_path):
    size = _multi_hdu(tmp_path / "mef.fits")
    check = fits_completeness(tmp_path / "mef.fits")
    assert check.status == COMPLETE and check.expected_size == size
    primary = read_header(tmp_path / "mef.fits").expected_size
    # A cut exactly at an HDU boundary is a valid shorter file (only the quiet period can catch that);
    # a cut inside an extension header or its data is caught.
    assert fits_completeness(tmp_path / "mef.fits", primary).status == COMPLETE
    for keep in (primary + 100, primary + 2880, size - 2880, size - 1):
        trial = tmp_path / f"mef_{keep}.fits"
        shutil.copy(tmp_path / "mef.fits", trial)
        corrupt_helpers.truncate(trial, keep)
        assert fits_completeness(trial).status == INCOMPLETE, keep

    data = np.random.default_rng(2).integers(0, 60000, (64, 96)).astype(np.uint16)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data)]).writeto(tmp_path / "frame.fits.fz")
    fz = tmp_path / "frame.fits.fz"
    assert fits_completeness(fz).status == COMPLETE
    corrupt_helpers.truncate(fz, fz.stat().st_size - 2880)
    assert fits_completeness(fz).status == INCOMPLETE


def test_check_files_blocks_only_on_recent_incomplete_files(sample_root):
    folder = sample_root / "7DT01" / "2025-07-02_gain2750"
    names = sorted(p.name for p in folder.glob("*.fits"))
    corrupt_helpers.truncate(folder / names[0], 5000)  # being written now
    corrupt_helpers.truncate(folder / names[1], 5000)
    age(folder / names[1], 3 * HOUR)  # cut hours ago: a dead transfer
    listing = list_folder(folder)
    result = check_files(str(folder), listing.files, now=time.time(), grace_s=HOUR)
    assert result.checked == len(names)
    assert [c.name for c in result.blocking] == [names[0]]
    assert [c.name for c in result.stale] == [names[1]]
    assert not result.complete
    # Only what is handed in is checked: the monitor passes files not yet catalogued.
    rest = [e for e in listing.files if e.name not in names[:2]]
    assert check_files(str(folder), rest, now=time.time(), grace_s=HOUR).complete


# ------------------------------------------------------------------------------------ interval rule


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_interval_rule_with_a_fake_clock():
    clock = FakeClock(1_000_000.0)
    rule = SmartInterval(interval_s=8 * HOUR, min_s=60, max_s=1800, smart=True, clock=clock)
    assert rule.wait([]) == 8 * HOUR  # nothing settling: the long interval
    assert rule.wait([clock.t + 600]) == 600  # re-check right when the quiet period ends
    assert rule.wait([clock.t + 600, clock.t + 200]) == 200  # the earliest folder decides
    assert rule.wait([clock.t + 5]) == 60  # never sooner than the floor
    assert rule.wait([clock.t - 100]) == 60  # overdue (a blocked folder): the floor
    assert rule.wait([clock.t + 5 * HOUR]) == 1800  # never later than the cap while something is pending
    assert rule.next_check_at([clock.t + 600]) == clock.t + 600
    clock.t += 500  # the same folder, 500 s later
    assert rule.wait([1_000_000.0 + 600]) == 100
    clock.t += 80
    assert rule.wait([1_000_000.0 + 600]) == 60  # 20 s left: the floor
    fixed = SmartInterval(interval_s=300, min_s=60, max_s=1800, smart=False, clock=clock)
    assert fixed.wait([clock.t + 10]) == 300 and fixed.wait([]) == 300  # the original's fixed interval
    short = SmartInterval(interval_s=30, min_s=60, max_s=1800, smart=True, clock=clock)
    assert short.wait([clock.t + 600]) == 30  # never beyond the idle interval


# ------------------------------------------------------------------------------------ probe


def test_probe_signature_sees_new_folders_and_late_files(sample_root):
    unit = sample_root / "7DT01"
    for d in [unit, *unit.iterdir()]:
        age(d, HOUR)  # coarse directory timestamps: make any change visible
    base = probe_signature(sample_root)
    assert base == probe_signature(sample_root)
    assert ("7DT01", unit.stat().st_mtime_ns) in base
    (unit / "2025-07-03_gain2750").mkdir()
    after_new = probe_signature(sample_root)
    assert after_new != base
    newest = sorted(p for p in unit.iterdir() if p.is_dir())[-1]
    age(unit, HOUR)
    age(newest, HOUR)
    before = probe_signature(sample_root)
    (newest / "late.fits").write_bytes(b"SIMPLE")
    assert probe_signature(sample_root) != before  # a file added to a recent folder
    assert probe_signature(sample_root / "nowhere") == (("<unreachable>", 0),)
