"""The survey app: the archive of raw 7DT frames."""
from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate, pre_migrate

VIEWS_MIGRATION = ("survey", "0006_pipeline_sql_views")


def _drop_pipeline_views(sender: AppConfig, using: str, plan: list | None = None, **kwargs: Any) -> None:
    """Before ``migrate`` applies anything: PostgreSQL refuses to alter a column a view uses."""
    if plan:
        from survey.pipeline_views import drop_views

        drop_views(connections[using])


def _create_pipeline_views(sender: AppConfig, using: str, plan: list | None = None, **kwargs: Any) -> None:
    """After ``migrate`` (not after ``flush``, which sends no plan and keeps views), once 0006 is applied."""
    if plan is None:
        return
    from django.db.migrations.recorder import MigrationRecorder

    from survey.pipeline_views import create_views

    connection = connections[using]
    if connection.vendor == "postgresql" and VIEWS_MIGRATION in MigrationRecorder(connection).applied_migrations():
        create_views(connection)


class SurveyConfig(AppConfig):
    name = "survey"
    verbose_name = "7DT raw archive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        pre_migrate.connect(_drop_pipeline_views, sender=self, dispatch_uid="survey-drop-pipeline-views")
        post_migrate.connect(_create_pipeline_views, sender=self, dispatch_uid="survey-create-pipeline-views")
