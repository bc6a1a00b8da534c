"""What frames point at: the 7DS tile grid and every other named target."""
from __future__ import annotations

from django.db import models


class Tile(models.Model):
    """A 7DS survey tile `T#####`; grid tiles carry their centre, names beyond the grid do not."""

    name = models.CharField(max_length=8, unique=True)
    index = models.IntegerField(unique=True)
    ra = models.FloatField(null=True, blank=True)
    dec = models.FloatField(null=True, blank=True)
    ring = models.SmallIntegerField(null=True, blank=True)
    extension = models.BooleanField(default=False, help_text="Northern extension (T25472 and up).")
    in_grid = models.BooleanField(default=True)
    # Progress kept current by the ingest for the tiles it touched.
    n_frames = models.IntegerField(default=0)
    n_nights = models.IntegerField(default=0)
    total_exptime = models.FloatField(default=0)
    n_filters = models.SmallIntegerField(default=0)
    first_night = models.DateField(null=True, blank=True)
    last_night = models.DateField(null=True, blank=True)
    programs = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["index"]
        indexes = [models.Index(fields=["dec", "ra"], name="tile_dec_ra")]

    def __str__(self) -> str:
        return self.name


class Target(models.Model):
    """A named target: standards, ToO events, galaxies, clusters (tiles live in `Tile`)."""

    class Kind(models.TextChoices):
        NAMED = "named"
        STANDARD = "standard"
        TOO = "too"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.NAMED)
    ra = models.FloatField(null=True, blank=True)
    dec = models.FloatField(null=True, blank=True)
    description = models.TextField(blank=True)
    n_frames = models.IntegerField(default=0)
    n_nights = models.IntegerField(default=0)
    total_exptime = models.FloatField(default=0)
    first_night = models.DateField(null=True, blank=True)
    last_night = models.DateField(null=True, blank=True)
    filters = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
