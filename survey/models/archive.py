"""Units, nights, night folders and frames: the catalogue of raw files."""
from __future__ import annotations

import logging
from typing import Any

from django.db import models
from django.db.models import Q

from rawdata.header import merge_cards
from survey.models.fields import HeaderJSONField

log = logging.getLogger(__name__)


class Unit(models.Model):
    """One telescope of the array, named as its folder: 7DT01..7DT20."""

    name = models.CharField(max_length=8, unique=True)
    dir_name = models.CharField(max_length=16, blank=True, help_text="Folder name as found (e.g. 7DT-01).")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Night(models.Model):
    """An observing night, keyed by the local evening date (UTC of exposure start minus 15 h)."""

    date = models.DateField(unique=True)

    class Meta:
        ordering = ["-date"]

    def __str__(self) -> str:
        return self.date.isoformat()


class NightFolder(models.Model):
    """One `<unit>/<YYYY-MM-DD[_tags]>` folder; also the monitor's durable state for that folder."""

    class State(models.TextChoices):
        NEW = "new"
        SETTLING = "settling"
        STABLE = "stable"
        INGESTING = "ingesting"
        INGESTED = "ingested"
        FAILED = "failed"

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="folders")
    night = models.ForeignKey(Night, on_delete=models.PROTECT, related_name="folders", null=True, blank=True)
    name = models.CharField(max_length=128)
    path = models.CharField(max_length=1024, unique=True)
    gain = models.IntegerField(null=True, blank=True)
    binning = models.SmallIntegerField(null=True, blank=True)
    is_too = models.BooleanField(default=False)
    is_test = models.BooleanField(default=False)
    tags = models.JSONField(default=list, blank=True)
    valid = models.BooleanField(default=True)
    problems = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.NEW, db_index=True)
    # Fingerprint of the folder at the last scan: cheap to compute, changes whenever a transfer is active.
    file_count = models.IntegerField(default=0)
    total_bytes = models.BigIntegerField(default=0)
    newest_mtime_ns = models.BigIntegerField(default=0)
    dir_mtime_ns = models.BigIntegerField(default=0)
    fingerprint_changed_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    ingested_fingerprint = models.CharField(max_length=80, blank=True)
    ingested_at = models.DateTimeField(null=True, blank=True)
    state_detail = models.TextField(blank=True)
    present = models.BooleanField(default=True)
    discovered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-night__date", "unit__name", "name"]
        constraints = [models.UniqueConstraint(fields=["unit", "name"], name="folder_unique_per_unit")]

    def __str__(self) -> str:
        return f"{self.unit.name}/{self.name}"

    @property
    def fingerprint(self) -> str:
        return f"{self.file_count}:{self.total_bytes}:{self.newest_mtime_ns}"


class Frame(models.Model):
    """One raw FITS file. `path` is unique, so a frame can never be catalogued twice."""

    class ImageType(models.TextChoices):
        BIAS = "bias"
        DARK = "dark"
        FLAT = "flat"
        SCIENCE = "science"

    class Checksum(models.TextChoices):
        UNKNOWN = "unknown", "not checked"
        NO_HASH = "no_hash", "no allfiles.hash entry"
        OK = "ok", "matches allfiles.hash"
        MISMATCH = "mismatch", "differs from allfiles.hash"

    # Indexes and constraints of this table are paid on every ingested row (~20 indexes cost as much
    # as the rest of a row's insert): each one below is used by a search or a statistic, and no
    # single-column index repeats the leading column of a composite one. `unit` and `night` are copies of the folder's, written
    # together with it by the ingest writer, so their database-level constraint triggers (a lookup
    # per row each) are left out, as for `run`; Django still applies on_delete.
    path = models.CharField(max_length=1024)
    filename = models.CharField(max_length=255)
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="frames", db_constraint=False)
    night = models.ForeignKey(Night, on_delete=models.PROTECT, related_name="frames", db_constraint=False, db_index=False)
    folder = models.ForeignKey(NightFolder, on_delete=models.PROTECT, related_name="frames", db_index=False)
    image_type = models.CharField(max_length=8, choices=ImageType.choices)
    type_source = models.CharField(max_length=10, blank=True)
    excluded_by = models.CharField(max_length=64, blank=True, help_text="Rule that excluded this frame, if any.")
    object = models.CharField(max_length=80, blank=True)
    program = models.CharField(max_length=24, blank=True, help_text="OBJTYPE: RIS, IMS, WTS, ToO, ...")
    target = models.ForeignKey(
        "survey.Target", on_delete=models.SET_NULL, null=True, blank=True, related_name="frames", db_index=False
    )
    tile = models.ForeignKey("survey.Tile", on_delete=models.SET_NULL, null=True, blank=True, related_name="frames", db_index=False)
    filter = models.CharField(max_length=16, blank=True)
    exptime = models.FloatField(null=True, blank=True)
    date_obs = models.DateTimeField(null=True, blank=True)
    mjd = models.FloatField(null=True, blank=True)
    gain = models.IntegerField(null=True, blank=True)
    binning = models.SmallIntegerField(null=True, blank=True)
    ccd_temp = models.FloatField(null=True, blank=True)
    camera = models.CharField(max_length=64, blank=True)
    ra = models.FloatField(null=True, blank=True, help_text="Telescope pointing, degrees.")
    dec = models.FloatField(null=True, blank=True)
    obj_ra = models.FloatField(null=True, blank=True, help_text="Requested target position, degrees.")
    obj_dec = models.FloatField(null=True, blank=True)
    airmass = models.FloatField(null=True, blank=True)
    naxis1 = models.IntegerField(null=True, blank=True)
    naxis2 = models.IntegerField(null=True, blank=True)
    image_id = models.CharField(max_length=64, blank=True)
    is_too = models.BooleanField(default=False)
    is_shift = models.BooleanField(default=False)
    software = models.CharField(max_length=8, blank=True)
    name_family = models.CharField(max_length=12, blank=True)
    sequence = models.IntegerField(null=True, blank=True)
    obsnote = models.CharField(max_length=255, blank=True)
    # Conditions (normalised units: arcsec, mag/arcsec^2, fraction 0..1, %, m/s).
    seeing = models.FloatField(null=True, blank=True)
    sky_brightness = models.FloatField(null=True, blank=True)
    cloud_frac = models.FloatField(null=True, blank=True)
    humidity = models.FloatField(null=True, blank=True)
    wind_speed = models.FloatField(null=True, blank=True)
    pointing_offset = models.FloatField(null=True, blank=True, help_text="Degrees from the tile centre.")
    pointing_warning = models.BooleanField(default=False)
    file_size = models.BigIntegerField()
    file_mtime_ns = models.BigIntegerField()
    checksum = models.CharField(max_length=8, choices=Checksum.choices, default=Checksum.UNKNOWN)
    present = models.BooleanField(default=True, help_text="False once the file vanished from disk.")
    ingested_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    # Provenance (the API can list a run's frames): indexed, but no constraint trigger per row.
    run = models.ForeignKey(
        "survey.IngestRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_constraint=False
    )

    class Meta:
        ordering = ["date_obs", "id"]
        # Plain B-tree indexes (not unique=True/db_index=True, which on PostgreSQL add a second
        # varchar_pattern_ops index per column for LIKE 'prefix%', a search nobody makes on frames).
        constraints = [models.UniqueConstraint(fields=["path"], name="frame_path_unique")]
        indexes = [
            models.Index(fields=["filename"], name="frame_filename"),
            models.Index(fields=["image_id"], name="frame_image_id"),
            models.Index(fields=["night", "unit"], name="frame_night_unit"),
            models.Index(fields=["date_obs", "id"], name="frame_dateobs_id"),
            models.Index(fields=["image_type", "date_obs"], name="frame_type_dateobs"),
            models.Index(fields=["filter", "date_obs"], name="frame_filter_dateobs"),
            models.Index(fields=["object"], name="frame_object"),
            models.Index(fields=["tile", "filter"], name="frame_tile_filter"),
            models.Index(fields=["target", "date_obs"], name="frame_target_dateobs"),
            models.Index(fields=["dec", "ra"], name="frame_dec_ra"),
            models.Index(fields=["folder", "filename"], name="frame_folder_filename"),
            # The pipeline's /api/frames/raw/ pages catalogued, present frames in (date_obs, id) order.
            models.Index(
                fields=["date_obs", "id"], name="frame_catalogued_dateobs", condition=Q(excluded_by="", present=True)
            ),
        ]

    def __str__(self) -> str:
        return self.filename


class HeaderLayout(models.Model):
    """Header cards that many frames share, stored once.

    Frames of one unit and writer repeat most of their ~180 cards byte for byte (all but time,
    pointing, target, focus and weather); the header parser (rawdata.header.Layout) says which. Stored
    whole, a header is ~6.5 KB of JSON per frame (~20 GB at 3 M frames) and most of an ingest's
    database work; as a layout plus the frame's ~40 changed cards it is ~0.9 KB. ``digest``
    identifies the cards (reader processes find layouts independently). SQL that reads
    ``survey_frameheader.cards`` directly must apply the layout's cards first (FrameHeader.full_cards).
    """

    digest = models.CharField(max_length=32, unique=True)
    cards = HeaderJSONField()

    def __str__(self) -> str:
        return f"layout {self.digest[:8]} ({len(self.cards)} cards)"


class FrameHeader(models.Model):
    """The full primary header as JSON, kept out of the hot frame table (as Gemini keeps full text apart).

    With a ``layout``, ``cards`` holds only the cards that differ from the layout's; :attr:`full_cards`
    is the whole header either way (the same keys, order and values as read from the file).
    """

    frame = models.OneToOneField(Frame, on_delete=models.CASCADE, primary_key=True, related_name="header")
    # No database constraint and no index (as Frame.unit): the ingest writes headers in bulk and never
    # looks frames up by layout; layouts are never deleted.
    layout = models.ForeignKey(
        HeaderLayout, null=True, blank=True, on_delete=models.PROTECT, db_constraint=False, db_index=False, related_name="+"
    )
    cards = HeaderJSONField()

    @property
    def full_cards(self) -> dict[str, Any]:
        """Every card of the header, in file order.

        A layout row gone missing (a partial restore, a manual delete) makes the header unavailable
        (``FrameHeader.DoesNotExist``, as for a frame without one), never a header shown in part."""
        if self.layout_id is None:
            return self.cards
        try:
            layout = self.layout  # (None when select_related found no row: there is no constraint)
        except HeaderLayout.DoesNotExist:
            layout = None
        if layout is None:
            log.error("frame %s: header layout %s is missing; its header cannot be shown", self.frame_id, self.layout_id)
            raise FrameHeader.DoesNotExist(f"the header layout of frame {self.frame_id} is missing")
        return merge_cards(layout.cards, self.cards)
