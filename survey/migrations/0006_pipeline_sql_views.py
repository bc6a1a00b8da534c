"""The original GW Portal's table names for the pipeline's direct SQL: views over survey_frame (PostgreSQL).

The views themselves live in survey.pipeline_views: survey.apps creates them after every ``migrate`` once
this migration is applied (and drops them before one applies anything, since PostgreSQL refuses to alter
a column a view uses). Applying this migration therefore does nothing by itself; unapplying it drops them.
"""
from django.db import migrations


def drop_views(apps, schema_editor) -> None:
    from survey.pipeline_views import drop_views

    drop_views(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ("survey", "0005_header_layouts"),
    ]

    operations = [migrations.RunPython(migrations.RunPython.noop, drop_views)]
