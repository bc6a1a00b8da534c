#!/usr/bin/env python
"""Benchmark: end-to-end ingest throughput, beside the original's approach and the I/O floor.

Generates N small TCSpy science frames with ~180-card headers (rawdata.sample.generate_flat_files:
200 frames per unit night folder) in a temporary directory, then measures, in one run:

  floor      scandir + stat + open + read every header up to its END block, one process: no parsing,
             no database. Nothing that reads headers can beat it on one core.
  ours       `manage.py ingest_all_nights --data-root D --auto-confirm --parallel` in a fresh
             interpreter against a fresh migrated database (SQLite file; PostgreSQL database created
             from a migrated template and dropped afterwards): files / wall-clock seconds of the whole
             command (interpreter start-up, planning, reading, writing, statistics, run record).
             Also shown: the rate the command reports for itself (without interpreter start-up), the
             rate of its reading-and-writing phase alone (headers read / that phase's wall time: the
             engine's sustained throughput, without the fixed costs of planning, statistics and
             start-up) and the CPU seconds it used per 1,000 files (all its processes; not the
             PostgreSQL server).
  original   the original GW Portal's approach on the first --original-files files: astropy
             `fits.getheader` per file and one ORM `Frame.save()` per frame, in batches of 50 inside
             `transaction.atomic` (as its FrameManager did; it also wrote 2 more times per row and ran
             ~21 SQL statements per file, which this leaves out: the ratio below flatters the original).

Prints the median over --repeat runs (with min-max) and the ratios ours/original and ours/floor.
Usage (defaults in brackets; a default run takes a few minutes):

    .venv/bin/python bench/bench_ingest.py [--files 20000] [--repeat 3] [--original-files 1000]
        [--db sqlite,postgresql] [--workers 0] [--keep]

PostgreSQL: GWPORTAL_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres) must be
allowed to create databases.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ROOT, Scratch, django_setup, engine_rate, machine_line, median, pipeline_rate, release_workdir, spread, timed_manage, vendors,
)


def floor_rate(root: Path) -> tuple[float, int]:
    """files/s of scandir + stat + open + read of the header bytes, in this process."""
    from rawdata.header import HeaderError, read_header_bytes
    from rawdata.scan import iter_night_folders, list_folder

    start = time.perf_counter()
    n = 0
    for ref in iter_night_folders(root):
        for entry in list_folder(ref.path).files:
            try:
                read_header_bytes(f"{ref.path}/{entry.name}")
            except HeaderError:
                pass
            n += 1
    return n / (time.perf_counter() - start), n


def original_approach(url: str, root: str, limit: int, workdir: str) -> None:
    """(child process) astropy getheader + one ORM save() per frame; prints {"files", "seconds"}."""
    django_setup(url, Path(workdir))
    import warnings
    from datetime import datetime, timezone

    from astropy.io import fits
    from django.db import transaction
    from django.utils import timezone as djtz

    from rawdata.nightdate import night_date
    from rawdata.scan import iter_night_folders, list_folder
    from survey.models import Frame, Night, NightFolder, Unit

    paths = []
    for ref in iter_night_folders(root):
        paths += [(ref, e) for e in list_folder(ref.path).files]
        if len(paths) >= limit:
            break
    paths = paths[:limit]
    units: dict[str, Unit] = {}
    nights: dict = {}
    folders: dict[str, NightFolder] = {}
    start = time.perf_counter()
    for k in range(0, len(paths), 50):
        with transaction.atomic():
            for ref, entry in paths[k : k + 50]:
                path = f"{ref.path}/{entry.name}"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    hdr = fits.getheader(path)
                unit = units.get(ref.unit) or units.setdefault(ref.unit, Unit.objects.get_or_create(name=ref.unit)[0])
                obs = datetime.fromisoformat(hdr["DATE-OBS"]).replace(tzinfo=timezone.utc)
                nd = night_date(obs)
                night = nights.get(nd) or nights.setdefault(nd, Night.objects.get_or_create(date=nd)[0])
                folder = folders.get(ref.path) or folders.setdefault(ref.path, NightFolder.objects.get_or_create(
                    path=ref.path, defaults={"unit": unit, "night": night, "name": ref.name})[0])
                now = djtz.now()
                Frame(
                    path=path, filename=entry.name, unit=unit, night=night, folder=folder, image_type="science",
                    object=hdr.get("OBJECT", ""), filter=hdr.get("FILTER", ""), exptime=hdr.get("EXPTIME"),
                    date_obs=obs, mjd=hdr.get("MJD"), gain=hdr.get("GAIN"), binning=hdr.get("XBINNING"),
                    ccd_temp=hdr.get("CCD-TEMP"), ra=hdr.get("RA"), dec=hdr.get("DEC"), airmass=hdr.get("AIRMASS"),
                    naxis1=hdr.get("NAXIS1"), naxis2=hdr.get("NAXIS2"), image_id=hdr.get("IMAGEID", ""),
                    file_size=entry.size, file_mtime_ns=entry.mtime_ns, ingested_at=now, updated_at=now,
                ).save()
    print(json.dumps({"files": len(paths), "seconds": time.perf_counter() - start}))


def measure_original(scratch: Scratch, data: Path, n: int, work: Path) -> dict:
    """The original's approach on the first ``n`` files, in a fresh interpreter on a fresh database of
    ``scratch``'s kind: {"files", "seconds"}."""
    url = scratch.new()
    proc = subprocess.run(
        [sys.executable, __file__, "--_original", url, str(data), str(n), str(work)],
        cwd=ROOT, env={**scratch.env, "DATABASE_URL": url}, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{scratch.vendor}: the original's approach failed")
    scratch.drop(url)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20_000, help="frames to generate and ingest (default 20000)")
    ap.add_argument("--repeat", type=int, default=3, help="ingests per database (default 3; median reported)")
    ap.add_argument("--original-files", type=int, default=1_000, help="subset for the original's approach")
    ap.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both (default)")
    ap.add_argument("--workers", type=int, default=0, help="reader processes (default: number of cores)")
    ap.add_argument("--tmp", default=None, help="where to put the data and databases (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--_original", nargs=4, metavar=("URL", "ROOT", "N", "WORKDIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._original:
        url, root, n, workdir = args._original
        original_approach(url, root, int(n), workdir)
        return 0

    from rawdata.sample import generate_flat_files

    work = Path(tempfile.mkdtemp(prefix="gwbench-ingest-", dir=args.tmp))
    print(machine_line())
    try:
        data = work / "data"
        t = time.perf_counter()
        generate_flat_files(data, args.files)
        print(f"generated {args.files:,} frames (~180-card headers) in {time.perf_counter() - t:.1f} s under {data}")
        floors = [floor_rate(data)[0] for _ in range(args.repeat)]
        print(f"floor (scandir + stat + open + read header bytes, 1 process): {spread(floors)} files/s")

        results: dict[str, dict] = {}
        for vendor in vendors(args.db):
            scratch = Scratch(vendor, work / vendor)
            try:
                walls, engines, pipes, cpus = [], [], [], []
                for i in range(args.repeat):
                    url = scratch.new()
                    cmd = ["ingest_all_nights", "--data-root", str(data), "--auto-confirm", "--parallel"]
                    if args.workers:
                        cmd += ["--workers", str(args.workers)]
                    run = timed_manage(scratch, url, *cmd)
                    if run.proc.returncode != 0:
                        print(run.proc.stdout[-2000:], run.proc.stderr[-3000:], file=sys.stderr)
                        raise SystemExit(f"{vendor}: ingest exited {run.proc.returncode}")
                    walls.append(args.files / run.wall)
                    engines.append(engine_rate(run.proc.stdout))
                    pipes.append(pipeline_rate(run.proc.stdout))
                    cpus.append(run.cpu / args.files * 1000)
                    print(f"  {vendor} run {i + 1}: {run.wall:.2f} s wall, {args.files / run.wall:,.0f} files/s end to end, "
                          f"{engines[-1]:,.0f} files/s reported, {pipes[-1]:,.0f} files/s reading+writing, {run.cpu:.1f} CPU s")
                    scratch.drop(url)
                orig = measure_original(scratch, data, args.original_files, work)
                results[vendor] = {"walls": walls, "engines": engines, "pipes": pipes, "cpus": cpus,
                                   "original": orig["files"] / orig["seconds"], "original_files": orig["files"]}
                print(f"  {vendor} original approach: {orig['files']:,} files in {orig['seconds']:.2f} s = "
                      f"{orig['files'] / orig['seconds']:,.0f} files/s")
            finally:
                scratch.close()

        floor = median(floors)
        print()
        print(f"Ingest of {args.files:,} files ({args.repeat} runs each; median (min-max))")
        print(f"{'database':<11} {'end to end files/s':>24} {'reported files/s':>22} {'reading+writing':>22} "
              f"{'CPU s/1000':>11} {'original files/s':>17} {'ours/original':>14} {'ours/floor':>11}")
        for vendor, r in results.items():
            ours = median(r["walls"])
            print(f"{vendor:<11} {spread(r['walls']):>24} {spread(r['engines']):>22} {spread(r['pipes']):>22} "
                  f"{median(r['cpus']):>11.2f} {r['original']:>17,.0f} {ours / r['original']:>13.1f}x {ours / floor:>10.2f}x")
        print(f"floor {floor:,.0f} files/s on one core; original measured on {args.original_files:,} files")
    finally:
        release_workdir(work, args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
