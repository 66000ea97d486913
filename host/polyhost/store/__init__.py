"""Where runs are kept: the ``RunStore`` interface and its SQLite implementation."""

from __future__ import annotations

from ._base import LeaseState, Owner, RunRecord, RunStore, RunSummary
from ._open import default_home, open_store
from ._sqlite import SQLiteStore

__all__ = [
    "LeaseState",
    "Owner",
    "RunRecord",
    "RunStore",
    "RunSummary",
    "SQLiteStore",
    "default_home",
    "open_store",
]
