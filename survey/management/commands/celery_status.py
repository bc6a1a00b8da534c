"""`celery_status`: is scale-out ready? Broker, live workers per queue, messages waiting (no logic here)."""
from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand

from survey.ingest.celery_executor import celery_conf, cluster_status


class Command(BaseCommand):
    help = "Show the Celery broker, the live workers per queue and queue depths; exit 1 if no worker reads the ingest queue."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")
        parser.add_argument("--timeout", type=float, default=None, help="Seconds to wait for worker replies (default GWPORTAL_CELERY_INSPECT_TIMEOUT).")

    def handle(self, *args, **o):
        status = cluster_status(timeout=o["timeout"])
        ingest_queue = celery_conf()["INGEST_QUEUE"]
        ready = status["broker_ok"] and bool(status["queues"].get(ingest_queue, {}).get("workers"))
        if o["json"]:
            self.stdout.write(json.dumps({**status, "ready": ready}, indent=2))
        else:
            self.stdout.write(f"broker:         {status['broker']} ({'reachable' if status['broker_ok'] else 'UNREACHABLE'})")
            self.stdout.write(f"result backend: {status['result_backend']}")
            if status["error"]:
                self.stdout.write(status["error"])
            for host, info in status["workers"].items():
                self.stdout.write(f"worker {host}: {info['concurrency']} processes, queues {', '.join(info['queues'])}")
            for queue, info in status["queues"].items():
                who = ", ".join(info["workers"]) or "NO WORKER"
                self.stdout.write(f"queue {queue}: {info['messages']} waiting; consumed by {who}")
            self.stdout.write(f"scale-out ingest: {'ready' if ready else 'NOT READY'} (queue {ingest_queue})")
        if not ready:
            sys.exit(1)
