"""Template tags of the survey status snippets, so that a page can include them with `night` only.

    {% include "survey/status/night_extra.html" %}       (context: night = a Night)
    {% include "survey/status/dashboard_extra.html" %}   (no context needed)
"""
from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.simple_tag
def night_status(night: Any) -> dict[str, Any]:
    """Readiness matrix, conditions and flagged pointings of one night (survey.status.night_context)."""
    from survey.status import night_context

    return night_context(night)


@register.simple_tag
def dashboard_status(n_nights: int = 90) -> dict[str, Any]:
    """Calibration summary, conditions series and pointing warnings (survey.status.dashboard_context)."""
    from survey.status import dashboard_context

    return dashboard_context(n_nights)


@register.filter
def calib_cell(readiness: Any, kind: str) -> Any:
    """The Match of one calibration kind in a readiness row."""
    try:
        return readiness.matches[kind]
    except (AttributeError, KeyError):
        return None


@register.filter
def pct_width(value: Any, total: Any) -> str:
    """A CSS width percentage (0-100) of value/total, for progress bars."""
    try:
        share = 100.0 * float(value) / float(total)
    except (TypeError, ValueError, ZeroDivisionError):
        return "0"
    return f"{max(0.0, min(100.0, share)):.1f}"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """mapping[key] (None when absent)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
