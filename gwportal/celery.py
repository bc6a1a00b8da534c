"""The Celery application of GW Portal: scale-out header reading and the beat-driven monitor.

Configuration comes from Django settings in the ``CELERY_*`` namespace (see gwportal/settings.py:
broker from GWPORTAL_BROKER_URL, Redis by default, RabbitMQ ``amqp://`` works the same). Importing
this module connects to nothing; only sending a task or starting a worker touches the broker, so the
embedded default (local process pool, no broker) never needs it.

Start a worker on any host that mounts the data root at the same path::

    celery -A gwportal worker -Q gwportal.ingest --concurrency 8 --prefetch-multiplier 1
"""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gwportal.settings")

app = Celery("gwportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
# survey.tasks only; listed explicitly so a worker does not have to walk every installed app.
app.autodiscover_tasks(["survey"])
