"""REST endpoints of the survey status work: matching calibration frames of a frame, calibration gaps.

Authenticated like the rest of the API (X-API-Key, token or session); errors are `{"error": ...}`.
The views are exempt from the login middleware's redirect because DRF authenticates them itself.
"""
from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_not_required
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from rawdata.folders import parse_unit_dir
from survey.api.pagination import PortalPagination
from survey.calibration import CalibrationRules, calibration_gaps, frame_calibrations
from survey.models import Frame

MAX_GAP_RANGE_DAYS = 3660
RULE_PARAMETERS = [
    OpenApiParameter("bias_window", OpenApiTypes.INT, description="Nights either side searched for bias (default CALIB_WINDOW_BIAS, 7)."),
    OpenApiParameter("dark_window", OpenApiTypes.INT, description="Nights either side searched for darks (default CALIB_WINDOW_DARK, 7)."),
    OpenApiParameter("flat_window", OpenApiTypes.INT, description="Nights either side searched for flats (default CALIB_WINDOW_FLAT, 3)."),
    OpenApiParameter("min_frames", OpenApiTypes.INT, description="Frames a group needs (default 5, NUM_MIN_CALIB)."),
    OpenApiParameter("dark_exptime", OpenApiTypes.STR, enum=["nearest", "exact"], description="Accept darks of another exposure time (scaled) or not."),
]


def _rules(request) -> CalibrationRules:
    """Rules from settings, with optional per-request windows (``bias_window`` etc., nights)."""
    overrides = {}
    for key in ("bias_window", "dark_window", "flat_window", "min_frames"):
        if key in request.query_params:
            try:
                overrides[key] = int(request.query_params[key])
            except ValueError as exc:
                raise ValidationError(f"{key} must be an integer") from exc
    if "dark_exptime" in request.query_params:
        overrides["dark_exptime"] = request.query_params["dark_exptime"]
    try:
        return CalibrationRules.from_settings(**overrides)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


class FrameCalibrationsView(APIView):
    """`GET /api/frames/<id>/calibrations/`: the bias, dark and flat frames the pipeline would use for a frame.

    For each kind the frame needs (science: bias, dark, flat; flat: bias, dark; dark and bias: bias) the
    group on the frame's night, else on the nearest night within the window, with its member frames.
    """

    @extend_schema(parameters=RULE_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request, pk: int):
        frame = get_object_or_404(Frame.objects.select_related("unit", "night"), pk=pk)
        return Response(frame_calibrations(frame, _rules(request)))


class GapQuery(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    unit = serializers.CharField(required=False)
    include_fallback = serializers.BooleanField(required=False, default=False)

    def validate_unit(self, value: str) -> str:
        unit = parse_unit_dir(value.upper())
        if unit is None:
            raise serializers.ValidationError(f"not a unit name like 7DT01: {value!r}")
        return unit

    def validate(self, attrs):
        start, end = attrs["start"], attrs["end"]
        if start > end:
            raise serializers.ValidationError("start is after end")
        if end - start > timedelta(days=MAX_GAP_RANGE_DAYS):
            raise serializers.ValidationError(f"range longer than {MAX_GAP_RANGE_DAYS} nights")
        return attrs


class CalibrationGapsView(APIView):
    """`GET /api/survey/calibration-gaps/?start=&end=[&unit=][&include_fallback=1]`: science setups that
    cannot be calibrated within the windows (and with include_fallback those that need another night)."""

    pagination_class = PortalPagination

    @extend_schema(parameters=[GapQuery, *RULE_PARAMETERS], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        query = GapQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        rules = _rules(request)
        units = [q["unit"]] if q.get("unit") else None
        rows = [r.as_dict() for r in calibration_gaps(q["start"], q["end"], units, rules, q["include_fallback"])]
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        response = paginator.get_paginated_response(page)
        response.data["rules"] = rules.as_dict()
        return response


frame_calibrations_view = login_not_required(FrameCalibrationsView.as_view())
calibration_gaps_view = login_not_required(CalibrationGapsView.as_view())
