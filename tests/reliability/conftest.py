"""Fresh, migrated databases for child processes: SQLite files or PostgreSQL databases from a template."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("DATABASE_URL", "")
USE_PG = PG_URL.startswith("postgres")


def _pg_admin():
    import psycopg

    base = PG_URL.rsplit("/", 1)[0]
    return psycopg.connect(base + "/postgres", autocommit=True)


class ChildDatabases:
    """Hands out a fresh migrated database URL per call, copied from one migrated template."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.created: list[str] = []
        self.env = {**os.environ, "GWPORTAL_VAR_DIR": str(workdir / "var"), "GWPORTAL_LOG_DIR": str(workdir / "logs")}
        self.env.pop("GWPORTAL_CRASH_AT", None)
        if USE_PG:
            self.template = f"gwp_tmpl_{uuid.uuid4().hex[:8]}"
            with _pg_admin() as conn:
                conn.execute(f'CREATE DATABASE "{self.template}"')
            self.created.append(self.template)
            url = PG_URL.rsplit("/", 1)[0] + "/" + self.template
        else:
            self.template = str(workdir / "template.sqlite3")
            url = f"sqlite:///{self.template}"
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0", "--skip-checks"], cwd=ROOT,
                       env={**self.env, "DATABASE_URL": url}, check=True)

    def new_url(self) -> str:
        if USE_PG:
            name = f"gwp_case_{uuid.uuid4().hex[:8]}"
            with _pg_admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            self.created.append(name)
            return PG_URL.rsplit("/", 1)[0] + "/" + name
        path = self.workdir / f"case_{uuid.uuid4().hex[:8]}.sqlite3"
        shutil.copy(self.template, path)
        return f"sqlite:///{path}"

    def run(self, url: str, *args: str, crash_at: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**self.env, "DATABASE_URL": url}
        if crash_at:
            env["GWPORTAL_CRASH_AT"] = crash_at
        return subprocess.run([sys.executable, "tests/reliability/child.py", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)

    @staticmethod
    def summary(proc: subprocess.CompletedProcess) -> dict:
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def close(self) -> None:
        if USE_PG:
            with _pg_admin() as conn:
                for name in reversed(self.created):
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def child_dbs(tmp_path_factory):
    dbs = ChildDatabases(tmp_path_factory.mktemp("childdb"))
    yield dbs
    dbs.close()
