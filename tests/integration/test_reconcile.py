"""check_missing_files / reprocess_nights / validate_folders on generated 7DT archives (SQLite and PostgreSQL).

Every expectation is computed from what the test did to the archive (deleted, added, touched, corrupted),
never copied from a run. The script tests start real subprocesses (`CHECK_missing_files.py`,
`reprocess_missing_folders.sh`) on this test's database: PostgreSQL and file SQLite by DATABASE_URL; the
default in-memory SQLite test database is copied to a file with SQLite's backup API and copied back after.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection

from rawdata.reconcile import CHANGED, EXCLUDED, FAILED, GAP, KINDS, MISMATCH, NOT_INGESTED, VANISHED
from rawdata.sample import corrupt_helpers
from survey.models import FileProblem, Frame, MissingReport
from survey.reconcile import CheckOptions, analyse
from tests.integration.conftest import run_command
from tests.integration.shared_db import SharedDatabase as BaseSharedDatabase

BASE_DIR = Path(django_settings.BASE_DIR)
OLD = 1_600_000_000  # an mtime in 2020: a short file this old is broken, not still arriving


@pytest.fixture
def logs(settings, tmp_path) -> Path:
    path = tmp_path / "logs"
    settings.GWPORTAL = {**settings.GWPORTAL, "LOG_DIR": str(path)}
    return path


def check(root: Path, *args: str, tmp: Path | None = None):
    """Run check_missing_files in-process with JSON output; returns (exit code, parsed output, Run)."""
    out = (tmp or root.parent) / "check.json"
    run = run_command("check_missing_files", "--data-root", str(root), "--format", "json", "--output", str(out), *args)
    assert run.code in (0, 1), run.err
    return run.code, json.loads(out.read_text()), run


def findings(doc: dict) -> dict[str, set[str]]:
    """kind -> {'<unit>/<folder>/<name>'} from a full-mode JSON document."""
    out: dict[str, set[str]] = {}
    for folder in doc["folders"]:
        for f in folder["findings"]:
            out.setdefault(f["kind"], set()).add(f"{folder['unit']}/{folder['folder']}/{f['name']}")
    return out


def runs_of(manifest) -> list[list]:
    """TCSpy frame runs (unit, folder, OBJECT, FILTER) of 3+ frames, not rule-excluded, in FRAMENUM order."""
    groups: dict[tuple, list] = {}
    for f in manifest.files:
        if f.software == "tcspy" and not f.excluded:
            groups.setdefault((f.unit, f.folder, f.object, f.filter), []).append(f)
    return [sorted(v, key=lambda f: f.path) for _, v in sorted(groups.items()) if len(v) >= 3]


def flip_data_byte(path: Path, keep_mtime: bool) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) - 100] ^= 0xFF  # the last data block: the header stays intact
    path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def make_old(path: Path) -> None:
    os.utime(path, (OLD, OLD))


class Damage:
    """What the test did to a sample archive, as relative paths; the expected report follows from it."""

    def __init__(self, root: Path, manifest, tmp_path: Path) -> None:
        self.root = root
        runs = runs_of(manifest)
        assert len(runs) >= 9, "the sample archive should have enough frame runs"
        self.gap = runs[0][1].path  # deleted before ingest: a frame that never arrived
        self.late = runs[1][-1].path  # held back during ingest, arrives afterwards
        self.garbage = runs[2][0].path  # not FITS before ingest
        self.truncated = runs[3][1].path  # cut short before ingest
        self.bad_hash = runs[4][0].path  # data byte flipped before ingest
        self.vanished = runs[5][1].path  # deleted after ingest
        self.touched = runs[6][0].path  # mtime changed after ingest
        self.corrupt_after = runs[7][2].path  # catalogued, then overwritten with garbage
        self.flip_after = runs[8][0].path  # data byte flipped after ingest, size and mtime kept
        nina = [f for f in manifest.files if f.software == "nina" and not f.excluded]
        self.appended = nina[0].path  # grown after ingest (NINA folders have no allfiles.hash)
        self.excluded = {f.path for f in manifest.files if f.excluded}
        self.held = tmp_path / "held"
        self.held.mkdir()

    def p(self, rel: str) -> Path:
        return self.root / rel

    def folder(self, rel: str) -> str:
        return str(self.p(rel).parent)

    def before_ingest(self) -> None:
        os.remove(self.p(self.gap))
        shutil.move(self.p(self.late), self.held / "late.fits")
        corrupt_helpers.write_garbage(self.p(self.garbage))
        make_old(self.p(self.garbage))
        size = self.p(self.truncated).stat().st_size
        corrupt_helpers.truncate(self.p(self.truncated), size - 1000)
        make_old(self.p(self.truncated))
        flip_data_byte(self.p(self.bad_hash), keep_mtime=False)

    def after_ingest(self) -> None:
        os.remove(self.p(self.vanished))
        st = self.p(self.touched).stat()
        os.utime(self.p(self.touched), ns=(st.st_atime_ns, st.st_mtime_ns + 7_000_000_000))
        with open(self.p(self.appended), "ab") as fh:
            fh.write(b"\0" * 2880)
        corrupt_helpers.write_garbage(self.p(self.corrupt_after))
        make_old(self.p(self.corrupt_after))
        shutil.move(self.held / "late.fits", self.p(self.late))
        flip_data_byte(self.p(self.flip_after), keep_mtime=True)


def gap_pattern(rel: str) -> str:
    """The report's name for a single missing frame number: `<unit>_*_<object>_<filter>_<bin>_*_<seq>.fits`."""
    folder, name = rel.rsplit("/", 1)
    unit, _date, _time, *obj, filt, binning, _exptime, seq = name[: -len(".fits")].split("_")
    return f"{folder}/{unit}_*_{'_'.join(obj)}_{filt}_{binning}_*_{seq}.fits"


@pytest.mark.django_db
def test_every_class_found_then_reprocessing_fixes_what_it_can(sample_root, manifest, ingest, logs, tmp_path):
    dmg = Damage(sample_root, manifest, tmp_path)
    dmg.before_ingest()
    first = ingest(sample_root)
    assert first.code == 1, first.out  # two unreadable files and one checksum mismatch are failures
    dmg.after_ingest()

    code, doc, run = check(sample_root, tmp=tmp_path)
    assert code == 1
    got = findings(doc)
    assert got[NOT_INGESTED] == {dmg.late}
    assert got[EXCLUDED] == dmg.excluded
    assert got[FAILED] == {dmg.garbage, dmg.truncated}
    assert got[VANISHED] == {dmg.vanished}
    assert got[CHANGED] == {dmg.touched, dmg.appended, dmg.corrupt_after}
    assert got[MISMATCH] == {dmg.bad_hash}
    assert got[GAP] == {gap_pattern(dmg.gap)}
    counts = doc["summary"]["counts"]
    assert counts == {NOT_INGESTED: 1, EXCLUDED: len(dmg.excluded), FAILED: 2, VANISHED: 1, CHANGED: 3, MISMATCH: 1, GAP: 1}
    assert doc["summary"]["failed_by_reason"] == {"not_fits": 1, "truncated": 1}
    assert doc["summary"]["issues"] == 1 + 2 + 1 + 3 + 1 + 1
    flagged = {dmg.folder(r) for r in (dmg.late, dmg.vanished, dmg.touched, dmg.appended, dmg.corrupt_after)}
    assert set(doc["flagged_folders"]) == flagged

    # Per-date statistics add up to the totals; the saved report is what reprocessing will use.
    by_date = doc["summary"]["by_date"]
    for kind in KINDS:
        assert sum(row.get(kind, 0) for row in by_date.values()) == counts[kind]
    assert sum(row["on_disk"] for row in by_date.values()) == doc["summary"]["files_on_disk"]
    report = MissingReport.objects.latest("created_at", "id")
    assert set(report.flagged_folders) == flagged and not report.clean
    assert report.summary["counts"] == counts
    assert Path(report.report_file).parent == logs and Path(report.report_file).name.startswith("missing_files_analysis_")
    text = Path(report.report_file).read_text()
    for rel in (dmg.late, dmg.garbage, dmg.vanished, dmg.touched, dmg.bad_hash):
        assert rel.rsplit("/", 1)[1] in text

    # Re-hashing now also finds the file whose bytes changed under an unchanged size and mtime.
    code, doc_v, _ = check(sample_root, "--verify-checksums", tmp=tmp_path)
    assert code == 1
    assert findings(doc_v)[MISMATCH] == {dmg.bad_hash, dmg.flip_after}

    # The quick mode agrees with the full mode on every folder's counts.
    code, quick, _ = check(sample_root, "--quick-folders", tmp=tmp_path)
    assert code == 1
    full_rows = {f["path"]: f for f in doc["folders"]}
    assert len(quick["folders"]) == len(full_rows) == len(doc["folders"])
    for q in quick["folders"]:
        f = full_rows[q["path"]]
        assert [q[k] for k in ("on_disk", "catalogued", "excluded_rows", "failed_rows")] == \
               [f[k] for k in ("on_disk", "catalogued", "excluded_rows", "failed_rows")], q["path"]
    assert set(quick["flagged_folders"]) == {p for p, f in full_rows.items() if f["on_disk"] != f["known"]}
    assert set(quick["flagged_folders"]) == {dmg.folder(dmg.late), dmg.folder(dmg.vanished)}
    assert quick["summary"]["counts"] == {"unaccounted_on_disk": 1, "missing_from_disk": 1, "recorded_gone": 0,
                                          "failed": 2, "checksum_mismatch": 1}

    # Reprocess: the latest analysis is the quick one, so take the full report explicitly.
    full_report = MissingReport.objects.filter(details__mode="full", summary__verify_checksums=False).latest("created_at", "id")
    dry = run_command("reprocess_nights", "--data-root", str(sample_root), "--report", str(full_report.pk), "--dry-run")
    assert dry.code == 0 and all(p in dry.out for p in flagged)
    assert Frame.objects.filter(filename=dmg.late.rsplit("/", 1)[1]).count() == 0  # a dry run changes nothing
    rep = run_command("reprocess_nights", "--data-root", str(sample_root), "--report", str(full_report.pk),
                      "--settle-seconds", "0")
    assert rep.code == 1, rep.out  # corrupt, vanished and never-arrived files cannot be fixed by ingesting
    assert "FAILED" in rep.out

    late = Frame.objects.get(path=str(dmg.p(dmg.late)))
    assert late.present and late.file_size == dmg.p(dmg.late).stat().st_size
    assert Frame.objects.get(path=str(dmg.p(dmg.touched))).file_mtime_ns == dmg.p(dmg.touched).stat().st_mtime_ns
    appended = Frame.objects.get(path=str(dmg.p(dmg.appended)))
    assert appended.file_size == dmg.p(dmg.appended).stat().st_size
    assert not Frame.objects.get(path=str(dmg.p(dmg.vanished))).present
    assert FileProblem.objects.get(path=str(dmg.p(dmg.corrupt_after)), resolved=False).reason == "not_fits"

    code, after, _ = check(sample_root, tmp=tmp_path)
    assert code == 1
    got = findings(after)
    assert got.get(NOT_INGESTED, set()) == set() and got.get(CHANGED, set()) == set()
    assert got[FAILED] == {dmg.garbage, dmg.truncated, dmg.corrupt_after}
    assert got[VANISHED] == {dmg.vanished}
    assert got[MISMATCH] == {dmg.bad_hash}
    assert got[GAP] == {gap_pattern(dmg.gap)}
    assert after["flagged_folders"] == []

    # Nothing left a re-ingest can fix: say so, and do not claim success.
    again = run_command("reprocess_nights", "--data-root", str(sample_root))
    assert again.code == 1 and "nothing a re-ingest can fix" in again.out


@pytest.mark.django_db
def test_clean_archive_exits_zero_and_reprocess_has_nothing_to_do(sample_root, manifest, ingest, logs, tmp_path):
    assert ingest(sample_root).code == 0
    code, doc, _ = check(sample_root, tmp=tmp_path)
    assert code == 0 and doc["summary"]["clean"]
    assert doc["summary"]["files_on_disk"] == len(manifest.files)
    assert doc["summary"]["counts"][EXCLUDED] == sum(1 for f in manifest.files if f.excluded)
    assert doc["summary"]["ok"] == sum(1 for f in manifest.files if not f.excluded)
    assert all(v == 0 for k, v in doc["summary"]["counts"].items() if k != EXCLUDED)
    assert MissingReport.objects.latest("created_at", "id").clean
    quick = run_command("check_missing_files", "--data-root", str(sample_root), "--quick-folders")
    assert quick.code == 0 and "CLEAN" in quick.out
    rep = run_command("reprocess_nights", "--data-root", str(sample_root))
    assert rep.code == 0 and "nothing to reprocess" in rep.out


@pytest.mark.django_db
def test_selection_formats_and_fatal_errors(sample_root, manifest, ingest, logs, tmp_path):
    assert ingest(sample_root).code == 0
    run = run_command("reprocess_nights", "--data-root", str(sample_root))
    assert run.code == 2 and "run `python manage.py check_missing_files` first" in run.err  # no analysis yet
    victim = next(f for f in manifest.files if f.unit == "7DT02" and f.night == "2025-07-01" and not f.excluded)
    os.remove(sample_root / victim.path)

    # --dates/--unit select folders; other nights and units are not looked at.
    code, doc, _ = check(sample_root, "--dates", "2025-07-01", "--unit", "7DT02", tmp=tmp_path)
    assert code == 1
    assert {(f["unit"], f["date"]) for f in doc["folders"]} == {("7DT02", "2025-07-01")}
    assert findings(doc)[VANISHED] == {victim.path}
    code, doc, _ = check(sample_root, "--start-date", "2025-07-02", tmp=tmp_path)
    assert code == 0 and {f["date"] for f in doc["folders"]} == {"2025-07-02"}

    # CSV: one row per finding; text: the original's summary and folder listings still work.
    run = run_command("check_missing_files", "--data-root", str(sample_root), "--format", "csv")
    assert run.code == 1
    rows = list(csv.DictReader(io.StringIO(run.out)))
    assert Counter(r["kind"] for r in rows)[VANISHED] == 1
    assert next(r for r in rows if r["kind"] == VANISHED)["name"] == victim.path.rsplit("/", 1)[1]
    run = run_command("check_missing_files", "--data-root", str(sample_root), "--summary-only")
    assert run.code == 1 and "Per date:" in run.out and "Differences by folder" not in run.out
    run = run_command("check_missing_files", "--data-root", str(sample_root), "--list-missing-folders")
    assert run.code == 1 and run.out.split() == [str(sample_root / victim.unit / victim.folder)]
    run = run_command("check_missing_files", "--data-root", str(sample_root), "--by-folders")
    assert run.code == 1 and run.out.count("\n  7DT0") >= len({(f.unit, f.folder) for f in manifest.files})

    # Fatal: exit 2 with a clear message.
    run = run_command("check_missing_files", "--data-root", str(tmp_path / "nowhere"))
    assert run.code == 2 and "data root not found" in run.err
    run = run_command("check_missing_files", "--data-root", str(sample_root), "--dates", "2025-07-01", "--start-date", "2025-07-01")
    assert run.code == 2
    n = MissingReport.objects.count()
    run = run_command("reprocess_nights", "--data-root", str(sample_root), "--dates", "2030-01-01")
    assert run.code == 1 and "no night folder on disk for 2030-01-01" in run.out
    assert MissingReport.objects.count() == n


@pytest.mark.django_db
def test_queries_do_not_grow_with_files(sample_root, manifest, ingest, logs, django_assert_max_num_queries):
    """One query per batch of folders, never one per file (the SPEC's 1 M files in 10 s depends on it)."""
    assert ingest(sample_root).code == 0
    for rec in manifest.files[:40]:
        os.utime(sample_root / rec.path, (OLD, OLD))
    with django_assert_max_num_queries(4):  # folders, frames, problems (+1 spare)
        full = analyse(CheckOptions(data_root=str(sample_root)))
    assert full.totals()[CHANGED] == 40
    with django_assert_max_num_queries(4):
        analyse(CheckOptions(data_root=str(sample_root), quick=True))


@pytest.mark.django_db
def test_a_folder_gone_from_disk_shows_all_its_frames_vanished(sample_root, manifest, ingest, logs, tmp_path):
    assert ingest(sample_root).code == 0
    gone = next(f for f in manifest.folders if f["kind"] == "nightly")
    shutil.rmtree(sample_root / gone["unit"] / gone["folder"])
    code, doc, _ = check(sample_root, tmp=tmp_path)
    assert code == 1
    row = next(f for f in doc["folders"] if f["folder"] == gone["folder"] and f["unit"] == gone["unit"])
    assert not row["exists"] and row["counts"] == {VANISHED: gone["n_fits"]}
    assert doc["flagged_folders"] == []  # an ingest cannot visit a folder that no longer exists


# ------------------------------------------------------------------------------------------ validate_folders


@pytest.mark.django_db
def test_validate_folders(sample_root, logs, tmp_path):
    run = run_command("validate_folders", "--data-root", str(sample_root))
    assert run.code == 0, run.out  # several folders per date are a notice, not an error
    assert "one of 2 folders for 2025-06-30" in run.out
    log_text = (logs / "validate_folders.log").read_text()
    assert "7DT01/2025-06-30_gain2750" in log_text  # the log has every folder

    (sample_root / "7DT-04" / "2025-06-30_gain2750").mkdir(parents=True)
    (sample_root / "7DT01" / "2025-07-01_gian2750").mkdir()
    (sample_root / "7DT01" / "2025-00-13").mkdir()
    run = run_command("validate_folders", "--data-root", str(sample_root), "--invalid-only", "--today", "2025-07-05")
    assert run.code == 1
    lines = [line.strip() for line in run.out.splitlines() if line.startswith("  invalid")]
    assert len(lines) == 2
    assert lines[0] == "invalid  7DT-04: non-standard unit folder name: use 7DT04"
    assert lines[1].startswith("invalid  7DT01/2025-07-01_gian2750: unknown suffix token: gian2750; one of 3 folders")
    assert "2025-00-13" not in run.out  # month 00 is test data: a notice
    detailed = run_command("validate_folders", "--data-root", str(sample_root), "--detailed", "--today", "2025-07-05")
    assert "ok       7DT02/2025-07-02_gain2750 [night]" in detailed.out
    assert "notice   7DT01/2025-00-13 [test]" in detailed.out
    assert run_command("validate_folders", "--data-root", str(tmp_path / "nowhere")).code == 2


# ------------------------------------------------------------------------------------------ scripts


class SharedDatabase(BaseSharedDatabase):
    """Gives a child process this test's database; see the module docstring."""

    def run(self, logs: Path, *cmd: str, url: str | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "GWPORTAL_TEST_DB_NAME"}
        env.update(DATABASE_URL=url or self.url, GWPORTAL_LOG_DIR=str(logs), PYTHON=sys.executable)
        return subprocess.run(cmd, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.django_db(transaction=True)
def test_root_scripts_run_as_processes_with_truthful_exit_codes(sample_root, manifest, ingest, logs, tmp_path):
    late = runs_of(manifest)[0][-1]
    held = tmp_path / "late.fits"
    shutil.move(sample_root / late.path, held)
    assert ingest(sample_root).code == 0
    shutil.move(held, sample_root / late.path)
    folder = str(sample_root / late.unit / late.folder)

    db = SharedDatabase(tmp_path)
    check_script = [sys.executable, "CHECK_missing_files.py", "--data-root", str(sample_root)]
    reprocess_script = ["bash", "reprocess_missing_folders.sh", "--data-root", str(sample_root), "--settle-seconds", "0"]

    proc = db.run(logs, *check_script, "--list-missing-folders")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.split() == [folder]
    proc = db.run(logs, *reprocess_script)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the late file is ingested: nothing remains
    assert "reprocess_nights: OK" in proc.stdout
    proc = db.run(logs, *check_script, "--summary-only")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    middle = runs_of(manifest)[1][1]
    os.remove(sample_root / middle.path)  # gone for good: reprocessing records it but cannot fix it
    proc = db.run(logs, *check_script)
    assert proc.returncode == 1
    proc = db.run(logs, *reprocess_script)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED (exit 1)" in proc.stderr

    assert db.run(logs, *check_script[:2], "--data-root", str(tmp_path / "nowhere")).returncode == 2
    assert db.run(logs, *check_script, "--no-such-option").returncode == 2
    unreachable = "postgres://nobody@127.0.0.1:9/no_database"
    proc = db.run(logs, *check_script, url=unreachable)
    assert proc.returncode == 2 and "database error" in proc.stderr
    proc = db.run(logs, *reprocess_script, url=unreachable)
    assert proc.returncode == 2 and "FAILED (exit 2)" in proc.stderr

    db.sync_back()
    assert Frame.objects.get(path=str(sample_root / late.path)).present
    assert not Frame.objects.get(path=str(sample_root / middle.path)).present
    reports = list(MissingReport.objects.order_by("id"))
    assert [r.clean for r in reports] == [False, True, True, False, False]
    assert reports[0].flagged_folders == [folder]
    assert reports[2].arguments.get("summary_only") is True
    assert all(Path(r.report_file).is_file() for r in reports)


@pytest.mark.django_db
def test_listing_pool_gives_the_same_answer_as_one_process(sample_root, manifest, ingest, logs):
    runs = runs_of(manifest)
    os.remove(sample_root / runs[0][1].path)  # never arrives: a gap
    assert ingest(sample_root).code == 0
    os.remove(sample_root / runs[1][1].path)  # vanishes after ingest: not a gap (the pool alone would see one)
    os.utime(sample_root / runs[2][0].path, (OLD, OLD))
    results = []
    for workers in (1, 2):
        a = analyse(CheckOptions(data_root=str(sample_root), workers=workers))
        results.append({d.path: sorted((f.kind, f.name, f.reason, f.count) for f in d.findings) for d in a.folders})
    assert results[0] == results[1]
    totals = Counter(kind for folder in results[0].values() for kind, *_ in folder)
    assert (totals[GAP], totals[VANISHED], totals[CHANGED]) == (1, 1, 1)
