"""Small display filters for the portal templates."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template

register = template.Library()


@register.filter
def hours(seconds: Any) -> str:
    """Exposure seconds as hours: 5400 -> '1.5 h'; small values stay in seconds."""
    try:
        value = float(seconds or 0)
    except (TypeError, ValueError):
        return "—"
    if value < 3600:
        return f"{value:,.0f} s"
    return f"{value / 3600:,.1f} h"


@register.filter
def duration(delta: Any) -> str:
    """A timedelta (or seconds) as '3 d 4 h', '5 h 12 min', '42 s'."""
    if delta is None:
        return "—"
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    days, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {h} h"
    if h:
        return f"{sign}{h} h {m} min"
    if m:
        return f"{sign}{m} min {sec} s"
    return f"{sign}{sec} s"


@register.filter
def get(mapping: Any, key: Any) -> Any:
    """mapping[key] in a template (None when absent)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def degrees(value: Any, places: int = 5) -> str:
    """A float angle with fixed decimals, or a dash."""
    if value is None:
        return "—"
    return f"{float(value):.{int(places)}f}"


@register.filter
def num(value: Any, places: int = 3) -> str:
    """A float with at most `places` decimals and no trailing zeros: 8.5, 100, 1.997; a dash for None."""
    if value is None or value == "":
        return "—"
    try:
        text = f"{float(value):.{int(places)}f}"
    except (TypeError, ValueError):
        return str(value)
    return text.rstrip("0").rstrip(".") if "." in text else text
