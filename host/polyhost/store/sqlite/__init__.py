"""The SQLite run store: one file in WAL mode, written by one background thread."""

from __future__ import annotations

from ._store import DB_FILE_NAME, SQLiteStore

__all__ = ["DB_FILE_NAME", "SQLiteStore"]
