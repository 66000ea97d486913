"""The store contract suite's backends.

Every test that takes ``store_backend`` (or the ``store`` and ``other`` fixtures built on it)
runs once per backend listed in ``BACKENDS``. A new backend (Postgres) adds a class with the
same three methods and its name to ``BACKENDS``; the suite then holds it to the same contract.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from polyhost.store import RunStore, SQLiteStore


class StoreBackend(Protocol):
    """One database of one backend, fresh for each test."""

    name: str

    def open(self) -> RunStore:
        """A new store on this test's database; several may be open at once, as several
        processes would."""
        ...

    def owner_columns(self, run_id: str) -> tuple[Any, ...]:
        """A run's (owner_id, owner_host, owner_pid, lease_expires_at), read behind the store's
        back."""
        ...

    def fires(self, workflow_id: str, trigger_key: str) -> dict[int, str | None]:
        """One schedule's claimed fires (due second -> run id), read behind the store's
        back."""
        ...


class SQLiteBackend:
    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.path = folder / "runs.db"

    def open(self) -> RunStore:
        return SQLiteStore(self.path)

    def owner_columns(self, run_id: str) -> tuple[Any, ...]:
        with sqlite3.connect(self.path) as conn:
            return tuple(
                conn.execute(
                    "SELECT owner_id, owner_host, owner_pid, lease_expires_at FROM runs "
                    "WHERE run_id = ?",
                    (run_id,),
                ).fetchone()
            )

    def fires(self, workflow_id: str, trigger_key: str) -> dict[int, str | None]:
        with sqlite3.connect(self.path) as conn:
            rows = conn.execute(
                "SELECT due_at, run_id FROM trigger_fires "
                "WHERE workflow_id = ? AND trigger_key = ?",
                (workflow_id, trigger_key),
            ).fetchall()
        return {int(due_at): run_id for due_at, run_id in rows}


# Postgres goes here (skipped where no server is configured).
BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreBackend:
    if request.param == "sqlite":
        return SQLiteBackend(tmp_path)
    raise AssertionError(f"unknown store backend {request.param}")


@pytest.fixture
def store(store_backend: StoreBackend) -> Iterator[RunStore]:
    with store_backend.open() as opened:
        yield opened


@pytest.fixture
def other(store_backend: StoreBackend, store: RunStore) -> Iterator[RunStore]:
    """A second store on the same database, as another process would open it."""
    with store_backend.open() as opened:
        yield opened
