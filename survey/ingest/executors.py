"""Where header reading runs: inline, a local process pool, or Celery workers on other hosts.

Every executor maps `rawdata.extract.read_chunk` over tasks and yields results in submission order,
so the single writer can group them by folder. Workers never touch the database.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from typing import Protocol

from rawdata.extract import ChunkResult, ChunkTask, read_chunk

log = logging.getLogger(__name__)


class Executor(Protocol):
    name: str
    workers: int

    def map(self, tasks: Iterable[ChunkTask]) -> Iterator[ChunkResult]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Read in this process: small jobs, tests, debugging."""

    name = "inline"
    workers = 1

    def map(self, tasks: Iterable[ChunkTask]) -> Iterator[ChunkResult]:
        return map(read_chunk, tasks)

    def close(self) -> None:
        return None


class LocalPoolExecutor:
    """A pool of reader processes on this machine (spawned: no inherited database connections)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool = multiprocessing.get_context("spawn").Pool(self.workers)

    def map(self, tasks: Iterable[ChunkTask]) -> Iterator[ChunkResult]:
        return self._pool.imap(read_chunk, tasks)

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def make_executor(kind: str, workers: int, *, n_files: int, parallel: bool | None, threshold: int) -> Executor:
    """Pick the executor: explicit `--parallel`, or automatic above `threshold` files."""
    if kind == "celery":
        from survey.ingest.celery_executor import CeleryExecutor

        return CeleryExecutor(workers)
    use_pool = parallel if parallel is not None else n_files >= threshold
    if not use_pool or n_files == 0:
        return InlineExecutor()
    return LocalPoolExecutor(workers or default_workers())
