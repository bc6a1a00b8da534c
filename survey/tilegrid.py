"""Load the 7DS tile grid rows from the rule in rawdata.tiles (used by migration 0002 and tests)."""
from __future__ import annotations


def load_tile_grid(tile_model) -> int:
    """Insert every grid tile that is missing; returns how many were added. Takes the model class so
    that a migration can pass its historical model."""
    from rawdata.tiles import iter_tiles

    known = set(tile_model.objects.values_list("index", flat=True))
    batch = [
        tile_model(name=t.name, index=t.index, ra=t.ra, dec=t.dec, ring=t.ring, extension=t.extension, in_grid=True)
        for t in iter_tiles()
        if t.index not in known
    ]
    tile_model.objects.bulk_create(batch, batch_size=5000)
    return len(batch)
