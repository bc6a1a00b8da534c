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


class ExecutorError(RuntimeError):
    """Header reading cannot go on (no broker, no live worker, a chunk failed remotely): the run stops
    with a clear message and exit code 2; batches already written stay valid and a rerun completes."""


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
        self._closed = False

    def map(self, tasks: Iterable[ChunkTask]) -> Iterator[ChunkResult]:
        # In submission order (the writer groups by folder); one task = one chunk of files already.
        return self._pool.imap(read_chunk, tasks, chunksize=1)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.terminate()
        self._pool.join()


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def warm_pool(kind: str, workers: int, *, parallel: bool | None) -> LocalPoolExecutor | None:
    """Start the reader processes now when a pool is certain (`--parallel`), so that their start-up
    (a fresh interpreter importing the reader, ~0.3 s each) overlaps the planning scan."""
    if kind != "local" or parallel is not True:
        return None
    return LocalPoolExecutor(workers or default_workers())


def make_executor(
    kind: str, workers: int, *, n_files: int, parallel: bool | None, threshold: int,
    warm: LocalPoolExecutor | None = None,
) -> Executor:
    """Pick the executor: explicit `--parallel`, or automatic above `threshold` files.

    `warm` is a pool from `warm_pool`; it is used if a pool is wanted, else the caller closes it.
    """
    if kind == "celery":
        from survey.ingest.celery_executor import CeleryExecutor

        return CeleryExecutor(workers, n_files=n_files)
    use_pool = parallel if parallel is not None else n_files >= threshold
    if not use_pool or n_files == 0:
        return InlineExecutor()
    if warm is not None:
        return warm
    return LocalPoolExecutor(workers or default_workers())
