"""Dashboard: archive totals, monitor heartbeat, latest runs and the activity plots.

Everything here reads the cached statistics (NightUnitStats, Tile/Target counters) and small
tables; it never aggregates the frame table, so it answers in milliseconds at 3 M frames.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from survey.forms import DashboardForm
from survey.models import FileProblem, IngestRun, MissingReport, MonitorState, NightUnitStats, Target, Tile
from survey.runlog import STALE_AFTER
from survey.views.common import TYPE_COLOURS, TYPES, figure

MONITOR_NAME = "update_nights"
DEFAULT_DAYS = 90
TOTALS_CACHE_SECONDS = 600

_SUMS = {
    "bias": Sum("n_bias"), "dark": Sum("n_dark"), "flat": Sum("n_flat"), "science": Sum("n_science"),
    "excluded": Sum("n_excluded"), "problems": Sum("n_problems"), "missing": Sum("n_missing"),
    "bytes": Sum("total_bytes"), "science_exptime": Sum("science_exptime"),
}  # fmt: skip


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: (v or 0) for k, v in row.items()}
    out["frames"] = sum(out.get(t, 0) for t in TYPES)
    return out


def archive_totals() -> dict[str, Any]:
    """Totals by type, unit and filter from NightUnitStats; cached until any stats row changes."""
    version = NightUnitStats.objects.aggregate(n=Count("id"), last=Max("updated_at"))
    key = f"portal:totals:{version['n']}:{version['last'].isoformat() if version['last'] else '-'}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    totals = _clean(NightUnitStats.objects.aggregate(**_SUMS))
    by_unit = [
        {"unit": r.pop("unit__name"), **_clean(r)}
        for r in NightUnitStats.objects.values("unit__name").annotate(**_SUMS, nights=Count("night_id")).order_by("unit__name")
    ]
    by_filter: dict[str, dict[str, int]] = defaultdict(lambda: {t: 0 for t in TYPES})
    exposure: dict[str, float] = defaultdict(float)
    for filters in NightUnitStats.objects.values_list("by_filter", flat=True).iterator(chunk_size=2000):
        for name, kinds in (filters or {}).items():
            for kind, cell in kinds.items():
                if kind in TYPES:
                    by_filter[name][kind] += int(cell.get("n", 0))
                    if kind == "science":
                        exposure[name] += float(cell.get("exptime", 0.0))
    filter_rows = [
        {"filter": name, **counts, "frames": sum(counts.values()), "science_exptime": exposure[name]}
        for name, counts in sorted(by_filter.items())
    ]
    result = {
        "totals": totals,
        "by_unit": by_unit,
        "by_filter": filter_rows,
        "n_nights": NightUnitStats.objects.values("night_id").distinct().count(),
        "first_night": NightUnitStats.objects.order_by("night__date").values_list("night__date", flat=True).first(),
        "last_night": NightUnitStats.objects.order_by("-night__date").values_list("night__date", flat=True).first(),
    }
    cache.set(key, result, TOTALS_CACHE_SECONDS)
    return result


def monitor_status(now=None) -> dict[str, Any]:
    """The monitor row as the page shows it: status, heartbeat age and whether the heartbeat is stale."""
    now = now or timezone.now()
    state = MonitorState.objects.filter(name=MONITOR_NAME).first()
    if state is None:
        return {"state": None, "label": "never started", "stale": False, "age": None}
    age = (now - state.heartbeat_at) if state.heartbeat_at else None
    running = state.status not in ("stopped", "")
    stale = running and (age is None or age > STALE_AFTER)
    return {"state": state, "label": state.status, "stale": stale, "age": age}


def activity_figures(start: date, end: date) -> dict[str, dict[str, Any]]:
    """Frames per night stacked by type, and the unit x night heatmap, for nights in [start, end]."""
    rows = list(
        NightUnitStats.objects.filter(night__date__gte=start, night__date__lte=end)
        .values("night__date", "unit__name", "n_bias", "n_dark", "n_flat", "n_science")
        .order_by("night__date", "unit__name")
    )
    per_night: dict[date, dict[str, int]] = defaultdict(lambda: {t: 0 for t in TYPES})
    per_cell: dict[tuple[str, date], int] = defaultdict(int)
    for r in rows:
        for t in TYPES:
            per_night[r["night__date"]][t] += r[f"n_{t}"]
            per_cell[(r["unit__name"], r["night__date"])] += r[f"n_{t}"]
    nights = sorted(per_night)
    x = [d.isoformat() for d in nights]
    stacked = figure(
        [{"type": "bar", "name": t, "x": x, "y": [per_night[d][t] for d in nights], "marker": {"color": TYPE_COLOURS[t]}}
         for t in TYPES],
        f"Frames per night by type, {start} to {end}",
        barmode="stack", yaxis={"title": {"text": "frames"}},
        xaxis={"type": "date", "title": {"text": "night"},
               "range": [(start - timedelta(days=1)).isoformat(), (end + timedelta(days=1)).isoformat()]},
    )
    units = sorted({u for u, _ in per_cell})
    heat = figure(
        [{"type": "heatmap", "x": x, "y": units, "z": [[per_cell.get((u, d), 0) for d in nights] for u in units],
          "colorscale": "Viridis", "hovertemplate": "%{y} %{x}: %{z} frames<extra></extra>",
          "colorbar": {"title": {"text": "frames"}}}],
        "Unit activity (frames per unit and night)",
        xaxis={"type": "category", "title": {"text": "night"}}, height=max(260, 80 + 24 * len(units)),
    )
    return {"per_night": stacked, "heatmap": heat}


def throughput_figure(limit: int = 300) -> dict[str, Any]:
    """Headers read per second of the latest runs that read anything, one trace per trigger."""
    runs = (
        IngestRun.objects.filter(n_headers_read__gt=0, files_per_s__isnull=False)
        .order_by("-started_at")
        .values("id", "started_at", "files_per_s", "trigger", "n_headers_read")[:limit]
    )
    traces: dict[str, dict[str, Any]] = {}
    for r in reversed(list(runs)):
        t = traces.setdefault(r["trigger"], {"type": "scatter", "mode": "lines+markers", "name": r["trigger"], "x": [], "y": [], "text": []})
        t["x"].append(r["started_at"].isoformat())
        t["y"].append(round(r["files_per_s"], 1))
        t["text"].append(f"run {r['id']}: {r['n_headers_read']} headers")
    return figure(list(traces.values()), "Ingest throughput (headers read per second)",
                  xaxis={"type": "date"}, yaxis={"title": {"text": "files/s"}, "rangemode": "tozero"})


def dashboard(request: HttpRequest) -> HttpResponse:
    form = DashboardForm(request.GET or None)
    days, end = DEFAULT_DAYS, None
    if form.is_valid():
        days = form.cleaned_data.get("days") or DEFAULT_DAYS
        end = form.cleaned_data.get("end")
    totals = archive_totals()
    # The window ends at the newest night in the archive (not today), so a quiet spell still shows data.
    end = end or totals["last_night"] or timezone.localdate()
    start = end - timedelta(days=days - 1)
    figures = activity_figures(start, end)
    figures["throughput"] = throughput_figure()
    context = {
        "form": form,
        "days": days,
        "start": start,
        "end": end,
        **totals,
        "monitor": monitor_status(),
        "runs": IngestRun.objects.all()[:10],
        "running": IngestRun.objects.filter(status=IngestRun.Status.RUNNING).count(),
        "n_targets": Target.objects.filter(n_frames__gt=0).count(),
        "n_tiles": Tile.objects.filter(n_frames__gt=0).count(),
        "n_open_problems": FileProblem.objects.filter(resolved=False).count(),
        "missing_report": MissingReport.objects.only("id", "created_at", "clean").first(),
        "figures": figures,
    }
    return render(request, "survey/dashboard.html", context)
