"""Helpers shared by the portal pages: pagination, sortable headers, plotly figure specs, safe file reads."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest
from django.template import TemplateDoesNotExist
from django.template.loader import get_template

#: Plotly's default qualitative colours for the four frame types, kept stable across pages.
TYPE_COLOURS = {"science": "#1f77b4", "flat": "#2ca02c", "dark": "#7f7f7f", "bias": "#ff7f0e", "excluded": "#d62728"}
TYPES = ("science", "flat", "dark", "bias")


def paginate(request: HttpRequest, object_list: Any, per_page: int, paginator_class: type[Paginator] = Paginator) -> Page:
    """The requested page (`?page=`); out-of-range or junk page numbers give the nearest valid page."""
    paginator = paginator_class(object_list, per_page)
    return paginator.get_page(request.GET.get("page"))


@dataclass(frozen=True)
class SortColumn:
    key: str
    label: str
    next_sort: str  # the value of ?sort= when this header is clicked
    arrow: str  # '▲', '▼' or ''
    numeric: bool = False


def sort_columns(current: str, columns: list[tuple[str, str, bool]]) -> list[SortColumn]:
    """Column headers for a table sorted by `current` ('key' or '-key'); clicking toggles the direction."""
    out = []
    desc = current.startswith("-")
    key_now = current.lstrip("-")
    for key, label, numeric in columns:
        if key == key_now:
            out.append(SortColumn(key, label, key if desc else "-" + key, "▼" if desc else "▲", numeric))
        else:
            out.append(SortColumn(key, label, key, "", numeric))
    return out


def figure(data: list[dict[str, Any]], title: str = "", **layout: Any) -> dict[str, Any]:
    """A plotly figure spec ({data, layout}) the static plots.js renders as is."""
    base = {
        "title": {"text": title, "font": {"size": 14}, "x": 0.01, "xanchor": "left"},
        "margin": {"l": 60, "r": 20, "t": 40 if title else 10, "b": 50},
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
        "height": 340,
    }
    base.update(layout)
    return {"data": data, "layout": base}


def optional_template(name: str) -> str | None:
    """`name` if that template exists (another part of the portal may provide it), else None."""
    try:
        get_template(name)
    except TemplateDoesNotExist:
        return None
    return name


def resolve_under(path: str, root: str) -> Path | None:
    """The real path of `path` if it lies under the real `root` (symlinks resolved); else None.

    Both sides are resolved, so a symlink inside the root that points outside it is refused,
    and an empty root refuses everything.
    """
    if not path or not root:
        return None
    try:
        real_root = Path(root).resolve(strict=True)
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if real == real_root or not real.is_relative_to(real_root):
        return None
    return real


def open_under(path: str, root: str) -> tuple[Path, Any] | None:
    """Open `path` for reading only if it is a regular file under `root`; re-checks the opened file.

    The check after opening (the kernel's view of the open descriptor) closes the window in which
    a path component could be swapped for a symlink between the check and the open.
    """
    real = resolve_under(path, root)
    if real is None or not real.is_file():
        return None
    handle = open(real, "rb")  # noqa: SIM115 - handed to FileResponse, which closes it
    try:
        proc_link = f"/proc/self/fd/{handle.fileno()}"
        if os.path.exists(proc_link):
            opened = Path(os.readlink(proc_link))
            if opened != real:
                handle.close()
                return None
    except OSError:
        handle.close()
        return None
    return real, handle
