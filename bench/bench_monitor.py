#!/usr/bin/env python
"""Benchmark: an idle monitor cycle over 20 units x 1,000 night folders (the target: <= 1 s).

Builds 20 units x --nights night folders, each already catalogued with --per-folder frames and as
many empty files on disk (bench/_catalogue.py), waits until the folders' mtimes are old enough to
be trusted, runs one full-scan cycle (what the monitor does once a day: every folder listed), then
times --repeat idle cycles of survey.monitor.run_cycle (auto-ingest on, nothing new): the unit and
night folders are scanned, nothing is listed or ingested. Median reported, per database.

Usage: .venv/bin/python bench/bench_monitor.py [--nights 1000] [--per-folder 2] [--repeat 5] [--db sqlite,postgresql]
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

from _common import ROOT, Scratch, release_workdir, django_setup, machine_line, median, vendors  # noqa: E402

UNITS = 20


def child(url: str, root: str, nights: int, per_folder: int, repeat: int, workdir: str) -> None:
    django_setup(url, Path(workdir))
    from _catalogue import build_catalogue

    from survey.monitor import DIR_MTIME_MARGIN_S, MonitorOptions, run_cycle

    cat = build_catalogue(Path(root), UNITS * nights * per_folder, units=UNITS, per_folder=per_folder, progress=False)
    time.sleep(DIR_MTIME_MARGIN_S + 0.5)
    opts = MonitorOptions(data_root=root, auto_ingest=True)
    start = time.perf_counter()
    full = run_cycle(opts)
    full_s = time.perf_counter() - start
    times, idle, listed = [], 0, 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = run_cycle(opts)
        times.append(time.perf_counter() - start)
        idle, listed = result.folders_idle, result.folders_listed
    print(json.dumps({"folders": cat.folders, "frames": cat.frames, "full_s": full_s, "full_listed": full.folders_listed,
                      "idle_s": times, "idle": idle, "listed": listed}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nights", type=int, default=1000, help="night folders per unit (default 1000; 20 units)")
    ap.add_argument("--per-folder", type=int, default=2, help="catalogued frames (and files) per folder")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--_child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        url, root, nights, per_folder, repeat, workdir = args._child
        child(url, root, int(nights), int(per_folder), int(repeat), workdir)
        return 0
    work = Path(tempfile.mkdtemp(prefix="gwbench-monitor-", dir=args.tmp))
    print(machine_line())
    rows = []
    try:
        data = work / "data"
        for vendor in vendors(args.db):
            scratch = Scratch(vendor, work / vendor)
            try:
                url = scratch.new()
                proc = subprocess.run([sys.executable, __file__, "--_child", url, str(data), str(args.nights),
                                       str(args.per_folder), str(args.repeat), str(work)], cwd=ROOT,
                                      env={**scratch.env, "DATABASE_URL": url}, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{vendor}: monitor benchmark failed")
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"  {vendor}: {out['folders']:,} folders, {out['frames']:,} frames; full-scan cycle "
                      f"{out['full_s']:.2f} s ({out['full_listed']:,} listed); idle cycles list {out['listed']}, "
                      f"skip {out['idle']:,}")
                rows.append((vendor, out))
                scratch.drop(url)
            finally:
                scratch.close()
        print()
        print(f"Idle monitor cycle, {UNITS} units x {args.nights:,} nights ({args.repeat} cycles; median (min-max))")
        print(f"{'database':<11} {'folders':>8} {'idle cycle s':>22} {'full-scan cycle s':>18}")
        for vendor, out in rows:
            t = sorted(out["idle_s"])
            print(f"{vendor:<11} {out['folders']:>8,} {f'{median(t):.3f} ({t[0]:.3f}-{t[-1]:.3f})':>22} {out['full_s']:>18.2f}")
        print("target: idle cycle <= 1 s")
    finally:
        release_workdir(work, args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
