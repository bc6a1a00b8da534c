"""A canonical picture of the catalogue, without ids or timestamps, and its SHA-256.

Two databases that catalogue the same archive the same way have equal pictures: this is how the
crash tests prove that a killed-and-rerun ingest equals one clean run, and how an operator checks
that a Celery ingest gave exactly what a local one would.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from survey.models import FileProblem, Frame, FrameHeader, Night, NightFolder, Target, Tile

VOLATILE = {"id", "ingested_at", "updated_at", "run", "unit", "night", "folder", "target", "tile"}


def catalogue_snapshot() -> dict[str, Any]:
    """Everything that describes the archive, keyed by natural keys."""
    fields = [f.attname for f in Frame._meta.concrete_fields if f.name not in VOLATILE]
    frames = {
        row["path"]: row
        for row in Frame.objects.values(*fields, "unit__name", "night__date", "folder__path", "target__name", "tile__name")
    }
    return {
        "frames": frames,
        "headers": {h.frame.path: h.full_cards for h in FrameHeader.objects.select_related("frame", "layout")},
        "problems": sorted(FileProblem.objects.values_list("path", "reason", "severity", "resolved")),
        "nights": sorted(Night.objects.values_list("date", flat=True)),
        "folders": sorted(NightFolder.objects.values_list("path", "state", "file_count")),
        "targets": sorted(Target.objects.values_list("name", "kind", "n_frames", "n_nights", "total_exptime")),
        "tiles": sorted(Tile.objects.filter(n_frames__gt=0).values_list("name", "n_frames", "n_nights", "n_filters")),
    }


def catalogue_digest() -> tuple[str, dict[str, int]]:
    """SHA-256 of the canonical JSON of the snapshot, and the sizes of its parts."""
    snap = catalogue_snapshot()
    frames = snap["frames"]
    for row in frames.values():  # floats through JSON: round away representation noise of the backends
        for key, value in row.items():
            if isinstance(value, float):
                row[key] = round(value, 9)
    text = json.dumps(snap, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest(), {k: len(v) for k, v in snap.items()}
