"""Nights: a month calendar and a paginated list (from NightUnitStats), and one night per unit.

The night page (p95 < 300 ms with 3 M frames) lists every science target and, per unit, every filter of
the night: a few hundred table rows. Their HTML is built here in plain Python (escaped exactly as the
template would): as template loops they were ~3,300 node renders, ~15 ms at 3 M frames, now ~1 ms. The
extra section below the unit blocks (survey status: ~7,000 nodes and its own queries) is fetched by the
page once shown, from `?section=extra`.
"""
from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date
from html import escape
from typing import Any

from django.db.models import Count, Max, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.defaultfilters import urlencode
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from survey.models import FileProblem, Frame, Night, NightFolder, NightUnitStats, Unit
from survey.templatetags.portal import hours
from survey.views.common import TYPE_COLOURS, TYPES, figure, optional_template, paginate

NIGHT_EXTRA_TEMPLATE = "survey/status/night_extra.html"
#: `?section=extra` answers the night's extra section alone (an HTML fragment, loaded by the page once
#: shown): that section (calibration readiness, conditions, pointing warnings) costs about twice the rest
#: of the page (~110 ms of ~170 ms at 3 M frames) and sits below every unit block.
EXTRA_SECTION = "extra"
NIGHTS_PER_PAGE = 50
PROBLEMS_SHOWN = 200

_NIGHT_SUMS = {
    "n_bias": Sum("unit_stats__n_bias"), "n_dark": Sum("unit_stats__n_dark"), "n_flat": Sum("unit_stats__n_flat"),
    "n_science": Sum("unit_stats__n_science"), "n_excluded": Sum("unit_stats__n_excluded"),
    "n_problems": Sum("unit_stats__n_problems"), "n_missing": Sum("unit_stats__n_missing"),
    "total_bytes": Sum("unit_stats__total_bytes"), "science_exptime": Sum("unit_stats__science_exptime"),
    "n_units": Count("unit_stats"),
}  # fmt: skip


def _parse_month(text: str | None, default: date) -> date:
    try:
        year, month = (int(p) for p in (text or "").split("-")[:2])
        return date(year, month, 1)
    except ValueError:
        return default.replace(day=1)


def _add_months(d: date, n: int) -> date:
    index = d.year * 12 + d.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_calendar(month: date) -> list[list[dict[str, Any]]]:
    """Weeks (Monday first) of day cells with the night's frame counts, for the month of `month`."""
    cal = calendar.Calendar(firstweekday=0)
    weeks = cal.monthdatescalendar(month.year, month.month)
    first, last = weeks[0][0], weeks[-1][-1]
    counts: dict[date, dict[str, int]] = {}
    for r in (
        NightUnitStats.objects.filter(night__date__gte=first, night__date__lte=last)
        .values("night__date")
        .annotate(bias=Sum("n_bias"), dark=Sum("n_dark"), flat=Sum("n_flat"), science=Sum("n_science"),
                  problems=Sum("n_problems"), units=Count("unit_id"))
    ):
        r["frames"] = sum(r[t] or 0 for t in TYPES)
        counts[r["night__date"]] = r
    return [
        [{"date": d, "in_month": d.month == month.month, "counts": counts.get(d)} for d in week]
        for week in weeks
    ]


def night_list(request: HttpRequest) -> HttpResponse:
    latest = Night.objects.filter(unit_stats__isnull=False).aggregate(d=Max("date"))["d"]
    month = _parse_month(request.GET.get("month"), latest or date.today())
    nights = Night.objects.filter(unit_stats__isnull=False).annotate(**_NIGHT_SUMS).order_by("-date")
    page = paginate(request, nights, NIGHTS_PER_PAGE)
    for night in page.object_list:
        night.n_frames = sum(getattr(night, f"n_{t}") or 0 for t in TYPES)
    context = {
        "month": month,
        "prev_month": _add_months(month, -1),
        "next_month": _add_months(month, 1),
        "weeks": month_calendar(month),
        "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        "page_obj": page,
        "latest": latest,
    }
    return render(request, "survey/night_list.html", context)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise Http404(f"not a night date: {text}") from exc


def night_timeline(night: Night) -> dict[str, Any]:
    """Every catalogued frame of the night on a time axis, one row per unit, coloured by type.

    Fetched as one plain list (a night holds a few thousand frames): a server-side cursor costs a WITH HOLD
    copy and makes PostgreSQL favour fast-start plans (on a small archive, a walk of the whole date_obs index)."""
    traces: dict[str, dict[str, Any]] = {}
    unit_names = dict(Unit.objects.values_list("id", "name"))
    rows = (
        Frame.objects.filter(night=night, excluded_by="").exclude(date_obs=None)
        .values_list("unit_id", "date_obs", "image_type", "object", "filter", "exptime")
        .order_by("date_obs", "id")
    )
    for unit_id, when, kind, obj, filt, exptime in rows:
        unit = unit_names.get(unit_id)
        if unit is None:  # as the join to the unit table did: a frame of an unknown unit is not drawn
            continue
        t = traces.get(kind)
        if t is None:
            t = traces[kind] = {"type": "scatter", "mode": "markers", "name": kind, "x": [], "y": [], "text": [],
                                "marker": {"color": TYPE_COLOURS.get(kind), "symbol": "line-ns-open", "size": 14}}
        t["x"].append(when.isoformat())
        t["y"].append(unit)
        t["text"].append(f"{obj} {filt} {exptime:g}s" if exptime is not None else f"{obj} {filt}")
    ordered = [traces[k] for k in TYPES if k in traces]
    units = sorted({u for t in ordered for u in t["y"]})
    return figure(ordered, "Frames through the night (UTC of exposure start)",
                  xaxis={"type": "date"}, yaxis={"type": "category", "categoryorder": "category descending"},
                  height=max(220, 100 + 30 * len(units)))


def night_detail(request: HttpRequest, night_date: str) -> HttpResponse:
    """One night: totals, timeline, targets and a block per unit; with `?section=extra`, only its extra
    section (a fragment the page fetches, so that the frames show without waiting for it)."""
    night = get_object_or_404(Night, date=_parse_date(night_date))
    extra_template = optional_template(NIGHT_EXTRA_TEMPLATE)
    if request.GET.get("section") == EXTRA_SECTION:
        if extra_template is None:
            raise Http404("no extra section for night pages")
        return render(request, extra_template, {"night": night})
    stats = {s.unit_id: s for s in NightUnitStats.objects.filter(night=night).select_related("unit")}
    folders = list(NightFolder.objects.filter(night=night).select_related("unit").order_by("unit__name", "name"))
    problems_qs = FileProblem.objects.filter(folder__night=night, resolved=False).select_related("folder__unit")
    n_problems = problems_qs.count()
    problems = list(problems_qs.order_by("folder__unit__name", "path")[:PROBLEMS_SHOWN])
    targets = list(
        Frame.objects.filter(night=night, excluded_by="", image_type=Frame.ImageType.SCIENCE)
        .values("object")
        .annotate(n=Count("id"), exptime=Sum("exptime"), units=Count("unit_id", distinct=True),
                  filters=Count("filter", distinct=True))
        .order_by("object")
    )
    units: dict[int, dict[str, Any]] = {}
    for folder in folders:
        units.setdefault(folder.unit_id, {"unit": folder.unit, "folders": [], "problems": []})["folders"].append(folder)
    for s in stats.values():
        units.setdefault(s.unit_id, {"unit": s.unit, "folders": [], "problems": []})
    for p in problems:
        if p.folder and p.folder.unit_id in units:
            units[p.folder.unit_id]["problems"].append(p)
    blocks = []
    for unit_id, block in sorted(units.items(), key=lambda kv: kv[1]["unit"].name):
        s = stats.get(unit_id)
        block["stats"] = s
        block["filters"] = _filter_rows(s.by_filter if s else {})
        block["filter_rows_html"] = _filter_rows_html(block["filters"])
        block["total_exptime"] = sum(r["exptime"] for r in block["filters"])
        blocks.append(block)
    search_url = f"{reverse('frame-search')}?night={night.date.isoformat()}"
    context = {
        "night": night,
        "blocks": blocks,
        "n_problems": n_problems,
        "problems_shown": len(problems),
        "previous": Night.objects.filter(date__lt=night.date, unit_stats__isnull=False).order_by("-date").values_list("date", flat=True).first(),
        "next": Night.objects.filter(date__gt=night.date, unit_stats__isnull=False).order_by("date").values_list("date", flat=True).first(),
        "totals": _night_totals(stats.values()),
        "timeline": night_timeline(night),
        "targets": targets,
        "target_rows_html": _target_rows_html(targets, search_url),
        "search_url": search_url,
        "night_extra_url": f"{request.path}?section={EXTRA_SECTION}" if extra_template else None,
    }
    return render(request, "survey/night_detail.html", context)


def _filter_rows(by_filter: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    """by_filter JSON -> rows: filter, n per type, total exposure (all types)."""
    rows = []
    for name in sorted(by_filter):
        cells = by_filter[name]
        row: dict[str, Any] = {"filter": name, "exptime": 0.0}
        for t in TYPES:
            cell = cells.get(t) or {}
            row[t] = int(cell.get("n", 0))
            row["exptime"] += float(cell.get("exptime", 0.0))
        row["frames"] = sum(row[t] for t in TYPES)
        rows.append(row)
    return rows


# The rows below are what survey/night_detail.html's loops rendered, byte for byte: each row with the
# newline and indentation of the template line around it, values escaped as autoescape does (html.escape
# is what django.utils.html.escape calls), integers as str() (no thousands separator is configured).
def _target_rows_html(targets: Iterable[dict[str, Any]], search_url: str) -> SafeString:
    """The science-target table's rows: link to the night's frames of that OBJECT, units, filters, frames, time."""
    base = escape(search_url)
    return mark_safe("".join(
        f'\n  <tr><td><a href="{base}&amp;object={escape(urlencode(t["object"]))}">{escape(t["object"] or "(no OBJECT)")}</a></td>'
        f'<td class="num">{t["units"]}</td><td class="num">{t["filters"]}</td><td class="num">{t["n"]}</td>'
        f'<td class="num">{escape(hours(t["exptime"]))}</td></tr>\n  '
        for t in targets
    ))  # fmt: skip


def _filter_rows_html(rows: Iterable[dict[str, Any]]) -> SafeString:
    """A unit's by-filter table rows (see _filter_rows): frames per type, total, exposure."""
    return mark_safe("".join(
        f'\n  <tr><td>{escape(r["filter"])}</td><td class="num">{r["science"]}</td><td class="num">{r["flat"]}</td>'
        f'<td class="num">{r["dark"]}</td><td class="num">{r["bias"]}</td><td class="num">{r["frames"]}</td>'
        f'<td class="num">{escape(hours(r["exptime"]))}</td></tr>\n  '
        for r in rows
    ))  # fmt: skip


def _night_totals(stats) -> dict[str, Any]:
    out: dict[str, Any] = {f"n_{t}": 0 for t in TYPES}
    out.update(n_excluded=0, n_problems=0, n_missing=0, total_bytes=0, science_exptime=0.0)
    for s in stats:
        for k in out:
            out[k] += getattr(s, k)
    out["n_frames"] = sum(out[f"n_{t}"] for t in TYPES)
    return out

