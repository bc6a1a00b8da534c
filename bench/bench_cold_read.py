#!/usr/bin/env python
"""Benchmark: header reading from slow (network) storage, and what READ_CONCURRENCY does about it.

On a local disk a header read costs ~30 us and the parser is the bottleneck; on network storage
(NFS, a cold object store behind FUSE) each open + read waits milliseconds and a reader that reads
one file at a time sits idle. settings.GWPORTAL['READ_CONCURRENCY'] (env GWPORTAL_READ_CONCURRENCY)
is the number of reads each reader process keeps in flight (threads; parsing stays in the process's
main thread).

This generates N frames, then runs rawdata.extract.read_chunk in one process over them with a
simulated storage latency: every header read first sleeps --latency-ms (as a remote open + first
read would), for each concurrency in --concurrency. Prints files/s (median of --repeat) and the
speed-up over concurrency 1, next to the same reader without latency.

Usage: .venv/bin/python bench/bench_cold_read.py [--files 2000] [--latency-ms 2] [--concurrency 1,4,16,32] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, median  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--latency-ms", type=float, default=2.0, help="simulated latency per header read (default 2 ms)")
    ap.add_argument("--concurrency", default="1,4,16,32")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()

    import rawdata.extract as extract
    from rawdata.extract import ChunkTask, ExtractConfig, FolderContext, read_chunk
    from rawdata.sample import generate_flat_files
    from rawdata.scan import iter_night_folders, list_folder

    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="gwbench-cold-", dir=args.tmp) as tmp:
        generate_flat_files(Path(tmp), args.files)
        folders = [(ref, list_folder(ref.path).files) for ref in iter_night_folders(tmp)]
        real_read = extract.read_header_bytes
        delay = args.latency_ms / 1000

        def slow_read(path, **kw):  # a remote open + first read
            time.sleep(delay)
            return real_read(path, **kw)

        def rate(concurrency: int, slow: bool) -> float:
            cfg = ExtractConfig(settle_seconds=0, read_concurrency=concurrency)
            tasks = [ChunkTask(FolderContext(ref.unit, ref.info, ref.path), files, cfg, time.time()) for ref, files in folders]
            extract.read_header_bytes = slow_read if slow else real_read
            try:
                runs = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    n = sum(len(read_chunk(t).frames) for t in tasks)
                    runs.append(n / (time.perf_counter() - start))
                return median(runs)
            finally:
                extract.read_header_bytes = real_read

        levels = [int(c) for c in args.concurrency.split(",")]
        rate(1, slow=False)  # warm-up: page cache, the parser's card cache, imports
        local = rate(1, slow=False)
        print(f"\nOne reader process, {args.files:,} files; local disk (no latency): {local:,.0f} files/s")
        print(f"With {args.latency_ms:g} ms per header read ({args.repeat} runs; median):")
        print(f"{'READ_CONCURRENCY':>17} {'files/s':>10} {'vs 1':>7} {'vs local':>9}")
        base = None
        for level in levels:
            r = rate(level, slow=True)
            base = base or r
            print(f"{level:>17} {r:>10,.0f} {r / base:>6.1f}x {r / local:>8.0%}")
        print(f"(without concurrency a reader cannot beat 1 / latency = {1 / delay:,.0f} files/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
