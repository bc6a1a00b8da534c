"""COPY rows into a PostgreSQL table inside Django's current transaction (one place for the ingest
writer, the statistics and the benchmarks' catalogue builder)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, types: Sequence[str] | None = None) -> None:
    """``COPY table (columns) FROM STDIN`` with ``rows``; with ``types``, in binary format.

    ``table`` and ``columns`` are SQL text as given (quote them if they need it). psycopg adapts each
    value; binary needs the PostgreSQL type of every column (``types``), text format none. A COPY is one
    statement for the server, where an executemany is one per row.
    """
    connection.ensure_connection()
    fmt = " (FORMAT BINARY)" if types else ""
    with connection.connection.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN{fmt}") as copy:
        if types:
            copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
