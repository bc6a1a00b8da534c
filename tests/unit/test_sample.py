"""The sample archive generator: real layout and names, valid FITS, honest manifest.

Name and folder checks use regexes written here from the reference
(shared/reference/7dt-raw-data.md), not the project's own parsers, so a parser bug and a
generator bug cannot hide each other.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import time
import warnings
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from astropy.io import fits

from rawdata import tiles
from rawdata.sample import (
    MANIFEST_NAME,
    UNIT_FILTERS,
    Manifest,
    corrupt_helpers,
    generate_archive,
    generate_flat_files,
)

UNIT_RE = re.compile(r"^7DT\d{2}$")
FOLDER_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:_(.+))?$")  # gwportal validate_folder_structure
TCSPY_FOLDER_RE = re.compile(r"^\d{4}-\d{2}-\d{2}_gain(?:2750|0)(?:_ToO)?$")
TCSPY_RE = re.compile(
    r"^(?P<unit>7DT\d{2})_(?P<date>\d{8})_(?P<time>\d{6})_(?P<object>.+)_(?P<filter>[^_]+)_(?P<bin>\d)x\d"
    r"_(?P<exptime>\d+\.\d)s_(?P<seq>\d{4})\.fits$"
)
NINA_V2_RE = re.compile(
    r"^(?P<unit>7DT\d{2})_(?P<imagetyp>LIGHT|DARK|BIAS|FLAT)_(?P<object>.+?)_(?P<date>\d{4}-\d{2}-\d{2})"
    r"_(?P<time>\d{2}-\d{2}-\d{2})_(?P<filter>[^_]+)_\dx\d_(?P<exptime>\d+\.\d{2})s_(?P<seq>\d{4})\.fits$"
)
NINA_V1_RE = re.compile(
    r"^(?P<imagetyp>LIGHT|DARK|BIAS|FLAT)_(?P<object>.*)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<time>\d{2}-\d{2}-\d{2})"
    r"_(?P<filter>[^_]+)_(?P<exptime>\d+\.\d{2})s_(?P<seq>\d{4})\.fits$"
)
HASH_LINE_RE = re.compile(r"^(?P<sha>[0-9a-f]{64}) (?P<name>\S+)$")


def _night_of(date_obs: str) -> date:
    return (datetime.fromisoformat(date_obs) - timedelta(hours=15)).date()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    root = tmp_path_factory.mktemp("sample")
    return root, generate_archive(root)


def _fits_on_disk(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.fits"))


# --- layout, names, manifest ------------------------------------------------------------


def test_layout_and_names(archive: tuple[Path, Manifest]) -> None:
    root, m = archive
    assert (root / MANIFEST_NAME).is_file()
    units = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    assert units == ["7DT01", "7DT02", "7DT03"] and all(UNIT_RE.match(u) for u in units)
    for rec in m.files:
        unit, folder, name = rec.path.split("/")
        assert FOLDER_RE.match(folder) and folder[:10] == rec.night
        assert _night_of(rec.date_obs).isoformat() == rec.night  # night date = UTC - 15 h
        with fits.open(root / rec.path) as hdul:
            h = hdul[0].header
        if rec.software == "tcspy":
            assert TCSPY_FOLDER_RE.match(folder), folder
            g = TCSPY_RE.match(name)
            assert g, name
            assert g["unit"] == unit == h["TELESCOP"]
            assert g["date"] + g["time"] == h["DATE-OBS"][:19].replace("-", "").replace(":", "").replace("T", "")
            assert (g["object"], g["filter"], float(g["exptime"])) == (h["OBJECT"], h["FILTER"], h["EXPTIME"])
            assert g["exptime"] == f"{rec.exptime:.1f}"
            assert folder.endswith("_ToO") == rec.is_too == (h["IS_TOO"] == "True")
            assert ("_gain0" in folder) == (h["GAIN"] == 0)
        else:
            assert folder == "2024-02-10"
            g = (NINA_V2_RE if rec.name_family == "nina_v2" else NINA_V1_RE).match(name)
            assert g, name
            # NINA's $$DATETIME$$ is the PC's local time, i.e. DATE-LOC
            assert f"{g['date']}T{g['time'].replace('-', ':')}" == h["DATE-LOC"][:19]
            assert g["filter"] == h["FILTER"] and float(g["exptime"]) == h["EXPTIME"]
            assert "N.I.N.A." in h["SWCREATE"] and "IMAGEID" not in h and "JD" not in h


def test_manifest_matches_disk(archive: tuple[Path, Manifest]) -> None:
    root, m = archive
    assert sorted(r.path for r in m.files) == _fits_on_disk(root)
    loaded = Manifest.load(root)
    assert loaded.files == m.files and loaded.scenarios == m.scenarios and loaded.folders == m.folders
    for rec in m.files:
        p = root / rec.path
        assert p.stat().st_size == rec.size
        assert hashlib.sha256(p.read_bytes()).hexdigest() == rec.sha256
    on_disk = Counter(p.relative_to(root).parts[:2] for p in root.rglob("*.fits"))
    assert {k: v for k, v in on_disk.items()} == dict(m.count_by("unit", "folder"))
    sidecars = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".head", ".hash"))
    assert sidecars == m.sidecars


def test_default_counts_and_programmes(archive: tuple[Path, Manifest]) -> None:
    _, m = archive
    assert len(m.files) == 399
    assert m.count_by("image_type") == Counter({"science": 164, "flat": 115, "bias": 60, "dark": 60})
    assert m.count_by("software") == Counter({"tcspy": 300, "nina": 99})
    assert m.count_by("excluded") == Counter({None: 382, "test": 5, "focus": 12})
    assert m.count_by("is_too") == Counter({False: 387, True: 12})
    nightly = m.count_by("unit", "night", where={"software": "tcspy", "image_type": "science", "excluded": None,
                                                  "is_too": False})
    assert set(nightly.values()) == {12}  # frames_per_night per unit and night
    for unit, (f1, f2) in m.units.items():
        assert (f1, f2) == UNIT_FILTERS[unit]
        assert {r.filter for r in m.select(unit=unit, image_type="science")} == {f1, f2}
    # every unit: >= 5 bias, darks of 100 s and flats per filter, except the planned hole
    miss = m.scenarios["missing_flats"][0]
    for unit in m.units:
        for night in ("2025-06-30", "2025-07-01", "2025-07-02"):
            assert m.count_by("image_type", where={"unit": unit, "night": night})["bias"] >= 5
            darks = m.select(unit=unit, night=night, image_type="dark")
            assert len(darks) >= 5 and {d.exptime for d in darks} == {100.0}
            for filt in m.units[unit]:
                n = len(m.select(unit=unit, night=night, image_type="flat", filter=filt))
                expected_missing = (unit, night, filt) == (miss["unit"], miss["night"], miss["filter"])
                assert n == (0 if expected_missing else 5)
    # programmes
    ims = m.scenarios["ims_tile"]
    assert {r.night for r in m.select(objtype="IMS", tile=ims)} == {"2025-06-30", "2025-07-01", "2025-07-02"}
    objects = {r.object for r in m.files}
    assert {"NGC6121", "NGC6121_shift", "LTT1020", "COSMOS", "T09614", "S250206dm", "filtercheck",
            "Defocus_test_WASP-178b"} <= objects
    ris = m.select(objtype="RIS")
    assert ris and all(tiles.tile_by_name(r.tile or "") is not None for r in ris)
    assert any(tiles.tile_by_name(r.tile or "").extension for r in ris)  # type: ignore[union-attr]
    too = m.select(is_too=True)
    assert {r.objtype for r in too} == {"ToO"} and {r.object for r in too} == {"S250206dm"}
    assert {r.folder for r in too} == {"2025-07-01_gain2750_ToO"}
    assert {(r.object, r.objtype, r.gain) for r in m.select(excluded="test")} == {
        ("filtercheck", "test", 0), ("Defocus_test_WASP-178b", "Test", 2750)}
    assert {r.name_family for r in m.select(software="nina")} == {"nina_v1", "nina_v2"}


def test_pointing_and_scenarios(archive: tuple[Path, Manifest]) -> None:
    root, m = archive
    off = [r for r in m.files if r.off_pointing]
    assert [r.path for r in off] == m.scenarios["off_pointing"] and len(off) == 1
    for r in m.select(objtype="RIS") + m.select(objtype="IMS"):
        t = tiles.tile_by_name(r.tile or "")
        assert t is not None
        d = tiles.angular_distance_deg(r.ra, r.dec, t.ra, t.dec)
        assert (1.9 < d < 2.1) if r.off_pointing else (d < 0.01), (r.path, d)
        h = fits.getheader(root / r.path)
        assert abs(h["OBJCTRA_"] - t.ra) < 1e-3 and abs(h["OBJCTDE_"] - t.dec) < 1e-4
        assert re.match(r"^\d{2}:\d{2}:\d{2}\.\d{2}$", h["OBJCTRA"]) and ":" in h["OBJCTDEC"]
        assert 15 < h["ALTITUDE"] <= 90 and h["AIRMASS"] >= 1.0
    outage = m.scenarios["weather_outage"][0]
    for r in m.select(unit=outage["unit"], night=outage["night"]):
        assert not r.weather
        h = fits.getheader(root / r.path)
        assert h["SKYFWHM"] is None and h["DATE-WEA"] is None  # TCSpy's empty cards
    assert all(r.weather for r in m.files if r.night != outage["night"])


# --- FITS validity -------------------------------------------------------------------------


def test_astropy_reads_every_file_without_warnings(archive: tuple[Path, Manifest]) -> None:
    root, m = archive
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for rec in m.files:
            with fits.open(root / rec.path) as hdul:
                hdul.verify("exception")
                h, data = hdul[0].header, hdul[0].data
                assert data.dtype.name == "uint16" and data.shape == (16, 24)
                assert h["BITPIX"] == 16 and h["BZERO"] == 32768
                assert h["DATE-OBS"] == rec.date_obs and h["IMAGETYP"] in ("BIAS", "DARK", "FLAT", "LIGHT")
                assert h.get("OBJECT") == rec.object and h.get("OBJTYPE") == rec.objtype
                assert h.get("IMAGEID") == rec.image_id
                if rec.image_type == "bias":
                    assert 450 < float(data.mean()) < 600
                if rec.software == "tcspy":
                    assert 90 <= len(h) <= 180 and " " in h["DATE-LOC"]  # TCSpy writes a space
                    assert abs(h["MJD"] - (h["JD"] - 2400000.5)) < 1e-9
                    obs = datetime.fromisoformat(h["DATE-OBS"]).replace(tzinfo=timezone.utc)
                    assert abs(h["JD"] - (2440587.5 + obs.timestamp() / 86400)) < 1e-6
                    assert (root / rec.path).with_suffix(".head").read_text() == h.tostring(sep="\n")


def _fitsverify(path: Path) -> tuple[int, list[str], list[str]]:
    out = subprocess.run(["fitsverify", str(path)], capture_output=True, text=True, check=False)
    text = out.stdout + out.stderr
    errors = re.findall(r"\*\*\* Error:\s+(.*)", text)
    warns = re.findall(r"\*\*\* Warning:\s+(.*)", text)
    return out.returncode, errors, warns


def _one_of_each(m: Manifest) -> list[str]:
    seen: dict[tuple[object, ...], str] = {}
    for r in m.files:
        seen.setdefault((r.folder[10:], r.image_type, r.name_family, r.excluded, r.weather, r.off_pointing), r.path)
    return sorted(seen.values())


needs_fitsverify = pytest.mark.skipif(shutil.which("fitsverify") is None, reason="fitsverify not installed")


@needs_fitsverify
def test_fitsverify_every_kind(archive: tuple[Path, Manifest]) -> None:
    """NINA files pass clean; TCSpy files show exactly TCSpy's two real quirks and nothing else."""
    root, m = archive
    recs = m.by_path()
    sample = _one_of_each(m)
    assert len(sample) >= 12
    for rel in sample:
        rc, errors, warns = _fitsverify(root / rel)
        if recs[rel].software == "nina":
            assert (rc, errors, warns) == (0, [], []), rel
            q = subprocess.run(["fitsverify", "-q", str(root / rel)], capture_output=True, text=True, check=False)
            assert q.returncode == 0 and q.stdout.startswith("verification OK")
        else:
            # TCSpy's DATE-LOC uses a space; a weather outage leaves DATE-WEA null (also a date error)
            assert errors and "DATE-LOC" in errors[0], (rel, errors)
            assert all("DATE-WEA" in e for e in errors[1:]) and (len(errors) > 1) == (not recs[rel].weather), errors
            assert all("has a null value" in w for w in warns), (rel, warns)


@needs_fitsverify
def test_fits_strict_archive_passes_fitsverify_clean(tmp_path: Path) -> None:
    m = generate_archive(tmp_path, units=2, nights=2, frames_per_night=6, fits_strict=True)
    for rel in _one_of_each(m):
        q = subprocess.run(["fitsverify", "-q", str(tmp_path / rel)], capture_output=True, text=True, check=False)
        assert q.returncode == 0 and q.stdout.startswith("verification OK"), q.stdout
        h = fits.getheader(tmp_path / rel)
        assert "T" in h["DATE-LOC"] and all(v is not None for v in h.values())


# --- side files ----------------------------------------------------------------------------


def test_hash_and_head_files(archive: tuple[Path, Manifest]) -> None:
    root, m = archive
    for folder in m.folders:
        path = root / folder["unit"] / folder["folder"]
        names = sorted(p.name for p in path.iterdir())
        hash_file = path / "allfiles.hash"
        assert hash_file.exists() == folder["has_hash"] == (folder["kind"] != "nina")
        if folder["kind"] == "nina":  # NINA wrote neither .head nor allfiles.hash
            assert all(n.endswith(".fits") for n in names)
            continue
        fits_names = [n for n in names if n.endswith(".fits")]
        assert sorted(n for n in names if n.endswith(".head")) == sorted(n[:-5] + ".head" for n in fits_names)
        lines = hash_file.read_text().splitlines()
        listed = {}
        for line in lines:
            g = HASH_LINE_RE.match(line)
            assert g, line
            listed[g["name"]] = g["sha"]
        assert sorted(listed) == [n for n in names if n != "allfiles.hash"]
        for name, sha in listed.items():
            assert hashlib.sha256((path / name).read_bytes()).hexdigest() == sha
        newest = max((path / n).stat().st_mtime_ns for n in listed)
        assert hash_file.stat().st_mtime_ns >= newest  # written last


def test_switches(tmp_path: Path) -> None:
    m = generate_archive(tmp_path, units=1, nights=1, frames_per_night=4, with_nina_night=False, with_too=False,
                         with_hash=False, with_head=False, with_focus_test=False)
    assert not list(tmp_path.rglob("*.head")) and not list(tmp_path.rglob("allfiles.hash"))
    assert {r.folder for r in m.files} == {"2025-06-30_gain2750"}
    # with one unit and one night the planned missing-flats hole falls on that unit and night
    assert m.count_by("image_type") == Counter({"bias": 5, "dark": 5, "flat": 5, "science": 4})
    with pytest.raises(ValueError):
        generate_archive(tmp_path / "x", units=17)
    with pytest.raises(ValueError):
        generate_archive(tmp_path / "y", frames_per_night=3)


# --- determinism ---------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    kw = dict(units=2, nights=2, frames_per_night=8)
    generate_archive(tmp_path / "a", seed=3, **kw)  # type: ignore[arg-type]
    generate_archive(tmp_path / "b", seed=3, **kw)  # type: ignore[arg-type]
    generate_archive(tmp_path / "c", seed=4, **kw)  # type: ignore[arg-type]
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b and len(a) > 100
    assert set(a) != set(c) or a != c


# --- benchmark helper and corruption helpers ----------------------------------------------------


def test_generate_flat_files_fast_and_valid(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    paths = generate_flat_files(tmp_path, 2000, units=2, cards=180, seed=5)
    elapsed = time.perf_counter() - t0
    assert len(paths) == 2000 == len(set(paths)) and elapsed < 5.0, elapsed
    assert all(TCSPY_RE.match(p.name) for p in paths)
    assert {p.parent.parent.name for p in paths} == {"7DT01", "7DT02"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for p in paths[:: 997]:
            with fits.open(p) as hdul:
                hdul.verify("exception")
                h = hdul[0].header
                assert len(h) == 180 and h["OBJECT"] in p.name and h["TELESCOP"] == p.name[:5]
                assert TCSPY_RE.match(p.name)["date"] == h["DATE-OBS"][:10].replace("-", "")  # type: ignore[index]
                assert hdul[0].data.dtype.name == "uint16"
    assert len({fits.getheader(p)["IMAGEID"] for p in paths[:50]}) == 50
    if shutil.which("fitsverify"):
        for p in paths[:3]:
            assert _fitsverify(p) == (0, [], [])


def test_corrupt_helpers(tmp_path: Path) -> None:
    src = generate_flat_files(tmp_path / "src", 1)[0]
    size = src.stat().st_size
    a = tmp_path / "a.fits"
    shutil.copy(src, a)
    corrupt_helpers.truncate(a, 5000)
    assert a.stat().st_size == 5000
    b = tmp_path / "b.fits"
    shutil.copy(src, b)
    offs = corrupt_helpers.flip_bytes(b, 10, seed=1)
    assert len(offs) == 10 and b.stat().st_size == size
    assert sum(x != y for x, y in zip(src.read_bytes(), b.read_bytes())) == 10
    empty = tmp_path / "c.fits"
    empty.touch()
    assert corrupt_helpers.flip_bytes(empty, 3, seed=1) == []
    g = tmp_path / "g.fits"
    corrupt_helpers.write_garbage(g)
    n = tmp_path / "n.fits"
    corrupt_helpers.write_no_end(n, [("OBJECT", "T00001")])
    assert n.stat().st_size % 2880 == 0 and b"END     " not in n.read_bytes()
    for bad in (g, n):
        with pytest.raises(OSError), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(bad) as hdul:
                hdul[0].header  # noqa: B018
