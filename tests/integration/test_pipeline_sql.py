"""The direct-SQL contract (reference/original-gwportal.md 4.2 and item 13 of 4.3), on PostgreSQL.

The pipeline's production path reads the original's tables directly: SELECT from ``survey_scienceframe``
(or ``survey_biasframe``/``darkframe``/``flatframe``) joined to ``facility_unit``, ``survey_night``,
``facility_filter``, ``survey_target`` and ``survey_tile``. The SQL below is written from that description
(tables, columns and joins as 4.2 lists them); it must find the same frames as the HTTP checks 3-6, with
the same values the REST API gives.
"""
from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from survey.api.serializers import unified_filename
from survey.models import Frame
from tests.integration.test_pipeline_contract import RAW_KEYS, scenario  # noqa: F401 - the fixture

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the pipeline's SQL path speaks PostgreSQL"),
]

RAW_SQL = """
SELECT sf.id, sf.original_filename AS filename, sf.file_path AS filepath, sf.unified_filename, sf.obstime,
       sf.mjd, sf.exptime, sf.airmass, sf.fwhm AS seeing, sf.object_name, sf.object_type, sf.object_ra,
       sf.object_dec, sf.obsnote, u.name AS unit, f.name AS filter, t.name AS target, tl.name AS tile,
       n.date AS night
FROM survey_scienceframe sf
JOIN facility_unit u ON sf.unit_id = u.id
JOIN survey_night n ON sf.night_id = n.id
LEFT JOIN facility_filter f ON sf.filter_id = f.id
LEFT JOIN survey_target t ON sf.target_id = t.id
LEFT JOIN survey_tile tl ON sf.tile_id = tl.id
{where}
ORDER BY sf.obstime
"""


def select(sql: str, params: list[Any] | tuple = ()) -> list[dict[str, Any]]:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def raw(where: str = "", params: list[Any] | tuple = ()) -> list[dict[str, Any]]:
    return select(RAW_SQL.format(where=f"WHERE {where}" if where else ""), params)


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return sorted(r["id"] for r in rows)


def test_13_date_range_in_obstime_order(scenario):  # noqa: F811
    rows = raw("sf.obstime >= %s AND sf.obstime < %s", ["2025-10-01", "2025-10-03"])
    expected = scenario["tile_frames"] + scenario["grb_frames"]
    assert ids(rows) == sorted(f.id for f in expected)
    stamps = [r["obstime"] for r in rows]
    assert stamps == sorted(stamps)
    assert {r["night"].isoformat() for r in rows} == {"2025-10-01"}
    assert RAW_KEYS == set(rows[0])


def test_13_night_and_unit(scenario):  # noqa: F811
    rows = raw("n.date = %s AND u.name IN (%s)", ["2025-10-01", "7DT01"])
    assert ids(rows) == sorted(f.id for f in scenario["tile_frames"])
    assert {r["tile"] for r in rows} == {"T00001"} and {r["filter"] for r in rows} == {"r"}


def test_13_filter_and_obsnote_ilike(scenario):  # noqa: F811
    rows = raw("f.name IN (%s) AND sf.obsnote ILIKE %s", ["m525", "%s251112CM%"])
    assert ids(rows) == sorted(f.id for f in scenario["grb_frames"])  # not the frame whose file vanished


def test_13_target_or_tile_name(scenario):  # noqa: F811
    assert ids(raw("t.name IN (%s)", ["GRB240825A"])) == sorted(f.id for f in scenario["grb_frames"])
    by_tile = raw("sf.tile_id IN (SELECT id FROM survey_tile WHERE name IN (%s))", ["T00001"])
    assert ids(by_tile) == sorted(f.id for f in scenario["tile_frames"])  # not the focus frame


def test_sql_rows_equal_the_rest_api_rows(scenario):  # noqa: F811
    sql = {r["id"]: r for r in raw()}
    api = {r["id"]: r for r in scenario["client"].fetch_all("raw")}
    assert set(sql) == set(api) and len(sql) == 7
    for frame_id, row in sql.items():
        want = dict(api[frame_id])
        got = dict(row, obstime=row["obstime"].isoformat().replace("+00:00", "Z"), night=row["night"].isoformat())
        assert {k: got[k] for k in RAW_KEYS} == {k: want[k] for k in RAW_KEYS}, frame_id


def test_unified_filename_as_the_api_builds_it(scenario):  # noqa: F811
    frames = Frame.objects.select_related("unit", "tile", "target").filter(excluded_by="", present=True)
    views = ("survey_scienceframe", "survey_biasframe", "survey_darkframe", "survey_flatframe")
    names = {r["id"]: r["unified_filename"] for v in views for r in select(f"SELECT id, unified_filename FROM {v}")}
    assert names == {f.id: unified_filename(f) for f in frames}
    bias = scenario["others"]["bias"]
    assert names[bias.id].startswith("7DT01_20251001_220000_bias_r_1x1_0.0s_")


def test_calibration_views_and_filters(scenario):  # noqa: F811
    bias = scenario["others"]["bias"]
    rows = select(
        "SELECT cf.id, cf.original_filename, cf.file_path, cf.exptime, cf.is_usable, cf.median_level, u.name AS unit,"
        " n.date AS night FROM survey_biasframe cf JOIN facility_unit u ON cf.unit_id = u.id"
        " JOIN survey_night n ON cf.night_id = n.id ORDER BY cf.obstime"
    )
    assert [(r["id"], r["unit"], r["night"].isoformat(), r["file_path"]) for r in rows] == [
        (bias.id, "7DT01", "2025-10-01", bias.path)
    ]
    assert rows[0]["is_usable"] is True and rows[0]["median_level"] is None
    assert select("SELECT id FROM survey_darkframe") == select("SELECT id FROM survey_flatframe") == []
    filters = {r["name"]: r["id"] for r in select("SELECT id, name FROM facility_filter")}
    assert set(filters) == {"r", "m525"}
    used = select("SELECT DISTINCT sf.filter_id, f.name FROM survey_scienceframe sf JOIN facility_filter f ON f.id = sf.filter_id")
    assert {r["name"]: r["filter_id"] for r in used} == filters
    units = select("SELECT id, name FROM facility_unit ORDER BY name")
    assert [u["name"] for u in units] == ["7DT01", "7DT02"]


def test_obsnote_search_uses_the_trigram_index(scenario):  # noqa: F811
    """The API's obsnote_contains query has the shape migration 0007's partial index serves."""
    from django.db import transaction

    from survey.api.filters import FrameFilter

    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'frame_obsnote_trgm'")
        if cur.fetchone() is None:
            pytest.skip("pg_trgm could not be created here (migration 0007 went on without the index)")
    qs = FrameFilter({"obsnote_contains": "s251112CM"}, queryset=Frame.objects.all()).qs
    assert sorted(qs.values_list("id", flat=True)) == sorted(
        f.id for f in [*scenario["grb_frames"], scenario["others"]["vanished"]]
    )
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")  # a test table is small enough to scan
        plan = qs.explain()
    assert "frame_obsnote_trgm" in plan, plan
