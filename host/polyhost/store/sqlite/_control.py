"""Ownership, leases and cancel requests: the store's synchronous writes.

These bypass the writer's queue: a host claiming a run must know at once whether it won, and a
cancel asked for from another process must be committed before the command returns. Each runs
in one ``BEGIN IMMEDIATE`` transaction, so two processes claiming the same run are serialised by
SQLite and exactly one of them wins.

They see what is committed, nothing more. A caller that queued writes for the run (its own
``record_*`` calls) flushes them before claiming, or a batch written later could undo the claim.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
from typing import Any, Final

from ..._errors import RunStateError
from ...events._events import EventType
from ...events._result import NodeStatus, RunStatus
from .._base import LeaseState, Owner

__all__ = ["CANCELLED_ERROR", "cancel", "claim", "due", "owner_alive", "renew"]

CANCELLED_ERROR: Final = {"node": None, "code": "cancelled", "message": "the run was cancelled"}

_OWNER_COLUMNS: Final = "status, owner_id, owner_host, owner_pid, lease_expires_at"


def claim(
    conn: sqlite3.Connection,
    run_id: str,
    owner: Owner,
    *,
    lease_seconds: float,
    statuses: tuple[RunStatus, ...],
    now: float,
) -> None:
    """Make ``owner`` the owner of ``run_id`` (inside the caller's transaction).

    Raises ``RunStateError`` when the status is not one of ``statuses`` or another owner is
    alive.
    """
    row = _owner_row(conn, run_id)
    status = RunStatus(row["status"])
    if status not in statuses:
        if status.is_final:
            raise RunStateError(f"run {run_id} already {status.value}")
        wanted = " or ".join(s.value for s in statuses)
        raise RunStateError(f"run {run_id} is {status.value}, not {wanted}")
    if row["owner_id"] not in (None, owner.host_id) and owner_alive(row, owner.hostname, now):
        remaining = max(0.0, float(row["lease_expires_at"] or now) - now)
        raise RunStateError(
            f"run {run_id} is being executed by {row['owner_host']} (pid {row['owner_pid']}); "
            f"it can be taken over once that process ends or its lease expires "
            f"(in {remaining:.0f} s)"
        )
    conn.execute(
        "UPDATE runs SET status = ?, owner_id = ?, owner_host = ?, owner_pid = ?, "
        "lease_expires_at = ?, wake_at = NULL, cancel_requested = 0, finished_at = NULL "
        "WHERE run_id = ?",
        (
            RunStatus.RUNNING.value,
            owner.host_id,
            owner.hostname,
            owner.pid,
            now + lease_seconds,
            run_id,
        ),
    )


def renew(
    conn: sqlite3.Connection, run_id: str, owner: Owner, lease_seconds: float, now: float
) -> LeaseState:
    """Extend ``owner``'s lease on ``run_id`` if it still holds it."""
    row = conn.execute(
        "SELECT owner_id, cancel_requested FROM runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    still_owner = row[0] == owner.host_id
    if still_owner:
        conn.execute(
            "UPDATE runs SET lease_expires_at = ? WHERE run_id = ?", (now + lease_seconds, run_id)
        )
    return LeaseState(still_owner=still_owner, cancel_requested=bool(row[1]))


def cancel(conn: sqlite3.Connection, run_id: str, hostname: str, now: float) -> RunStatus:
    """Cancel ``run_id`` or flag it for its owner; the status after the request."""
    row = _owner_row(conn, run_id)
    status = RunStatus(row["status"])
    if status.is_final:
        raise RunStateError(f"run {run_id} already {status.value}")
    # A running run with a live owner (or none recorded yet: its host may be about to claim
    # it) is stopped by that owner. One whose owner is dead would be picked up by recovery,
    # which clears the flag, so it is cancelled here like a paused run.
    if status is RunStatus.RUNNING and (row["owner_id"] is None or owner_alive(row, hostname, now)):
        conn.execute("UPDATE runs SET cancel_requested = 1 WHERE run_id = ?", (run_id,))
        return RunStatus.RUNNING
    _mark_cancelled(conn, run_id, now)
    return RunStatus.CANCELLED


def due(conn: sqlite3.Connection, now: float) -> list[str]:
    """Paused runs whose timer is due, and running runs whose owner is gone (lease expired,
    no owner, or an owner on this machine whose process has died), oldest first."""
    timers = conn.execute(
        "SELECT run_id, started_at FROM runs WHERE status = ? AND wake_at <= ?",
        (RunStatus.PAUSED.value, now),
    ).fetchall()
    running = conn.execute(
        "SELECT run_id, started_at, owner_id, owner_host, owner_pid, lease_expires_at "
        "FROM runs WHERE status = ?",
        (RunStatus.RUNNING.value,),
    ).fetchall()
    hostname = socket.gethostname()
    keys = ("run_id", "started_at", "owner_id", "owner_host", "owner_pid", "lease_expires_at")
    orphans = [
        (row[0], row[1])
        for row in running
        if not owner_alive(dict(zip(keys, row, strict=True)), hostname, now)
    ]
    return [run_id for run_id, _ in sorted([*timers, *orphans], key=lambda r: (r[1], r[0]))]


def owner_alive(row: dict[str, Any], hostname: str, now: float) -> bool:
    """Whether the owner in ``row`` may still be executing the run.

    On this machine the process table decides; elsewhere only the lease can tell.
    """
    if row["owner_id"] is None:
        return False
    lease = row["lease_expires_at"]
    if lease is None or lease <= now:
        return False
    if row["owner_host"] == hostname and row["owner_pid"] is not None:
        return _pid_alive(int(row["owner_pid"]))
    return True


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":
        # os.kill there terminates the process whatever the signal; trust the lease instead.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _owner_row(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    cursor = conn.execute(
        f"SELECT {_OWNER_COLUMNS} FROM runs WHERE run_id = ?",  # noqa: S608 (a constant)
        (run_id,),
    )
    names = [column[0] for column in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def _mark_cancelled(conn: sqlite3.Connection, run_id: str, now: float) -> None:
    # The stored result object is what `runs show` prints: it must agree with the row.
    text = conn.execute("SELECT result FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]
    result = None
    if text is not None:
        data = json.loads(text)
        data["status"] = RunStatus.CANCELLED.value
        data["error"] = dict(CANCELLED_ERROR)
        data["pause"] = None
        for node in (data.get("nodes") or {}).values():
            if node.get("status") == NodeStatus.PAUSED.value:
                node["status"] = NodeStatus.CANCELLED.value
        result = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    conn.execute(
        "UPDATE runs SET status = ?, finished_at = ?, error = ?, result = ?, wake_at = NULL, "
        "pause = NULL, cancel_requested = 0, owner_id = NULL, owner_host = NULL, "
        "owner_pid = NULL, lease_expires_at = NULL WHERE run_id = ?",
        (
            RunStatus.CANCELLED.value,
            now,
            json.dumps(CANCELLED_ERROR, separators=(",", ":")),
            result,
            run_id,
        ),
    )
    conn.execute(
        "UPDATE node_results SET status = ? WHERE run_id = ? AND status = ?",
        (NodeStatus.CANCELLED.value, run_id, NodeStatus.PAUSED.value),
    )
    # The run's event log ends as a cancelled run's does, so that streams of it close.
    last = conn.execute("SELECT MAX(seq) FROM events WHERE run_id = ?", (run_id,)).fetchone()[0]
    started = conn.execute("SELECT started_at FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]
    data = {
        "status": RunStatus.CANCELLED.value,
        "duration_ms": round((now - started) * 1000, 3) if started else 0.0,
        "error": CANCELLED_ERROR,
    }
    conn.execute(
        "INSERT INTO events (run_id, seq, type, ts, node, data) VALUES (?, ?, ?, ?, NULL, ?)",
        (
            run_id,
            (last or 0) + 1,
            EventType.RUN_CANCELLED.value,
            now,
            json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        ),
    )
