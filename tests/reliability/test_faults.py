"""Faults that must end in a clear error or a consistent catalogue: a database that is unreachable or
goes away mid-run, files that change between the scan and the read, a full log disk, unreadable files."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rawdata.sample import corrupt_helpers
from tests.reliability.conftest import ROOT, USE_PG, _pg_admin

pytestmark = pytest.mark.slow


def _manage(env: dict, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, **kw)


def _start_paused(child_dbs, url: str, root: Path, point: str, tmp_path: Path, *args: str):
    flag = tmp_path / "pause"
    flag.write_text("")
    env = {**child_dbs.env, "DATABASE_URL": url, "GWPORTAL_PAUSE_AT": point, "GWPORTAL_PAUSE_FILE": str(flag)}
    proc = subprocess.Popen([sys.executable, "tests/reliability/child.py", str(root), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not Path(str(flag) + ".reached").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "child never reached the pause point"
        time.sleep(0.05)
    return proc, flag


def test_database_unreachable_at_start_is_a_clear_error(child_dbs, sample_template):
    url = "postgres://postgres@127.0.0.1:1/nowhere" if USE_PG else "sqlite:////nonexistent-dir/gwportal.sqlite3"
    proc = _manage({**child_dbs.env, "DATABASE_URL": url}, "ingest_all_nights", "--data-root", str(sample_template), "--auto-confirm")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Database error" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not USE_PG, reason="cuts a PostgreSQL server connection")
def test_database_connection_lost_mid_run_then_rerun_completes(child_dbs, sample_template, tmp_path):
    reference = child_dbs.summary(child_dbs.run(child_dbs.new_url(), str(sample_template), "--chunk-size", "25"))
    url = child_dbs.new_url()
    proc, flag = _start_paused(child_dbs, url, sample_template, "batch_begin:4", tmp_path, "--chunk-size", "25")
    with _pg_admin() as conn:
        dbname = url.rsplit("/", 1)[1]
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [dbname])
    flag.unlink()
    out, err = proc.communicate(timeout=120)
    lost = child_dbs.summary(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    assert lost["code"] == 2, "a lost database must end as a fatal error, never look like success"
    assert "Database error" in err
    after = child_dbs.summary(child_dbs.run(url, str(sample_template), "--chunk-size", "25"))
    assert after["code"] == 0 and after["digest"] == reference["digest"]
    assert after["runs"][-1] == "success" and after["runs"][0] in {"error", "interrupted"}


def test_files_change_between_scan_and_read(child_dbs, sample_root, tmp_path):
    folder = sample_root / "7DT02" / "2025-07-01_gain2750"
    names = sorted(folder.glob("*.fits"))
    vanish, shrink, grow = names[2], names[4], names[6]
    url = child_dbs.new_url()
    proc, flag = _start_paused(child_dbs, url, sample_root, "planned", tmp_path)
    vanish.unlink()
    corrupt_helpers.truncate(shrink, 2880 * 2)
    with open(grow, "ab") as fh:
        fh.write(b"\0" * 2880)
    flag.unlink()
    out, err = proc.communicate(timeout=120)
    summary = child_dbs.summary(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    assert summary["code"] == 1  # the shrunk file is a problem (settle 0), the rest proceeds
    again = child_dbs.summary(child_dbs.run(url, str(sample_root)))
    assert again["code"] == 1  # the truncated file stays a problem until fixed; nothing else left
    fresh = child_dbs.summary(child_dbs.run(child_dbs.new_url(), str(sample_root)))
    assert again["digest"] == fresh["digest"], "after the rerun the catalogue equals a clean run over the new state"


def test_full_log_disk_does_not_stop_the_ingest(child_dbs, sample_template, tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tiny tmpfs here")
    try:
        (mount / "filler").write_bytes(b"x" * 4096)
        env = {**child_dbs.env, "GWPORTAL_LOG_DIR": str(mount)}
        url = child_dbs.new_url()
        proc = subprocess.run([sys.executable, "tests/reliability/child.py", str(sample_template), "--debug"], cwd=ROOT,
                              env={**env, "DATABASE_URL": url}, capture_output=True, text=True, timeout=300)
        summary = child_dbs.summary(proc)
        assert summary["code"] == 0 and summary["sizes"]["frames"] > 300
    finally:
        subprocess.run(["umount", str(mount)])


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run the ingest as another user")
def test_unreadable_files_are_problems_not_crashes(child_dbs, sample_template):
    import tempfile

    # pytest's tmp dirs are private to root: work in a world-traversable folder instead.
    work = Path(tempfile.mkdtemp(prefix="gwp-nobody-"))
    try:
        os.chmod(work, 0o777)
        root = work / "obsdata"
        shutil.copytree(sample_template, root)
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        folder = root / "7DT01" / "2025-07-02_gain2750"
        locked = sorted(folder.glob("*.fits"))[:3]
        for path in locked:
            path.chmod(0)
        url = child_dbs.new_url()
        if not USE_PG:
            db = work / "db.sqlite3"
            shutil.copy(url.removeprefix("sqlite:///"), db)
            os.chmod(db, 0o666)
            url = f"sqlite:///{db}"
        logs = work / "logs"
        logs.mkdir(mode=0o777)
        os.chmod(logs, 0o777)
        env = {**child_dbs.env, "DATABASE_URL": url, "GWPORTAL_LOG_DIR": str(logs), "GWPORTAL_TEST_RUN_AS": "nobody"}
        proc = subprocess.run([sys.executable, "tests/reliability/child.py", str(root), "--no-parallel"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300)
        summary = child_dbs.summary(proc)
        assert summary["code"] == 1
        assert summary["sizes"]["problems"] == len(locked)
        assert summary["sizes"]["frames"] == len(list(root.rglob("*.fits"))) - len(locked)
    finally:
        shutil.rmtree(work, ignore_errors=True)
