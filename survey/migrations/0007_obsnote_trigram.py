"""PostgreSQL: a trigram index over the OBSNOTE of the frames that have one.

Why: the GW follow-up team finds its frames by the event name in OBSNOTE (`obsnote_contains=S251112cm`),
a substring search that otherwise scans every frame (0.25 s per query at 1 M frames, twice per API page
with its count). Most frames have no note (TCSpy writes NOTE='None'), so the index is partial: an ingest
pays for it only on frames with a note. It matches the SQL of Django's ``icontains`` (``UPPER(obsnote::text)
LIKE UPPER(...)``); the API adds ``obsnote <> ''`` so that the planner may use it (survey.api.filters).

``pg_trgm`` ships with PostgreSQL (contrib) and is a trusted extension: a database owner may create it.
Where it cannot be created the migration says so and goes on; searches still work, by scanning.
SQLite: nothing (no such index type; the embedded default holds small archives).
"""
import logging

from django.db import DatabaseError, migrations, transaction

log = logging.getLogger(__name__)

INDEX = "frame_obsnote_trgm"


def create_index(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias):  # a savepoint: a failure leaves the migration going
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {INDEX} ON survey_frame USING gin (upper(obsnote::text) gin_trgm_ops)"
                " WHERE obsnote <> ''"
            )
    except DatabaseError as exc:  # not installed, not allowed, or in a schema off the search path
        log.warning("no trigram index on OBSNOTE (%s): OBSNOTE searches will scan the frames", exc)


def drop_index(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ("survey", "0006_pipeline_sql_views"),
    ]

    operations = [migrations.RunPython(create_index, drop_index)]
