"""A large synthetic catalogue written straight into the database (COPY / executemany), no FITS files.

The re-run, missing-file and portal benchmarks need hundreds of thousands to millions of catalogued
frames; ingesting that many real files would take most of an hour and gigabytes of disk. Instead the
rows are generated: units x nights x one night folder each, frames spread over the 7DS tiles, 85 %
science through 11 filters, the rest bias/dark/flat. With `with_files` every frame also gets an empty
file of the same name under the data root, and its row records that file's real size and mtime, so
the catalogue and the disk agree exactly (an unchanged archive for the planner). Frame headers are
not written (3 M headers would be ~20 GB; no measured page reads them).

Runs inside a Django-configured process (see _common.django_setup).
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

FILTERS = ["m400", "m425", "m450", "m475", "m500", "m525", "m550", "m575", "m600", "m625", "r"]
COLUMNS = [
    "path", "filename", "unit_id", "night_id", "folder_id", "image_type", "type_source", "excluded_by", "object",
    "program", "tile_id", "filter", "exptime", "date_obs", "mjd", "gain", "binning", "ccd_temp", "camera", "ra", "dec",
    "obj_ra", "obj_dec", "airmass", "naxis1", "naxis2", "image_id", "is_too", "is_shift", "software", "name_family",
    "sequence", "obsnote", "seeing", "sky_brightness", "cloud_frac", "humidity", "wind_speed", "pointing_offset",
    "pointing_warning", "file_size", "file_mtime_ns", "checksum", "present", "ingested_at", "updated_at",
]


@dataclass
class Catalogue:
    root: Path
    frames: int
    units: int
    nights: int
    folders: int
    seconds_files: float
    seconds_rows: float


def event_name(folder_no: int) -> str:
    """The gravitational-wave event whose follow-up frames of folder ``folder_no`` note (500 events)."""
    return f"{250000 + folder_no % 500:06d}ab"


def build_catalogue(root: Path, n_frames: int, *, units: int = 20, per_folder: int = 1000, with_files: bool = True,
                    first_night: date = date(2024, 1, 1), seed: int = 5, progress: bool = True) -> Catalogue:
    """Write `n_frames` frame rows (and, with `with_files`, as many empty files) in folders of `per_folder`."""
    from django.db import connection, transaction
    from django.utils import timezone as djtz

    from rawdata.folders import parse_folder_name
    from rawdata.scan import list_folder
    from rawdata.tiles import RIS_LAST_INDEX, tile
    from survey.models import Night, NightFolder, Tile, Unit

    rng = random.Random(seed)
    n_folders = max(1, math.ceil(n_frames / per_folder))
    n_nights = max(1, math.ceil(n_folders / units))
    unit_rows = {f"7DT{u + 1:02d}": Unit.objects.get_or_create(name=f"7DT{u + 1:02d}", defaults={"dir_name": f"7DT{u + 1:02d}"})[0].id
                 for u in range(units)}
    dates = [first_night + timedelta(days=k) for k in range(n_nights)]
    Night.objects.bulk_create([Night(date=d) for d in dates], ignore_conflicts=True)
    night_ids = dict(Night.objects.filter(date__in=dates).values_list("date", "id"))
    tile_ids = dict(Tile.objects.values_list("name", "id"))
    now = djtz.now()
    t_files = t_rows = 0.0
    written = 0
    folder_no = 0
    for d in dates:
        for unit, unit_id in unit_rows.items():
            if written >= n_frames:
                break
            count = min(per_folder, n_frames - written)
            name = f"{d.isoformat()}_gain2750"
            path = str(root / unit / name)
            info = parse_folder_name(name)
            start = time.perf_counter()
            evening = datetime(d.year, d.month, d.day, 23, 30, tzinfo=timezone.utc)
            base_tile = rng.randrange(0, RIS_LAST_INDEX - 400)
            specs = []
            sequence: dict[tuple[str, str], int] = {}  # TCSpy numbers frames per object and filter, from 0
            for k in range(count):
                t = evening + timedelta(seconds=30 * k + rng.random())
                kind = "science" if k >= count * 0.15 else ("bias", "dark", "flat")[k % 3]
                grid = tile(base_tile + k // 12) if kind == "science" else None
                obj = grid.name if grid else kind.upper()
                filt = FILTERS[(k // 4) % len(FILTERS)] if kind in ("science", "flat") else ""
                seq = sequence[(obj, filt)] = sequence.get((obj, filt), -1) + 1
                fname = f"{unit}_{t:%Y%m%d_%H%M%S}_{obj}_{filt or 'm425'}_1x1_{100.0 if kind == 'science' else 0.0:.1f}s_{seq:04d}.fits"
                # Frames 0, 100, 200... of a folder (its science ones) note a gravitational-wave event in
                # OBSNOTE, as ToO follow-ups do: ~0.7 % of the rows with bench_portal's folders of 150.
                note = f"LVK S{event_name(folder_no)} follow-up" if grid and k % 100 == 0 else ""
                specs.append((fname, t, kind, grid, obj, filt, note))
            if with_files:
                os.makedirs(path, exist_ok=True)
                for fname, *_ in specs:
                    os.close(os.open(f"{path}/{fname}", os.O_CREAT | os.O_WRONLY, 0o644))
                listing = list_folder(path)
                stat = {e.name: (e.size, e.mtime_ns) for e in listing.files}
            else:
                listing = None
                stat = {fname: (122_000_000, int(t.timestamp() * 1e9)) for fname, t, *_ in specs}
            t_files += time.perf_counter() - start
            start = time.perf_counter()
            with transaction.atomic():
                folder, _ = NightFolder.objects.get_or_create(path=path, defaults=dict(
                    unit_id=unit_id, night_id=night_ids[d], name=name, gain=info.gain, binning=info.binning,
                    is_too=info.is_too, is_test=info.is_test, tags=list(info.tags), valid=info.valid,
                    problems=list(info.problems), state=NightFolder.State.INGESTED, present=True,
                    file_count=count, total_bytes=sum(s for s, _ in stat.values()),
                    newest_mtime_ns=max(m for _, m in stat.values()),
                    ingested_fingerprint=listing.fingerprint() if listing else "", ingested_at=now, last_checked_at=now,
                ))
                rows = []
                for fname, t, kind, grid, obj, filt, note in specs:
                    size, mtime = stat[fname]
                    mjd = (t - datetime(1858, 11, 17, tzinfo=timezone.utc)).total_seconds() / 86400
                    ra = grid.ra + rng.gauss(0, 0.01) if grid else rng.uniform(0, 360)
                    dec = grid.dec + rng.gauss(0, 0.01) if grid else rng.uniform(-90, 30)
                    rows.append((
                        f"{path}/{fname}", fname, unit_id, night_ids[d], folder.id, kind, "imagetyp", "", obj,
                        "RIS" if grid else "calibration", tile_ids.get(grid.name) if grid else None, filt,
                        100.0 if kind == "science" else 0.0, t, mjd, 2750, 1, -10.0, "31001", ra, dec,
                        grid.ra if grid else None, grid.dec if grid else None, 1.0 + rng.random(), 9576, 6388,
                        f"{rng.getrandbits(128):032x}", False, False, "tcspy", "tcspy", int(fname[-9:-5]), note,
                        round(rng.uniform(1, 3), 2), round(rng.uniform(19, 22), 2), 0.0, 30.0, 2.0,
                        0.01 if grid else None, False, size, mtime, "unknown", True, now, now,
                    ))
                insert_rows(connection, "survey_frame", COLUMNS, rows)
            t_rows += time.perf_counter() - start
            written += count
            folder_no += 1
            if progress and folder_no % 100 == 0:
                print(f"    catalogue: {written:,}/{n_frames:,} frames", flush=True)
    return Catalogue(root, written, units, n_nights, folder_no, t_files, t_rows)


def insert_rows(connection, table: str, columns: list[str], rows: list[tuple]) -> None:
    """COPY on PostgreSQL, executemany on SQLite (datetimes as Django stores them there)."""
    if not rows:
        return
    cols = ", ".join(columns)
    if connection.vendor == "postgresql":
        from survey.copyrows import copy_rows

        copy_rows(table, columns, rows)
        return
    adapt = connection.ops.adapt_datetimefield_value
    fixed = [tuple(adapt(v) if isinstance(v, datetime) else v for v in row) for row in rows]
    connection.connection.executemany(f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['?'] * len(columns))})", fixed)
