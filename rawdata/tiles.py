"""The 7DS tile grid, computed from its rule instead of loaded from a catalogue.

The grid is 142 declination rings from the south celestial pole, ring ``r`` at
Dec = -90 + r * 180/212 deg, holding ``N_r`` tiles evenly spaced in RA from RA = 0.
Tiles are numbered ``T00000`` upward ring by ring (see
``shared/reference/survey-status.md`` section 2).  Computing it keeps the code free of
a 28k-row data file and lets any tile name be resolved in O(1).

Tile names beyond the grid (e.g. ``T28519``, which the status snapshot counts) are real
survey objects with unknown position: ``tile_by_name`` returns ``None`` for them and
callers must keep the frame, never drop it.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate

__all__ = [
    "RING_COUNTS",
    "RING_STARTS",
    "N_RINGS",
    "N_TILES",
    "RING_STEP_DEG",
    "RIS_LAST_INDEX",
    "EXTENSION_FIRST_INDEX",
    "Tile",
    "tile",
    "tile_by_name",
    "tile_name",
    "iter_tiles",
    "ring_dec",
    "angular_distance_deg",
    "nearest_tile",
]

RING_COUNTS: tuple[int, ...] = (
    1, 7, 11, 15, 19, 23, 27, 31, 36, 40, 44, 48, 52, 56, 60, 64, 68, 72, 76, 80, 84, 88, 92, 96,
    100, 103, 107, 111, 115, 119, 122, 126, 130, 133, 137, 141, 144, 148, 151, 155, 158, 162, 165,
    168, 171, 175, 178, 181, 184, 187, 190, 193, 196, 199, 202, 205, 208, 211, 213, 216, 219, 221,
    224, 226, 228, 231, 233, 235, 238, 240, 242, 244, 246, 248, 250, 252, 253, 255, 257, 258, 260,
    261, 263, 264, 266, 267, 268, 269, 270, 271, 272, 273, 274, 275, 276, 276, 277, 277, 278, 278,
    279, 279, 279, 279, 280, 280, 280, 280, 280, 279, 279, 279, 279, 278, 278, 277, 277, 276, 276,
    275, 274, 273, 272, 271, 270, 269, 268, 267, 266, 264, 263, 261, 260, 258, 257, 255, 253, 252,
    250, 248, 246, 244,
)  # fmt: skip

N_RINGS: int = len(RING_COUNTS)
#: Index of the first tile of each ring (plus a final sentinel equal to ``N_TILES``).
RING_STARTS: tuple[int, ...] = (0, *accumulate(RING_COUNTS))
N_TILES: int = RING_STARTS[-1]
RING_STEP_DEG: float = 180.0 / 212.0
#: Last tile of the original RIS grid; the northern extension starts on the next ring.
RIS_LAST_INDEX: int = 25471
EXTENSION_FIRST_INDEX: int = RIS_LAST_INDEX + 1

assert N_RINGS == 142 and N_TILES == 28_519
assert EXTENSION_FIRST_INDEX in RING_STARTS

_NAME_RE = re.compile(r"^T(\d{5})$")


@dataclass(frozen=True)
class Tile:
    """One grid tile; ``ra``/``dec`` are the centre in degrees (ICRS)."""

    index: int
    name: str
    ra: float
    dec: float
    ring: int
    extension: bool


def tile_name(index: int) -> str:
    """Survey spelling of a tile index: ``T`` plus 5 digits."""
    return "T%05d" % index


def ring_dec(ring: int) -> float:
    """Declination (deg) of a ring."""
    return -90.0 + ring * RING_STEP_DEG


def _make(ring: int, k: int) -> Tile:
    index = RING_STARTS[ring] + k
    return Tile(
        index=index,
        name=tile_name(index),
        ra=k * 360.0 / RING_COUNTS[ring],
        dec=ring_dec(ring),
        ring=ring,
        extension=index > RIS_LAST_INDEX,
    )


def tile(index: int) -> Tile:
    """The tile with this index; ``ValueError`` outside ``0..N_TILES-1``."""
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < N_TILES:
        raise ValueError(f"tile index {index!r} is outside the grid 0..{N_TILES - 1}")
    ring = bisect.bisect_right(RING_STARTS, index) - 1
    return _make(ring, index - RING_STARTS[ring])


def tile_by_name(name: str) -> Tile | None:
    """Resolve ``'T#####'``; ``None`` when malformed or beyond the computed grid."""
    if not isinstance(name, str):
        return None
    m = _NAME_RE.match(name.strip())
    if not m:
        return None
    index = int(m.group(1))
    return tile(index) if index < N_TILES else None


def iter_tiles() -> Iterator[Tile]:
    """All tiles in index order."""
    for ring, n in enumerate(RING_COUNTS):
        for k in range(n):
            yield _make(ring, k)


def angular_distance_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance in degrees (Vincenty form: exact at 0 and 180 deg too)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    dra = r2 - r1
    sd1, cd1, sd2, cd2 = math.sin(d1), math.cos(d1), math.sin(d2), math.cos(d2)
    num1 = cd2 * math.sin(dra)
    num2 = cd1 * sd2 - sd1 * cd2 * math.cos(dra)
    den = sd1 * sd2 + cd1 * cd2 * math.cos(dra)
    return math.degrees(math.atan2(math.hypot(num1, num2), den))


def nearest_tile(ra: float, dec: float) -> Tile:
    """Grid tile whose centre is closest to (ra, dec).

    Picks the ring by declination and the tile by RA, then checks the neighbouring
    rings and RA neighbours (tiles are wider in RA than rings are apart, so the
    nearest centre can sit in the next ring).  Always returns a tile, even for a
    point north of the grid: callers decide whether the distance is acceptable.
    """
    ra = ra % 360.0
    r0 = round((dec + 90.0) / RING_STEP_DEG)
    best: Tile | None = None
    best_d = math.inf
    for ring in range(max(0, r0 - 2), min(N_RINGS - 1, r0 + 2) + 1):
        n = RING_COUNTS[ring]
        k0 = round(ra * n / 360.0)
        for k in sorted({(k0 + dk) % n for dk in (-1, 0, 1)}):
            ra_k = k * 360.0 / n
            d = angular_distance_deg(ra, dec, ra_k, ring_dec(ring))
            if d < best_d:
                best_d, best = d, _make(ring, k)
    assert best is not None
    return best
