"""Where header reading runs: inline, a local process pool, or Celery workers on other hosts.

Every executor maps `rawdata.extract.read_chunk` over tasks and yields results in submission order,
so the single writer can group them by folder. Workers never touch the database.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
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
    """A pool of reader processes on this machine (spawned: no inherited database connections).

    concurrent.futures, not multiprocessing.Pool: Pool's worker-handler thread waits on the result
    pipe too, so while results stream in it wakes up and loops without pause, taking the writer's
    GIL (37 % of the main process's Python time in a 20,000-file ingest, measured with py-spy).
    ProcessPoolExecutor's single manager thread reads each result as soon as it is there.
    """

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_reader_init,
            initargs=(os.getpid(),),
        )
        self._closed = False
        # Processes start on demand, one per submission while none is idle: start them all now, so
        # their interpreter start-up overlaps the caller's planning.
        for _ in range(self.workers):
            self._pool.submit(os.getpid)

    def map(self, tasks: Iterable[ChunkTask]) -> Iterator[ChunkResult]:
        # In submission order (the writer groups by folder); one task = one chunk of files already.
        return self._pool.map(read_chunk, tasks)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:  # no public terminate() before Python 3.14; a chunk in progress is dropped
            if proc.is_alive():
                proc.terminate()
        for proc in processes:
            proc.join(timeout=5)


READER_NICENESS = 5


def _reader_init(parent_pid: int) -> None:
    """(in each reader process) Yield the CPU to the writer, and never outlive the ingest.

    The single writer is the ingest's critical path: with as many readers as cores, an equal share
    left it two thirds of a core while the readers ran ahead and their results queued up. Niced
    readers still take every cycle the writer and the database leave idle.
    A reader blocked on its task queue does not notice that the ingest was killed (every reader holds
    the queue's write end too): a watchdog thread ends it once its parent is gone.
    """
    try:
        os.nice(READER_NICENESS)
    except OSError:  # not permitted here: equal shares, slower but the same result
        log.debug("could not lower the reader processes' priority")
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="parent-watchdog", daemon=True).start()


def _exit_with_parent(parent_pid: int, every_s: float = 0.5) -> None:
    while os.getppid() == parent_pid:
        time.sleep(every_s)
    os._exit(1)  # the ingest is gone: nobody will read this reader's results


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
