#!/usr/bin/env python
"""Benchmark: primary-header reading, rawdata.header versus astropy, files per second on one core.

Generates N synthetic 7DT (TCSpy-style) frames with ~180-card headers (5 blocks) and a tiny data
unit in a temporary directory, then times, each over the same files and in one run:

  floor      open + read 16 KB (the I/O any reader pays)
  bytes      rawdata.header.read_header_bytes (read to the END block)
  fast       rawdata.header.read_header (the narrow parser; warm card cache, as in a long-running worker)
  fast-cold  read_header with the card cache emptied before every file (no card seen before)
  astropy    astropy.io.fits.getheader
The two slow ones run on the first --astropy-files files only, to keep the run short.

Values that change from frame to frame in real data (times, pointing, weather, focus, IDs) are
different in every file; the rest (site, devices, filter, comments...) repeat, as on the telescope.
Prints the median over --repeat runs and the ratio fast/astropy. Usage:

    .venv/bin/python bench/bench_header.py [--files 20000] [--repeat 5] [--astropy-files 1500]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rawdata import header as H  # noqa: E402

FILTERS = ["m400", "m425", "m450", "m475", "m500", "m525", "m550", "m575", "m600", "m625", "g", "r", "i"]


def card(key: str, value: object, comment: str = "") -> bytes:
    """One 80-character card, formatted as astropy/TCSpy write them."""
    if value is None:
        field = " " * 20
    elif isinstance(value, bool):
        field = f"{'T' if value else 'F':>20}"
    elif isinstance(value, int):
        field = f"{value:>20d}"
    elif isinstance(value, float):
        text = repr(value).upper()
        field = f"{text if ('.' in text or 'E' in text) else text + '.':>20}"
    else:
        field = "'" + str(value).replace("'", "''").ljust(8) + "'"
        field = f"{field:<20}"
    image = f"{key:<8}= {field}" + (f" / {comment}" if comment else "")
    return image[:80].ljust(80).encode("ascii")


def frame_cards(i: int, rng: random.Random) -> list[bytes]:
    unit = i % 16 + 1
    t0 = datetime(2025, 5, 23, 0, 0, 0) + timedelta(seconds=37 * i + rng.random())
    tile = f"T{(i // 6) % 28520:05d}"
    ra, dec = rng.uniform(0, 360), rng.uniform(-90, 30)
    cards = [
        card("SIMPLE", True, "conforms to FITS standard"), card("BITPIX", 16, "array data type"),
        card("NAXIS", 2, "number of array dimensions"), card("NAXIS1", 12), card("NAXIS2", 10),
        card("BSCALE", 1), card("BZERO", 32768),
        card("ALTITUDE", rng.uniform(30, 90), "Altitude of the telescope pointing"),
        card("AZIMUTH", rng.uniform(0, 360), "Azimuth of the telescope pointing"),
        card("RA", ra, "[deg] RA of the telescope pointing"), card("DEC", dec, "[deg] Dec of the pointing"),
        card("AIRMASS", rng.uniform(1, 2), "Airmass at frame center (Pickering 2002)"),
        card("INSTRUME", "Moravian USB Camera 1 (64 bit)", "Camera model"),
        card("EGAIN", 0.2561904788017273, "[e-/ADU] Electronic gain"),
        card("CCD-TEMP", round(rng.uniform(-10.1, -9.8), 1), "[C] CCD temperature"),
        card("SET-TEMP", -10.0, "[C] CCD set temperature"), card("COLPOWER", round(rng.uniform(60, 80), 1)),
        card("GAIN", 2750, "Sensor gain"), card("FOCUSPOS", rng.uniform(6000, 7000), "Focuser position"),
        card("AFTIME", (t0 - timedelta(minutes=50)).isoformat(timespec="milliseconds")),
        card("AFVALUE", round(rng.uniform(6000, 7000), 1)), card("AFERROR", round(rng.uniform(5, 30), 2)),
        card("FILTER", FILTERS[(i // 6) % len(FILTERS)], "Filter name"),
        card("IMAGEID", f"{rng.getrandbits(128):032x}", "Unique image ID"),
        card("IMAGETYP", "LIGHT", "Type of image"), card("EXPTIME", 100.0, "[s] Exposure duration"),
        card("EXPOSURE", 100.0, "[s] Exposure duration"),
        card("DATE-OBS", t0.isoformat(timespec="milliseconds"), "Date of the observation (UTC)"),
        card("DATE-LOC", (t0 - timedelta(hours=4)).isoformat(sep=" ", timespec="milliseconds"), "Local time"),
        card("JD", 2460818.5 + 37 * i / 86400 + rng.random() * 1e-6, "Julian date"),
        card("MJD", 60818.0 + 37 * i / 86400 + rng.random() * 1e-6, "Modified Julian date"),
        card("XBINNING", 1, "Binning level along the X-axis"), card("YBINNING", 1, "Binning level along the Y-axis"),
        card("OBJECT", tile, "Name of the target"), card("OBJTYPE", "RIS", "Type of the target"),
        card("OBJCTRA", "12:40:08.88", "Object RA"), card("OBJCTDEC", "-16:07:55.56", "Object Dec"),
        card("OBJCTRA_", 190.037, "[deg] Object RA"), card("OBJCTDE_", -16.1321, "[deg] Object Dec"),
        card("OBJCTALT", round(rng.uniform(30, 90), 3)), card("OBJCTAZ", round(rng.uniform(0, 360), 3)),
        card("OBJCTHA", f"23 40 {rng.uniform(0, 60):.8f}"), card("OBJCTID", f"{rng.getrandbits(128):032x}"),
        card("MOONSEP", round(rng.uniform(0, 180), 2)), card("OBSMODE", "Spec"), card("SPECMODE", "specall"),
        card("NTELSCOP", 14), card("NOTE", "None"), card("IS_TOO", "False"),
        card("TELESCOP", f"7DT{unit:02d}", "Name of the telescope"), card("XPIXSZ", 3.76), card("YPIXSZ", 3.76),
        card("LOGPATH", f"/home/kds/.tcspy/sync/log/7DT{unit:02d}"), card("OBSERVER", "Hyeonho Choi"),
        card("MOONPHAS", 0.274), card("DATE-WEA", (t0 + timedelta(seconds=69)).isoformat(timespec="milliseconds")),
        card("AMBTEMP", round(rng.uniform(5, 20), 1)), card("HUMIDITY", round(rng.uniform(10, 60), 1)),
        card("PRESSURE", round(rng.uniform(1010, 1025), 1)), card("DEWPOINT", round(rng.uniform(-8, 2), 1)),
        card("WINDSPED", round(rng.uniform(0, 5), 1)), card("WINDDIR", round(rng.uniform(0, 360), 1)),
        card("WINDGUST", round(rng.uniform(0, 8), 1)), card("SKYBRGHT", round(rng.uniform(20, 22), 2)),
        card("SKYTEMP", round(rng.uniform(-25, -10), 1)), card("SKYFWHM", round(rng.uniform(0.9, 2.5), 2)),
        card("CLUDFRAC", 0.0), card("RAINRATE", 0), card("CENTALT", rng.uniform(30, 90)),
        card("CENTAZ", rng.uniform(0, 360)), card("FOCALLEN", 1537.0), card("FOCALRAT", 3), card("APTDIA", 0.5),
        card("APTAREA", 0.196), card("SITELAT", -30.4704), card("SITELONG", -70.7804), card("SITEELEV", 1580.0),
        card("MNT_ID", None), card("MID_TIME", None), card("CAM_ID", f"{31000 + unit}"),
        card("CID_TIME", "2026-01-04T12:00:00"), card("FILT_ID", f"{10000000 + unit}"),
        card("FWIDTIME", None), card("FOC_ID", None), card("FID_TIME", None),
    ]
    for dev in ("MNT", "CAM", "FILT", "FOC", "WTER", "SAFE"):
        cards += [card(f"{dev}_IP", f"10.0.106.{unit}", "Device address"), card(f"{dev}_PRT", 11111),
                  card(f"{dev}_NUM", 0), card(f"{dev}_NAM"[:8], f"{dev.lower()}-{unit}", "Device name")]
    n = 0
    while len(cards) < 179:  # per-unit configuration cards to reach the typical size
        kind = n % 4
        value: object = [float(n) / 8, n * 3, f"setting {n}", n % 2 == 0][kind]
        cards.append(card(f"CFG{n:05d}", value, "configuration value written by the sequencer"))
        n += 1
    return cards


def write_files(root: Path, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    data = bytes(240).ljust(2880, b"\0")  # 10 x 12 uint16
    paths = []
    for i in range(n):
        cards = frame_cards(i, rng)
        head = b"".join(cards) + card("END", None)[:3].ljust(80)
        head = head.ljust(-(-len(head) // 2880) * 2880)
        path = root / f"7DT{i % 16 + 1:02d}_{i:06d}.fits"
        path.write_bytes(head + data)
        paths.append(str(path))
    return paths


def rate(fn: Callable[[str], object], paths: list[str]) -> tuple[float, float]:
    """(files per wall-clock second, files per CPU second of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for p in paths:
        fn(p)
    return len(paths) / (time.perf_counter() - wall), len(paths) / (time.process_time() - cpu)


def floor_read(path: str) -> bytes:
    with open(path, "rb", buffering=0) as fh:
        return fh.read(16384)


def fast_cold(path: str) -> H.Header:
    H._card_cache.clear()
    H._misses.clear()
    return H.read_header(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=20000, help="files generated and read by the fast reader")
    ap.add_argument("--repeat", type=int, default=5, help="runs per method; the median is reported")
    ap.add_argument("--astropy-files", type=int, default=1500,
                    help="files read by astropy (and by the cold-cache reader) per run")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", help="write the files here and keep them")
    args = ap.parse_args()

    from astropy.io import fits

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-header-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        paths = write_files(root, args.files, args.seed)
        print(f"generated {len(paths)} files ({os.path.getsize(paths[0])} bytes each, "
              f"{H.read_header(paths[0]).header_bytes // 2880} header blocks, "
              f"{len(H.read_header(paths[0]).cards)} cards) in {time.perf_counter() - t:.1f} s")

        # Correctness first: the fast reader must agree with astropy and must not fall back.
        fallbacks = sum(H.read_header(p).via_astropy for p in paths)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for p in paths[:200]:
                ref = fits.getheader(p)
                got = H.read_header(p).cards
                assert all(type(got[k]) is type(ref[k]) and got[k] == ref[k] for k in ref), p
        print(f"fast path fell back to astropy on {fallbacks} of {len(paths)} files; "
              f"cards equal to astropy on the first 200")

        astropy_paths = paths[: args.astropy_files]

        def getheader(p: str) -> object:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fits.getheader(p)

        methods: list[tuple[str, Callable[[str], object], list[str]]] = [
            ("floor: open+read 16 KB", floor_read, paths),
            ("read_header_bytes", H.read_header_bytes, paths),
            ("read_header (fast)", H.read_header, paths),
            ("read_header, cold cache", fast_cold, astropy_paths),
            ("astropy getheader", getheader, astropy_paths),
        ]
        results: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in methods}
        for _ in range(args.repeat):  # interleaved, so a slow moment of the machine hits every method
            for name, fn, ps in methods:
                results[name].append(rate(fn, ps))

        def med(name: str, col: int) -> float:
            return statistics.median(r[col] for r in results[name])

        print(f"\nfiles/s on one core, median of {args.repeat} runs; wall clock (min - max) and per CPU second:")
        for name, _, ps in methods:
            walls = [r[0] for r in results[name]]
            print(f"  {name:26s} {med(name, 0):9,.0f}  ({min(walls):,.0f} - {max(walls):,.0f})"
                  f"  cpu {med(name, 1):9,.0f}   over {len(ps)} files")
        for col, label in ((0, "wall clock"), (1, "CPU time")):
            fast, cold, ref = (med(n, col) for n in ("read_header (fast)", "read_header, cold cache", "astropy getheader"))
            print(f"ratio fast/astropy ({label}): {fast / ref:.1f}x   (cold card cache: {cold / ref:.1f}x)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
