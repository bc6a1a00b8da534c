"""Targets: named targets (and observed 7DS tiles) with their counters; one target's frames by filter and time."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count, Max, Min, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

from survey.forms import TargetFilterForm
from survey.models import Frame, Target, Tile, TileFilterProgress
from survey.views.common import figure, paginate

PER_PAGE = 100
RECENT_FRAMES = 50


def target_list(request: HttpRequest) -> HttpResponse:
    form = TargetFilterForm(request.GET or None)
    q, kind = "", ""
    if form.is_valid():
        q, kind = form.cleaned_data["q"].strip(), form.cleaned_data["kind"]
    if kind == "tile":
        rows = Tile.objects.filter(n_frames__gt=0).order_by("name")
        if q:
            rows = rows.filter(name__icontains=q)
    else:
        rows = Target.objects.all().order_by("name")
        if kind:
            rows = rows.filter(kind=kind)
        if q:
            rows = rows.filter(name__icontains=q)
    page = paginate(request, rows, PER_PAGE)
    return render(request, "survey/target_list.html", {"form": form, "page_obj": page, "tiles": kind == "tile"})


def _science(**where: Any):
    return Frame.objects.filter(excluded_by="", image_type=Frame.ImageType.SCIENCE, **where)


def target_detail(request: HttpRequest, name: str) -> HttpResponse:
    """A named target, or a 7DS tile of that name: its science frames by filter and night."""
    target = Target.objects.filter(name=name).first()
    tile = None if target is not None else Tile.objects.filter(name=name).first()
    if target is None and tile is None:
        raise Http404(f"no target or tile named {name!r}")
    where = {"target": target} if target is not None else {"tile": tile}
    frames = _science(**where)
    if tile is not None:
        by_filter = [
            {"filter": p.filter, "n": p.n_frames, "exptime": p.total_exptime, "nights": p.n_nights,
             "first": p.first_night, "last": p.last_night}
            for p in TileFilterProgress.objects.filter(tile=tile).order_by("filter")
        ]
    else:
        by_filter = [
            {"filter": r["filter"] or "-", "n": r["n"], "exptime": r["exptime"] or 0.0, "nights": r["nights"],
             "first": r["first"], "last": r["last"]}
            for r in frames.values("filter").annotate(
                n=Count("id"), exptime=Sum("exptime"), nights=Count("night_id", distinct=True),
                first=Min("night__date"), last=Max("night__date"),
            ).order_by("filter")
        ]
    per_night: dict[str, dict[str, int]] = defaultdict(dict)
    for r in frames.values("night__date", "filter").annotate(n=Count("id")).order_by("night__date"):
        per_night[r["filter"] or "-"][r["night__date"].isoformat()] = r["n"]
    plot = figure(
        [{"type": "bar", "name": f, "x": list(cells), "y": list(cells.values())} for f, cells in sorted(per_night.items())],
        "Science frames per night and filter", barmode="stack", xaxis={"type": "date", "title": {"text": "night"}},
        yaxis={"title": {"text": "frames"}},
    )
    search_url = reverse("frame-search") + "?" + urlencode({"object": name})
    context = {
        "target": target,
        "tile": tile,
        "name": name,
        "by_filter": by_filter,
        "total": {"n": sum(r["n"] for r in by_filter), "exptime": sum(r["exptime"] for r in by_filter)},
        "recent": frames.select_related("unit").order_by("-date_obs", "-id")[:RECENT_FRAMES],
        "units": list(frames.values_list("unit__name", flat=True).distinct().order_by("unit__name")),
        "plot": plot,
        "search_url": search_url,
    }
    return render(request, "survey/target_detail.html", context)

