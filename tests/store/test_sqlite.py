"""What only the SQLite backend does: WAL, the schema and its migrations, damaged files, and the
``--db`` URLs that name a SQLite file."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from polyhost import Event, EventType, NodeResult, NodeStatus, RunStatus, StoreError
from polyhost.store import Owner, RunRecord, SQLiteStore, default_home, open_store
from polyhost.store.sqlite._schema import MIGRATIONS, SCHEMA_VERSION

HOSTNAME = socket.gethostname()
LEASE = 30.0


def record(run_id: str, **overrides: Any) -> RunRecord:
    values: dict[str, Any] = {
        "run_id": run_id,
        "workflow_id": "flow",
        "status": RunStatus.RUNNING,
        "inputs": {"name": "world"},
        "document": {"version": 1, "nodes": [{"id": "a", "type": "core.transform"}]},
        "source": "/tmp/flow.yaml",
        "started_at": time.time(),
    }
    values.update(overrides)
    return RunRecord(**values)


def event(run_id: str, seq: int, type_: EventType = EventType.LOG, **data: Any) -> Event:
    return Event(run_id, seq, type_, time.time(), "a", data)


def flush(store: SQLiteStore) -> None:
    asyncio.run(store.flush())


def test_recording_never_blocks_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStore(path)
    # Another process holds the write lock: a store writing on the caller's thread would stall
    # right here, for the whole busy timeout.
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")

    async def main() -> tuple[int, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        store.record_run_started(record("r1"))
        for seq in range(1, 5001):
            store.record_event(event("r1", seq, EventType.NODE_COMPLETED, n=seq))
        flushing = asyncio.create_task(store.flush())
        await asyncio.sleep(0.1)
        assert not flushing.done()  # the writer waits for the lock, the loop does not
        ticks_while_waiting = ticks
        blocker.execute("COMMIT")
        await flushing
        ticker.cancel()
        return ticks_while_waiting, ticks

    try:
        ticks_while_waiting, _ = asyncio.run(main())
    finally:
        blocker.close()
    assert ticks_while_waiting > 10
    events = store.events("r1")
    assert [e.seq for e in events] == list(range(1, 5001))
    store.close()


def test_a_flush_cancelled_while_it_leads_a_commit_still_commits_for_the_others(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    store.record_run_started(record("r1"))
    flush(store)

    async def main() -> list[str]:
        finished: list[str] = []

        async def first() -> None:
            store.record_event(event("r1", 1, n=1))
            try:
                await store.flush()  # leads the group: yields one turn, then commits for all
                finished.append("first")
            except asyncio.CancelledError:
                finished.append("first cancelled")

        async def second() -> None:
            store.record_event(event("r1", 2, n=2))
            leader.cancel()  # while the first waits for others to join its commit
            await store.flush()
            finished.append("second")

        # Both run in the same turn: the first flushes, then the second joins its commit.
        leader = asyncio.create_task(first())
        joiner = asyncio.create_task(second())
        await asyncio.wait_for(asyncio.gather(leader, joiner), timeout=5)
        return finished

    finished = asyncio.run(main())
    assert sorted(finished) == ["first cancelled", "second"]
    assert [e.seq for e in store.events("r1")] == [1, 2]  # the cancelled flush still committed
    store.close()


def test_the_schema_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(path)


def _open_in_step(folder: Path, rounds: int, barrier: Any, failures: Any) -> None:
    """Open a new database per round, at the same moment as the other processes."""
    for index in range(rounds):
        barrier.wait()
        try:
            SQLiteStore(folder / str(index) / "runs.db").close()
        except StoreError as exc:
            failures.put(str(exc))


def test_processes_creating_the_same_database_at_once_all_open_it(tmp_path: Path) -> None:
    # `polyhost run` and `polyhost runs list` started together on a new home: the switch to
    # WAL mode must wait for the other's lock instead of failing with "database is locked".
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["polyhost.store"])
    barrier = context.Barrier(4)
    failures = context.Queue()
    openers = [
        context.Process(target=_open_in_step, args=(tmp_path, 30, barrier, failures))
        for _ in range(4)
    ]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join(60)
    assert [opener.exitcode for opener in openers] == [0, 0, 0, 0]
    problems = []
    while not failures.empty():
        problems.append(failures.get())
    assert problems == []
    for index in range(30):
        conn = sqlite3.connect(tmp_path / str(index) / "runs.db")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.close()


def test_a_path_that_cannot_hold_a_database_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError):
        SQLiteStore(tmp_path / "file" / "runs.db")


def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    cases = {
        None: home / "polyhost.db",
        f"sqlite://{tmp_path}/abs.db": tmp_path / "abs.db",
        f"sqlite:///{tmp_path}/abs4.db": tmp_path / "abs4.db",
        "sqlite:relative.db": Path("relative.db"),
        "plain/runs.db": Path("plain/runs.db"),
        str(tmp_path / "p.db"): tmp_path / "p.db",
    }
    for url, expected in cases.items():
        with open_store(url, home) as opened:
            assert opened.path == expected, url
            assert opened.path.exists()


def test_memory_urls_give_a_private_file_removed_on_close(tmp_path: Path) -> None:
    for url in (":memory:", "sqlite://:memory:"):
        store = open_store(url, tmp_path)
        store.record_run_started(record("r1"))
        flush(store)
        assert store.get_record("r1").run_id == "r1"
        folder = store.path.parent
        store.close()
        assert not folder.exists()


def test_other_schemes_are_not_supported_yet(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not supported yet"):
        open_store("postgres://user@db/runs", tmp_path)


def test_default_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POLYHOST_HOME", str(tmp_path / "state"))
    assert default_home() == tmp_path / "state"
    monkeypatch.delenv("POLYHOST_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_home() == tmp_path / ".polyhost"


def owner(name: str = "a", *, hostname: str = HOSTNAME, pid: int | None = None) -> Owner:
    """An owner; by default this very process, which is alive."""
    return Owner(host_id=f"host-{name}", hostname=hostname, pid=pid or os.getpid())


def test_a_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    result = {
        "execution_id": "old1",
        "workflow_id": "flow",
        "status": "completed",
        "outputs": {"x": 1},
        "error": None,
        "duration_ms": 3.0,
        "nodes": {"a": {"status": "completed", "attempts": 1, "output": {"v": 1}}},
    }
    conn.execute(
        "INSERT INTO runs (run_id, workflow_id, status, started_at, finished_at, outputs, "
        "result) VALUES ('old1', 'flow', 'completed', 1.0, 2.0, '{\"x\": 1}', ?)",
        (json.dumps(result),),
    )
    conn.execute(
        "INSERT INTO runs (run_id, workflow_id, status, started_at) "
        "VALUES ('old2', 'flow', 'running', 3.0)"
    )
    conn.execute(
        "INSERT INTO node_results (run_id, node_id, status, attempts, output) "
        "VALUES ('old1', 'a', 'completed', 1, '{\"v\": 1}')"
    )
    conn.commit()
    conn.close()

    with SQLiteStore(path) as store:
        old = store.get_result("old1")
        assert old.status is RunStatus.COMPLETED
        assert old.outputs == {"x": 1}
        assert old.pause is None
        assert store.load_nodes("old1")["a"] == NodeResult(NodeStatus.COMPLETED, 1, {"v": 1})
        assert [run.run_id for run in store.list_runs()] == ["old2", "old1"]
        # The new columns work on the old rows.
        store.claim_run("old2", owner(), LEASE, statuses=(RunStatus.RUNNING,))
        assert store.renew_lease("old2", owner(), LEASE).still_owner
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {row[0] for row in check.execute("SELECT name FROM sqlite_master")}
        assert {"runs_due_timers", "runs_due_leases"} <= indexes


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is not a SQLite database, just some text " * 100)
    with pytest.raises(StoreError, match=str(path)):
        SQLiteStore(path)


def test_a_damaged_database_is_a_store_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SQLiteStore(path) as store:
        store.record_run_started(record("r1"))
        for seq in range(1, 200):
            store.record_event(event("r1", seq, note="x" * 200))
    # Overwrite every page after the header: the file still opens as SQLite, its tables do not.
    size = path.stat().st_size
    with path.open("r+b") as damaged:
        damaged.seek(100)
        damaged.write(b"\xff" * (size - 100))
    with pytest.raises(StoreError, match=str(path)), SQLiteStore(path) as store:
        store.get_result("r1")


def test_node_rows_that_cannot_be_read_leave_the_claim_made(tmp_path: Path) -> None:
    # The run is taken over all the same, so that its new owner can end it failed.
    path = tmp_path / "runs.db"
    with SQLiteStore(path) as store:
        store.record_run_started(record("r1"))
        store.record_node("r1", "a", NodeResult(NodeStatus.COMPLETED, 1, {"v": 1}, settled_seq=1))
        flush(store)
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE node_results SET status = 'from_the_future'")
        owner = Owner("host-b", HOSTNAME, os.getpid())
        claimed = store.claim_and_load("r1", owner, LEASE, statuses=(RunStatus.RUNNING,))
        assert claimed.record.status is RunStatus.RUNNING
        assert isinstance(claimed.unreadable, StoreError)
        assert "from_the_future" in claimed.unreadable.message
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT owner_id FROM runs").fetchone() == ("host-b",)
