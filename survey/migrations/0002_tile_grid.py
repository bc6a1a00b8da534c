"""Load the 7DS tile grid, computed from the rule (no download): 28,519 tiles with centres."""
from django.db import migrations


def load_grid(apps, schema_editor):
    from survey.tilegrid import load_tile_grid

    load_tile_grid(apps.get_model("survey", "Tile"))


def unload_grid(apps, schema_editor):
    apps.get_model("survey", "Tile").objects.filter(in_grid=True, n_frames=0).delete()


class Migration(migrations.Migration):
    dependencies = [("survey", "0001_initial")]
    operations = [migrations.RunPython(load_grid, unload_grid)]
