"""Read-only views with the original GW Portal's table and column names, on PostgreSQL.

Why: the 7DT pipeline's production path reads the archive database directly, not over HTTP
(reference/original-gwportal.md 4.2): ``survey_scienceframe`` / ``survey_biasframe`` /
``survey_darkframe`` / ``survey_flatframe`` joined to ``facility_unit``, ``facility_filter``,
``survey_night``, ``survey_target`` and ``survey_tile``. ``survey_night(id, date)``, ``survey_target(id, name,
ra, dec)`` and ``survey_tile(id, name, ra, dec)`` are our own tables already; the rest are views over
``survey_frame`` here, so that SQL keeps working unchanged (docs/api.md, "Direct SQL").

- Each frame view holds catalogued frames of its type (not excluded, file present), as ``/api/frames/raw/``.
- ``facility_filter`` lists every filter name found on a frame. A filter's ``id`` is derived from its
  name (the first 32 bits of its MD5), so it is the same in every view and never changes.
- ``unified_filename`` is the original's normalised name, built as the REST API builds it
  (survey.api.serializers.unified_filename).
- The original's never-computed calibration-quality columns are NULL. ``is_usable`` is true: the views
  hold only catalogued frames.

PostgreSQL refuses to alter or drop a column that a view uses, so the views are not created by a
migration: survey.apps drops them before ``migrate`` applies anything and creates them again from this
module afterwards (once migration 0006 is applied). A schema change is then free to touch these columns;
this module must follow it. SQLite has no such views: the pipeline's SQL path speaks PostgreSQL.
"""
from __future__ import annotations

from typing import Any

FILTER_ID = "('x' || substr(md5({col}), 1, 8))::bit(32)::int"

UNIFIED = """CASE WHEN fr.date_obs IS NULL THEN NULL ELSE concat(
        (SELECT name FROM survey_unit WHERE id = fr.unit_id), '_', to_char(fr.date_obs AT TIME ZONE 'UTC', 'YYYYMMDD_HH24MISS'), '_',
        replace(COALESCE(NULLIF((SELECT name FROM survey_tile WHERE id = fr.tile_id), ''),
                         NULLIF((SELECT name FROM survey_target WHERE id = fr.target_id), ''),
                         NULLIF(fr.object, ''), fr.image_type), ' ', ''), '_',
        COALESCE(NULLIF(fr.filter, ''), 'none'), '_',
        COALESCE(NULLIF(fr.binning, 0), 1), 'x', COALESCE(NULLIF(fr.binning, 0), 1), '_',
        COALESCE(to_char(fr.exptime, 'FM999999990.0'), '0.0'), 's_',
        CASE WHEN fr.sequence BETWEEN 0 AND 9999 THEN lpad(fr.sequence::text, 4, '0')
             ELSE COALESCE(fr.sequence::text, '0000') END,
        '.fits') END"""

COMMON = f"""fr.id,
    fr.filename AS original_filename,
    fr.path AS file_path,
    {UNIFIED} AS unified_filename,
    fr.date_obs AS obstime,
    fr.mjd,
    fr.exptime,
    fr.unit_id,
    fr.night_id,
    fr.file_size,
    fr.image_id,
    fr.gain,
    NULL::double precision AS egain,
    fr.binning AS binning_x,
    fr.binning AS binning_y,
    fr.camera AS instrument,
    fr.ccd_temp AS ccdtemp,
    fr.software AS software_used,
    fr.ingested_at AS created_at,
    fr.updated_at"""

FILTER_OF_FRAME = f"CASE WHEN fr.filter <> '' THEN {FILTER_ID.format(col='fr.filter')} END AS filter_id"
CALIBRATION = """TRUE AS is_usable,
    NULL::double precision AS quality_score,
    NULL::varchar(20) AS processing_status"""


def _frames(image_type: str, columns: str) -> str:
    """The catalogued frames (not excluded, file present) of one type, as `/api/frames/raw/` serves them.

    One table per view: names come from scalar subqueries, computed for the rows a query returns only.
    With joins here, the pipeline's query (five joins of its own) passes PostgreSQL's join_collapse_limit
    and is planned in written order: a tile or target search then scans every frame (6 s at 1 M frames)."""
    return (f"SELECT {COMMON},\n    {columns}\nFROM survey_frame fr\n"
            f"WHERE fr.image_type = '{image_type}' AND fr.excluded_by = '' AND fr.present")


VIEWS = {
    "facility_unit": "SELECT id, name FROM survey_unit",
    # Distinct filter names by a walk down the (filter, date_obs) index: one probe per name, not a scan.
    "facility_filter": f"""WITH RECURSIVE names(name) AS (
    (SELECT filter FROM survey_frame WHERE filter > '' ORDER BY filter LIMIT 1)
    UNION ALL
    SELECT (SELECT filter FROM survey_frame WHERE filter > names.name ORDER BY filter LIMIT 1)
    FROM names WHERE names.name IS NOT NULL
)
SELECT {FILTER_ID.format(col='name')} AS id, name FROM names WHERE name IS NOT NULL""",
    "survey_scienceframe": _frames("science", f"""{FILTER_OF_FRAME},
    fr.target_id,
    fr.tile_id,
    fr.airmass,
    fr.seeing AS fwhm,
    fr.object AS object_name,
    NULLIF(fr.program, '') AS object_type,
    fr.obj_ra AS object_ra,
    fr.obj_dec AS object_dec,
    fr.ra AS unit_ra,
    fr.dec AS unit_dec,
    fr.obsnote,
    fr.is_too,
    fr.is_shift AS is_shift_observation"""),
    "survey_biasframe": _frames("bias", f"""{CALIBRATION},
    NULL::double precision AS median_level,
    NULL::double precision AS noise_level,
    NULL::double precision AS std_deviation"""),
    "survey_darkframe": _frames("dark", f"""{CALIBRATION},
    NULL::double precision AS dark_current,
    NULL::integer AS hotpix_count,
    NULL::double precision AS median_level"""),
    "survey_flatframe": _frames("flat", f"""{FILTER_OF_FRAME},
    {CALIBRATION},
    NULL::double precision AS median_counts,
    NULL::double precision AS uniformity_rms,
    NULL::double precision AS vignetting_level,
    NULL::double precision AS illumination_gradient"""),
}


def create_views(connection: Any) -> None:
    """Create (or replace) every view; PostgreSQL only."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cur:
        for name, sql in VIEWS.items():
            cur.execute(f"CREATE OR REPLACE VIEW {name} AS\n{sql}")


def drop_views(connection: Any) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cur:
        for name in reversed(list(VIEWS)):
            cur.execute(f"DROP VIEW IF EXISTS {name}")
