"""The SQLite run store, on real database files."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from polyhost import (
    Event,
    EventType,
    NodeResult,
    NodeStatus,
    RunNotFoundError,
    RunResult,
    RunStatus,
    StoreError,
)
from polyhost.store import RunRecord, RunStore, SQLiteStore, default_home, open_store
from polyhost.store._schema import SCHEMA_VERSION


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


def finished(run_id: str, status: RunStatus = RunStatus.COMPLETED, **overrides: Any) -> RunResult:
    values: dict[str, Any] = {
        "execution_id": run_id,
        "workflow_id": "flow",
        "status": status,
        "outputs": {"greeting": "hello world"} if status is RunStatus.COMPLETED else None,
        "error": None
        if status is RunStatus.COMPLETED
        else {"node": "b", "code": "handler_error", "message": "boom"},
        "duration_ms": 12.5,
        "nodes": {
            "a": NodeResult(NodeStatus.COMPLETED, 1, {"value": 1}, None, None, 3.0),
            "b": NodeResult(
                NodeStatus.COMPLETED if status is RunStatus.COMPLETED else NodeStatus.FAILED,
                2,
                {"value": 2} if status is RunStatus.COMPLETED else None,
                None if status is RunStatus.COMPLETED else {"message": "boom"},
                None,
                4.0,
            ),
        },
        "inputs": {"name": "world"},
    }
    values.update(overrides)
    return RunResult(**values)


def event(run_id: str, seq: int, type_: EventType = EventType.LOG, **data: Any) -> Event:
    return Event(run_id, seq, type_, time.time(), "a", data)


def flush(store: SQLiteStore) -> None:
    asyncio.run(store.flush())


@pytest.fixture
def store(tmp_path: Path):
    with SQLiteStore(tmp_path / "runs.db") as opened:
        yield opened


def test_it_is_a_run_store(store: SQLiteStore) -> None:
    assert isinstance(store, RunStore)


def test_round_trip_of_a_finished_run(store: SQLiteStore) -> None:
    store.record_run_started(record("r1", parent_run_id="r0"))
    store.record_event(event("r1", 1, EventType.RUN_STARTED))
    store.record_node("r1", "a", NodeResult(NodeStatus.RUNNING, 1))
    result = finished("r1")
    store.record_run_finished(result)
    flush(store)

    stored = store.get_result("r1")
    assert stored.to_dict() == result.to_dict()
    assert stored.inputs == {"name": "world"}
    assert stored.started_at is not None

    kept = store.get_record("r1")
    assert kept.document == {"version": 1, "nodes": [{"id": "a", "type": "core.transform"}]}
    assert kept.inputs == {"name": "world"}
    assert kept.source == "/tmp/flow.yaml"
    assert kept.parent_run_id == "r0"
    assert kept.status is RunStatus.COMPLETED


def test_events_come_back_in_sequence_order(store: SQLiteStore) -> None:
    store.record_run_started(record("r1"))
    for seq in range(1, 51):
        store.record_event(event("r1", seq, n=seq))
    flush(store)

    events = store.events("r1")
    assert [e.seq for e in events] == list(range(1, 51))
    assert all(e.type is EventType.LOG and e.node == "a" for e in events)
    assert events[9].data == {"n": 10}
    assert [e.seq for e in store.events("r1", after_seq=45)] == [46, 47, 48, 49, 50]


def test_the_latest_node_record_wins_and_nodes_keep_first_seen_order(
    store: SQLiteStore,
) -> None:
    store.record_run_started(record("r1"))
    store.record_node("r1", "b", NodeResult(NodeStatus.RUNNING, 1))
    store.record_node("r1", "a", NodeResult(NodeStatus.RUNNING, 1, started_at=5.0))
    store.record_node("r1", "b", NodeResult(NodeStatus.FAILED, 1, error={"message": "x"}))
    store.record_node("r1", "a", NodeResult(NodeStatus.COMPLETED, 2, {"v": 1}, None, None, 7.0))
    flush(store)

    running = store.get_result("r1")
    assert running.status is RunStatus.RUNNING
    assert list(running.nodes) == ["b", "a"]
    assert running.nodes["a"].status is NodeStatus.COMPLETED
    assert running.nodes["a"].attempts == 2
    assert running.nodes["a"].output == {"v": 1}
    assert running.nodes["a"].started_at == 5.0  # a later record without it keeps it
    assert running.nodes["b"].error == {"message": "x"}


def test_a_node_result_is_read_when_recorded(store: SQLiteStore) -> None:
    node = NodeResult(NodeStatus.RUNNING, 1)
    store.record_run_started(record("r1"))
    store.record_node("r1", "a", node)
    node.status = NodeStatus.COMPLETED  # the engine reuses its objects
    flush(store)
    assert store.get_result("r1").nodes["a"].status is NodeStatus.RUNNING


def test_a_resumed_run_is_running_again(store: SQLiteStore) -> None:
    first = record("r1", started_at=100.0)
    store.record_run_started(first)
    store.record_run_finished(finished("r1", RunStatus.PAUSED))
    flush(store)
    assert store.get_result("r1").status is RunStatus.PAUSED

    store.record_run_started(record("r1", started_at=200.0))
    flush(store)
    again = store.get_result("r1")
    assert again.status is RunStatus.RUNNING
    assert again.started_at == 100.0


def test_list_runs_newest_first_with_filters_and_counts(store: SQLiteStore) -> None:
    base = 1_700_000_000.0
    store.record_run_started(record("old", started_at=base))
    store.record_run_finished(finished("old"))
    store.record_run_started(record("mid", started_at=base + 10, workflow_id="other"))
    mid_result = finished("mid", RunStatus.FAILED, workflow_id="other")
    for node_id, node in mid_result.nodes.items():  # the engine records each node as it settles
        store.record_node("mid", node_id, node)
    store.record_run_finished(mid_result)
    store.record_run_started(record("new", started_at=base + 20))
    flush(store)

    assert [s.run_id for s in store.list_runs()] == ["new", "mid", "old"]
    assert [s.run_id for s in store.list_runs(limit=2)] == ["new", "mid"]
    assert [s.run_id for s in store.list_runs(status=RunStatus.FAILED)] == ["mid"]
    assert [s.run_id for s in store.list_runs(status="completed")] == ["old"]
    assert [s.run_id for s in store.list_runs(workflow_id="flow")] == ["new", "old"]
    assert store.list_runs(workflow_id="flow", status=RunStatus.FAILED) == []

    mid = store.list_runs(status=RunStatus.FAILED)[0]
    assert mid.workflow_id == "other"
    assert mid.error == {"node": "b", "code": "handler_error", "message": "boom"}
    assert mid.counts == {"completed": 1, "failed": 1}
    assert mid.finished_at is not None and mid.duration_ms == 12.5
    new = store.list_runs(limit=1)[0]
    assert new.status is RunStatus.RUNNING and new.finished_at is None and new.counts == {}


def test_a_unique_prefix_finds_a_run(store: SQLiteStore) -> None:
    for run_id in ("019a1b2c3d4aaaa", "019a1b2c3d4bbbb", "019a1ffff"):
        store.record_run_started(record(run_id))
        store.record_event(event(run_id, 1))
    flush(store)

    assert store.get_result("019a1f").execution_id == "019a1ffff"
    assert store.get_record("019a1b2c3d4a").run_id == "019a1b2c3d4aaaa"
    assert store.resolve_id("019a1b2c3d4b") == "019a1b2c3d4bbbb"
    assert [e.run_id for e in store.events("019a1f")] == ["019a1ffff"]

    with pytest.raises(RunNotFoundError, match="ambiguous") as info:
        store.get_result("019a1b")
    assert info.value.code == "ambiguous_run_id"
    assert "019a1b2c3d4aaaa" in str(info.value) and "019a1b2c3d4bbbb" in str(info.value)


def test_an_exact_id_wins_over_longer_ids_it_prefixes(store: SQLiteStore) -> None:
    store.record_run_started(record("abc"))
    store.record_run_started(record("abcd"))
    flush(store)
    assert store.get_record("abc").run_id == "abc"


@pytest.mark.parametrize("method", ["get_result", "get_record", "events", "resolve_id"])
def test_an_unknown_id_is_named_in_the_error(store: SQLiteStore, method: str) -> None:
    store.record_run_started(record("r1"))
    flush(store)
    with pytest.raises(RunNotFoundError, match="nope") as info:
        getattr(store, method)("nope")
    assert info.value.code == "run_not_found"
    with pytest.raises(RunNotFoundError):
        getattr(store, method)("")


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


def test_flush_waits_for_everything_queued_before_it(store: SQLiteStore) -> None:
    async def main() -> None:
        store.record_run_started(record("r1"))
        for round_ in range(5):
            for seq in range(round_ * 100 + 1, round_ * 100 + 101):
                store.record_event(event("r1", seq))
            await store.flush()
            assert len(store.events("r1")) == (round_ + 1) * 100

    asyncio.run(main())


def test_a_second_store_on_the_same_file_reads_what_the_first_committed(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with SQLiteStore(path) as writer, SQLiteStore(path) as reader:
        writer.record_run_started(record("r1"))
        writer.record_event(event("r1", 1))
        flush(writer)
        assert reader.get_record("r1").workflow_id == "flow"
        assert len(reader.events("r1")) == 1

        writer.record_run_finished(finished("r1"))
        flush(writer)
        assert reader.get_result("r1").status is RunStatus.COMPLETED


def test_a_closed_store_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStore(path)
    store.record_run_started(record("r1"))
    store.record_run_finished(finished("r1"))
    store.close()  # flushes without a loop
    with SQLiteStore(path) as again:
        assert again.get_result("r1").outputs == {"greeting": "hello world"}


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    store.record_run_started(record("r1"))
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(StoreError, match="closed"):
        store.record_event(event("r1", 1))
    with pytest.raises(StoreError, match="closed"):
        store.list_runs()
    asyncio.run(store.flush())  # nothing queued, nothing to raise


def test_a_failed_write_is_reported_by_the_next_flush(store: SQLiteStore) -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    store.record_run_started(record("r1"))
    store.record_event(event("r1", 1))
    store.record_event(Event("r1", 2, EventType.LOG, 0.0, None, circular))
    store.record_event(event("r1", 3))
    with pytest.raises(StoreError, match="run r1"):
        flush(store)
    assert [e.seq for e in store.events("r1")] == [1, 3]  # the rest of the batch is kept
    flush(store)  # reported once


def test_a_failed_write_is_reported_by_close(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    circular: list[Any] = []
    circular.append(circular)
    store.record_event(Event("r1", 1, EventType.LOG, 0.0, None, {"x": circular}))
    with pytest.raises(StoreError):
        store.close()
    assert store.closed


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
