"""Row shapes. The pipeline-contract rows (raw frames, tiles, targets) keep the field names of
`reference/original-gwportal.md` 4.1 exactly; the portal's own resources show our model as it is."""
from __future__ import annotations

from rest_framework import serializers

from survey.api.filters import KIND_TO_TARGET_TYPE
from survey.api.sky import FIELD_AREA_SQ_DEG, icrs_to_galactic
from survey.models import FileProblem, Frame, FrameHeader, IngestRun, Night, NightFolder, NightUnitStats, Target, Tile


def _blank_to_none(value: str | None) -> str | None:
    return value or None


def unified_filename(frame: Frame) -> str | None:
    """The original's normalised name: unit_YYYYMMDD_HHMMSS_<tile|target|object>_<filter>_<bin>x<bin>_<exp>s_<seq>.fits.

    Old NINA-era names become comparable with TCSpy ones (which already have this shape)."""
    if frame.date_obs is None:
        return None
    what = (frame.tile.name if frame.tile_id else frame.target.name if frame.target_id else frame.object) or frame.image_type
    what = what.replace(" ", "")
    binning = frame.binning or 1
    exptime = f"{frame.exptime:.1f}s" if frame.exptime is not None else "0.0s"
    seq = f"{frame.sequence or 0:04d}"
    return (
        f"{frame.unit.name}_{frame.date_obs:%Y%m%d_%H%M%S}_{what}_{frame.filter or 'none'}_"
        f"{binning}x{binning}_{exptime}_{seq}.fits"
    )


class GalacticListSerializer(serializers.ListSerializer):
    """Computes l/b for a whole page in one astropy call (per row it would cost ~1 ms each)."""

    def to_representation(self, data):
        rows = list(data.all() if hasattr(data, "all") else data)
        lon, lat = icrs_to_galactic([r.ra for r in rows], [r.dec for r in rows])
        self.child.context["galactic"] = {r.pk: (lon[i], lat[i]) for i, r in enumerate(rows)}
        return [self.child.to_representation(r) for r in rows]


class _GalacticMixin(serializers.Serializer):
    l = serializers.SerializerMethodField(help_text="Galactic longitude, degrees.")  # noqa: E741
    b = serializers.SerializerMethodField(help_text="Galactic latitude, degrees.")

    def _lb(self, obj) -> tuple[float | None, float | None]:
        cached = self.context.get("galactic", {}).get(obj.pk)
        if cached is None:
            lon, lat = icrs_to_galactic([obj.ra], [obj.dec])
            cached = (lon[0], lat[0])
        return cached

    def get_l(self, obj) -> float | None:
        return self._lb(obj)[0]

    def get_b(self, obj) -> float | None:
        return self._lb(obj)[1]


# -- pipeline contract -------------------------------------------------------------------------
class RawFrameSerializer(serializers.ModelSerializer):
    """`/api/frames/raw/` rows: the lean set the pipeline reads, plus a few extras it ignores."""

    filepath = serializers.CharField(source="path", help_text="Absolute path on the shared file system.")
    unified_filename = serializers.SerializerMethodField()
    obstime = serializers.DateTimeField(source="date_obs", allow_null=True, help_text="DATE-OBS, UTC.")
    object_name = serializers.CharField(source="object")
    object_type = serializers.SerializerMethodField(help_text="OBJTYPE (RIS, IMS, ToO...); the frame type for calibrations.")
    object_ra = serializers.FloatField(source="obj_ra", allow_null=True)
    object_dec = serializers.FloatField(source="obj_dec", allow_null=True)
    unit = serializers.CharField(source="unit.name")
    filter = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()
    tile = serializers.SerializerMethodField()
    night = serializers.DateField(source="night.date")

    class Meta:
        model = Frame
        fields = [
            "id", "filename", "filepath", "unified_filename", "obstime", "mjd", "exptime", "airmass", "seeing",
            "object_name", "object_type", "object_ra", "object_dec", "obsnote", "unit", "filter", "target", "tile",
            "night",
            # extras
            "image_type", "image_id", "gain", "binning", "camera", "ra", "dec", "is_too", "file_size", "checksum",
        ]  # fmt: skip

    def get_unified_filename(self, obj) -> str | None:
        return unified_filename(obj)

    def get_object_type(self, obj) -> str | None:
        if obj.image_type != Frame.ImageType.SCIENCE:
            return obj.image_type.upper()
        return obj.program or None

    def get_filter(self, obj) -> str | None:
        return _blank_to_none(obj.filter)

    def get_target(self, obj) -> str | None:
        return obj.target.name if obj.target_id else None

    def get_tile(self, obj) -> str | None:
        return obj.tile.name if obj.tile_id else None


class TileSerializer(_GalacticMixin, serializers.ModelSerializer):
    """`/api/tiles/` rows (field names of the original portal's Tile)."""

    priority = serializers.SerializerMethodField(help_text="Not kept by this archive: always null.")
    survey_program = serializers.SerializerMethodField(help_text="Programmes (OBJTYPE) seen on the tile, comma list.")
    area_sq_deg = serializers.SerializerMethodField(help_text="Area of one 7DT field (1.34 x 0.90 deg).")
    observation_count = serializers.IntegerField(source="n_frames", help_text="Catalogued science frames.")
    total_exposure_time = serializers.FloatField(source="total_exptime", help_text="Seconds.")
    first_observed = serializers.DateField(source="first_night", allow_null=True, help_text="First night.")
    last_observed = serializers.DateField(source="last_night", allow_null=True, help_text="Last night.")

    class Meta:
        model = Tile
        list_serializer_class = GalacticListSerializer
        fields = [
            "id", "name", "ra", "dec", "l", "b", "priority", "survey_program", "area_sq_deg", "observation_count",
            "total_exposure_time", "first_observed", "last_observed",
            # extras
            "n_nights", "n_filters", "programs", "ring", "in_grid", "extension",
        ]  # fmt: skip

    def get_priority(self, obj) -> int | None:
        return None

    def get_survey_program(self, obj) -> str | None:
        return ",".join(obj.programs) if obj.programs else None

    def get_area_sq_deg(self, obj) -> float:
        return FIELD_AREA_SQ_DEG


class TargetSerializer(_GalacticMixin, serializers.ModelSerializer):
    """`/api/targets/` rows."""

    target_type = serializers.SerializerMethodField(help_text="TOO, STD or EXSCI (the original's names).")
    area_sq_deg = serializers.SerializerMethodField()
    observation_count = serializers.IntegerField(source="n_frames")
    total_exposure_time = serializers.FloatField(source="total_exptime")
    first_observed = serializers.DateField(source="first_night", allow_null=True)
    last_observed = serializers.DateField(source="last_night", allow_null=True)

    class Meta:
        model = Target
        list_serializer_class = GalacticListSerializer
        fields = [
            "id", "name", "ra", "dec", "l", "b", "target_type", "description", "area_sq_deg", "observation_count",
            "total_exposure_time", "first_observed", "last_observed",
            # extras
            "kind", "n_nights", "filters",
        ]  # fmt: skip

    def get_target_type(self, obj) -> str:
        return KIND_TO_TARGET_TYPE.get(obj.kind, obj.kind.upper())

    def get_area_sq_deg(self, obj) -> float:
        return FIELD_AREA_SQ_DEG


class EmptySerializer(serializers.Serializer):
    """Rows of the endpoints this raw archive does not produce (processed, combined, masters)."""


# -- the portal's own resources ----------------------------------------------------------------
class FrameSerializer(serializers.ModelSerializer):
    unit = serializers.CharField(source="unit.name")
    night = serializers.DateField(source="night.date")
    folder = serializers.CharField(source="folder.name")
    target = serializers.SerializerMethodField()
    tile = serializers.SerializerMethodField()
    url = serializers.HyperlinkedIdentityField(view_name="api-frame-detail")

    class Meta:
        model = Frame
        exclude = ["run"]

    def get_target(self, obj) -> str | None:
        return obj.target.name if obj.target_id else None

    def get_tile(self, obj) -> str | None:
        return obj.tile.name if obj.tile_id else None


class FrameDetailSerializer(FrameSerializer):
    run = serializers.PrimaryKeyRelatedField(read_only=True)
    folder_path = serializers.CharField(source="folder.path")
    header = serializers.SerializerMethodField(help_text="Every primary-header card, as JSON.")

    class Meta(FrameSerializer.Meta):
        exclude = []

    def get_header(self, obj) -> dict | None:
        try:
            return obj.header.full_cards
        except FrameHeader.DoesNotExist:  # none stored (RelatedObjectDoesNotExist), or its layout is gone
            return None


class NightSerializer(serializers.ModelSerializer):
    n_units = serializers.IntegerField()
    n_science = serializers.IntegerField()
    n_bias = serializers.IntegerField()
    n_dark = serializers.IntegerField()
    n_flat = serializers.IntegerField()
    n_excluded = serializers.IntegerField()
    n_problems = serializers.IntegerField()
    n_missing = serializers.IntegerField()
    total_bytes = serializers.IntegerField()
    science_exptime = serializers.FloatField()
    url = serializers.HyperlinkedIdentityField(view_name="api-night-detail", lookup_field="date")

    class Meta:
        model = Night
        fields = [
            "date", "n_units", "n_science", "n_bias", "n_dark", "n_flat", "n_excluded", "n_problems", "n_missing",
            "total_bytes", "science_exptime", "url",
        ]  # fmt: skip


class NightUnitStatsSerializer(serializers.ModelSerializer):
    night = serializers.DateField(source="night.date")
    unit = serializers.CharField(source="unit.name")
    n_frames = serializers.IntegerField(read_only=True)

    class Meta:
        model = NightUnitStats
        fields = [
            "id", "night", "unit", "n_frames", "n_bias", "n_dark", "n_flat", "n_science", "n_excluded", "n_problems",
            "n_missing", "total_bytes", "science_exptime", "n_tiles", "by_filter", "conditions", "updated_at",
        ]  # fmt: skip


class NightFolderSerializer(serializers.ModelSerializer):
    unit = serializers.CharField(source="unit.name")
    night = serializers.SerializerMethodField()

    class Meta:
        model = NightFolder
        fields = "__all__"

    def get_night(self, obj) -> str | None:
        return obj.night.date.isoformat() if obj.night_id else None


class NightDetailSerializer(NightSerializer):
    units = NightUnitStatsSerializer(source="unit_stats", many=True, read_only=True)
    folders = NightFolderSerializer(many=True, read_only=True)

    class Meta(NightSerializer.Meta):
        fields = NightSerializer.Meta.fields + ["units", "folders"]


class IngestRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = IngestRun
        fields = "__all__"


class FileProblemSerializer(serializers.ModelSerializer):
    unit = serializers.SerializerMethodField()
    night = serializers.SerializerMethodField()
    folder_path = serializers.SerializerMethodField()

    class Meta:
        model = FileProblem
        fields = "__all__"

    def get_unit(self, obj) -> str | None:
        return obj.folder.unit.name if obj.folder_id else None

    def get_night(self, obj) -> str | None:
        return obj.folder.night.date.isoformat() if obj.folder_id and obj.folder.night_id else None

    def get_folder_path(self, obj) -> str | None:
        return obj.folder.path if obj.folder_id else None
