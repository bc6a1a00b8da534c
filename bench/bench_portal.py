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
       --keep-db leaves the built PostgreSQL database in place and prints its URL; --reuse URL measures
       against such a database without building again (~10 min saved at 3 M rows); --only label,...
       measures only the pages whose label contains one of those words.
"""
from __future__ import annotations

import argparse
import json
import os
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


def child(url: str, rows: int, requests: int, workdir: str, reuse: bool = False, only: str = "") -> None:
    django_setup(url, Path(workdir))
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from _catalogue import build_catalogue
    from survey import stats
    from survey.models import ApiKey, Frame, Night, Tile

    settings.DEBUG = False
    t_rows = t_stats = 0.0
    if reuse:  # a database kept by --keep-db: already built, statistics and snapshots included
        n_frames = Frame.objects.count()
    else:
        t = time.perf_counter()
        n_frames = build_catalogue(Path(workdir) / "data", rows, units=20, per_folder=150, with_files=False,
                                   progress=False).frames
        t_rows = time.perf_counter() - t
        t = time.perf_counter()
        stats.refresh_all()
        from survey.status import refresh_snapshots

        refresh_snapshots()
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
        t_stats = time.perf_counter() - t

    # no password: the client logs in with force_login
    user = get_user_model().objects.get_or_create(username="bench")[0]
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
    notes = Frame.objects.exclude(obsnote="").order_by().values_list("obsnote", flat=True).distinct()[:6]
    events = [note.split()[1] for note in notes]  # "LVK S250123ab follow-up" -> S250123ab
    pages: dict[str, tuple[Client, list[str]]] = {
        "frame search (default)": (web, ["/frames/", "/frames/?page=2", "/frames/?sort=-date_obs"]),
        "frame search (filters)": (web, [f"/frames/?date_from={d}&date_to={d + timedelta(days=30)}&image_type=science&filter={f}"
                                          for d, f in zip(some, filters * 2)]),
        "frame search (cone)": (web, [f"/frames/?ra={ra:.4f}&dec={dec:.4f}&radius=1" for ra, dec in tiles]),
        "night page": (web, [f"/nights/{d}/" for d in some]),
        # Its survey status section, which the page fetches once shown (survey/views/nights.py).
        "night page, extra part": (web, [f"/nights/{d}/?section=extra" for d in some]),
        "dashboard": (web, ["/"]),
        "/status/": (anon, ["/status/"]),
        "/tiles/": (anon, ["/tiles/"]),
        "/api/frames/raw/ (night)": (api, [f"/api/frames/raw/?page=1&page_size=500&night_date={d}" for d in some]),
        "/api/frames/raw/ (all)": (api, ["/api/frames/raw/?page=1&page_size=500",
                                          "/api/frames/raw/?page=2&page_size=500"]),
        # An event name in OBSNOTE, any case (the GW follow-up search); bench/_catalogue.py writes them.
        "/api/frames/raw/ (obsnote)": (api, [f"/api/frames/raw/?page=1&page_size=500&obsnote_contains={e.lower()}"
                                             for e in events]),
    }
    if not events:  # a database kept before bench/_catalogue.py wrote notes
        del pages["/api/frames/raw/ (obsnote)"]
    wanted = [w.strip().lower() for w in only.split(",") if w.strip()]
    if wanted:
        pages = {k: v for k, v in pages.items() if any(w in k.lower() for w in wanted)}
    out = {"rows": n_frames, "nights": len(nights), "build_s": t_rows, "stats_s": t_stats, "mid": str(mid), "pages": {}}
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
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--keep-db", action="store_true", help="keep the built PostgreSQL database (for --reuse)")
    ap.add_argument("--reuse", metavar="URL", default=None, help="measure a database kept by --keep-db (no build)")
    ap.add_argument("--only", default="", help="comma list: measure only pages whose label contains one of these")
    ap.add_argument("--_child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        url, rows, requests, workdir, reuse, only = args._child
        child(url, int(rows), int(requests), workdir, reuse == "1", only)
        return 0
    work = Path(tempfile.mkdtemp(prefix="gwbench-portal-", dir=args.tmp))
    print(machine_line())
    try:
        if args.reuse:
            env = {**os.environ, "GWPORTAL_VAR_DIR": str(work / "var"), "GWPORTAL_LOG_DIR": str(work / "logs")}
            report(_run_child(args, args.reuse, "1", work, env), "postgresql", args.requests)
            return 0
        for vendor in vendors(args.db):
            scratch = Scratch(vendor, work / vendor)
            try:
                url = scratch.new()
                out = _run_child(args, url, "0", work / vendor, scratch.env)
                print(f"  {vendor}: {out['rows']:,} frames over {out['nights']} nights written in {out['build_s']:.0f} s; "
                      f"statistics and snapshots in {out['stats_s']:.0f} s")
                report(out, vendor, args.requests)
                if args.keep_db and vendor == "postgresql":
                    scratch.created.remove(url.rsplit("/", 1)[1])  # close() drops the template only
                    print(f"kept database {url} (measure again with --reuse {url}; drop it when done)")
                else:
                    scratch.drop(url)
            finally:
                scratch.close()
    finally:
        release_workdir(work, args.keep)
    return 0


def _run_child(args: argparse.Namespace, url: str, reuse: str, workdir: Path, env: dict[str, str]) -> dict:
    """Measure in a fresh interpreter configured for `url`; returns the child's JSON."""
    proc = subprocess.run([sys.executable, __file__, "--_child", url, str(args.rows), str(args.requests), str(workdir),
                           reuse, args.only], cwd=ROOT, env={**env, "DATABASE_URL": url}, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{url}: portal benchmark failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(out: dict, vendor: str, requests: int) -> None:
    print()
    print(f"Portal and API with {out['rows']:,} frames in {vendor} ({requests} requests per page, ms)")
    print(f"{'page':<24} {'p50':>8} {'p95':>8} {'max':>8}  {'< 300 ms p95':>12}")
    for label, times in out["pages"].items():
        p95 = percentile(times, 0.95)
        print(f"{label:<24} {percentile(times, 0.5):>8.1f} {p95:>8.1f} {max(times):>8.1f}  {'yes' if p95 < 300 else 'NO':>12}")


if __name__ == "__main__":
    raise SystemExit(main())
