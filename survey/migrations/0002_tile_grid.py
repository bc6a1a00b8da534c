"""Load the 7DS tile grid, computed from the rule (no download): 28,519 tiles with centres."""
from django.db import migrations


def load_grid(apps, schema_editor):
    from rawdata.tiles import iter_tiles

    Tile = apps.get_model("survey", "Tile")
    known = set(Tile.objects.values_list("index", flat=True))
    batch = [
        Tile(name=t.name, index=t.index, ra=t.ra, dec=t.dec, ring=t.ring, extension=t.extension, in_grid=True)
        for t in iter_tiles()
        if t.index not in known
    ]
    Tile.objects.bulk_create(batch, batch_size=5000)


def unload_grid(apps, schema_editor):
    apps.get_model("survey", "Tile").objects.filter(in_grid=True, n_frames=0).delete()


class Migration(migrations.Migration):
    dependencies = [("survey", "0001_initial")]
    operations = [migrations.RunPython(load_grid, unload_grid)]
