"""The pipeline's SQL views (survey/pipeline_views.py) around `migrate`, on a PostgreSQL database of its own.

PostgreSQL refuses to alter a column a view uses; `migrate` therefore drops the views before it applies
anything and creates them again afterwards, once migration 0006 is applied (survey/apps.py).
"""
from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from tests.reliability.conftest import ROOT, USE_PG

pytestmark = pytest.mark.skipif(not USE_PG, reason="the views exist on PostgreSQL only")

VIEWS = {"survey_scienceframe", "survey_biasframe", "survey_darkframe", "survey_flatframe", "facility_unit", "facility_filter"}


def migrate(child_dbs, url: str, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0", "--skip-checks", *args], cwd=ROOT,
                   env={**child_dbs.env, "DATABASE_URL": url}, check=True)


def views(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'")} & VIEWS


def test_migrate_drops_and_makes_the_views_around_schema_changes(child_dbs):
    url = child_dbs.new_url()
    assert views(url) == VIEWS  # the migrated template
    with psycopg.connect(url) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported):  # why migrate drops them first
            conn.execute("ALTER TABLE survey_frame ALTER COLUMN obsnote TYPE varchar(300)")
    migrate(child_dbs, url, "survey", "0005")
    assert views(url) == set()
    with psycopg.connect(url) as conn:  # what a later migration may do to a column the views read
        conn.execute("ALTER TABLE survey_frame ALTER COLUMN obsnote TYPE varchar(300)")
    migrate(child_dbs, url)
    assert views(url) == VIEWS
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM survey_scienceframe").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'frame_obsnote_trgm'").fetchone() == (1,)
    migrate(child_dbs, url)  # nothing to apply: the views stay
    assert views(url) == VIEWS


# A migration after the last one on disk that alters a column the views read, added to the loader in
# the child process only: the migration this design exists for.
LATER_MIGRATION = """
import django
django.setup()
from django.core.management import call_command
from django.db import migrations
from django.db.migrations.loader import MigrationLoader

load_disk = MigrationLoader.load_disk

def with_later_migration(self):
    load_disk(self)
    leaf = max(name for app, name in self.disk_migrations if app == "survey")
    later = type("Migration", (migrations.Migration,), {
        "dependencies": [("survey", leaf)],
        "operations": [migrations.RunSQL("ALTER TABLE survey_frame ALTER COLUMN obsnote TYPE varchar(300)")],
    })("9999_widen_obsnote", "survey")
    self.disk_migrations[("survey", "9999_widen_obsnote")] = later

MigrationLoader.load_disk = with_later_migration
call_command("migrate", verbosity=0, skip_checks=True)
"""


def test_a_later_migration_may_alter_a_column_the_views_read(child_dbs):
    url = child_dbs.new_url()
    assert views(url) == VIEWS
    subprocess.run([sys.executable, "-c", LATER_MIGRATION], cwd=ROOT, check=True,
                   env={**child_dbs.env, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "gwportal.settings"})
    assert views(url) == VIEWS
    with psycopg.connect(url) as conn:
        size = conn.execute(
            "SELECT character_maximum_length FROM information_schema.columns"
            " WHERE table_name = 'survey_frame' AND column_name = 'obsnote'"
        ).fetchone()
        assert size == (300,)
        assert conn.execute("SELECT count(*) FROM survey_scienceframe").fetchone() == (0,)
