"""The survey app: the archive of raw 7DT frames."""
from django.apps import AppConfig


class SurveyConfig(AppConfig):
    name = "survey"
    verbose_name = "7DT raw archive"
    default_auto_field = "django.db.models.BigAutoField"
