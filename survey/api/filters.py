"""Query-string filters (django-filter FilterSets) for the API.

One vocabulary for every frame endpoint: the parameter names the 7DT pipeline's client sends
(`date_start`, `night_date`, `unit_name`, `target_name`, `ra`/`dec`/`radius`, ...; see docs/api.md).
An invalid value is a 400 `{"error": "<param>: <why>"}`; a parameter no endpoint knows is ignored,
because the client sends a few that only make sense elsewhere (`data_stream`, `offset`, ...).
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone as dt_timezone

import django_filters as df
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError

from survey.api import sky
from survey.models import FileProblem, Frame, IngestRun, Night, NightFolder, NightUnitStats, Target, Tile, Unit

TILE_NAME_RE = re.compile(r"^T(\d+)$", re.IGNORECASE)
# Target types as the original portal spelled them (TOO|STD|EXSCI|TEST) and as we store them (Target.kind).
TARGET_TYPE_TO_KIND = {"too": "too", "std": "standard", "standard": "standard", "exsci": "named", "named": "named"}
KIND_TO_TARGET_TYPE = {"too": "TOO", "standard": "STD", "named": "EXSCI"}
IMAGE_TYPES = {c.value for c in Frame.ImageType}
EXPTIME_TOLERANCE = 1e-3  # seconds: headers carry 100.0 as 100.0000001 now and then


def normalise_tile_name(name: str) -> str | None:
    """`T1`, `t00001`, `T00001` -> `T00001`; anything else -> None."""
    m = TILE_NAME_RE.match(name.strip())
    return f"T{int(m.group(1)):05d}" if m else None


def split_list(value: str) -> list[str]:
    return [part.strip() for part in str(value).split(",") if part.strip()]


def wanted_image_types(value: str) -> set[str] | None:
    """The image types an `image_type=` value asks for (None: all of them); unknown ones are a 400.

    Shared by FrameFilter and the raw-frame list's cached count, so both read the parameter alike."""
    wanted = {v.lower() for v in split_list(value)}
    if "all" in wanted:
        return None
    unknown = wanted - IMAGE_TYPES
    if unknown:
        raise ValidationError({"image_type": f"{', '.join(sorted(unknown))} is not one of all, {', '.join(sorted(IMAGE_TYPES))}"})
    return wanted


# -- form fields -------------------------------------------------------------------------------
class IsoDateField(forms.Field):
    """`YYYY-MM-DD` (a whole UTC day) or an ISO datetime (an instant; naive means UTC)."""

    def __init__(self, *args, allow_datetime: bool = True, **kwargs) -> None:
        self.allow_datetime = allow_datetime
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
        if self.allow_datetime:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
            except ValueError:
                pass
            else:
                return moment if moment.tzinfo else moment.replace(tzinfo=dt_timezone.utc)
        raise forms.ValidationError(f"{text!r} is not a valid ISO date (YYYY-MM-DD)")


class FloatField(forms.FloatField):
    """A finite float with a message that names the value."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except forms.ValidationError:
            raise forms.ValidationError(f"{value!r} is not a number") from None


class TruthField(forms.Field):
    """true/false, 1/0, yes/no, on/off; anything else is an error (never silently false)."""

    TRUE = {"1", "true", "yes", "on", "t", "y"}
    FALSE = {"0", "false", "no", "off", "f", "n"}

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise forms.ValidationError(f"{value!r} is not a boolean (use true or false)")


class MultiValueWidget(forms.TextInput):
    """Hands the field every value of a repeated parameter (`polygon=1&polygon=2...`), a single one as is."""

    def value_from_datadict(self, data, files, name):
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        values = [v for v in values if v not in (None, "")]
        if not values:
            return None
        return values[0] if len(values) == 1 else values


class PolygonField(forms.Field):
    widget = MultiValueWidget

    def to_python(self, value):
        return value if value not in (None, "", []) else None


# -- filters -----------------------------------------------------------------------------------
@extend_schema_field(OpenApiTypes.DATE)
class IsoDateFilter(df.Filter):
    field_class = IsoDateField


@extend_schema_field(OpenApiTypes.DOUBLE)
class FloatFilter(df.Filter):
    field_class = FloatField


@extend_schema_field(OpenApiTypes.BOOL)
class TruthFilter(df.Filter):
    field_class = TruthField


@extend_schema_field(OpenApiTypes.STR)
class PolygonFilter(df.Filter):
    field_class = PolygonField


def _noop(queryset, name, value):
    """Spatial parameters are combined in `SpatialFilterSet.filter_queryset`, not one by one."""
    return queryset


def _day_start(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time.min, tzinfo=dt_timezone.utc)


def _day_end_exclusive(value: date | datetime) -> tuple[str, datetime]:
    """(lookup, bound): a date includes that whole UTC day; a datetime is an inclusive instant."""
    if isinstance(value, datetime):
        return "lte", value
    return "lt", datetime.combine(value + timedelta(days=1), time.min, tzinfo=dt_timezone.utc)


class SpatialForm(forms.Form):
    """Checks the spatial parameters together and leaves the search in `self.spatial`."""

    spatial: list

    def clean(self):
        data = super().clean()
        self.spatial = []
        if self.errors:
            return data
        ra, dec, gl, gb = (data.get(k) for k in ("ra", "dec", "gl", "gb"))
        radius, polygon = data.get("radius"), data.get("polygon")
        cs = (data.get("coord_sys") or "").strip().lower()
        if cs not in ("", "radec", "galactic"):
            self.add_error("coord_sys", f"{data.get('coord_sys')!r} is not radec or galactic")
            return data
        polygon_galactic = cs == "galactic"
        has_radec = ra is not None or dec is not None
        has_gal = gl is not None or gb is not None
        if not cs:
            cs = "galactic" if has_gal and not has_radec else "radec"
        # Without coord_sys, or when it names a system whose position is absent, use the position given.
        if cs == "radec" and not has_radec and has_gal:
            cs = "galactic"
        elif cs == "galactic" and not has_gal and has_radec:
            cs = "radec"
        lon, lat, lon_name, lat_name = (ra, dec, "ra", "dec") if cs == "radec" else (gl, gb, "gl", "gb")
        if (lon is None) != (lat is None):
            missing = lat_name if lat is None else lon_name
            self.add_error(missing, f"{lon_name} and {lat_name} must be given together")
            return data
        if lat is not None and not -90 <= lat <= 90:
            self.add_error(lat_name, f"{lat} is outside -90..90")
            return data
        if radius is not None:
            if radius < 0:
                self.add_error("radius", f"{radius} is negative")
                return data
            if radius > 180:
                self.add_error("radius", f"{radius} is larger than 180 degrees")
                return data
            if lon is None:
                self.add_error("radius", "a radius needs a position (ra and dec, or gl and gb)")
                return data
        if lon is not None:
            if cs == "galactic":
                lon, lat = (float(v) for v in sky.galactic_to_icrs(lon, lat))
            lon %= 360.0
            self.spatial.append(sky.Cone(lon, lat, radius) if radius is not None else sky.FieldPoint(lon, lat))
        if polygon is not None:
            try:
                self.spatial.append(sky.parse_polygon(polygon, galactic=polygon_galactic))
            except sky.SkyError as exc:
                self.add_error("polygon", str(exc))
        return data


class SpatialFilterSet(df.FilterSet):
    """Cone (`ra`, `dec`, `radius`), point-in-field (no radius) and polygon search, in radec or galactic."""

    coord_sys = df.CharFilter(
        method=_noop, help_text="Coordinate system of ra/dec or gl/gb and of polygon: radec (default) or galactic."
    )
    ra = FloatFilter(method=_noop, help_text="Right ascension of the search centre, degrees (ICRS).")
    dec = FloatFilter(method=_noop, help_text="Declination of the search centre, degrees.")
    gl = FloatFilter(method=_noop, help_text="Galactic longitude of the search centre, degrees.")
    gb = FloatFilter(method=_noop, help_text="Galactic latitude of the search centre, degrees.")
    radius = FloatFilter(
        method=_noop,
        help_text="Cone radius, degrees (0..180). Without it, a position selects the rows whose field "
        "(1.34 x 0.90 deg) contains it.",
    )
    polygon = PolygonFilter(
        method=_noop, help_text="JSON ring [[lon, lat], ...] (closed or not): rows whose position lies inside."
    )
    # Which columns hold the position (frames: telescope pointing, covered by the (dec, ra) index).
    ra_field = "ra"
    dec_field = "dec"

    class Meta:
        form = SpatialForm
        fields: list[str] = []

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        for search in getattr(self.form, "spatial", []):
            if isinstance(search, sky.Cone):
                queryset = sky.apply_cone(queryset, search, self.ra_field, self.dec_field)
            elif isinstance(search, sky.FieldPoint):
                queryset = sky.apply_field_point(queryset, search, self.ra_field, self.dec_field)
            else:
                queryset = sky.apply_polygon(queryset, search, self.ra_field, self.dec_field)
        return queryset


class FrameFilter(SpatialFilterSet):
    """Frames: the pipeline's parameters plus the portal's own (image_type, excluded, ...)."""

    days = FloatFilter(method="filter_days", min_value=0, help_text="Frames that started in the last N days.")
    date_start = IsoDateFilter(
        method="filter_date_start", help_text="DATE-OBS (UTC) on or after this date (YYYY-MM-DD) or instant."
    )
    date_end = IsoDateFilter(
        method="filter_date_end",
        help_text="DATE-OBS (UTC) up to the end of this day (inclusive: 2025-10-02 includes 2025-10-02T23:59:59), "
        "or up to this instant when a time is given.",
    )
    night_date = IsoDateFilter(
        method="filter_nights", lookup_expr="exact", allow_datetime=False, help_text="Night (local evening date)."
    )
    nightdate = IsoDateFilter(method="filter_nights", lookup_expr="exact", allow_datetime=False, help_text="Alias of night_date.")
    night_start = IsoDateFilter(method="filter_nights", lookup_expr="gte", allow_datetime=False)
    night_end = IsoDateFilter(method="filter_nights", lookup_expr="lte", allow_datetime=False)
    filter_name = df.CharFilter(method="filter_list", field_name="filter", help_text="Filter name(s), comma list.")
    unit_name = df.CharFilter(method="filter_units", help_text="Unit(s), e.g. 7DT01 or 7DT01,7DT02.")
    tile_name = df.CharFilter(method="filter_tiles", help_text="Tile(s) T#####, comma list.")
    target_name = df.CharFilter(
        method="filter_target_name",
        help_text="A name matching ^T\\d+$ selects by tile; anything else by target name (case-insensitive). "
        "Comma list allowed.",
    )
    target_name_contains = df.CharFilter(method="filter_target_contains")
    object_name = df.CharFilter(field_name="object", lookup_expr="icontains", help_text="OBJECT contains (any case).")
    obsnote_contains = df.CharFilter(method="filter_obsnote", help_text="OBSNOTE contains (any case).")
    target_type = df.CharFilter(
        method="filter_target_type",
        help_text="TOO (ToO frames), STD/EXSCI (target kind), or an OBJTYPE programme such as RIS, IMS, WTS.",
    )
    image_type = df.CharFilter(
        method="filter_image_type", help_text="bias, dark, flat, science (comma list) or all."
    )
    binning = df.CharFilter(method="filter_binning", help_text="1, 2, ... or 1x1, 2x2.")
    gain = df.NumberFilter(field_name="gain")
    camera_serial = df.CharFilter(field_name="camera", lookup_expr="iexact")
    exptime = FloatFilter(method="filter_exptime", help_text="Exposure time, seconds (+-1 ms).")
    min_exptime = FloatFilter(field_name="exptime", lookup_expr="gte")
    max_exptime = FloatFilter(field_name="exptime", lookup_expr="lte")
    excluded = TruthFilter(method="filter_excluded", help_text="true: only frames excluded by a rule; false: none.")
    present = TruthFilter(field_name="present")
    is_too = TruthFilter(field_name="is_too")
    checksum = df.ChoiceFilter(choices=Frame.Checksum.choices)
    software = df.CharFilter(field_name="software", lookup_expr="iexact")
    image_id = df.CharFilter(field_name="image_id")
    filename = df.CharFilter(field_name="filename", lookup_expr="icontains")
    folder = df.NumberFilter(field_name="folder_id")
    run = df.NumberFilter(field_name="run_id")

    class Meta(SpatialFilterSet.Meta):
        model = Frame

    def filter_days(self, qs, name, value):
        return qs.filter(date_obs__gte=timezone.now() - timedelta(days=value))

    def filter_date_start(self, qs, name, value):
        return qs.filter(date_obs__gte=_day_start(value))

    def filter_date_end(self, qs, name, value):
        lookup, bound = _day_end_exclusive(value)
        return qs.filter(**{f"date_obs__{lookup}": bound})

    def filter_list(self, qs, name, value):
        return qs.filter(**{f"{name}__in": split_list(value)})

    # Small lookup tables are resolved to id sub-queries, so the frame indexes (night, unit), (tile, filter)
    # are used directly instead of a join.
    def filter_nights(self, qs, name, value):
        lookup = self.filters[name].lookup_expr
        return qs.filter(night_id__in=Night.objects.filter(**{f"date__{lookup}": value}).values("id"))

    def filter_units(self, qs, name, value):
        return qs.filter(unit_id__in=Unit.objects.filter(name__in=[v.upper() for v in split_list(value)]).values("id"))

    def filter_tiles(self, qs, name, value):
        names = [normalise_tile_name(v) or v for v in split_list(value)]
        return qs.filter(tile_id__in=Tile.objects.filter(name__in=names).values("id"))

    def filter_target_name(self, qs, name, value):
        tiles, targets = [], []
        for item in split_list(value):
            tile = normalise_tile_name(item)
            (tiles if tile else targets).append(tile or item)
        cond = Q(pk__in=[])
        if tiles:
            cond |= Q(tile_id__in=Tile.objects.filter(name__in=tiles).values("id"))
        if targets:
            named = Q()
            for item in targets:
                named |= Q(name__iexact=item)
            cond |= Q(target_id__in=Target.objects.filter(named).values("id"))
        return qs.filter(cond)

    def filter_target_contains(self, qs, name, value):
        return qs.filter(
            Q(target_id__in=Target.objects.filter(name__icontains=value).values("id"))
            | Q(tile_id__in=Tile.objects.filter(name__icontains=value).values("id"))
        )

    def filter_obsnote(self, qs, name, value):
        # "Not empty" is implied by any match; said explicitly, it lets PostgreSQL use the trigram index
        # of the frames that have a note (migration 0007), not scan every frame.
        return qs.filter(obsnote__icontains=value).exclude(obsnote="")

    def filter_target_type(self, qs, name, value):
        kind_of = value.strip().lower()
        if kind_of == "too":
            return qs.filter(Q(is_too=True) | Q(program__iexact="too") | Q(target__kind=Target.Kind.TOO))
        if kind_of in TARGET_TYPE_TO_KIND:
            return qs.filter(target__kind=TARGET_TYPE_TO_KIND[kind_of])
        return qs.filter(program__iexact=value.strip())

    def filter_image_type(self, qs, name, value):
        wanted = wanted_image_types(value)
        return qs if wanted is None else qs.filter(image_type__in=wanted)

    def filter_binning(self, qs, name, value):
        m = re.fullmatch(r"\s*(\d+)(?:\s*x\s*(\d+))?\s*", value, re.IGNORECASE)
        if not m or (m.group(2) and m.group(2) != m.group(1)):
            raise ValidationError({"binning": f"{value!r} is not a binning such as 1 or 2x2"})
        return qs.filter(binning=int(m.group(1)))

    def filter_exptime(self, qs, name, value):
        return qs.filter(exptime__gte=value - EXPTIME_TOLERANCE, exptime__lte=value + EXPTIME_TOLERANCE)

    def filter_excluded(self, qs, name, value):
        return qs.exclude(excluded_by="") if value else qs.filter(excluded_by="")


class _ObservedFilterSet(SpatialFilterSet):
    """Tiles and targets: only those with catalogued science frames unless `all=true`."""

    all = TruthFilter(method=_noop, help_text="true: also tiles/targets without any catalogued science frame.")

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        if not self.form.cleaned_data.get("all"):
            queryset = queryset.filter(n_frames__gt=0)
        return super().filter_queryset(queryset)


class TileFilter(_ObservedFilterSet):
    tile_name = df.CharFilter(method="filter_names", help_text="Tile name(s), comma list (T12345,T12346).")
    name = df.CharFilter(method="filter_names", help_text="Alias of tile_name.")
    target_name = df.CharFilter(method="filter_names", help_text="Tile-like names (^T\\d+$) select tiles.")
    survey_program = df.CharFilter(field_name="programs", lookup_expr="icontains", help_text="RIS, IMS, WTS, ...")
    min_observations = df.NumberFilter(field_name="n_frames", lookup_expr="gte")

    class Meta(SpatialFilterSet.Meta):
        model = Tile

    def filter_names(self, qs, name, value):
        return qs.filter(name__in=[normalise_tile_name(v) or v for v in split_list(value)])


class TargetFilter(_ObservedFilterSet):
    target_name = df.CharFilter(method="filter_names", help_text="Target name(s) (case-insensitive), comma list.")
    name = df.CharFilter(method="filter_names", help_text="Alias of target_name.")
    target_name_contains = df.CharFilter(field_name="name", lookup_expr="icontains")
    target_type = df.CharFilter(method="filter_type", help_text="TOO, STD, EXSCI (or too, standard, named).")

    class Meta(SpatialFilterSet.Meta):
        model = Target

    def filter_names(self, qs, name, value):
        cond = Q(pk__in=[])
        for item in split_list(value):
            cond |= Q(name__iexact=item)
        return qs.filter(cond)

    def filter_type(self, qs, name, value):
        key = value.strip().lower()
        if key == "test":  # the original's TEST targets are excluded frames here: never a target type
            return qs.none()
        if key not in TARGET_TYPE_TO_KIND:
            raise ValidationError({"target_type": f"{value!r} is not one of TOO, STD, EXSCI, TEST"})
        return qs.filter(kind=TARGET_TYPE_TO_KIND[key])


# -- the portal's own resources ----------------------------------------------------------------
class NightFilter(df.FilterSet):
    date_start = IsoDateFilter(field_name="date", lookup_expr="gte", allow_datetime=False)
    date_end = IsoDateFilter(field_name="date", lookup_expr="lte", allow_datetime=False)
    unit_name = df.CharFilter(method="filter_units")

    class Meta:
        model = Night
        fields: list[str] = []

    def filter_units(self, qs, name, value):
        units = [v.upper() for v in split_list(value)]
        return qs.filter(id__in=NightUnitStats.objects.filter(unit__name__in=units).values("night_id"))


class NightUnitStatsFilter(df.FilterSet):
    night_date = IsoDateFilter(field_name="night__date", allow_datetime=False)
    date_start = IsoDateFilter(field_name="night__date", lookup_expr="gte", allow_datetime=False)
    date_end = IsoDateFilter(field_name="night__date", lookup_expr="lte", allow_datetime=False)
    unit_name = df.CharFilter(method="filter_units")

    class Meta:
        model = NightUnitStats
        fields: list[str] = []

    def filter_units(self, qs, name, value):
        return qs.filter(unit__name__in=[v.upper() for v in split_list(value)])


class IngestRunFilter(df.FilterSet):
    status = df.MultipleChoiceFilter(choices=IngestRun.Status.choices)
    trigger = df.CharFilter(field_name="trigger")
    date_start = IsoDateFilter(method="filter_start")
    date_end = IsoDateFilter(method="filter_end")

    class Meta:
        model = IngestRun
        fields: list[str] = []

    def filter_start(self, qs, name, value):
        return qs.filter(started_at__gte=_day_start(value))

    def filter_end(self, qs, name, value):
        lookup, bound = _day_end_exclusive(value)
        return qs.filter(**{f"started_at__{lookup}": bound})


class FileProblemFilter(df.FilterSet):
    reason = df.CharFilter(method="filter_reason", help_text="Reason code(s), comma list.")
    severity = df.ChoiceFilter(choices=FileProblem.Severity.choices)
    resolved = TruthFilter(field_name="resolved")
    unit_name = df.CharFilter(method="filter_units")
    night_date = IsoDateFilter(field_name="folder__night__date", allow_datetime=False)
    path_contains = df.CharFilter(field_name="path", lookup_expr="icontains")
    run = df.NumberFilter(field_name="run_id")

    class Meta:
        model = FileProblem
        fields: list[str] = []

    def filter_reason(self, qs, name, value):
        return qs.filter(reason__in=split_list(value))

    def filter_units(self, qs, name, value):
        return qs.filter(folder__unit__name__in=[v.upper() for v in split_list(value)])


class NightFolderFilter(df.FilterSet):
    unit_name = df.CharFilter(method="filter_units")
    night_date = IsoDateFilter(field_name="night__date", allow_datetime=False)
    date_start = IsoDateFilter(field_name="night__date", lookup_expr="gte", allow_datetime=False)
    date_end = IsoDateFilter(field_name="night__date", lookup_expr="lte", allow_datetime=False)
    state = df.MultipleChoiceFilter(choices=NightFolder.State.choices)
    present = TruthFilter(field_name="present")
    valid = TruthFilter(field_name="valid")
    is_too = TruthFilter(field_name="is_too")

    class Meta:
        model = NightFolder
        fields: list[str] = []

    def filter_units(self, qs, name, value):
        return qs.filter(unit__name__in=[v.upper() for v in split_list(value)])

