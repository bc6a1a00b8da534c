"""Read headers on Celery workers on several hosts; results come back in submission order.

The coordinator (the process running the ingest, the only one that touches the database) sends one
`survey.tasks.read_chunk_task` per chunk to a dedicated queue, keeps a bounded number of chunks in
flight (memory stays flat however large the backlog), and waits for the oldest chunk first, so the
engine's single writer sees exactly the sequence a local pool would give it. Messages and results are
JSON (rawdata.serialize), never pickle.

Faults:
- no broker, or no worker consuming the queue when the run starts: `ExecutorError` at once (the
  command exits 2; nothing has been read or written);
- a worker dies mid-chunk: the broker hands the chunk to another worker (acks late + reject on worker
  lost; RabbitMQ at once, Redis only after the visibility timeout) and the coordinator keeps waiting;
- a chunk that no live worker holds although the queue moved past it (a whole worker died, or Redis
  lost the message between BRPOP and its unacked record) is sent again after two checks in a row;
- no worker at all for NO_WORKER_TIMEOUT seconds, or one chunk pending for WAIT_TIMEOUT seconds, or a
  chunk that fails on a worker: `ExecutorError`; batches written so far stay valid (each is its own
  transaction, a frame path is unique) and a rerun reads only what is missing.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from rawdata.extract import ChunkResult, ChunkTask
from rawdata.serialize import SerializeError, chunk_result_from_dict, chunk_task_to_dict
from survey.ingest.executors import ExecutorError

log = logging.getLogger(__name__)

TASK_NAME = "survey.tasks.read_chunk_task"
HEARTBEAT_EVERY_S = 60.0

_DEFAULTS: dict[str, Any] = {
    "INGEST_QUEUE": "gwportal.ingest",
    "MAX_IN_FLIGHT": 0,
    "WAIT_TIMEOUT": 0.0,
    "NO_WORKER_TIMEOUT": 120.0,
    "INSPECT_TIMEOUT": 1.0,
    "LOST_CHECK": 10.0,
    "MAX_RESUBMITS": 3,
}


def celery_conf() -> dict[str, Any]:
    """settings.GWPORTAL_CELERY over the defaults (tests override single keys)."""
    return {**_DEFAULTS, **getattr(settings, "GWPORTAL_CELERY", {})}


def get_app():
    from gwportal.celery import app

    return app


def broker_label(app) -> str:
    """The broker URL without its password, for messages."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(str(app.conf.broker_url or "")))


def check_broker(app) -> None:
    """Connect once; a clear ExecutorError instead of kombu's retry loop when the broker is down."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0.2, interval_step=0.2, interval_max=0.5, timeout=5)
    except Exception as exc:  # noqa: BLE001 - any transport error means the same to the operator
        raise ExecutorError(
            f"cannot reach the Celery broker {broker_label(app)} ({type(exc).__name__}: {exc}); "
            "start it or set GWPORTAL_BROKER_URL, or ingest with --executor local"
        ) from exc


def live_workers(app, queue: str, *, with_concurrency: bool = True, timeout: float | None = None,
                 attempts: int = 1) -> dict[str, int]:
    """Workers consuming `queue` that answer a broadcast: hostname -> pool size (0 if not asked).

    A broadcast reply can be lost (the first one of a process often is), so callers that must not
    be wrong use several `attempts`, each waiting longer.
    """
    timeout = celery_conf()["INSPECT_TIMEOUT"] if timeout is None else timeout
    hosts: list[str] = []
    for attempt in range(max(1, attempts)):
        replies = app.control.inspect(timeout=timeout * (1 + attempt)).active_queues() or {}
        hosts = sorted(h for h, queues in replies.items() if any(q.get("name") == queue for q in queues or ()))
        if hosts:
            break
    if not hosts or not with_concurrency:
        return dict.fromkeys(hosts, 0)
    sizes: dict[str, int] = {}
    for attempt in range(max(1, attempts)):
        stats = app.control.inspect(destination=hosts, timeout=timeout * (1 + attempt)).stats() or {}
        sizes.update({h: int(s.get("pool", {}).get("max-concurrency") or 1) for h, s in stats.items() if h in hosts})
        if len(sizes) == len(hosts):
            break
    return {h: sizes.get(h, 1) for h in hosts}


def no_worker_message(app, queue: str, waited: float | None = None) -> str:
    head = f"no Celery worker consumes queue {queue!r}" + (f" (none answered for {waited:.0f} s)" if waited else "")
    return (
        f"{head} on broker {broker_label(app)}. Start one on a host that mounts the data root at the same "
        f"path: `celery -A gwportal worker -Q {queue} --prefetch-multiplier 1`, or ingest with --executor local."
    )


@dataclass
class _Pending:
    index: int
    result: Any  # celery.result.AsyncResult
    label: str  # "<folder> (<n> files)" for messages
    payload: dict[str, Any]
    resubmits: int = 0


class CeleryExecutor:
    """Executor over Celery workers; see the module docstring for ordering and faults."""

    name = "celery"

    def __init__(self, workers: int = 0, *, n_files: int | None = None, queue: str | None = None, app=None) -> None:
        conf = celery_conf()
        self.app = app or get_app()
        self.queue = queue or conf["INGEST_QUEUE"]
        self.requested = max(0, int(workers or 0))
        self.workers = self.requested
        self.hosts: dict[str, int] = {}
        self.max_in_flight = int(conf["MAX_IN_FLIGHT"])
        self.no_worker_timeout = float(conf["NO_WORKER_TIMEOUT"])
        visibility = float(self.app.conf.broker_transport_options.get("visibility_timeout", 3600))
        self.wait_timeout = float(conf["WAIT_TIMEOUT"]) or visibility + 600.0
        self.liveness_every = max(0.5, min(30.0, self.no_worker_timeout / 4))
        self.lost_check_s = max(0.5, float(conf["LOST_CHECK"]))
        self.max_resubmits = int(conf["MAX_RESUBMITS"])
        self.poll_s = 1.0
        self._window: deque[_Pending] = deque()
        self._ready = False
        if n_files is None or n_files > 0:
            self._prepare()

    # -- set-up ------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Broker reachable and at least one worker on the queue, or a clear error before any work."""
        if self._ready:
            return
        check_broker(self.app)
        self.hosts = live_workers(self.app, self.queue, attempts=2)
        if not self.hosts:
            raise ExecutorError(no_worker_message(self.app, self.queue))
        self.workers = self.requested or sum(self.hosts.values())
        if self.max_in_flight <= 0:
            self.max_in_flight = max(2, 2 * self.workers)
        log.info("celery: %d reader processes on %s; queue %s, up to %d chunks in flight",
                 sum(self.hosts.values()), ", ".join(self.hosts), self.queue, self.max_in_flight)
        self._ready = True

    # -- Executor protocol -------------------------------------------------------------------------
    def map(self, tasks: Iterable[ChunkTask]) -> Iterator[ChunkResult]:
        source = iter(tasks)
        window = self._window
        counter = iter(range(1 << 62))

        def fill() -> None:
            while len(window) < self.max_in_flight:
                task = next(source, None)
                if task is None:
                    return
                self._prepare()
                window.append(self._submit(next(counter), task))

        try:
            fill()
            while window:
                result = self._collect(window[0])
                window.popleft()
                fill()
                yield result
        finally:
            self._abandon()

    def close(self) -> None:
        self._abandon()

    # -- internals ---------------------------------------------------------------------------------
    def _submit(self, index: int, task: ChunkTask) -> _Pending:
        label = f"{task.context.path} ({len(task.files)} files)"
        payload = chunk_task_to_dict(task)
        return _Pending(index, self._send(index, label, payload), label, payload)

    def _send(self, index: int, label: str, payload: dict[str, Any]) -> Any:
        try:
            return self.app.send_task(TASK_NAME, args=[payload], queue=self.queue)
        except Exception as exc:  # noqa: BLE001 - broker gone mid-run
            raise ExecutorError(f"cannot send chunk {index} {label} to {broker_label(self.app)}: {exc}") from exc

    def _seems_lost(self, pending: _Pending) -> bool:
        """True when no live worker holds the chunk although the queue has moved past it.

        Evidence that it is no longer waiting in the queue: a chunk sent after it has finished
        (queues are first in, first out), or every worker on the queue is idle. A chunk can vanish
        when a worker dies: Redis gives a dead worker's chunk back only after the visibility timeout,
        and loses it outright if the worker died between taking it (BRPOP) and recording it.
        """
        later_done = any(p.result.ready() for p in list(self._window)[1:])
        inspect = self.app.control.inspect(timeout=celery_conf()["INSPECT_TIMEOUT"])
        held: dict[str, list] = {}
        for reply in (inspect.active() or {}, inspect.reserved() or {}):
            for host, tasks in reply.items():
                held.setdefault(host, []).extend(tasks or ())
        if any(t.get("id") == pending.result.id for tasks in held.values() for t in tasks):
            return False
        ours = live_workers(self.app, self.queue, with_concurrency=False)
        idle = bool(ours) and all(not held.get(host) for host in ours)
        return later_done or idle

    def _resubmit(self, pending: _Pending) -> None:
        """Send a lost chunk again (reading is idempotent; one result per chunk is ever written)."""
        if pending.resubmits >= self.max_resubmits:
            raise ExecutorError(
                f"chunk {pending.index} {pending.label} was lost {pending.resubmits + 1} times "
                f"(no worker holds it and the queue moved past it); stopping"
            )
        old = pending.result
        pending.result = self._send(pending.index, pending.label, pending.payload)
        pending.resubmits += 1
        log.warning("celery: chunk %d %s seems lost (no live worker holds it): sent again as %s (%d/%d)",
                    pending.index, pending.label, pending.result.id, pending.resubmits, self.max_resubmits)
        try:
            self.app.control.revoke([old.id])
            old.forget()
        except Exception:  # noqa: BLE001 - best effort; a late duplicate result just expires
            pass

    def _collect(self, pending: _Pending) -> ChunkResult:
        """Wait for the oldest chunk; keep waiting while workers live, give up clearly otherwise."""
        from celery import states
        from celery.exceptions import TimeoutError as ResultTimeout

        started = last_alive = last_beat = time.monotonic()
        next_check = started + self.liveness_every
        next_lost_check = started + self.lost_check_s
        lost_seen = 0
        while True:
            try:
                value = pending.result.get(timeout=self.poll_s, propagate=False, disable_sync_subtasks=False)
                break
            except ResultTimeout:
                pass
            except Exception as exc:  # noqa: BLE001 - result backend unreachable
                raise ExecutorError(
                    f"lost the Celery result backend while waiting for chunk {pending.index} {pending.label}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            now = time.monotonic()
            if now - last_beat >= HEARTBEAT_EVERY_S:
                _touch_run_heartbeat()
                last_beat = now
            if now >= next_check:
                next_check = now + self.liveness_every
                try:
                    alive = live_workers(self.app, self.queue, with_concurrency=False)
                except Exception as exc:  # noqa: BLE001
                    log.warning("celery: liveness check failed: %s", exc)
                    alive = {}
                if alive:
                    last_alive = now
                else:
                    log.warning("celery: no worker consumes %s (waiting %.0f s for chunk %d)", self.queue, now - started, pending.index)
                    if now - last_alive >= self.no_worker_timeout:
                        raise ExecutorError(no_worker_message(self.app, self.queue, now - last_alive))
            if now >= next_lost_check:
                next_lost_check = now + self.lost_check_s
                try:
                    lost = self._seems_lost(pending)
                except Exception as exc:  # noqa: BLE001 - inspection is advisory
                    log.debug("celery: lost-chunk check failed: %s", exc)
                    lost = False
                lost_seen = lost_seen + 1 if lost else 0
                if lost_seen >= 2:  # twice in a row: not a chunk caught between queue and worker
                    self._resubmit(pending)
                    lost_seen = 0
                    continue
            if now - started >= self.wait_timeout:
                raise ExecutorError(
                    f"chunk {pending.index} {pending.label} got no result in {self.wait_timeout:.0f} s although "
                    f"workers are alive on {self.queue!r} (GWPORTAL_CELERY_WAIT_TIMEOUT)"
                )
        if isinstance(value, BaseException) or pending.result.state != states.SUCCESS:
            raise ExecutorError(
                f"chunk {pending.index} {pending.label} failed on a worker: {type(value).__name__}: {value}"
            )
        try:
            chunk = chunk_result_from_dict(value)
        except SerializeError as exc:
            raise ExecutorError(f"chunk {pending.index} {pending.label}: unreadable result: {exc}") from exc
        self._forget(pending)
        return chunk

    def _forget(self, pending: _Pending) -> None:
        """Drop the stored result now (Redis memory stays flat); result_expires is the backstop."""
        try:
            pending.result.forget()
        except NotImplementedError:  # rpc:// keeps nothing to forget
            pass
        except Exception as exc:  # noqa: BLE001 - cosmetic: the result expires anyway
            log.debug("celery: could not forget %s: %s", pending.result.id, exc)

    def _abandon(self) -> None:
        """The run stopped early: revoke chunks nobody will collect (best effort; results expire)."""
        if not self._window:
            return
        ids = [p.result.id for p in self._window]
        self._window.clear()
        try:
            self.app.control.revoke(ids)
            log.info("celery: revoked %d uncollected chunks", len(ids))
        except Exception as exc:  # noqa: BLE001
            log.warning("celery: could not revoke %d chunks: %s", len(ids), exc)


def _touch_run_heartbeat() -> None:
    """Keep this process's running IngestRun fresh while it waits (a silent run is marked interrupted)."""
    from survey.models import IngestRun
    from survey.runlog import HOST

    try:
        IngestRun.objects.filter(status=IngestRun.Status.RUNNING, host=HOST, pid=os.getpid()).update(heartbeat_at=timezone.now())
    except Exception as exc:  # noqa: BLE001 - a heartbeat must never break the run
        log.debug("celery: heartbeat update failed: %s", exc)


def cluster_status(app=None, *, timeout: float | None = None) -> dict[str, Any]:
    """Broker, workers per queue and queue depths: what `manage.py celery_status` prints."""
    app = app or get_app()
    conf = celery_conf()
    routes = getattr(settings, "CELERY_TASK_ROUTES", {})
    queues = sorted({conf["INGEST_QUEUE"], *(r.get("queue") for r in routes.values() if r.get("queue"))})
    status: dict[str, Any] = {"broker": broker_label(app), "result_backend": app.conf.result_backend,
                              "broker_ok": False, "error": "", "workers": {}, "queues": {}}
    try:
        check_broker(app)
    except ExecutorError as exc:
        status["error"] = str(exc)
        return status
    status["broker_ok"] = True
    timeout = conf["INSPECT_TIMEOUT"] if timeout is None else timeout
    inspect = app.control.inspect(timeout=timeout)
    active = inspect.active_queues() or {}
    stats = inspect.stats() or {}
    for host in sorted(active):
        status["workers"][host] = {
            "queues": sorted(q.get("name") for q in active[host] or ()),
            "concurrency": int((stats.get(host) or {}).get("pool", {}).get("max-concurrency") or 0),
        }
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in queues:
            try:
                _, depth, _consumers = channel.queue_declare(queue=queue, passive=True)
            except Exception:  # noqa: BLE001 - a queue nobody declared yet is empty
                depth = 0
                channel = conn.channel()
            status["queues"][queue] = {
                "messages": depth,
                "workers": sorted(h for h, w in status["workers"].items() if queue in w["queues"]),
            }
    return status
