"""GW Portal Django project.

The Celery app (`gwportal.celery.app`) is loaded only when something asks for it (``celery -A
gwportal`` finds it as ``gwportal.celery``; code may use ``gwportal.celery_app``). Django itself never
imports Celery, so the embedded default runs with no broker and even without Celery installed.
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery_app":
        try:
            from gwportal.celery import app
        except ImportError as exc:  # Celery not installed: only scale-out needs it
            raise AttributeError(f"gwportal.celery_app needs Celery installed ({exc})") from exc
        return app
    raise AttributeError(f"module 'gwportal' has no attribute {name!r}")
