#!/usr/bin/env python
"""Benchmark: portal and API latency with a large catalogue in PostgreSQL (the target: p95 < 300 ms at 3 M frames).

Writes --rows catalogued frames straight into a fresh scratch database (bench/_catalogue.py: 20 units,
150 frames per unit night, 85 % science over the 7DS tiles; no FITS files, no headers), computes the
cached statistics and public snapshots as an ingest would (survey.stats.refresh_all,
survey.status.refresh_snapshots, then ANALYZE as autovacuum would), and requests each page
--requests times in process with Django's test Client, logged in (the API with an X-API-Key),
rotating over several parameter sets so no two consecutive requests are the same. Prints p50, p95
and max in ms per page (server-side time: no network, no browser rendering).

Usage: .venv/bin/python bench/bench_portal.py [--rows 300000] [--requests 20] [--db postgresql]
       (the target size: --rows 3000000; building it takes a while, mostly the PostgreSQL COPY)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Scratch, release_workdir, django_setup, machine_line, vendors  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(q * (len(values) - 1))))
    return values[k]


def child(url: str, rows: int, requests: int, workdir: str) -> None:
    django_setup(url, Path(workdir))
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from _catalogue import build_catalogue
    from survey import stats
    from survey.models import ApiKey, Night, Tile

    settings.DEBUG = False
    t = time.perf_counter()
    cat = build_catalogue(Path(workdir) / "data", rows, units=20, per_folder=150, with_files=False, progress=False)
    t_rows = time.perf_counter() - t
    t = time.perf_counter()
    stats.refresh_all()
    from survey.status import refresh_snapshots

    refresh_snapshots()
    with connection.cursor() as cur:
        cur.execute("ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    t_stats = time.perf_counter() - t

    user = get_user_model().objects.create_user("bench")  # no password: the client logs in with force_login
    _, key = ApiKey.issue(user, "bench")
    web = Client()
    web.force_login(user)
    api = Client(HTTP_X_API_KEY=key)
    anon = Client()
    nights = list(Night.objects.order_by("date").values_list("date", flat=True))
    mid = nights[len(nights) // 2]
    some = [nights[(len(nights) * k) // 7] for k in range(1, 7)]
    tiles = list(Tile.objects.filter(n_frames__gt=0).order_by("id").values_list("ra", "dec")[:50:10])
    filters = ["m425", "m500", "m600", "r"]
    pages: dict[str, tuple[Client, list[str]]] = {
        "frame search (default)": (web, ["/frames/", "/frames/?page=2", "/frames/?sort=-date_obs"]),
        "frame search (filters)": (web, [f"/frames/?date_from={d}&date_to={d + timedelta(days=30)}&image_type=science&filter={f}"
                                          for d, f in zip(some, filters * 2)]),
        "frame search (cone)": (web, [f"/frames/?ra={ra:.4f}&dec={dec:.4f}&radius=1" for ra, dec in tiles]),
        "night page": (web, [f"/nights/{d}/" for d in some]),
        "dashboard": (web, ["/"]),
        "/status/": (anon, ["/status/"]),
        "/tiles/": (anon, ["/tiles/"]),
        "/api/frames/raw/ (night)": (api, [f"/api/frames/raw/?page=1&page_size=500&night_date={d}" for d in some]),
        "/api/frames/raw/ (all)": (api, ["/api/frames/raw/?page=1&page_size=500",
                                          "/api/frames/raw/?page=2&page_size=500"]),
    }
    out = {"rows": cat.frames, "nights": len(nights), "build_s": t_rows, "stats_s": t_stats, "mid": str(mid), "pages": {}}
    for label, (client, urls) in pages.items():
        for u in urls[:2]:  # warm-up (first use of each code path and query plan)
            client.get(u)
        times = []
        for i in range(requests):
            u = urls[i % len(urls)]
            start = time.perf_counter()
            response = client.get(u)
            times.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{u}: HTTP {response.status_code}")
        out["pages"][label] = times
    print(json.dumps(out))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=300_000, help="catalogued frames (default 300000; target 3000000)")
    ap.add_argument("--requests", type=int, default=20, help="timed requests per page (default 20)")
    ap.add_argument("--db", default="postgresql")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        url, rows, requests, workdir = args._child
        child(url, int(rows), int(requests), workdir)
        return 0
    work = Path(tempfile.mkdtemp(prefix="gwbench-portal-", dir=args.tmp))
    print(machine_line())
    try:
        for vendor in vendors(args.db):
            scratch = Scratch(vendor, work / vendor)
            try:
                url = scratch.new()
                proc = subprocess.run([sys.executable, __file__, "--_child", url, str(args.rows), str(args.requests),
                                       str(work / vendor)], cwd=ROOT, env={**scratch.env, "DATABASE_URL": url},
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{vendor}: portal benchmark failed")
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"  {vendor}: {out['rows']:,} frames over {out['nights']} nights written in {out['build_s']:.0f} s; "
                      f"statistics and snapshots in {out['stats_s']:.0f} s")
                print()
                print(f"Portal and API with {out['rows']:,} frames in {vendor} ({args.requests} requests per page, ms)")
                print(f"{'page':<24} {'p50':>8} {'p95':>8} {'max':>8}  {'< 300 ms p95':>12}")
                for label, times in out["pages"].items():
                    p95 = percentile(times, 0.95)
                    print(f"{label:<24} {percentile(times, 0.5):>8.1f} {p95:>8.1f} {max(times):>8.1f}  "
                          f"{'yes' if p95 < 300 else 'NO':>12}")
                scratch.drop(url)
            finally:
                scratch.close()
    finally:
        release_workdir(work, args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
