"""Ingest runs: history, one run with its counts, report table, problems and log file."""
from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from survey.models import IngestRun
from survey.views.common import open_under, paginate

PER_PAGE = 50
LOG_TAIL_BYTES = 256 * 1024
PROBLEMS_SHOWN = 500
KINDS = ("science", "bias", "dark", "flat", "excluded")


def run_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    runs = IngestRun.objects.all()
    if status in IngestRun.Status.values:
        runs = runs.filter(status=status)
    page = paginate(request, runs, PER_PAGE)
    return render(request, "survey/run_list.html", {"page_obj": page, "status": status, "statuses": IngestRun.Status.choices})


def read_log_tail(path: str, limit: int = LOG_TAIL_BYTES) -> tuple[str | None, bool]:
    """The last `limit` bytes of a run's log, only if the file lies under LOG_DIR; (text, truncated)."""
    opened = open_under(path, settings.GWPORTAL.get("LOG_DIR", ""))
    if opened is None:
        return None, False
    _real, handle = opened
    with handle:
        size = os.fstat(handle.fileno()).st_size
        truncated = size > limit
        if truncated:
            handle.seek(size - limit)
        data = handle.read(limit)
    text = data.decode("utf-8", errors="replace")
    if truncated:
        text = text.split("\n", 1)[-1]  # drop the partial first line
    return text, truncated


def _report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, cells in (report.get("table") or {}).items():
        night, _, unit = key.partition(" ")
        rows.append({"night": night, "unit": unit, **{k: cells.get(k, 0) for k in KINDS}})
    return rows


def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(IngestRun, pk=pk)
    log_text, truncated = read_log_tail(run.log_file) if run.log_file else (None, False)
    problems = run.problems.select_related("folder__unit").order_by("reason", "path")
    report = run.report or {}
    context = {
        "run": run,
        "report_rows": _report_rows(report),
        "kinds": KINDS,
        "counts": sorted((report.get("counts") or {}).items()),
        "plan": (report.get("plan") or [])[:200],
        "arguments": sorted((run.arguments or {}).items()),
        "problems": problems[:PROBLEMS_SHOWN],
        "n_problems": problems.count(),
        "log_text": log_text,
        "log_truncated": truncated,
        "log_tail_kb": LOG_TAIL_BYTES // 1024,
    }
    return render(request, "survey/run_detail.html", context)


def run_log(request: HttpRequest, pk: int) -> FileResponse:
    """The whole log file as text, if it lies under LOG_DIR."""
    run = get_object_or_404(IngestRun, pk=pk)
    opened = open_under(run.log_file, settings.GWPORTAL.get("LOG_DIR", "")) if run.log_file else None
    if opened is None:
        raise Http404("This run's log file is not available.")
    real, handle = opened
    return FileResponse(handle, content_type="text/plain; charset=utf-8", filename=real.name)
