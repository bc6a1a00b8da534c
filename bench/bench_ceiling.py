#!/usr/bin/env python
"""Benchmark: the most the ingest can reach on this machine if reading headers cost nothing.

SPEC section 2 asks for >= 10,000 files/s end to end and >= 50x the original's approach. This measures,
in one run, how far those are from what the database work alone allows:

  ours       `manage.py ingest_all_nights --data-root D --auto-confirm --parallel`, the whole command in
             a fresh interpreter on a fresh database (as bench_ingest.py measures it);
  free read  the same command, in a fresh interpreter on a fresh database, with the header readers
             replaced by a replay of their results recorded beforehand (`ChunkResult`s pickled as the
             reader processes send them; the writer unpickles them as it does from a pool). Everything
             else is the real command: start-up, planning, writing, statistics, snapshots, run record.
             No reader that sends its results from other processes, however fast, can make the
             command faster than this (one inside the writer's process would save the unpickling);
  original   the original's approach (astropy per file + one ORM save() per frame), bench_ingest.py's.

The replay runs alternate with the real ones (the machine's speed drifts). Prints medians and the ratios
to the original of both, and the replay's phases (where the time goes once reading is free).

Usage: .venv/bin/python bench/bench_ceiling.py [--files 20000] [--repeat 3] [--db sqlite,postgresql]
"""
from __future__ import annotations

import argparse
import json
import pickle
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Scratch, django_setup, machine_line, median, release_workdir, spread, timed_manage, vendors  # noqa: E402
from bench_ingest import measure_original  # noqa: E402

COMMAND = ("ingest_all_nights", "--data-root")


class _Recorder:
    """Reads inline, as the engine would, and keeps each chunk's result pickled for the replay."""

    name, workers = "record", 1

    def __init__(self) -> None:
        self.blobs: list[tuple[tuple[str, list[str]], bytes]] = []  # (the task's identity, its result pickled)

    def map(self, tasks: Iterable) -> Iterator:
        from rawdata.extract import read_chunk

        for task in tasks:
            result = read_chunk(task)
            self.blobs.append((_identity(task), pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)))
            yield result

    def close(self) -> None:
        return None


class _Replay:
    """Yields the recorded results in task order, unpickled as a pool's results are; each only for the
    task it was recorded for (the same plan on the same fresh database gives the same tasks)."""

    name, workers = "replay", 1

    def __init__(self, blobs: list[tuple[tuple[str, list[str]], bytes]]) -> None:
        self.blobs = blobs

    def map(self, tasks: Iterable) -> Iterator:
        tasks = list(tasks)
        if len(tasks) != len(self.blobs):
            raise SystemExit(f"replay: {len(tasks)} tasks, {len(self.blobs)} recorded results")
        for task, (identity, blob) in zip(tasks, self.blobs):
            if _identity(task) != identity:
                raise SystemExit(f"replay: task of {identity[0]} recorded, {task.context.path} asked for")
            yield pickle.loads(blob)

    def close(self) -> None:
        return None


def _identity(task) -> tuple[str, list[str]]:
    """A chunk task's folder and file names, in order."""
    return task.context.path, [f.name for f in task.files]


def _ingest_with(executor, root: str) -> None:
    """The real ingest_all_nights command, with `executor` in place of the header readers."""
    from django.core.management import call_command

    from survey.ingest import engine

    engine.make_executor = lambda *a, **k: executor
    call_command(COMMAND[0], COMMAND[1], root, "--auto-confirm")


def record_child(url: str, root: str, out: str, workdir: str) -> None:
    django_setup(url, Path(workdir))
    recorder = _Recorder()
    _ingest_with(recorder, root)
    Path(out).write_bytes(pickle.dumps(recorder.blobs, protocol=pickle.HIGHEST_PROTOCOL))


def replay_child(url: str, root: str, recorded: str, workdir: str) -> None:
    t = time.perf_counter()
    blobs = pickle.loads(Path(recorded).read_bytes())  # (identity, bytes) pairs: the results stay pickled
    load = time.perf_counter() - t
    django_setup(url, Path(workdir))
    _ingest_with(_Replay(blobs), root)
    print(json.dumps({"load_s": load}))


def _child(scratch: Scratch, url: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, env={**scratch.env, "DATABASE_URL": url},
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{args[0]} failed (exit {proc.returncode})")
    return proc


def _phases(output: str) -> str:
    m = re.search(r"time: (.*?); reading", output)
    return m.group(1) if m else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--original-files", type=int, default=1_000)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--_record", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--_replay", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._record:
        record_child(*args._record)
        return 0
    if args._replay:
        replay_child(*args._replay)
        return 0

    from rawdata.sample import generate_flat_files

    print(machine_line())
    work = Path(tempfile.mkdtemp(prefix="gwbench-ceiling-", dir=args.tmp))
    rows = []
    try:
        data = work / "data"
        generate_flat_files(data, args.files)
        recorded = str(work / "recorded.pickle")
        for vendor in vendors(args.db):
            scratch = Scratch(vendor, work / vendor)
            try:
                url = scratch.new()
                _child(scratch, url, "--_record", url, str(data), recorded, str(work))
                scratch.drop(url)
                ours, free = [], []
                for i in range(args.repeat):
                    url = scratch.new()
                    run = timed_manage(scratch, url, *COMMAND, str(data), "--auto-confirm", "--parallel")
                    if run.proc.returncode != 0:
                        print(run.proc.stderr[-3000:], file=sys.stderr)
                        raise SystemExit(f"{vendor}: ingest exited {run.proc.returncode}")
                    ours.append(args.files / run.wall)
                    scratch.drop(url)
                    url = scratch.new()
                    t = time.perf_counter()
                    proc = _child(scratch, url, "--_replay", url, str(data), recorded, str(work))
                    wall = time.perf_counter() - t - json.loads(proc.stdout.strip().splitlines()[-1])["load_s"]
                    free.append(args.files / wall)
                    scratch.drop(url)
                    print(f"  {vendor} run {i + 1}: ours {run.wall:.2f} s, free read {wall:.2f} s "
                          f"(phases: {_phases(proc.stdout)})")
                orig = measure_original(scratch, data, args.original_files, work)
                rows.append((vendor, ours, free, orig["files"] / orig["seconds"]))
            finally:
                scratch.close()
        print(f"\nIngest of {args.files:,} files, whole command ({args.repeat} runs each; median (min-max))")
        print(f"{'database':<11} {'ours files/s':>22} {'free read files/s':>22} {'original':>9} "
              f"{'ours/orig':>10} {'free/orig':>10}")
        for vendor, ours, free, orig in rows:
            print(f"{vendor:<11} {spread(ours):>22} {spread(free):>22} {orig:>9,.0f} "
                  f"{median(ours) / orig:>9.1f}x {median(free) / orig:>9.1f}x")
        print("free read: the same command with the header readers' results replayed (reading costs nothing)")
    finally:
        release_workdir(work, args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
