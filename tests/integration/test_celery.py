"""Scale-out (SPEC G): the same ingest over real Celery workers gives the same catalogue as a local run.

Each test session gets its own queue names and its own Redis key prefix, so parallel test runs of other
people (and their workers) never take our chunks. Workers are real `celery -A gwportal worker`
processes (prefork, concurrency 2) started with an unreachable DATABASE_URL: they must not need the
database. The coordinator (this process) works on SQLite or PostgreSQL, whichever DATABASE_URL says.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils.timezone import now as django_now

from rawdata.sample import corrupt_helpers
from survey.ingest import celery_executor
from survey.models import FileProblem, Frame, IngestRun, NightUnitStats, TileFilterProgress
from tests.integration.snapshot import catalogue_snapshot

pytestmark = [pytest.mark.celery, pytest.mark.django_db]

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("GWPORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("GWPORTAL_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
TAG = f"gwtest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
PREFIX = f"{TAG}:"  # Redis global key prefix of this session: queues, unacked index, pidbox channels
VISIBILITY_S = 2  # a dead worker's chunk is restored after 2 s (production: 1 hour)


# ------------------------------------------------------------------------------------ fixtures
def make_app(broker_url: str):
    """A Celery app configured like gwportal.celery.app, on this session's isolated broker space."""
    from celery import Celery

    app = Celery(f"gwportal-test-{uuid.uuid4().hex[:6]}", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    options = dict(django_settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    options.update(visibility_timeout=VISIBILITY_S, global_keyprefix=PREFIX)
    app.conf.update(broker_url=broker_url, broker_transport_options=options)
    return app


class Worker:
    """One `celery -A gwportal worker` process group on one queue; killable with SIGKILL."""

    def __init__(self, tmp: Path, broker_url: str, queue: str, name: str, delay: float = 0.0,
                 data_root: Path | None = None) -> None:
        self.broker_url, self.queue, self.name, self.delay = broker_url, queue, name, delay
        self.data_root = data_root
        self.log = tmp / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GWPORTAL_", "DATABASE_URL", "PYTEST"))}
        env.update(
            DJANGO_SETTINGS_MODULE="gwportal.settings",
            DATABASE_URL="postgres://nobody:wrong@127.0.0.1:9/no_database",  # a worker must never need it
            GWPORTAL_SECRET_KEY="celery-test-worker",
            GWPORTAL_BROKER_URL=self.broker_url,
            GWPORTAL_BROKER_KEYPREFIX=PREFIX,
            GWPORTAL_BROKER_VISIBILITY_TIMEOUT=str(VISIBILITY_S),
            GWPORTAL_BROKER_RESTORE_INTERVAL="1",
            GWPORTAL_BROKER_RESTORE_THROTTLE="1",
            GWPORTAL_INGEST_QUEUE=self.queue,
            GWPORTAL_LOG_LEVEL="INFO",
        )
        if self.delay:
            env["GWPORTAL_TEST_CHUNK_DELAY"] = str(self.delay)
        if self.data_root:
            env["GWPORTAL_DATA_ROOT"] = str(self.data_root)
        return env

    def start(self, timeout: float = 60.0) -> Worker:
        out = open(self.log, "ab")
        start_mark = self.log.stat().st_size
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "gwportal", "worker", "-Q", self.queue, "--concurrency", "2",
             "--pool", "prefork", "-n", f"{self.name}-{TAG}@%h", "--without-mingle", "--without-gossip",
             "--loglevel", "INFO"],
            cwd=REPO, env=self.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[start_mark:]
            if b" ready." in text:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.proc.returncode}:\n{text.decode(errors='replace')}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"celery worker not ready after {timeout} s; see {self.log}")

    def succeeded(self) -> int:
        return self.log.read_text(errors="replace").count("succeeded in")

    def busy_after(self, n: int) -> bool:
        """At least `n` chunks done and, since this process started, one received and not finished."""
        text = self.log.read_text(errors="replace")
        current = text[text.rfind(" ready."):]
        received = set(re.findall(r"read_chunk_task\[([0-9a-f-]+)\] received", current))
        done = set(re.findall(r"read_chunk_task\[([0-9a-f-]+)\] succeeded", current))
        return text.count("succeeded in") >= n and bool(received - done)

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): no goodbye to the broker."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def _cleanup_broker(broker_url: str, queues: list[str]) -> None:
    """Leave nothing behind: this session's Redis keys, or its RabbitMQ queues."""
    if broker_url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(broker_url)
        for key in client.scan_iter(match=f"{PREFIX}*", count=1000):
            client.delete(key)
        client.close()
        return
    from kombu import Connection

    with Connection(broker_url) as conn:
        channel = conn.channel()
        for queue in queues:
            for delete in ("queue_delete", "exchange_delete"):  # Celery names the exchange after the queue
                try:
                    getattr(channel, delete)(queue)
                except Exception:  # noqa: BLE001 - never declared
                    channel = conn.channel()


@pytest.fixture(scope="session")
def brokers_ok():
    from kombu import Connection

    for url in (REDIS_URL,):
        try:
            with Connection(url, connect_timeout=3) as conn:
                conn.ensure_connection(max_retries=1)
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"celery tests need the broker at {url} ({exc}); deselect them with -m 'not celery'")


@pytest.fixture(scope="session")
def redis_app(brokers_ok):
    app = make_app(REDIS_URL)
    yield app
    _cleanup_broker(REDIS_URL, [])


@pytest.fixture(scope="session")
def shared_worker(redis_app, tmp_path_factory):
    """One ordinary worker for the tests that do not kill anything."""
    # Its data root is the session's temporary base: every sample_root of this session lies below it.
    worker = Worker(tmp_path_factory.mktemp("celery"), REDIS_URL, f"{TAG}.ingest", "shared",
                    data_root=tmp_path_factory.getbasetemp()).start()
    yield worker
    worker.stop()


@pytest.fixture
def use_queue(settings, monkeypatch):
    """Point the coordinator (CeleryExecutor in this process) at an app and queue of this session."""

    def _use(app, queue: str, **conf) -> None:
        monkeypatch.setattr(celery_executor, "get_app", lambda: app)
        settings.GWPORTAL_CELERY = {**getattr(django_settings, "GWPORTAL_CELERY", {}), "INGEST_QUEUE": queue, **conf}

    return _use


# ------------------------------------------------------------------------------------ helpers
def damage(root: Path) -> None:
    """Problems of several kinds, so that problem rows are compared too."""
    folder = sorted(root.glob("7DT02/*_gain2750"))[0]
    fits = sorted(folder.glob("*.fits"))
    corrupt_helpers.truncate(fits[0], 5000)
    corrupt_helpers.write_garbage(folder / "7DT02_20250701_000000_garbage.fits")
    corrupt_helpers.write_no_end(folder / "7DT02_20250701_000001_noend.fits")
    data = bytearray(fits[2].read_bytes())
    data[-1] ^= 0xFF  # data byte: readable header, SHA-256 mismatch against allfiles.hash
    fits[2].write_bytes(bytes(data))


def full_snapshot() -> dict:
    """The catalogue (frames with all columns by path, headers, targets, tiles) plus every row
    that describes problems and statistics; no ids, timestamps or run references."""
    snap = catalogue_snapshot()
    snap["problem_rows"] = sorted(FileProblem.objects.values_list(
        "path", "reason", "severity", "detail", "file_size", "file_mtime_ns", "resolved", "attempts", "folder__path"))
    skip = {"id", "night", "unit", "updated_at"}
    cols = [f.attname for f in NightUnitStats._meta.concrete_fields if f.name not in skip]
    snap["night_unit_stats"] = sorted(
        (tuple(r[c] if not isinstance(r[c], dict) else sorted(r[c].items()) for c in cols), r["night__date"], r["unit__name"])
        for r in NightUnitStats.objects.values(*cols, "night__date", "unit__name"))
    snap["tile_filter"] = sorted(TileFilterProgress.objects.values_list(
        "tile__name", "filter", "n_frames", "total_exptime", "n_nights", "first_night", "last_night"))
    return snap


def assert_same_catalogue(got: dict, expected: dict) -> None:
    """Equality of two snapshots, with a readable account of the first differences."""
    if got == expected:
        return
    lines = []
    for part in sorted(set(got) | set(expected)):
        a, b = got.get(part), expected.get(part)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                if a.get(key) != b.get(key):
                    x, y = a.get(key), b.get(key)
                    if isinstance(x, dict) and isinstance(y, dict):
                        diff = {k: (x.get(k), y.get(k)) for k in set(x) | set(y) if x.get(k) != y.get(k)}
                        lines.append(f"{part}[{key}]: {diff}")
                    else:
                        lines.append(f"{part}[{key}]: {x!r} != {y!r}")
        else:
            extra = sorted(set(map(repr, a or [])) ^ set(map(repr, b or [])))
            lines.append(f"{part}: symmetric difference {extra[:6]}")
    pytest.fail("catalogues differ (got vs expected):\n" + "\n".join(lines[:15]))


RUN_COUNTS = ("status", "n_folders", "n_files", "n_new", "n_updated", "n_unchanged", "n_excluded", "n_problems",
              "n_deferred", "n_missing", "n_duplicates", "n_headers_read")


def last_run() -> IngestRun:
    return IngestRun.objects.order_by("-id").first()


def run_counts(run: IngestRun) -> dict:
    counts = {k: getattr(run, k) for k in RUN_COUNTS}
    counts["report"] = {k: v for k, v in run.report.items() if k in {"counts", "table", "exit_code"}}
    return counts


class _Undo(Exception):
    pass


def local_reference(ingest, root: Path) -> tuple[int, dict, dict]:
    """Ingest locally, take the picture, then roll everything back: the database is empty again."""
    out = {}
    with pytest.raises(_Undo):
        with transaction.atomic():
            run = ingest(root, "--executor", "local")
            out.update(code=run.code, snap=full_snapshot(), counts=run_counts(last_run()))
            raise _Undo
    assert not Frame.objects.exists() and not IngestRun.objects.exists()
    assert out["snap"]["frames"] and out["snap"]["problem_rows"]
    return out["code"], out["snap"], out["counts"]


class Killer(threading.Thread):
    """Acts on a worker once it has finished `after` chunks and holds one (log lines per chunk)."""

    def __init__(self, worker: Worker, after: int, action) -> None:
        super().__init__(daemon=True)
        self.worker, self.after, self.action = worker, after, action
        self.acted = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            deadline = time.monotonic() + 60
            while not self.worker.busy_after(self.after):
                if time.monotonic() > deadline:
                    raise TimeoutError("the worker never got that far")
                time.sleep(0.02)
            self.action()
            self.acted.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


# ------------------------------------------------------------------------------------ tests
def test_celery_ingest_equals_local_ingest(sample_root, ingest, shared_worker, redis_app, use_queue):
    damage(sample_root)
    code, expected, counts = local_reference(ingest, sample_root)
    use_queue(redis_app, shared_worker.queue)

    run = ingest(sample_root, "--executor", "celery", "--chunk-size", "7")
    assert run.code == code == 1, run.out + run.err  # 1: some files failed (the damaged ones)
    record = last_run()
    assert record.executor == "celery" and record.workers == 2
    assert run_counts(record) == counts
    assert_same_catalogue(full_snapshot(), expected)
    assert shared_worker.succeeded() >= counts["n_headers_read"] // 7


def test_settings_executor_celery_and_unchanged_rerun_needs_no_worker(sample_root, ingest, shared_worker, redis_app,
                                                                      use_queue, settings):
    """GWPORTAL['EXECUTOR']='celery' alone switches the engine; a rerun with nothing to read never
    contacts the broker, so it succeeds even with no worker on the queue."""
    use_queue(redis_app, shared_worker.queue)
    settings.GWPORTAL = {**settings.GWPORTAL, "EXECUTOR": "celery"}
    assert ingest(sample_root).code == 0
    assert last_run().executor == "celery" and Frame.objects.count() == last_run().n_new > 0
    use_queue(redis_app, f"{TAG}.nobody-listens")
    again = ingest(sample_root)
    assert again.code == 0, again.err
    assert last_run().n_headers_read == 0 and last_run().n_unchanged == Frame.objects.count()


def test_worker_killed_mid_run_is_retried_and_result_identical(sample_root, ingest, redis_app, use_queue, tmp_path):
    """A pool child SIGKILLed mid-chunk, then the whole worker SIGKILLed and restarted, then a chunk
    lost in transit: every chunk is read again or sent again, and the catalogue is exactly the
    local one, nothing doubled."""
    import redis

    damage(sample_root)
    code, expected, counts = local_reference(ingest, sample_root)
    queue = f"{TAG}.kill"
    worker = Worker(tmp_path, REDIS_URL, queue, "victim", delay=0.2).start()
    use_queue(redis_app, queue, LOST_CHECK=1.0, INSPECT_TIMEOUT=0.5)
    client = redis.Redis.from_url(REDIS_URL)
    stolen: list[bytes] = []

    def kill_children() -> None:  # every pool process, so the chunk in progress is surely lost
        for child in worker.children():
            child.kill()

    def kill_all_and_restart() -> None:
        worker.kill()
        worker.start()

    def steal_a_queued_chunk() -> None:  # a delivery lost with a dying worker (Redis BRPOP gap)
        deadline = time.monotonic() + 30
        while not stolen and time.monotonic() < deadline:
            message = client.rpop(PREFIX + queue)
            if message:
                stolen.append(message)
            time.sleep(0.01)

    first = Killer(worker, 3, kill_children)
    second = Killer(worker, 9, kill_all_and_restart)
    third = Killer(worker, 14, steal_a_queued_chunk)
    for killer in (first, second, third):
        killer.start()
    try:
        run = ingest(sample_root, "--executor", "celery", "--chunk-size", "8")
    finally:
        for killer in (first, second, third):
            killer.join(60)
        worker.stop()
        client.close()
    assert all(k.error is None and k.acted.is_set() for k in (first, second, third)), [k.error for k in (first, second, third)]
    assert stolen, "no chunk was waiting in the queue to be lost"
    stolen_id = json.loads(stolen[0])["headers"]["id"]
    run_log = Path(last_run().log_file).read_text()
    log = worker.log.read_text(errors="replace")
    assert "seems lost" in run_log and f"[{stolen_id}] received" not in log  # the coordinator sent it again
    assert run.code == code, run.out + run.err
    assert run_counts(last_run()) == counts
    assert_same_catalogue(full_snapshot(), expected)
    # The killed worker's chunks came back: redelivered by the broker (same id received again) or
    # sent again by the coordinator (besides the stolen one).
    received = Counter(re.findall(r"read_chunk_task\[([0-9a-f-]+)\] received", log))
    assert max(received.values()) >= 2 or run_log.count("seems lost") >= 2
    assert "WorkerLostError" in log  # the pool processes died with a chunk in hand


def test_no_worker_left_fails_clearly_and_rerun_completes(sample_root, ingest, redis_app, use_queue, tmp_path,
                                                         shared_worker):
    """All workers die and none comes back: the run stops with a clear error and exit code 2 after
    NO_WORKER_TIMEOUT; what was written is valid, and a rerun with a worker completes the catalogue."""
    damage(sample_root)
    code, expected, counts = local_reference(ingest, sample_root)
    queue = f"{TAG}.dies"
    worker = Worker(tmp_path, REDIS_URL, queue, "mortal", delay=0.15).start()
    use_queue(redis_app, queue, NO_WORKER_TIMEOUT=2.0, INSPECT_TIMEOUT=0.5)
    killer = Killer(worker, 4, worker.kill)
    killer.start()
    try:
        run = ingest(sample_root, "--executor", "celery", "--chunk-size", "8")
    finally:
        killer.join(10)
        worker.stop()
    assert killer.acted.is_set()
    assert run.code == 2
    assert "no Celery worker consumes queue" in run.err and queue in run.err
    failed = last_run()
    assert failed.status == IngestRun.Status.ERROR and "no Celery worker" in failed.error
    written = set(Frame.objects.values_list("path", flat=True))
    assert 0 < len(written) < len(expected["frames"])
    partial = catalogue_snapshot()["frames"]
    for path in written:  # every row written before the failure is already the final row
        assert partial[path] == expected["frames"][path]

    use_queue(redis_app, shared_worker.queue)  # the operator starts workers again
    again = ingest(sample_root, "--executor", "celery", "--chunk-size", "8")
    assert again.code == code, again.out + again.err
    assert_same_catalogue(full_snapshot(), expected)


def test_no_worker_or_no_broker_at_start_is_a_clear_error(sample_root, ingest, redis_app, use_queue, settings):
    use_queue(redis_app, f"{TAG}.nobody-listens")
    run = ingest(sample_root, "--executor", "celery")
    assert run.code == 2
    assert "no Celery worker consumes queue" in run.err and f"{TAG}.nobody-listens" in run.err
    assert last_run().status == IngestRun.Status.ERROR and not Frame.objects.exists()

    use_queue(make_app("redis://127.0.0.1:9/0"), f"{TAG}.ingest")
    run = ingest(sample_root, "--executor", "celery")
    assert run.code == 2 and "cannot reach the Celery broker redis://127.0.0.1:9/0" in run.err
    assert not Frame.objects.exists()


def test_rabbitmq_broker_gives_the_same_catalogue(sample_root, ingest, use_queue, tmp_path):
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"needs RabbitMQ at {AMQP_URL} ({exc})")
    damage(sample_root)
    code, expected, counts = local_reference(ingest, sample_root)
    queue = f"{TAG}.amqp"
    worker = Worker(tmp_path, AMQP_URL, queue, "rabbit").start()
    use_queue(make_app(AMQP_URL), queue)
    try:
        run = ingest(sample_root, "--executor", "celery", "--chunk-size", "9")
    finally:
        worker.stop()
        _cleanup_broker(AMQP_URL, [queue])
    assert run.code == code, run.out + run.err
    assert run_counts(last_run()) == counts
    assert_same_catalogue(full_snapshot(), expected)


def test_worker_without_the_data_root_fails_the_run_clearly(shared_worker, redis_app, use_queue, tmp_path):
    """A worker host that does not mount the data root must fail the run, not turn every file into
    a problem: the coordinator names a folder (under a unit directory) the worker cannot see."""
    from rawdata.extract import ChunkTask, ExtractConfig, FolderContext
    from rawdata.folders import parse_folder_name
    from rawdata.scan import FileEntry

    use_queue(redis_app, shared_worker.queue)
    ghost = ChunkTask(
        context=FolderContext(unit="7DT01", folder=parse_folder_name("2025-07-01_gain2750"),
                              path=str(tmp_path / "ghost-root" / "7DT01" / "2025-07-01_gain2750")),
        files=[FileEntry("7DT01_20250701_000000_T00001_m425_1x1_100.0s_0001.fits", 1, 1)], config=ExtractConfig(),
    )
    executor = celery_executor.CeleryExecutor(0, n_files=1)
    try:
        with pytest.raises(celery_executor.ExecutorError, match="DataRootNotVisible.*cannot see .*ghost-root/7DT01"):
            list(executor.map([ghost]))
    finally:
        executor.close()


def test_worker_refuses_paths_outside_its_data_root(shared_worker, redis_app, use_queue, tmp_path):
    """A broker message is untrusted input: a worker opens files only under its own data root."""
    from rawdata.extract import ChunkTask, ExtractConfig, FolderContext
    from rawdata.folders import parse_folder_name
    from rawdata.scan import FileEntry

    use_queue(redis_app, shared_worker.queue)
    info = parse_folder_name("2025-07-01_gain2750")
    outside = ChunkTask(context=FolderContext(unit="7DT01", folder=info, path="/etc"),
                        files=[FileEntry("passwd", 1, 1)], config=ExtractConfig())
    escape = ChunkTask(context=FolderContext(unit="7DT01", folder=info, path=str(tmp_path)),
                       files=[FileEntry("../../../../etc/passwd", 1, 1)], config=ExtractConfig())
    for task, message in ((outside, "outside this worker's data root"), (escape, "not a plain name")):
        executor = celery_executor.CeleryExecutor(0, n_files=1)
        try:
            with pytest.raises(celery_executor.ExecutorError, match=f"RefusedPath.*{message}"):
                list(executor.map([task]))
        finally:
            executor.close()


MONITOR_QUIET = {"quiet_s": 0.0, "incomplete_grace_s": 0.0, "max_cpu_percent": None, "min_free_memory_gb": None,
                 "min_free_disk_gb": None}


def test_beat_monitor_cycle_ingests_under_the_monitor_lease(sample_root, settings, tmp_path):
    """The beat task runs one monitor cycle (here in-process, as a worker would) and leaves the
    monitor row idle with its lease free; while another live monitor holds the lease it does nothing."""
    from survey import monitor
    from survey.models import MonitorState
    from survey.runlog import HOST
    from survey.tasks import monitor_cycle_task

    settings.GWPORTAL = {**settings.GWPORTAL, "LOG_DIR": str(tmp_path / "logs"), "EXECUTOR": "local"}
    name = monitor.MonitorOptions(data_root=str(sample_root)).name
    # Another live process (our parent) holds the lease, like a running `update_nights` daemon.
    MonitorState.objects.update_or_create(name=name, defaults=dict(
        host=HOST, pid=os.getppid(), started_at=django_now(), heartbeat_at=django_now(), status="sleeping",
        lease_until=django_now() + timedelta(minutes=5)))
    out = monitor_cycle_task.apply(kwargs={"data_root": str(sample_root), **MONITOR_QUIET}).get()
    assert out["status"] == "skipped" and str(os.getppid()) in out["reason"]
    assert not Frame.objects.exists() and MonitorState.objects.get(name=name).status == "sleeping"

    MonitorState.objects.filter(name=name).update(lease_until=django_now() - timedelta(seconds=1))  # it died
    out = monitor_cycle_task.apply(kwargs={"data_root": str(sample_root), **MONITOR_QUIET}).get()
    assert out["status"] == "done", out
    assert Frame.objects.count() > 300 and len(out["cycle"]["runs"]) >= 1
    assert IngestRun.objects.filter(trigger="monitor", status=IngestRun.Status.SUCCESS).exists()
    row = MonitorState.objects.get(name=name)
    assert row.status == "idle" and row.lease_until is None and row.pid == os.getpid()
    assert row.cycles >= 1 and row.last_cycle["n_ingested"] > 0 and row.next_check_at > django_now()
    assert monitor.acquire_lease(name, 5)  # free for the next beat (or for the daemon)
    monitor.release_lease(name)


def test_celery_beat_sends_monitor_cycles_to_the_monitor_queue(redis_app, tmp_path):
    """A real `celery -A gwportal beat` publishes the schedule from settings into the monitor queue."""
    import redis

    queue = f"{TAG}.monitor"
    env = Worker(tmp_path, REDIS_URL, f"{TAG}.unused", "beat").env()
    env.update(GWPORTAL_MONITOR_QUEUE=queue, GWPORTAL_MONITOR_BEAT_SECONDS="1")
    log = open(tmp_path / "beat.log", "wb")
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gwportal", "beat", "--schedule", str(tmp_path / "beat-schedule"),
         "--loglevel", "INFO"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        deadline = time.monotonic() + 60
        while client.llen(PREFIX + queue) < 2 and time.monotonic() < deadline and beat.poll() is None:
            time.sleep(0.2)
        raw = client.lindex(PREFIX + queue, 0)
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(15)
        log.close()
        client.delete(PREFIX + queue)
        client.close()
    assert raw is not None, (tmp_path / "beat.log").read_text(errors="replace")
    message = json.loads(raw)
    assert message["headers"]["task"] == "survey.tasks.monitor_cycle_task"
    assert message["content-type"] == "application/json"
    assert message["headers"]["expires"]  # a cycle nobody ran in time is dropped, never piled up


def test_celery_status_command(shared_worker, redis_app, use_queue):
    from tests.integration.conftest import run_command

    use_queue(redis_app, shared_worker.queue)
    ok = run_command("celery_status")
    assert ok.code == 0, ok.out + ok.err
    assert f"shared-{TAG}@" in ok.out and "2 processes" in ok.out and "scale-out ingest: ready" in ok.out
    use_queue(redis_app, f"{TAG}.nobody-listens")
    missing = run_command("celery_status")
    assert missing.code == 1 and f"queue {TAG}.nobody-listens: 0 waiting; consumed by NO WORKER" in missing.out
