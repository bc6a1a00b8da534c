#!/usr/bin/env python
"""Benchmark: a re-run over an unchanged archive (the target: 1 M files checked in <= 15 s, no header read).

Builds a catalogue of N frames written straight into a fresh database (bench/_catalogue.py: 20 units,
1,000 frames per night folder) plus one empty file per frame under a temporary data root, each row
holding its file's real size and mtime: the archive is exactly "already ingested, nothing changed".
Then measures, per database:

  plan       survey.ingest.plan.build_plan over every folder, in process: the scan (scandir + stat of
             every file) and the diff against the catalogue (median of --repeat);
  command    `manage.py ingest_all_nights --data-root D --auto-confirm` end to end in a fresh
             interpreter (start-up, plan, folder bookkeeping, run record); it must read no header.

Usage: .venv/bin/python bench/bench_rerun.py [--files 100000] [--repeat 3] [--db sqlite,postgresql]
       (the target size: --files 1000000; ~1 M empty files need ~1 M inodes and a few minutes to make)
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Scratch, release_workdir, django_setup, machine_line, median, timed_manage, vendors  # noqa: E402


def child(url: str, root: str, n: int, repeat: int, workdir: str) -> None:
    """(child process) build the catalogue, then time build_plan; prints one JSON line."""
    django_setup(url, Path(workdir))
    from _catalogue import build_catalogue

    from survey.ingest.plan import build_plan, discover

    cat = build_catalogue(Path(root), n)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        plans = build_plan(discover(root, start=None, end=None, units=None), reread_all=False)
        times.append(time.perf_counter() - start)
        to_read = sum(len(p.to_read) for p in plans)
        unchanged = sum(p.unchanged for p in plans)
        if to_read or unchanged != cat.frames:
            raise SystemExit(f"archive not unchanged: {to_read} to read, {unchanged} unchanged of {cat.frames}")
    print(json.dumps({"frames": cat.frames, "folders": cat.folders, "files_s": cat.seconds_files,
                      "rows_s": cat.seconds_rows, "plan_s": times}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100_000, help="catalogued frames and files (default 100000)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--_child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        url, root, n, repeat, workdir = args._child
        child(url, root, int(n), int(repeat), workdir)
        return 0
    work = Path(tempfile.mkdtemp(prefix="gwbench-rerun-", dir=args.tmp))
    print(machine_line())
    rows = []
    try:
        data = work / "data"
        for vendor in vendors(args.db):
            scratch = Scratch(vendor, work / vendor)
            try:
                url = scratch.new()
                proc = subprocess.run([sys.executable, __file__, "--_child", url, str(data), str(args.files),
                                       str(args.repeat), str(work)], cwd=ROOT, env={**scratch.env, "DATABASE_URL": url},
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{vendor}: catalogue/plan failed")
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"  {vendor}: catalogue of {out['frames']:,} frames in {out['folders']:,} folders "
                      f"(files {out['files_s']:.1f} s, rows {out['rows_s']:.1f} s)")
                walls = []
                for _ in range(args.repeat):
                    run = timed_manage(scratch, url, "ingest_all_nights", "--data-root", str(data), "--auto-confirm")
                    m = re.search(r"headers read ([\d,]+)", run.proc.stdout)
                    if run.proc.returncode != 0 or not m or m.group(1) != "0":
                        print(run.proc.stdout[-2000:], run.proc.stderr[-2000:], file=sys.stderr)
                        raise SystemExit(f"{vendor}: the re-run read headers or failed (exit {run.proc.returncode})")
                    walls.append(run.wall)
                rows.append((vendor, out["frames"], median(out["plan_s"]), median(walls)))
                scratch.drop(url)
            finally:
                scratch.close()
        print()
        print(f"Re-run over an unchanged archive ({args.repeat} runs each; medians; no header read)")
        print(f"{'database':<11} {'frames':>10} {'plan (scan+diff) s':>19} {'files/s':>10} {'command s':>10} "
              f"{'files/s':>10} {'est. 1 M, s':>12}")
        for vendor, n, plan, wall in rows:
            estimate = (wall - plan) + plan * 1_000_000 / n  # fixed part (start-up...) + plan scaled
            print(f"{vendor:<11} {n:>10,} {plan:>19.2f} {n / plan:>10,.0f} {wall:>10.2f} {n / wall:>10,.0f} "
                  f"{estimate:>12.1f}")
        print("target: 1 M files checked in <= 15 s; 'est. 1 M' = command time less the plan, plus the plan")
        print("scaled to 1 M files (measure it: --files 1000000)")
    finally:
        release_workdir(work, args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
