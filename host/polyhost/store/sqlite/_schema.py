"""The SQLite schema of the run store and the migrations that reach it.

``PRAGMA user_version`` holds the schema version: version N means the first N entries of
:data:`MIGRATIONS` have run. A change to the layout is a new entry at the end, never an edit of
an old one, so a database written by any earlier polyhost upgrades in place.
"""

from __future__ import annotations

import sqlite3

from ..._errors import StoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

MIGRATIONS: tuple[str, ...] = (
    # 1: runs, node results and events.
    """
    CREATE TABLE runs (
        run_id        TEXT PRIMARY KEY,
        workflow_id   TEXT NOT NULL,
        status        TEXT NOT NULL,
        inputs        TEXT NOT NULL DEFAULT '{}',
        document      TEXT NOT NULL DEFAULT '{}',
        source        TEXT,
        manifest      TEXT,
        parent_run_id TEXT,
        started_at    REAL NOT NULL,
        finished_at   REAL,
        duration_ms   REAL,
        outputs       TEXT,
        error         TEXT,
        result        TEXT
    );
    CREATE INDEX runs_by_started ON runs (started_at DESC);
    CREATE INDEX runs_by_status ON runs (status, started_at DESC);
    CREATE INDEX runs_by_workflow ON runs (workflow_id, started_at DESC);

    -- A rowid table on purpose: rowid keeps the order in which nodes were first recorded.
    CREATE TABLE node_results (
        run_id      TEXT NOT NULL,
        node_id     TEXT NOT NULL,
        status      TEXT NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        output      TEXT,
        error       TEXT,
        started_at  REAL,
        duration_ms REAL,
        PRIMARY KEY (run_id, node_id)
    );

    CREATE TABLE events (
        run_id TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        type   TEXT NOT NULL,
        ts     REAL NOT NULL,
        node   TEXT,
        data   TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    """,
    # 2: durable runs. The owner of a running run and its lease (crash recovery), a cancel
    # requested from another process, what a paused run waits for and when its timer falls
    # due; per node, what a resumed run needs to rebuild its scheduler.
    """
    ALTER TABLE runs ADD COLUMN owner_id TEXT;
    ALTER TABLE runs ADD COLUMN owner_host TEXT;
    ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
    ALTER TABLE runs ADD COLUMN lease_expires_at REAL;
    ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN wake_at REAL;
    ALTER TABLE runs ADD COLUMN pause TEXT;
    CREATE INDEX runs_due_timers ON runs (status, wake_at);
    CREATE INDEX runs_due_leases ON runs (status, lease_expires_at);

    ALTER TABLE node_results ADD COLUMN ports TEXT;
    ALTER TABLE node_results ADD COLUMN settled_seq INTEGER;
    ALTER TABLE node_results ADD COLUMN reason TEXT;
    """,
    # 3: deployed workflows. Where a run came from (the deployed version it runs, what
    # started it); every version of every deployed workflow (history is kept: an undeployed
    # workflow keeps its versions, and deploying it again continues their numbering); and one
    # row per schedule due time that fired, whose primary key lets exactly one of several
    # hosts sharing the database claim it.
    """
    ALTER TABLE runs ADD COLUMN workflow_version INTEGER;
    ALTER TABLE runs ADD COLUMN trigger TEXT NOT NULL DEFAULT 'manual';

    CREATE TABLE workflows (
        workflow_id    TEXT PRIMARY KEY,
        latest_version INTEGER NOT NULL,
        deployed_at    REAL NOT NULL,
        undeployed_at  REAL
    );

    CREATE TABLE deployments (
        workflow_id TEXT NOT NULL,
        version     INTEGER NOT NULL,
        hash        TEXT NOT NULL,
        document    TEXT NOT NULL,
        manifest    TEXT,
        created_at  REAL NOT NULL,
        PRIMARY KEY (workflow_id, version)
    );

    CREATE TABLE trigger_fires (
        workflow_id TEXT NOT NULL,
        trigger_key TEXT NOT NULL,
        due_at      INTEGER NOT NULL,
        version     INTEGER,
        claimed_at  REAL NOT NULL,
        run_id      TEXT,
        PRIMARY KEY (workflow_id, trigger_key, due_at)
    ) WITHOUT ROWID;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, where: str) -> None:
    """Bring the database behind ``conn`` (in autocommit mode) up to :data:`SCHEMA_VERSION`.

    The check runs inside ``BEGIN IMMEDIATE`` so that two processes opening a new database at
    the same moment do not both create the tables.
    """
    version = _user_version(conn)
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where}: the database has schema version {version}, newer than this polyhost "
            f"understands ({SCHEMA_VERSION}); upgrade polyhost to read it"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn)
        for index in range(version, SCHEMA_VERSION):
            # executescript would commit the open transaction; run statement by statement.
            for statement in _statements(MIGRATIONS[index]):
                conn.execute(statement)
        # PRAGMA takes no parameters; the value is an int we computed.
        conn.execute(f"PRAGMA user_version = {max(version, SCHEMA_VERSION)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
