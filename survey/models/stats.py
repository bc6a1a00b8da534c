"""Statistics the ingest keeps current, so pages never aggregate millions of rows per request."""
from __future__ import annotations

from django.db import models


class NightUnitStats(models.Model):
    """Counts for one night and unit, refreshed for the nights an ingest touched."""

    night = models.ForeignKey("survey.Night", on_delete=models.CASCADE, related_name="unit_stats")
    unit = models.ForeignKey("survey.Unit", on_delete=models.CASCADE, related_name="night_stats")
    n_bias = models.IntegerField(default=0)
    n_dark = models.IntegerField(default=0)
    n_flat = models.IntegerField(default=0)
    n_science = models.IntegerField(default=0)
    n_excluded = models.IntegerField(default=0)
    n_problems = models.IntegerField(default=0)
    n_missing = models.IntegerField(default=0)
    total_bytes = models.BigIntegerField(default=0)
    science_exptime = models.FloatField(default=0)
    n_tiles = models.IntegerField(default=0)
    by_filter = models.JSONField(default=dict, blank=True)
    conditions = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-night__date", "unit__name"]
        constraints = [models.UniqueConstraint(fields=["night", "unit"], name="stats_unique_night_unit")]

    @property
    def n_frames(self) -> int:
        return self.n_bias + self.n_dark + self.n_flat + self.n_science


class TileFilterProgress(models.Model):
    """Survey progress per tile x filter: frames, exposure, nights, first and last night."""

    tile = models.ForeignKey("survey.Tile", on_delete=models.CASCADE, related_name="progress")
    filter = models.CharField(max_length=16)
    n_frames = models.IntegerField(default=0)
    total_exptime = models.FloatField(default=0)
    n_nights = models.IntegerField(default=0)
    first_night = models.DateField(null=True, blank=True)
    last_night = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["tile__index", "filter"]
        constraints = [models.UniqueConstraint(fields=["tile", "filter"], name="progress_unique_tile_filter")]


class PublicSnapshot(models.Model):
    """A precomputed public payload (`/status/`, `/tiles/`): refreshed after ingest or every ~15 min."""

    name = models.CharField(max_length=32, unique=True)
    payload = models.JSONField(default=dict)
    generated_at = models.DateTimeField()
