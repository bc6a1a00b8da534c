"""Shared helpers of the benchmarks: scratch databases, running manage.py, medians, the machine line.

Every benchmark makes its own data in a temporary directory and its own scratch databases (a SQLite
file, or a PostgreSQL database created from a migrated template and dropped at the end), so it can
run beside anything else on the machine and never touches the project's own database.
"""
from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("GWPORTAL_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def machine_line() -> str:
    """Cores and load: numbers measured on a shared machine mean little without it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"machine: {cores} cores, load average {load}; python {sys.version.split()[0]}"


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def spread(values: Iterable[float]) -> str:
    """'median (min-max)' of a list of rates."""
    values = sorted(values)
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    return f"{statistics.median(values):,.0f} ({values[0]:,.0f}-{values[-1]:,.0f})"


@dataclass
class Scratch:
    """Fresh migrated databases of one vendor: `new()` gives a URL; `close()` drops what was made."""

    vendor: str  # 'sqlite' | 'postgresql'
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    template: str = ""

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "GWPORTAL_VAR_DIR": str(self.workdir / "var"),
                    "GWPORTAL_LOG_DIR": str(self.workdir / "logs")}
        self.env.pop("GWPORTAL_CRASH_AT", None)
        if self.vendor == "postgresql":
            self.template = f"gwbench_tmpl_{uuid.uuid4().hex[:8]}"
            self._admin(f'CREATE DATABASE "{self.template}"')
            self.created.append(self.template)
            url = self._url(self.template)
        else:
            self.template = str(self.workdir / "template.sqlite3")
            url = f"sqlite:///{self.template}"
        self.manage(url, "migrate", "-v0", "--skip-checks")

    @staticmethod
    def _url(name: str) -> str:
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    @staticmethod
    def _admin(sql: str) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql)

    def new(self) -> str:
        if self.vendor == "postgresql":
            name = f"gwbench_{uuid.uuid4().hex[:8]}"
            self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            self.created.append(name)
            return self._url(name)
        path = self.workdir / f"db_{uuid.uuid4().hex[:8]}.sqlite3"
        shutil.copy(self.template, path)
        return f"sqlite:///{path}"

    def drop(self, url: str) -> None:
        if self.vendor == "postgresql":
            name = url.rsplit("/", 1)[1]
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if name in self.created:
                self.created.remove(name)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)

    def manage(self, url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**self.env, "DATABASE_URL": url},
                              capture_output=True, text=True, check=check)

    def close(self) -> None:
        if self.vendor == "postgresql":
            for name in reversed(self.created):
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.created.clear()


@dataclass
class Timed:
    wall: float
    cpu: float  # user + sys of the child and everything it waited for (its reader processes)
    proc: subprocess.CompletedProcess


def timed_manage(scratch: Scratch, url: str, *args: str) -> Timed:
    """Run one manage.py command as a user would (fresh interpreter) and time it end to end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = scratch.manage(url, *args, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(wall, cpu, proc)


def engine_rate(output: str) -> float:
    """files/s the ingest reports for itself (plan to statistics, without interpreter start-up)."""
    m = re.search(r"([\d.]+) s, ([\d,]+) headers/s", output)
    return float(m.group(2).replace(",", "")) if m else float("nan")


def pipeline_rate(output: str) -> float:
    """files/s of the ingest's reading-and-writing phase alone (headers read / its wall time), as printed."""
    m = re.search(r"reading and writing ([\d,]+) headers/s", output)
    return float(m.group(1).replace(",", "")) if m else float("nan")


def django_setup(url: str, workdir: Path) -> None:
    """Configure Django in this process against `url` (for in-process measurements)."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("GWPORTAL_VAR_DIR", str(workdir / "var"))
    os.environ.setdefault("GWPORTAL_LOG_DIR", str(workdir / "logs"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gwportal.settings")
    import django

    django.setup()


def vendors(arg: str) -> list[str]:
    out = []
    for name in arg.split(","):
        name = name.strip().lower()
        if name in ("pg", "postgres", "postgresql"):
            out.append("postgresql")
        elif name == "sqlite":
            out.append("sqlite")
        elif name:
            raise SystemExit(f"unknown database {name!r} (sqlite, postgresql)")
    return out


def release_workdir(work: Path, keep: bool) -> None:
    """End of every benchmark: keep the scratch folder when asked (and say where), else remove it."""
    if keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
