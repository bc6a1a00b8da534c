"""Frame search (bookmarkable GET form, sortable, capped count, CSV export), frame page and download."""
from __future__ import annotations

import csv
import logging
from datetime import datetime, timezone as dt_timezone
from typing import Any, Iterator

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from survey.forms import FrameSearchForm
from survey.models import FileProblem, Frame, FrameHeader
from survey.queries import CappedPaginator, FrameFilter, csv_rows, frame_queryset
from survey.views.dashboard import archive_totals
from survey.views.common import open_under, paginate, sort_columns

log = logging.getLogger(__name__)

#: (sort key, header, numeric) for the result table; keys are survey.queries.SORTS.
COLUMNS = [
    ("date", "DATE-OBS (UTC)", False),
    ("unit", "Unit", False),
    ("type", "Type", False),
    ("object", "Object", False),
    ("filter", "Filter", False),
    ("exptime", "Exp (s)", True),
    ("airmass", "Airmass", True),
    ("filename", "File", False),
]
#: Header keywords shown first, in FITS order; the rest follow as stored (PostgreSQL jsonb reorders keys).
LEADING_CARDS = ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "BZERO", "BSCALE")
COMMENTARY = ("COMMENT", "HISTORY", "")


def filter_names() -> list[str]:
    """Filter names for the search form's suggestions: the dashboard's cached totals by filter."""
    return [row["filter"] for row in archive_totals()["by_filter"] if row["filter"] not in ("", "-")]


def frame_search(request: HttpRequest) -> HttpResponse:
    form = FrameSearchForm(request.GET or None)
    context: dict[str, Any] = {"form": form, "known_filters": filter_names(), "searched": bool(request.GET)}
    if request.GET and not form.is_valid():
        return render(request, "survey/frame_search.html", context, status=400)
    if form.is_bound:
        flt, per_page = form.to_filter(), form.cleaned_data.get("per_page") or 50
    else:
        flt, per_page = FrameFilter(), 50
    qs = frame_queryset(flt).select_related("unit", "night")
    page = paginate(request, qs, per_page, paginator_class=CappedPaginator)
    columns = list(COLUMNS)
    if flt.cone is not None:
        columns.append(("distance", "Dist (°)", True))
    context.update(
        page_obj=page,
        capped=page.paginator.capped,
        cap=page.paginator.cap,
        columns=sort_columns(flt.sort, columns),
        cone=flt.cone,
        export_query=request.GET.urlencode(),
    )
    return render(request, "survey/frame_search.html", context)


class _Echo:
    """A file-like object whose write() returns the line, for csv.writer inside a generator."""

    def write(self, value: str) -> str:
        return value


def frame_export(request: HttpRequest) -> HttpResponse:
    """The whole result of a search as CSV, streamed row by row (same query as the page, never capped)."""
    form = FrameSearchForm(request.GET)
    if not form.is_valid():
        return HttpResponse(f"invalid search: {form.errors.as_text()}\n", status=400, content_type="text/plain")
    qs = frame_queryset(form.to_filter())
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        for row in csv_rows(qs):
            yield writer.writerow(row)

    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="gwportal_frames_{stamp}.csv"'
    return response


def ordered_cards(cards: dict[str, Any]) -> list[tuple[str, Any]]:
    """Header cards as (keyword, value) rows: mandatory keywords first, commentary cards last, one row per line."""
    head = [(k, cards[k]) for k in LEADING_CARDS if k in cards]
    body = [(k, v) for k, v in cards.items() if k not in LEADING_CARDS and k not in COMMENTARY]
    tail = []
    for k in COMMENTARY:
        values = cards.get(k)
        if values is None:
            continue
        for line in values if isinstance(values, list) else [values]:
            tail.append((k, line))
    return head + body + tail


def _mtime(ns: int | None) -> datetime | None:
    return datetime.fromtimestamp(ns / 1e9, tz=dt_timezone.utc) if ns else None


def frame_detail(request: HttpRequest, pk: int) -> HttpResponse:
    frame = get_object_or_404(
        Frame.objects.select_related("unit", "night", "folder", "target", "tile", "run", "header__layout"), pk=pk
    )
    try:
        cards = frame.header.full_cards
    except FrameHeader.DoesNotExist:
        cards = None
    same_image_id = []
    if frame.image_id:
        same_image_id = list(Frame.objects.filter(image_id=frame.image_id).exclude(pk=frame.pk).values("id", "path")[:20])
    context = {
        "frame": frame,
        "cards": ordered_cards(cards) if isinstance(cards, dict) else [],
        "has_header": cards is not None,
        "file_mtime": _mtime(frame.file_mtime_ns),
        "problems": FileProblem.objects.filter(path=frame.path).order_by("-last_seen"),
        "same_image_id": same_image_id,
        "downloadable": bool(settings.GWPORTAL.get("DATA_ROOT")),
    }
    return render(request, "survey/frame_detail.html", context)


def frame_download(request: HttpRequest, pk: int) -> FileResponse:
    """The frame's own file, only if its real path lies under the real data root; anything else is 404.

    The path comes from the database row, never from the request; symlinks are resolved first, so
    a link inside the archive that points elsewhere is refused too.
    """
    frame = get_object_or_404(Frame.objects.only("id", "path", "filename"), pk=pk)
    opened = open_under(frame.path, settings.GWPORTAL.get("DATA_ROOT", ""))
    if opened is None:
        log.warning("download refused for frame %s: %s is not a file under the data root", frame.pk, frame.path)
        raise Http404("This frame's file is not available under the data root.")
    _real, handle = opened
    return FileResponse(handle, as_attachment=True, filename=frame.filename, content_type="application/fits")
