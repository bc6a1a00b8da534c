#!/usr/bin/env python
"""Benchmark: where one file's ingest spends its CPU, stage by stage (the budget behind bench_ingest).

Generates N frames (~180-card headers), then measures CPU time per file (process time, the minimum of
--repeat passes, so other load on the machine inflates it as little as possible):

  reader    read the header bytes, parse the cards, promote, parse the file name, build the record
            (classification + header JSON), the whole rawdata.extract.read_chunk, and pickling its
            result for the writer / unpickling it there;
  writer    survey.ingest.writer.BatchWriter.write over the pre-read results into a fresh database,
            grouped into transactions of about BATCH_SIZE frames as the engine does: CPU of the writer process, and on PostgreSQL also of the server
            backend doing the COPY (read from /proc, so only when the server runs on this machine).

Usage: .venv/bin/python bench/bench_stages.py [--files 20000] [--repeat 5] [--db sqlite,postgresql]
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from itertools import groupby
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Scratch, django_setup, machine_line, vendors  # noqa: E402


def best(fn, n: int, repeat: int):
    """(us per file of the fastest pass, the last output)."""
    times, out = [], None
    for _ in range(repeat):
        start = time.process_time()
        out = fn()
        times.append(time.process_time() - start)
    return min(times) / n * 1e6, out


def reader_stages(root: Path, repeat: int) -> list[tuple[str, float]]:
    from rawdata import header as H
    from rawdata.extract import ChunkTask, ExtractConfig, FolderContext, build_record, read_chunk
    from rawdata.names import parse_filename
    from rawdata.scan import iter_night_folders, list_folder

    entries = [(ref, e) for ref in iter_night_folders(root) for e in list_folder(ref.path).files]
    n = len(entries)
    cfg = ExtractConfig(settle_seconds=0)
    ctxs = {ref.path: FolderContext(unit=ref.unit, folder=ref.info, path=ref.path) for ref, _ in entries}
    rows = []
    t, raws = best(lambda: [H.read_header_bytes(f"{r.path}/{e.name}") for r, e in entries], n, repeat)
    rows.append(("read the header bytes", t))
    t, headers = best(lambda: [H.parse_header(b) for b in raws], n, repeat)
    rows.append(("parse the cards", t))
    t, metas = best(lambda: [H.promote(h.cards) for h in headers], n, repeat)
    rows.append(("promote to typed columns", t))
    t, names = best(lambda: [parse_filename(e.name) for _, e in entries], n, repeat)
    rows.append(("parse the file name", t))
    t, _ = best(lambda: [build_record(f"{r.path}/{e.name}", e, ctxs[r.path], cfg, h.cards, m, p,
                                      checked_json=not h.via_astropy, layout=h.layout)
                         for (r, e), h, m, p in zip(entries, headers, metas, names)], n, repeat)
    rows.append(("classify, build the row, header changes JSON", t))
    tasks = [ChunkTask(ctxs[path], [e for _, e in group], cfg, time.time())
             for path, group in groupby(entries, key=lambda x: x[0].path)]
    t, results = best(lambda: [read_chunk(task) for task in tasks], n, repeat)
    rows.append(("= read_chunk (all of the above, loop, checks)", t))
    t, blobs = best(lambda: [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in results], n, repeat)
    rows.append(("pickle the result (reader process)", t))
    t, _ = best(lambda: [pickle.loads(b) for b in blobs], n, repeat)
    rows.append(("unpickle the result (writer process)", t))
    return rows


def writer_child(url: str, root: str, workdir: str) -> None:
    """(child) pre-read everything, then time BatchWriter.write alone."""
    django_setup(url, Path(workdir))
    from django.db import connection
    from django.utils import timezone

    from rawdata.extract import read_chunk
    from survey.ingest import engine
    from survey.ingest.plan import build_plan, discover
    from survey.ingest.writer import BatchWriter
    from survey.models import IngestRun

    plans = build_plan(discover(root, start=None, end=None, units=None), reread_all=False)
    opts = engine.IngestOptions(data_root=root, settle_seconds=0)
    tasks, owners = engine._tasks(plans, engine.extract_config(opts), opts)
    results = [read_chunk(t) for t in tasks]
    run = IngestRun.objects.create(trigger="bench", started_at=timezone.now())
    writer = BatchWriter(run.id)

    def backend_cpu() -> float:
        if connection.vendor != "postgresql":
            return 0.0
        pid = connection.connection.info.backend_pid
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:  # the server runs elsewhere
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    n = sum(len(r.frames) for r in results)
    # As the engine writes: consecutive chunks in one transaction of about BATCH_SIZE frames.
    from collections import Counter

    from django.conf import settings

    size = settings.GWPORTAL["BATCH_SIZE"]
    groups, group = [], []
    for pair in zip(results, owners):
        group.append(pair)
        if sum(len(r.frames) for r, _ in group) >= size:
            groups.append(group)
            group = []
    groups += [group] if group else []
    counts, table, touched = Counter(), Counter(), {"nights": set(), "tiles": set(), "targets": set()}
    b0, c0 = backend_cpu(), time.process_time()
    for group in groups:
        engine._write_group(writer, group, counts, table, touched, set())
    print(json.dumps({"frames": n, "client_us": (time.process_time() - c0) / n * 1e6,
                      "server_us": (backend_cpu() - b0) / n * 1e6}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--_writer", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._writer:
        writer_child(*args._writer)
        return 0
    from rawdata.sample import generate_flat_files

    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="gwbench-stages-", dir=args.tmp) as tmp:
        work = Path(tmp)
        data = work / "data"
        generate_flat_files(data, args.files)
        print(f"\nCPU per file, {args.files:,} files (~180 cards), fastest of {args.repeat} passes")
        print(f"{'stage':<48} {'us/file':>8}")
        for label, us in reader_stages(data, args.repeat):
            print(f"{label:<48} {us:>8.1f}")
        for vendor in vendors(args.db):
            scratch = Scratch(vendor, work / vendor)
            try:
                url = scratch.new()
                proc = subprocess.run([sys.executable, __file__, "--_writer", url, str(data), str(work)], cwd=ROOT,
                                      env={**scratch.env, "DATABASE_URL": url}, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{vendor}: writer benchmark failed")
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"{vendor + ' writer process (BatchWriter.write)':<48} {out['client_us']:>8.1f}")
                if vendor == "postgresql":
                    print(f"{'postgresql server backend (the COPY)':<48} {out['server_us']:>8.1f}")
                scratch.drop(url)
            finally:
                scratch.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
