"""Give a child process (a real `manage.py` command) this test's database.

PostgreSQL: the URL of the test database. SQLite in a file: its path. The default in-memory SQLite test
database is copied to a file with SQLite's backup API, and `sync_back()` copies the child's changes back.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from django.db import connection


class SharedDatabase:
    def __init__(self, tmp_path: Path) -> None:
        sd = connection.settings_dict
        self.copy: Path | None = None
        if connection.vendor == "postgresql":
            auth = quote(sd["USER"] or "postgres") + (f":{quote(sd['PASSWORD'])}" if sd.get("PASSWORD") else "")
            self.url = f"postgres://{auth}@{sd['HOST'] or 'localhost'}:{sd['PORT'] or 5432}/{sd['NAME']}"
        elif not connection.is_in_memory_db():
            self.url = f"sqlite:///{sd['NAME']}"
        else:
            self.copy = tmp_path / "shared.sqlite3"
            connection.ensure_connection()
            target = sqlite3.connect(self.copy)
            connection.connection.backup(target)
            target.close()
            self.url = f"sqlite:///{self.copy}"

    def sync_back(self) -> None:
        if self.copy is not None:
            source = sqlite3.connect(self.copy)
            source.backup(connection.connection)
            source.close()
