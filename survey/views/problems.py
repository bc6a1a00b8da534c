"""Problems: files that could not be catalogued (by reason) and the latest missing-files report."""
from __future__ import annotations

from typing import Any

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from survey.forms import ProblemFilterForm
from survey.models import FileProblem, MissingReport
from survey.views.common import paginate

PER_PAGE = 100
FLAGGED_SHOWN = 500


def _flat(value: Any) -> Any:
    """Render nested JSON compactly in a table cell."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(_flat(v)) for v in value)
    return value


def problem_list(request: HttpRequest) -> HttpResponse:
    reason_counts = list(
        FileProblem.objects.filter(resolved=False).values("reason", "severity").annotate(n=Count("id")).order_by("-n", "reason")
    )
    reasons = sorted({r["reason"] for r in reason_counts} | set(FileProblem.objects.values_list("reason", flat=True).distinct()))
    form = ProblemFilterForm(request.GET or None, reasons=reasons)
    problems = FileProblem.objects.select_related("folder__unit", "folder__night", "run")
    resolved = False
    if form.is_valid():
        d = form.cleaned_data
        if d["reason"]:
            problems = problems.filter(reason=d["reason"])
        if d["severity"]:
            problems = problems.filter(severity=d["severity"])
        resolved = d["resolved"]
    if not resolved:
        problems = problems.filter(resolved=False)
    page = paginate(request, problems.order_by("-last_seen", "path"), PER_PAGE)

    report = MissingReport.objects.first()
    flagged = []
    if report is not None:
        for item in (report.flagged_folders or [])[:FLAGGED_SHOWN]:
            flagged.append(item if isinstance(item, dict) else {"folder": item})
    flagged_keys = sorted({k for item in flagged for k in item})
    context = {
        "form": form,
        "page_obj": page,
        "reason_counts": reason_counts,
        "report": report,
        "summary": [(k, _flat(v)) for k, v in ((report.summary or {}).items() if report else [])],
        "flagged": [[_flat(item.get(k, "")) for k in flagged_keys] for item in flagged],
        "flagged_keys": flagged_keys,
        "n_flagged": len(report.flagged_folders or []) if report else 0,
    }
    return render(request, "survey/problem_list.html", context)
