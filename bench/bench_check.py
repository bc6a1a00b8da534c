#!/usr/bin/env python
"""Benchmark: the missing-file check over a large catalogue (the target: 1 M files in <= 10 s).

Builds N catalogued frames plus one empty file per frame (bench/_catalogue.py; catalogue and disk
agree), then removes --missing files from disk and adds as many uncatalogued files, so the check
has real findings, and measures per database:

  analyse    survey.reconcile.analyse(CheckOptions(data_root=D)) in process: the full per-file
             comparison (on disk / catalogued / failed / excluded / gone, sequence gaps), median of --repeat;
  command    `manage.py check_missing_files --data-root D --summary-only` end to end (fresh interpreter,
             report file and MissingReport row included).

Usage: .venv/bin/python bench/bench_check.py [--files 100000] [--repeat 3] [--db sqlite,postgresql]
       (the target size: --files 1000000)
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

from _common import ROOT, Scratch, release_workdir, django_setup, machine_line, median, timed_manage, vendors  # noqa: E402


def child(url: str, root: str, n: int, repeat: int, missing: int, workdir: str) -> None:
    django_setup(url, Path(workdir))
    from _catalogue import build_catalogue

    from survey.reconcile import CheckOptions, analyse

    cat = build_catalogue(Path(root), n)
    folders = sorted(p for p in Path(root).glob("7DT*/*") if p.is_dir())
    extra: dict[Path, int] = {}
    for k in range(missing):  # catalogued but gone / on disk but never ingested, spread over folders
        folder = folders[k % len(folders)]
        victim = next(iter(sorted(folder.glob("*.fits"))), None)
        if victim is not None:
            victim.unlink()
        i = extra[folder] = extra.get(folder, 0) + 1
        (folder / f"{folder.parent.name}_20990101_0000{i:02d}_T00001_m425_1x1_100.0s_{i - 1:04d}.fits").touch()
    times, issues = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        analysis = analyse(CheckOptions(data_root=root))
        times.append(time.perf_counter() - start)
        issues = analysis.issues
    print(json.dumps({"frames": cat.frames, "folders": cat.folders, "analyse_s": times, "issues": issues}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--missing", type=int, default=100, help="files removed from disk (and as many extra files)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--_child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        url, root, n, repeat, missing, workdir = args._child
        child(url, root, int(n), int(repeat), int(missing), workdir)
        return 0
    work = Path(tempfile.mkdtemp(prefix="gwbench-check-", dir=args.tmp))
    print(machine_line())
    rows = []
    try:
        for vendor in vendors(args.db):
            data = work / f"data-{vendor}"  # the check's findings change the disk: one tree per database
            scratch = Scratch(vendor, work / vendor)
            try:
                url = scratch.new()
                proc = subprocess.run([sys.executable, __file__, "--_child", url, str(data), str(args.files), str(args.repeat),
                                       str(args.missing), str(work)], cwd=ROOT, env={**scratch.env, "DATABASE_URL": url},
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{vendor}: catalogue/analyse failed")
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"  {vendor}: {out['frames']:,} frames in {out['folders']:,} folders, {out['issues']} issues found")
                walls = []
                for _ in range(args.repeat):
                    run = timed_manage(scratch, url, "check_missing_files", "--data-root", str(data), "--summary-only")
                    if run.proc.returncode not in (0, 1):
                        print(run.proc.stdout[-2000:], run.proc.stderr[-2000:], file=sys.stderr)
                        raise SystemExit(f"{vendor}: check_missing_files exited {run.proc.returncode}")
                    walls.append(run.wall)
                rows.append((vendor, out["frames"], median(out["analyse_s"]), median(walls)))
                scratch.drop(url)
            finally:
                scratch.close()
        print()
        print(f"Missing-file check ({args.repeat} runs each; medians; {args.missing} files gone, {args.missing} extra)")
        print(f"{'database':<11} {'frames':>10} {'analyse s':>10} {'files/s':>10} {'command s':>10} {'files/s':>10} {'est. 1 M, s':>12}")
        for vendor, n, analyse_s, wall in rows:
            estimate = (wall - analyse_s) + analyse_s * 1_000_000 / n
            print(f"{vendor:<11} {n:>10,} {analyse_s:>10.2f} {n / analyse_s:>10,.0f} {wall:>10.2f} {n / wall:>10,.0f} {estimate:>12.1f}")
        print("target: 1 M files in <= 10 s; 'est. 1 M' = command time less the analysis, plus the analysis scaled")
        print("to 1 M files (measure it: --files 1000000)")
    finally:
        release_workdir(work, args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
