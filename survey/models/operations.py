"""How the archive is kept: ingest runs, file problems, the monitor, reconciliation reports, API keys."""
from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models


class IngestRun(models.Model):
    """One run of the ingest engine: its trigger, arguments, counts, resources and outcome."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCESS = "success"
        FAILED = "failed", "finished with failed files"
        ERROR = "error", "aborted by an error"
        INTERRUPTED = "interrupted", "killed before it finished"
        DRY_RUN = "dry_run"

    trigger = models.CharField(max_length=32, default="manual")  # manual | monitor | reprocess | celery | api
    arguments = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING, db_index=True)
    host = models.CharField(max_length=128, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    executor = models.CharField(max_length=16, default="local")
    workers = models.SmallIntegerField(default=1)
    n_folders = models.IntegerField(default=0)
    n_files = models.IntegerField(default=0)
    n_new = models.IntegerField(default=0)
    n_updated = models.IntegerField(default=0)
    n_unchanged = models.IntegerField(default=0)
    n_excluded = models.IntegerField(default=0)
    n_problems = models.IntegerField(default=0)
    n_deferred = models.IntegerField(default=0)
    n_missing = models.IntegerField(default=0)
    n_duplicates = models.IntegerField(default=0)
    n_headers_read = models.IntegerField(default=0)
    duration_s = models.FloatField(null=True, blank=True)
    files_per_s = models.FloatField(null=True, blank=True)
    peak_rss_mb = models.FloatField(null=True, blank=True)
    cpu_s = models.FloatField(null=True, blank=True)
    log_file = models.CharField(max_length=1024, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"


class FileProblem(models.Model):
    """A file that could not be catalogued, with a reason code; kept until the file is fixed."""

    path = models.CharField(max_length=1024, unique=True)
    folder = models.ForeignKey("survey.NightFolder", on_delete=models.SET_NULL, null=True, blank=True, related_name="file_problems")
    class Severity(models.TextChoices):
        ERROR = "error", "error: the file is not (correctly) catalogued"
        WARNING = "warning", "warning: catalogued, but worth a look"

    reason = models.CharField(max_length=32, db_index=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.ERROR)
    detail = models.TextField(blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    file_mtime_ns = models.BigIntegerField(null=True, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    attempts = models.IntegerField(default=1)
    resolved = models.BooleanField(default=False, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    run = models.ForeignKey("survey.IngestRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="problems")

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"{self.reason}: {self.path}"


class MonitorState(models.Model):
    """The monitor daemon's heartbeat and lease; a single row per monitor name."""

    name = models.CharField(max_length=32, unique=True, default="update_nights")
    host = models.CharField(max_length=128, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=32, default="stopped")
    detail = models.TextField(blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    cycles = models.IntegerField(default=0)
    last_cycle = models.JSONField(default=dict, blank=True)


class MissingReport(models.Model):
    """A saved reconciliation analysis: what the portal shows and what reprocessing acts on."""

    created_at = models.DateTimeField(auto_now_add=True)
    arguments = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    flagged_folders = models.JSONField(default=list, blank=True)
    details = models.JSONField(default=dict, blank=True)
    report_file = models.CharField(max_length=1024, blank=True)
    clean = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]


class ApiKey(models.Model):
    """An API key for `X-API-Key`; only its SHA-256 is stored."""

    name = models.CharField(max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)

    @staticmethod
    def hash_key(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str) -> tuple["ApiKey", str]:
        """Create a key; the raw value is returned once and never stored."""
        raw = "gwp_" + secrets.token_urlsafe(32)
        key = cls.objects.create(user=user, name=name, prefix=raw[:12], key_hash=cls.hash_key(raw))
        return key, raw

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
