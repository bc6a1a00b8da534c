"""REST API views: the pipeline contract (`frames/raw/`, `tiles/`, `targets/` and the empty out-of-scope
endpoints) and the portal's own read-only resources. Every view needs an API key, a token or a session
(settings.REST_FRAMEWORK); none ever writes."""
from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import date

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import Count, F, IntegerField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView
from rest_framework import generics, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.renderers import JSONRenderer

from survey.api import filters, serializers
from survey.api.schema import ERROR_RESPONSES  # also registers the X-API-Key security scheme
from survey.models import FileProblem, Frame, IngestRun, Night, NightFolder, NightUnitStats, Target, Tile

log = logging.getLogger("survey.api")

FRAME_ORDER = (F("date_obs").asc(nulls_last=True), "id")


class StableOrderingFilter(OrderingFilter):
    """`ordering=` as DRF has it, with the primary key appended so pages never overlap or skip rows."""

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if ordering is None:
            return None
        ordering = list(ordering)
        if not any(str(o).lstrip("-") in ("id", "pk") for o in ordering):
            ordering.append("id")
        return ordering


# -- pipeline contract -------------------------------------------------------------------------
@extend_schema(tags=["pipeline"], responses={200: serializers.RawFrameSerializer(many=True), **ERROR_RESPONSES})
class RawFrameList(generics.ListAPIView):
    """Catalogued raw frames (`excluded_by` empty, file present), science only unless `image_type` is given;
    ordered by DATE-OBS then id."""

    serializer_class = serializers.RawFrameSerializer
    filterset_class = filters.FrameFilter
    #: The image types of an unnarrowed request (the whole catalogue of those types), else None.
    catalogue_types: frozenset[str] | None = None

    def get_queryset(self):
        qs = Frame.objects.filter(excluded_by="", present=True).select_related("unit", "night", "target", "tile")
        if not self.request.query_params.get("image_type", "").strip():
            qs = qs.filter(image_type=Frame.ImageType.SCIENCE)
        return qs.order_by(*FRAME_ORDER)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        filtered = super().filter_queryset(queryset)
        self.catalogue_types = self._unnarrowed_types(queryset, filtered)
        return filtered

    def _unnarrowed_types(self, base: QuerySet, filtered: QuerySet) -> frozenset[str] | None:
        """The image types when the filters left nothing but the type choice (same SQL as the base list).

        Comparing the compiled queries rather than the parameter names keeps this exact whatever the
        filter set learns later: any parameter that changes the rows makes the count a real COUNT(*)."""
        raw = self.request.query_params.get("image_type", "").strip()
        if not raw:
            types, expected = {Frame.ImageType.SCIENCE.value}, base
        else:
            wanted = filters.wanted_image_types(raw)
            types = set(filters.IMAGE_TYPES) if wanted is None else wanted
            expected = base if wanted is None else base.filter(image_type__in=wanted)
        return frozenset(types) if types and _same_sql(filtered, expected) else None

    def exact_count(self) -> int | None:
        """The list's exact length from the cached statistics (PortalPagination's COUNT(*) otherwise)."""
        return catalogued_frame_count(self.catalogue_types) if self.catalogue_types else None


def _same_sql(a: QuerySet, b: QuerySet) -> bool:
    try:
        return a.query.sql_with_params() == b.query.sql_with_params()
    except EmptyResultSet:
        return False


_STATS_COLUMN = {t.value: f"n_{t.value}" for t in Frame.ImageType}


def catalogued_frame_count(types: Collection[str]) -> int | None:
    """Exact number of catalogued frames (not excluded, file present) of `types`, without a COUNT(*) over
    the frame table (~1 s at 3 M rows), or None when the cached statistics may lag behind the frames.

    NightUnitStats counts exactly those rows per night and unit (survey.stats.CATALOGUED by image type);
    the ingest rewrites a night's figures after writing its frames and only then marks its folders
    'ingested'. So the figures are summed for every night whose folders are all ingested and present,
    and the frames of the other nights (folders new, settling, failed, gone from disk, and every night
    their frames fall on) are counted directly: a few thousand rows each. While an ingest runs, or a
    killed one left folders 'ingesting', frames may be half-written: None, and the caller counts.
    One statement, so that every part sees the same snapshot (~25 ms at 3 M frames, 20,000 stats rows).
    """
    columns = [_STATS_COLUMN[t] for t in sorted(types)]  # KeyError for an unknown type: never interpolated
    qn = connection.ops.quote_name
    frame, folder, stats, run = (qn(m._meta.db_table) for m in (Frame, NightFolder, NightUnitStats, IngestRun))
    if connection.vendor == "postgresql":  # an id array makes PostgreSQL use the indexes whatever it estimates
        in_folders = "= ANY(ARRAY(SELECT id FROM unsettled))"
        in_nights = "= ANY(ARRAY(SELECT night_id FROM unsettled_nights))"
    else:
        in_folders, in_nights = "IN (SELECT id FROM unsettled)", "IN (SELECT night_id FROM unsettled_nights)"
    sql = f"""
        WITH unsettled AS (
            SELECT id, night_id FROM {folder} WHERE state <> %s OR NOT present
        ), unsettled_nights AS (
            SELECT night_id FROM unsettled WHERE night_id IS NOT NULL
            UNION
            SELECT night_id FROM {frame} WHERE folder_id {in_folders}
        )
        SELECT
            (SELECT COUNT(*) FROM {run} WHERE status = %s) + (SELECT COUNT(*) FROM {folder} WHERE state = %s),
            (SELECT COALESCE(SUM({' + '.join(columns)}), 0) FROM {stats}
              WHERE night_id NOT IN (SELECT night_id FROM unsettled_nights)),
            (SELECT COUNT(*) FROM {frame}
              WHERE excluded_by = '' AND present AND image_type IN ({', '.join(['%s'] * len(columns))})
                AND night_id {in_nights})
    """  # noqa: S608 - table and column names come from the models, values are parameters
    params = [NightFolder.State.INGESTED.value, IngestRun.Status.RUNNING.value, NightFolder.State.INGESTING.value,
              *sorted(types)]
    with transaction.atomic(), connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET LOCAL jit = off")  # compiling would cost ~40 ms, more than running this plan
        cur.execute(sql, params)
        busy, summed, counted = cur.fetchone()
    if busy:
        log.debug("raw frame count: an ingest is running or unfinished, counting the frame table")
        return None
    return int(summed) + int(counted)


@extend_schema(tags=["pipeline"], responses={200: serializers.TileSerializer(many=True), **ERROR_RESPONSES})
class TileList(generics.ListAPIView):
    """7DS tiles that have catalogued science frames (all grid tiles with `all=true`), ordered by name."""

    serializer_class = serializers.TileSerializer
    filterset_class = filters.TileFilter
    queryset = Tile.objects.order_by("name", "id")


@extend_schema(tags=["pipeline"], responses={200: serializers.TargetSerializer(many=True), **ERROR_RESPONSES})
class TargetList(generics.ListAPIView):
    """Named targets (standards, ToO events, galaxies...) with catalogued science frames, ordered by name."""

    serializer_class = serializers.TargetSerializer
    filterset_class = filters.TargetFilter
    queryset = Target.objects.order_by("name", "id")


@extend_schema(tags=["pipeline"], responses={200: serializers.EmptySerializer(many=True), **ERROR_RESPONSES})
class OutOfScopeList(generics.ListAPIView):
    """Processed, combined and master-calibration products are made by the pipeline, not by this raw
    archive: a valid empty page, so a client's loop ends cleanly instead of failing."""

    serializer_class = serializers.EmptySerializer
    queryset = Frame.objects.none()
    filter_backends: list = []


class SchemaView(SpectacularAPIView):
    """The OpenAPI document: JSON by default (`?format=yaml` or `Accept: application/vnd.oai.openapi` for
    YAML); a refusal is plain `{"error": ...}` JSON whatever format was asked for."""

    renderer_classes = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return response


# -- the portal's own resources ----------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(
        tags=["frames"],
        parameters=[OpenApiParameter("ordering", str, description="e.g. -date_obs, exptime, filename, unit__name")],
        responses={200: serializers.FrameSerializer(many=True), **ERROR_RESPONSES},
    ),
    retrieve=extend_schema(tags=["frames"], responses={200: serializers.FrameDetailSerializer, 401: ERROR_RESPONSES[401]}),
)
class FrameViewSet(viewsets.ReadOnlyModelViewSet):
    """Every catalogued file, excluded and vanished ones included (filter with `excluded`, `present`)."""

    filterset_class = filters.FrameFilter
    filter_backends = [*generics.ListAPIView.filter_backends, StableOrderingFilter]
    ordering_fields = [
        "date_obs", "id", "filename", "exptime", "filter", "object", "image_type", "unit__name", "night__date",
        "file_size", "airmass", "seeing", "mjd",
    ]  # fmt: skip
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        qs = Frame.objects.select_related("unit", "night", "folder", "target", "tile")
        if self.action == "retrieve":
            qs = qs.select_related("header__layout")
        return qs.order_by(*FRAME_ORDER)

    def get_serializer_class(self):
        return serializers.FrameDetailSerializer if self.action == "retrieve" else serializers.FrameSerializer


def _night_totals(qs):
    def total(field):
        return Coalesce(Sum(f"unit_stats__{field}"), Value(0), output_field=IntegerField())

    return qs.annotate(
        n_units=Count("unit_stats"),
        n_science=total("n_science"), n_bias=total("n_bias"), n_dark=total("n_dark"), n_flat=total("n_flat"),
        n_excluded=total("n_excluded"), n_problems=total("n_problems"), n_missing=total("n_missing"),
        total_bytes=total("total_bytes"),
        science_exptime=Coalesce(Sum("unit_stats__science_exptime"), Value(0.0)),
    )  # fmt: skip


@extend_schema_view(
    list=extend_schema(tags=["nights"], responses={200: serializers.NightSerializer(many=True), **ERROR_RESPONSES}),
    retrieve=extend_schema(tags=["nights"], responses={200: serializers.NightDetailSerializer, **ERROR_RESPONSES}),
)
class NightViewSet(viewsets.ReadOnlyModelViewSet):
    """Nights (local evening date) with totals over units, newest first; `/api/nights/<date>/` per unit."""

    filterset_class = filters.NightFilter
    lookup_field = "date"
    lookup_value_regex = r"[^/]+"  # anything: a malformed date is a 400 naming it, not an HTML 404

    def get_queryset(self):
        return _night_totals(Night.objects.all()).order_by("-date")

    def get_serializer_class(self):
        return serializers.NightDetailSerializer if self.action == "retrieve" else serializers.NightSerializer

    def get_object(self):
        raw = self.kwargs["date"]
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise ValidationError({"date": f"{raw!r} is not a valid ISO date (YYYY-MM-DD)"}) from None
        qs = self.get_queryset().prefetch_related("unit_stats__unit", "unit_stats__night", "folders__unit", "folders__night")
        night = get_object_or_404(qs, date=day)
        self.check_object_permissions(self.request, night)
        return night


@extend_schema(tags=["operations"])
class IngestRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Ingest runs, newest first: trigger, arguments, counts, throughput, resources, outcome."""

    serializer_class = serializers.IngestRunSerializer
    filterset_class = filters.IngestRunFilter
    queryset = IngestRun.objects.order_by("-started_at", "-id")


@extend_schema(tags=["operations"])
class FileProblemViewSet(viewsets.ReadOnlyModelViewSet):
    """Files that could not be catalogued (or deserve a look), with their reason code."""

    serializer_class = serializers.FileProblemSerializer
    filterset_class = filters.FileProblemFilter
    queryset = FileProblem.objects.select_related("folder__unit", "folder__night").order_by("-last_seen", "-id")


@extend_schema(tags=["nights"])
class NightUnitStatsViewSet(viewsets.ReadOnlyModelViewSet):
    """Per night and unit: frames by type, excluded, problems, missing, bytes, exposure, by filter."""

    serializer_class = serializers.NightUnitStatsSerializer
    filterset_class = filters.NightUnitStatsFilter
    queryset = NightUnitStats.objects.select_related("night", "unit").order_by("-night__date", "unit__name", "id")


@extend_schema(tags=["nights"])
class NightFolderViewSet(viewsets.ReadOnlyModelViewSet):
    """Night folders as found on disk, with the monitor's state for each."""

    serializer_class = serializers.NightFolderSerializer
    filterset_class = filters.NightFolderFilter
    queryset = NightFolder.objects.select_related("unit", "night").order_by("-night__date", "unit__name", "name", "id")
