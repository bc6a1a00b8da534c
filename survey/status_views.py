"""Survey status pages: the public `/status/` and `/tiles/` JSON, the survey map, tile and night status pages."""
from __future__ import annotations

from datetime import date

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.db.models import Count, Max, Min, Sum
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from rawdata import tiles as grid
from survey import status
from survey.models import Frame, Night, Tile, TileFilterProgress

MEASURES = {
    "filters": "number of filters",
    "nights": "number of nights",
    "last_night": "last night observed",
    "exptime": "total exposure (hours)",
}


def _public_json(request: HttpRequest, name: str) -> HttpResponse:
    """Serve a stored public payload; anonymous unless settings.GWPORTAL['PUBLIC_STATUS'] is False."""
    if not settings.GWPORTAL.get("PUBLIC_STATUS", True) and not request.user.is_authenticated:
        if "text/html" in request.headers.get("Accept", ""):
            return redirect_to_login(request.get_full_path())
        return JsonResponse({"error": "Authentication required: the public status is switched off."}, status=401)
    body, generated = status.snapshot_bytes(name)
    response = HttpResponse(body, content_type="application/json")
    response["Cache-Control"] = "public, max-age=60"
    response["Last-Modified"] = generated.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return response


@login_not_required
@require_GET
def public_status(request: HttpRequest) -> HttpResponse:
    """`GET /status/`: array-wide figures for the 7DS website (aggregates only)."""
    return _public_json(request, "status")


@login_not_required
@require_GET
def public_tiles(request: HttpRequest) -> HttpResponse:
    """`GET /tiles/`: one entry per observed tile for the website's sky map."""
    return _public_json(request, "tiles")


@require_GET
def survey_page(request: HttpRequest) -> HttpResponse:
    """All-sky coverage map (equal-area), per-filter and per-programme progress, IMS cycles, pointing warnings."""
    measure = request.GET.get("measure", "filters")
    if measure not in MEASURES:
        measure = "filters"
    data = status.get_snapshot("survey-map").payload
    public = status.get_snapshot("status").payload
    tiles_json = status.snapshot_script_json("survey-tiles")  # ~1 MB, encoded once per snapshot
    recent = list(
        Night.objects.filter(unit_stats__n_science__gt=0).distinct().order_by("-date").values_list("date", flat=True)[:14]
    )
    return render(request, "survey/status/survey.html", {
        "measure": measure,
        "measures": MEASURES,
        "map": data,
        "tiles_json": tiles_json,
        "public": public,
        "recent_nights": recent,
        "n_grid": grid.N_TILES,
    })


@require_GET
def tile_page(request: HttpRequest, name: str) -> HttpResponse:
    """One tile: frames by filter and night, and the survey filters it still lacks."""
    tile = get_object_or_404(Tile, name=name.upper())
    science = Frame.objects.filter(tile=tile, image_type="science", excluded_by="", present=True)
    by_night = list(
        science.values("night__date", "filter")
        .annotate(n=Count("id"), exptime=Sum("exptime"), units=Count("unit", distinct=True), first=Min("date_obs"), last=Max("date_obs"))
        .order_by("-night__date", "filter")
    )
    programs = sorted({p for p in science.exclude(program="").order_by().values_list("program", flat=True).distinct()})
    progress = list(TileFilterProgress.objects.filter(tile=tile).order_by("filter"))
    survey_filters = status.get_snapshot("survey-map").payload.get("survey_filters", [])
    have = {p.filter for p in progress}
    frames = list(science.select_related("unit", "night").order_by("-date_obs", "-id")[:300])
    flagged = science.filter(pointing_warning=True).count()
    return render(request, "survey/status/tile.html", {
        "tile": tile,
        "by_night": by_night,
        "progress": progress,
        "programs": programs,
        "survey_filters": survey_filters,
        "missing_filters": [f for f in survey_filters if f not in have],
        "frames": frames,
        "n_flagged": flagged,
        "ris": tile.index <= grid.RIS_LAST_INDEX,
    })


@require_GET
def night_page(request: HttpRequest, night_date: str) -> HttpResponse:
    """Survey status of one night (readiness matrix, conditions, pointing warnings): the night page's extra."""
    try:
        day = date.fromisoformat(night_date)
    except ValueError as exc:
        raise Http404("not a YYYY-MM-DD night") from exc
    night = get_object_or_404(Night, date=day)
    return render(request, "survey/status/night.html", {"night": night})
