"""Model fields of our own, each with the reason it exists."""
from __future__ import annotations

import json
from typing import Any

from django.db import models


class HeaderJSONField(models.JSONField):
    """JSON stored as written: PostgreSQL ``json`` (validated text), not ``jsonb``.

    Why: a FITS header is read in card order, and ``jsonb`` re-sorts keys by length and name; it
    also costs the server ~35 us more per ~6 KB header when an ingest COPYs it (parsing into the
    binary form; bench/bench_stages.py). Nothing looks inside a stored header in SQL, so ``jsonb``'s
    operators buy nothing. On SQLite the column is TEXT without Django's ``JSON_VALID`` check: every
    header is written by a JSON encoder (the ingest's orjson/json, or this field), and checking 6 KB
    again cost ~7 us per frame on the ingest's one serial stage, the writer.
    """

    def db_check(self, connection: Any) -> str | None:
        if connection.vendor == "sqlite":
            return None
        return super().db_check(connection)

    def db_type(self, connection: Any) -> str:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if connection.vendor == "postgresql" and value is not None and not hasattr(value, "as_sql"):
            return json.dumps(value, cls=self.encoder)  # text: the server checks it is JSON, keeps it as is
        return super().get_db_prep_value(value, connection, prepared)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is not None and not isinstance(value, str):  # psycopg decodes `json` columns itself
            return value
        return super().from_db_value(value, expression, connection)
