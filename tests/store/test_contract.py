"""The run store contract: what every backend does, run against each (see conftest.py)."""

from __future__ import annotations

import asyncio
import threading
import time
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
from polyhost.store import RunRecord, RunStore
from tests.store.conftest import StoreBackend


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


def flush(store: RunStore) -> None:
    asyncio.run(store.flush())


def test_it_is_a_run_store(store: RunStore) -> None:
    assert isinstance(store, RunStore)


def test_round_trip_of_a_finished_run(store: RunStore) -> None:
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


def test_events_come_back_in_sequence_order(store: RunStore) -> None:
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
    store: RunStore,
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


def test_a_node_result_is_read_when_recorded(store: RunStore) -> None:
    node = NodeResult(NodeStatus.RUNNING, 1)
    store.record_run_started(record("r1"))
    store.record_node("r1", "a", node)
    node.status = NodeStatus.COMPLETED  # the engine reuses its objects
    flush(store)
    assert store.get_result("r1").nodes["a"].status is NodeStatus.RUNNING


def test_a_resumed_run_is_running_again(store: RunStore) -> None:
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


def test_list_runs_newest_first_with_filters_and_counts(store: RunStore) -> None:
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


def test_a_unique_prefix_finds_a_run(store: RunStore) -> None:
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


def test_node_rows_and_events_are_found_by_full_id_and_by_prefix(store: RunStore) -> None:
    for run_id in ("run-aaaa", "run-bbbb"):
        store.record_run_started(record(run_id))
        store.record_node(run_id, "a", NodeResult(NodeStatus.COMPLETED, 1, {"run": run_id}))
        store.record_event(event(run_id, 1))
    flush(store)

    for asked in ("run-bbbb", "run-b"):
        assert store.load_nodes(asked)["a"].output == {"run": "run-bbbb"}
        assert [(e.run_id, e.seq) for e in store.events(asked)] == [("run-bbbb", 1)]
    assert store.events("run-bbbb", after_seq=1) == []
    with pytest.raises(RunNotFoundError, match="run-c"):
        store.load_nodes("run-c")


def test_rows_of_an_id_no_run_has_are_not_a_run(store: RunStore) -> None:
    # A run whose start was never recorded (its write failed) is unknown, rows or not.
    store.record_node("ghost", "a", NodeResult(NodeStatus.COMPLETED, 1, {}))
    store.record_event(event("ghost", 1))
    flush(store)
    for method in ("load_nodes", "events"):
        with pytest.raises(RunNotFoundError, match="ghost"):
            getattr(store, method)("ghost")


def test_an_exact_id_wins_over_longer_ids_it_prefixes(store: RunStore) -> None:
    store.record_run_started(record("abc"))
    store.record_run_started(record("abcd"))
    flush(store)
    assert store.get_record("abc").run_id == "abc"


@pytest.mark.parametrize("method", ["get_result", "get_record", "events", "resolve_id"])
def test_an_unknown_id_is_named_in_the_error(store: RunStore, method: str) -> None:
    store.record_run_started(record("r1"))
    flush(store)
    with pytest.raises(RunNotFoundError, match="nope") as info:
        getattr(store, method)("nope")
    assert info.value.code == "run_not_found"
    with pytest.raises(RunNotFoundError):
        getattr(store, method)("")


def test_flush_waits_for_everything_queued_before_it(store: RunStore) -> None:
    async def main() -> None:
        store.record_run_started(record("r1"))
        for round_ in range(5):
            for seq in range(round_ * 100 + 1, round_ * 100 + 101):
                store.record_event(event("r1", seq))
            await store.flush()
            assert len(store.events("r1")) == (round_ + 1) * 100

    asyncio.run(main())


def test_a_second_store_on_the_same_file_reads_what_the_first_committed(
    store_backend: StoreBackend,
) -> None:
    with store_backend.open() as writer, store_backend.open() as reader:
        writer.record_run_started(record("r1"))
        writer.record_event(event("r1", 1))
        flush(writer)
        assert reader.get_record("r1").workflow_id == "flow"
        assert len(reader.events("r1")) == 1

        writer.record_run_finished(finished("r1"))
        flush(writer)
        assert reader.get_result("r1").status is RunStatus.COMPLETED


def test_a_closed_store_keeps_its_data(store_backend: StoreBackend) -> None:
    store = store_backend.open()
    store.record_run_started(record("r1"))
    store.record_run_finished(finished("r1"))
    store.close()  # flushes without a loop
    with store_backend.open() as again:
        assert again.get_result("r1").outputs == {"greeting": "hello world"}


def test_close_is_idempotent_and_final(store_backend: StoreBackend) -> None:
    store = store_backend.open()
    store.record_run_started(record("r1"))
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(StoreError, match="closed"):
        store.record_event(event("r1", 1))
    with pytest.raises(StoreError, match="closed"):
        store.list_runs()
    asyncio.run(store.flush())  # nothing queued, nothing to raise


def test_a_failed_write_is_reported_by_the_next_flush(store: RunStore) -> None:
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


def test_a_failed_write_is_reported_by_close(store_backend: StoreBackend) -> None:
    store = store_backend.open()
    circular: list[Any] = []
    circular.append(circular)
    store.record_event(Event("r1", 1, EventType.LOG, 0.0, None, {"x": circular}))
    with pytest.raises(StoreError):
        store.close()
    assert store.closed


def test_list_runs_pages_by_start_time_then_id_within_a_time_range(store: RunStore) -> None:
    # Two runs per start time: a page boundary inside a tie must neither skip nor repeat one.
    for i in range(10):
        store.record_run_started(record(f"r{i}", started_at=100.0 + i // 2))
    flush(store)
    newest_first = [f"r{i}" for i in reversed(range(10))]
    assert [s.run_id for s in store.list_runs(limit=0)] == newest_first

    seen: list[str] = []
    before: tuple[float, str] | None = None
    while True:
        page = store.list_runs(limit=3, before=before)
        seen += [s.run_id for s in page]
        if len(page) < 3:
            break
        before = (page[-1].started_at, page[-1].run_id)
    assert seen == newest_first

    window = store.list_runs(limit=0, since=101.0, until=103.0)
    assert [s.run_id for s in window] == ["r5", "r4", "r3", "r2"]
    assert [s.run_id for s in store.list_runs(since=104.0, before=(104.0, "r9"))] == ["r8"]


def test_events_after_a_sequence_number_come_at_most_limit_at_a_time(store: RunStore) -> None:
    store.record_run_started(record("r1"))
    for seq in range(1, 11):
        store.record_event(event("r1", seq))
    flush(store)
    assert [e.seq for e in store.events("r1", after_seq=2, limit=3)] == [3, 4, 5]
    assert [e.seq for e in store.events("r1", after_seq=8, limit=5)] == [9, 10]
    assert store.events("r1", after_seq=10, limit=5) == []


def test_an_ambiguous_prefix_names_its_candidates(store: RunStore) -> None:
    from polyhost._errors import AmbiguousRunIdError

    for run_id in ("pre1", "pre2", "pre3", "pre4", "other"):
        store.record_run_started(record(run_id))
    flush(store)
    with pytest.raises(AmbiguousRunIdError) as info:
        store.resolve_id("pre")
    assert info.value.candidates == ["pre1", "pre2", "pre3"]  # some of them, in id order
    assert info.value.code == "ambiguous_run_id" and "..." in info.value.message


def test_every_task_flushing_at_once_sees_its_records_committed(
    store: RunStore, store_backend: StoreBackend
) -> None:
    # A durable fan-out: many nodes settle in one turn of the loop and each waits for its own
    # result to be committed; another store (another process) must see it when flush returns.
    store.record_run_started(record("r1"))
    flush(store)

    async def main() -> None:
        with store_backend.open() as reader:

            async def settle(index: int) -> None:
                node = NodeResult(NodeStatus.COMPLETED, 1, {"i": index}, settled_seq=index)
                store.record_node("r1", f"n{index}", node)
                store.record_event(event("r1", index + 1, EventType.NODE_COMPLETED))
                await store.flush()
                assert reader.load_nodes("r1")[f"n{index}"].output == {"i": index}

            await asyncio.gather(*(settle(i) for i in range(200)))

    asyncio.run(main())
    assert len(store.events("r1")) == 200


def test_flushes_from_two_event_loops_at_once(store: RunStore) -> None:
    # Each thread runs its own loop, recording and flushing its own run.
    failures: list[BaseException] = []

    def worker(run_id: str) -> None:
        async def main() -> None:
            store.record_run_started(record(run_id))
            for seq in range(1, 101):
                store.record_event(event(run_id, seq))
                await store.flush()

        try:
            asyncio.run(main())
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(f"r{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert [len(store.events(f"r{i}")) for i in range(2)] == [100, 100]


def test_the_change_mark_moves_when_another_store_object_commits(
    store: RunStore, other: RunStore
) -> None:
    store.record_run_started(record("m1"))
    flush(store)
    quiet = other.change_mark()
    assert other.change_mark() == quiet  # nothing committed: the same mark
    store.record_event(event("m1", 1, EventType.RUN_STARTED))
    flush(store)
    assert other.change_mark() != quiet
