"""Deployed workflows and schedule fires in SQLite (the tables of migration 3).

The writes run inside the store's ``BEGIN IMMEDIATE`` transactions (``SQLiteStore._controlling``),
so two processes deploying the same workflow are serialised and number their versions without
gaps or clashes. A fire is claimed by inserting its row: the primary key (workflow, trigger
key, due second) lets the insert of exactly one claimer count, whichever process it runs in.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from ..._errors import WorkflowNotFoundError
from .._base import DeploymentRecord, DeploymentVersion

__all__ = [
    "claim_fire",
    "deploy",
    "get_deployment",
    "list_deployments",
    "record_fire_run",
    "undeploy",
]

# Fires are kept this long: claims only ever compare with recent ones (a scheduler looks at
# most a grace window back), and the rows past it would only grow the table.
FIRE_HISTORY_SECONDS: Final = 7 * 24 * 3600

_LATEST: Final = """
SELECT w.latest_version, w.undeployed_at, d.hash
FROM workflows AS w JOIN deployments AS d
  ON d.workflow_id = w.workflow_id AND d.version = w.latest_version
WHERE w.workflow_id = ?
"""

_LIST: Final = """
SELECT w.workflow_id, w.latest_version, d.hash, d.created_at, w.undeployed_at, d.manifest,
       w.deployed_at
FROM workflows AS w JOIN deployments AS d
  ON d.workflow_id = w.workflow_id AND d.version = w.latest_version
{where}
ORDER BY w.workflow_id
"""

_ONE: Final = """
SELECT d.version, d.hash, d.created_at, d.document, d.manifest, w.undeployed_at,
       w.latest_version, w.deployed_at
FROM workflows AS w JOIN deployments AS d ON d.workflow_id = w.workflow_id
WHERE w.workflow_id = ?1 AND d.version = coalesce(?2, w.latest_version)
"""


def deploy(
    conn: sqlite3.Connection,
    workflow_id: str,
    document: str,
    digest: str,
    *,
    manifest: str | None,
    now: float,
) -> tuple[int, bool]:
    """Store ``document`` as the next version unless the latest has the same hash; either
    way the workflow is active afterwards. Returns ``(version, created)``."""
    row = conn.execute(_LATEST, (workflow_id,)).fetchone()
    if row is not None and row[2] == digest:
        if row[1] is not None:
            conn.execute(
                "UPDATE workflows SET undeployed_at = NULL, deployed_at = ? WHERE workflow_id = ?",
                (now, workflow_id),
            )
        return int(row[0]), False
    version = 1 if row is None else int(row[0]) + 1
    conn.execute(
        "INSERT INTO deployments (workflow_id, version, hash, document, manifest, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (workflow_id, version, digest, document, manifest, now),
    )
    conn.execute(
        "INSERT INTO workflows (workflow_id, latest_version, deployed_at) VALUES (?, ?, ?) "
        "ON CONFLICT (workflow_id) DO UPDATE SET latest_version = excluded.latest_version, "
        "deployed_at = excluded.deployed_at, undeployed_at = NULL",
        (workflow_id, version, now),
    )
    return version, True


def list_deployments(
    conn: sqlite3.Connection, *, include_undeployed: bool
) -> list[DeploymentRecord]:
    """The latest version of every (active) deployed workflow, by id, without documents."""
    where = "" if include_undeployed else "WHERE w.undeployed_at IS NULL"
    rows = conn.execute(_LIST.format(where=where)).fetchall()
    return [
        DeploymentRecord(
            workflow_id=row[0],
            version=row[1],
            hash=row[2],
            created_at=row[3],
            active=row[4] is None,
            manifest=row[5],
            latest_version=row[1],
            deployed_at=row[6],
        )
        for row in rows
    ]


def get_deployment(
    conn: sqlite3.Connection, workflow_id: str, version: int | None
) -> DeploymentRecord:
    """One version (the latest by default) with its document and the list of every version.

    Raises ``WorkflowNotFoundError``.
    """
    row = conn.execute(_ONE, (workflow_id, version)).fetchone()
    if row is None:
        known = conn.execute(
            "SELECT 1 FROM workflows WHERE workflow_id = ?", (workflow_id,)
        ).fetchone()
        if known is None:
            raise WorkflowNotFoundError(f"no workflow {workflow_id!r} was ever deployed")
        raise WorkflowNotFoundError(f"workflow {workflow_id!r} has no version {version}")
    versions = conn.execute(
        "SELECT version, hash, created_at FROM deployments WHERE workflow_id = ? ORDER BY version",
        (workflow_id,),
    ).fetchall()
    return DeploymentRecord(
        workflow_id=workflow_id,
        version=row[0],
        hash=row[1],
        created_at=row[2],
        active=row[5] is None,
        document=row[3],
        manifest=row[4],
        versions=tuple(DeploymentVersion(v[0], v[1], v[2]) for v in versions),
        latest_version=row[6],
        deployed_at=row[7],
    )


def undeploy(conn: sqlite3.Connection, workflow_id: str, now: float) -> bool:
    """Mark the workflow undeployed; False when it was not deployed."""
    done = conn.execute(
        "UPDATE workflows SET undeployed_at = ? WHERE workflow_id = ? AND undeployed_at IS NULL",
        (now, workflow_id),
    )
    return done.rowcount == 1


def claim_fire(
    conn: sqlite3.Connection,
    workflow_id: str,
    trigger_key: str,
    due_at: int,
    *,
    version: int | None,
    now: float,
) -> bool:
    """Insert the fire's row; True when this insert counted (no one claimed it before)."""
    done = conn.execute(
        "INSERT INTO trigger_fires (workflow_id, trigger_key, due_at, version, claimed_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (workflow_id, trigger_key, due_at, version, now),
    )
    won = done.rowcount == 1
    if won:
        # The primary key's order makes this a short range delete.
        conn.execute(
            "DELETE FROM trigger_fires WHERE workflow_id = ? AND trigger_key = ? AND due_at < ?",
            (workflow_id, trigger_key, due_at - FIRE_HISTORY_SECONDS),
        )
    return won


def record_fire_run(
    conn: sqlite3.Connection, workflow_id: str, trigger_key: str, due_at: int, run_id: str
) -> None:
    """Note the run a fire started."""
    conn.execute(
        "UPDATE trigger_fires SET run_id = ? "
        "WHERE workflow_id = ? AND trigger_key = ? AND due_at = ?",
        (run_id, workflow_id, trigger_key, due_at),
    )
