"""The run store contract, durable runs: ownership, leases, cancel requests, pauses."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from polyhost import (
    Event,
    EventType,
    InputError,
    NodeResult,
    NodeStatus,
    RunNotFoundError,
    RunResult,
    RunStateError,
    RunStatus,
)
from polyhost.store import LeaseState, Owner, RunRecord, RunStore
from tests.store.conftest import StoreBackend

HOSTNAME = socket.gethostname()
LEASE = 30.0
PAUSE = {
    "node": "approve",
    "kind": "approval",
    "prompt": "ok?",
    "schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}},
    "wake_at": None,
}


def owner(name: str = "a", *, hostname: str = HOSTNAME, pid: int | None = None) -> Owner:
    """An owner; by default this very process, which is alive."""
    return Owner(host_id=f"host-{name}", hostname=hostname, pid=pid or os.getpid())


def record(run_id: str, status: RunStatus = RunStatus.RUNNING, **overrides: Any) -> RunRecord:
    values: dict[str, Any] = {
        "run_id": run_id,
        "workflow_id": "flow",
        "status": status,
        "inputs": {"n": 1},
        "document": {"version": 1, "nodes": [{"id": "approve", "type": "core.approval"}]},
        "started_at": time.time(),
    }
    values.update(overrides)
    return RunRecord(**values)


def paused_result(run_id: str, pause: dict[str, Any] | None = None) -> RunResult:
    return RunResult(
        execution_id=run_id,
        workflow_id="flow",
        status=RunStatus.PAUSED,
        duration_ms=5.0,
        nodes={
            "start": NodeResult(NodeStatus.COMPLETED, 1, {"value": 1}),
            "approve": NodeResult(NodeStatus.PAUSED, 1),
        },
        pause=pause,
    )


def flush(store: RunStore) -> None:
    asyncio.run(store.flush())


def start_paused(store: RunStore, run_id: str, *, wake_at: float | None = None) -> None:
    store.record_run_started(record(run_id))
    store.record_node(run_id, "approve", NodeResult(NodeStatus.PAUSED, 1))
    store.record_pause(run_id, {**PAUSE, "wake_at": wake_at}, wake_at)
    store.record_run_finished(paused_result(run_id, {**PAUSE, "wake_at": wake_at}))
    flush(store)


def start_running(store: RunStore, run_id: str, by: Owner, lease: float = LEASE) -> None:
    store.record_run_started(record(run_id))
    flush(store)
    store.claim_run(run_id, by, lease, statuses=(RunStatus.RUNNING,))


def test_claiming_a_paused_run_makes_it_running(
    store: RunStore, store_backend: StoreBackend
) -> None:
    start_paused(store, "r1", wake_at=time.time() - 1)
    assert store.due_runs(time.time()) == ["r1"]
    claimed = store.claim_run("r1", owner(), LEASE, statuses=(RunStatus.PAUSED, RunStatus.RUNNING))
    assert claimed.run_id == "r1"
    assert claimed.status is RunStatus.RUNNING
    assert claimed.inputs == {"n": 1}
    assert store.get_result("r1").status is RunStatus.RUNNING
    assert store.due_runs(time.time()) == []  # the timer went with the pause
    owner_id, host, pid, lease = store_backend.owner_columns("r1")
    assert (owner_id, host, pid) == ("host-a", HOSTNAME, owner().pid)
    assert lease > time.time()


def test_a_claim_checks_the_status(store: RunStore) -> None:
    start_paused(store, "r1")
    with pytest.raises(RunStateError, match="run r1 is paused, not failed"):
        store.claim_run("r1", owner(), LEASE, statuses=(RunStatus.FAILED,))
    with pytest.raises(RunNotFoundError):
        store.claim_run("nope", owner(), LEASE, statuses=(RunStatus.PAUSED,))


def test_a_claim_is_refused_while_another_hosts_lease_is_live(
    store: RunStore, other: RunStore
) -> None:
    start_running(store, "r1", owner("a", hostname="far-away", pid=4242))
    with pytest.raises(RunStateError, match=r"far-away \(pid 4242\)"):
        other.claim_run("r1", owner("b"), LEASE, statuses=(RunStatus.RUNNING,))


def test_a_claim_succeeds_once_the_lease_expired(store: RunStore, other: RunStore) -> None:
    start_running(store, "r1", owner("a", hostname="far-away", pid=4242), lease=0.01)
    time.sleep(0.05)
    claimed = other.claim_run("r1", owner("b"), LEASE, statuses=(RunStatus.RUNNING,))
    assert claimed.status is RunStatus.RUNNING
    assert store.renew_lease("r1", owner("a", hostname="far-away", pid=4242), LEASE) == (
        LeaseState(still_owner=False, cancel_requested=False)
    )


def test_a_claim_succeeds_when_the_owner_here_has_ended(store: RunStore, other: RunStore) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    start_running(store, "r1", owner("a", pid=child.pid))  # a live lease, a dead process
    claimed = other.claim_run("r1", owner("b"), LEASE, statuses=(RunStatus.RUNNING,))
    assert claimed.run_id == "r1"


def test_a_claim_is_refused_while_the_owner_here_is_alive(store: RunStore, other: RunStore) -> None:
    start_running(store, "r1", owner("a"))  # this very process
    with pytest.raises(RunStateError, match=f"{HOSTNAME}"):
        other.claim_run("r1", owner("b"), LEASE, statuses=(RunStatus.RUNNING,))


def test_the_owner_may_claim_again(store: RunStore) -> None:
    start_running(store, "r1", owner("a"))
    store.claim_run("r1", owner("a"), LEASE, statuses=(RunStatus.RUNNING,))


def test_renew_extends_the_lease_of_the_owner(store: RunStore, store_backend: StoreBackend) -> None:
    start_running(store, "r1", owner("a"), lease=1.0)
    before = store_backend.owner_columns("r1")[3]
    state = store.renew_lease("r1", owner("a"), 60.0)
    assert state == LeaseState(still_owner=True, cancel_requested=False)
    assert store_backend.owner_columns("r1")[3] > before + 50


def test_renew_reports_a_lost_run_after_another_host_claimed_it(
    store: RunStore, other: RunStore, store_backend: StoreBackend
) -> None:
    first = owner("a", hostname="far-away", pid=4242)
    start_running(store, "r1", first, lease=0.01)
    time.sleep(0.05)
    other.claim_run("r1", owner("b"), LEASE, statuses=(RunStatus.RUNNING,))
    assert not store.renew_lease("r1", first, LEASE).still_owner
    # Releasing a run one no longer owns leaves the new owner in place.
    store.release_run("r1", first)
    flush(store)
    assert store_backend.owner_columns("r1")[0] == "host-b"


def test_release_drops_the_owner(store: RunStore, store_backend: StoreBackend) -> None:
    start_running(store, "r1", owner("a"))
    store.release_run("r1", owner("a"))
    flush(store)
    assert store_backend.owner_columns("r1") == (None, None, None, None)


def test_a_finished_or_paused_run_holds_no_owner(
    store: RunStore, store_backend: StoreBackend
) -> None:
    start_running(store, "r1", owner("a"))
    store.record_run_finished(paused_result("r1", PAUSE))
    flush(store)
    assert store_backend.owner_columns("r1") == (None, None, None, None)


def test_cancel_of_a_running_run_sets_the_flag_for_its_owner(
    store: RunStore, other: RunStore
) -> None:
    start_running(store, "r1", owner("a"))
    assert other.request_cancel("r1") is RunStatus.RUNNING
    assert store.get_result("r1").status is RunStatus.RUNNING
    assert store.renew_lease("r1", owner("a"), LEASE) == LeaseState(
        still_owner=True, cancel_requested=True
    )
    # A new claim (the owner resuming after a restart) starts without the old request.
    store.claim_run("r1", owner("a"), LEASE, statuses=(RunStatus.RUNNING,))
    assert not store.renew_lease("r1", owner("a"), LEASE).cancel_requested


def test_cancel_of_a_running_run_whose_owner_is_gone_cancels_it(
    store: RunStore, other: RunStore
) -> None:
    start_running(store, "r1", owner("a", hostname="far-away", pid=4242), lease=0.01)
    time.sleep(0.05)
    assert other.request_cancel("r1") is RunStatus.CANCELLED
    assert store.get_result("r1").status is RunStatus.CANCELLED


def test_cancel_of_a_paused_run_cancels_it_at_once(store: RunStore, other: RunStore) -> None:
    start_paused(store, "r1", wake_at=time.time() - 1)
    assert other.request_cancel("r") is RunStatus.CANCELLED  # a prefix will do
    result = store.get_result("r1")
    assert result.status is RunStatus.CANCELLED
    assert result.error == {"node": None, "code": "cancelled", "message": "the run was cancelled"}
    assert result.pause is None
    assert result.nodes["start"].status is NodeStatus.COMPLETED
    assert result.nodes["approve"].status is NodeStatus.CANCELLED
    assert store.load_nodes("r1")["approve"].status is NodeStatus.CANCELLED
    assert store.due_runs(time.time()) == []
    summary = store.list_runs()[0]
    assert summary.status is RunStatus.CANCELLED
    assert summary.finished_at is not None


def test_cancel_of_a_pending_run_cancels_it(store: RunStore) -> None:
    store.record_run_started(record("r1", RunStatus.PENDING))
    flush(store)
    assert store.request_cancel("r1") is RunStatus.CANCELLED
    assert (store.get_result("r1").error or {}).get("code") == "cancelled"


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED])
def test_cancel_of_a_finished_run_is_refused(store: RunStore, status: RunStatus) -> None:
    store.record_run_started(record("r1"))
    store.record_run_finished(RunResult("r1", "flow", status))
    flush(store)
    with pytest.raises(RunStateError, match=f"run r1 already {status.value}"):
        store.request_cancel("r1")
    with pytest.raises(RunNotFoundError):
        store.request_cancel("nope")


def test_due_runs_finds_due_timers_and_expired_leases(store: RunStore) -> None:
    now = time.time()
    base = now - 1000
    for run_id, started in (("timer_due", 3), ("timer_later", 2), ("approval", 1)):
        store.record_run_started(record(run_id, started_at=base + started))
    store.record_pause("timer_due", {**PAUSE, "kind": "timer"}, now - 5)
    store.record_pause("timer_later", {**PAUSE, "kind": "timer"}, now + 3600)
    store.record_pause("approval", PAUSE, None)
    for run_id in ("timer_due", "timer_later", "approval"):
        store.record_run_finished(paused_result(run_id))
    store.record_run_started(record("expired", started_at=base + 1.5))
    store.record_run_started(record("live", started_at=base))
    # Running with no owner: its host released it on the way out (or never took it): due.
    store.record_run_started(record("unclaimed", started_at=base + 0.5))
    flush(store)
    store.claim_run("expired", owner("x", hostname="far"), 0.01, statuses=(RunStatus.RUNNING,))
    store.claim_run("live", owner("y", hostname="far"), LEASE, statuses=(RunStatus.RUNNING,))
    time.sleep(0.05)
    assert store.due_runs(time.time()) == ["unclaimed", "expired", "timer_due"]
    later = store.due_runs(now + 7200)  # every timer due, every lease expired
    assert later == ["live", "unclaimed", "expired", "timer_later", "timer_due"]


def test_a_pause_in_the_result_sets_the_timer(store: RunStore) -> None:
    wake = time.time() - 1
    store.record_run_started(record("r1"))
    store.record_run_finished(paused_result("r1", {**PAUSE, "kind": "timer", "wake_at": wake}))
    flush(store)
    assert store.due_runs(time.time()) == ["r1"]


def test_a_paused_run_reports_its_pause(store: RunStore, other: RunStore) -> None:
    start_paused(store, "r1")
    assert other.get_result("r1").pause == PAUSE
    assert other.get_result("r1").to_dict()["pause"] == PAUSE
    # record_pause alone (a result without the pause object) is enough too.
    store.record_run_started(record("r2"))
    store.record_pause("r2", PAUSE, None)
    store.record_run_finished(paused_result("r2", None))
    flush(store)
    assert other.get_result("r2").pause == PAUSE


def test_a_resumed_run_no_longer_reports_the_old_result(store: RunStore) -> None:
    start_paused(store, "r1")
    store.claim_run("r1", owner(), LEASE, statuses=(RunStatus.PAUSED,))
    result = store.get_result("r1")
    assert result.status is RunStatus.RUNNING
    assert result.pause is None
    assert result.nodes["approve"].status is NodeStatus.PAUSED  # until the engine moves on


def test_load_nodes_round_trip(store: RunStore, other: RunStore) -> None:
    store.record_run_started(record("r1"))
    check = NodeResult(
        NodeStatus.COMPLETED,
        1,
        {"result": True},
        started_at=100.0,
        duration_ms=2.0,
        ports=["true"],
        settled_seq=1,
    )
    store.record_node("r1", "check", check)
    store.record_node(
        "r1", "other", NodeResult(NodeStatus.SKIPPED, settled_seq=2, reason="dead_path", ports=[])
    )
    store.record_node(
        "r1",
        "risky",
        NodeResult(
            NodeStatus.FAILED,
            3,
            {"message": "boom"},
            {"message": "boom", "code": "handler_error"},
            ports=["error"],
            settled_seq=3,
            reason="handled",
        ),
    )
    store.record_node("r1", "later", NodeResult(NodeStatus.RUNNING, 1))
    assert check.ports is not None
    check.ports.append("mutated")  # the engine may reuse its objects after recording
    flush(store)
    nodes = other.load_nodes("r1")
    assert list(nodes) == ["check", "other", "risky", "later"]
    assert nodes["check"] == NodeResult(
        NodeStatus.COMPLETED,
        1,
        {"result": True},
        started_at=100.0,
        duration_ms=2.0,
        ports=["true"],
        settled_seq=1,
    )
    assert nodes["other"].ports == []
    assert nodes["other"].reason == "dead_path"
    assert nodes["risky"].error == {"message": "boom", "code": "handler_error"}
    assert (nodes["risky"].ports, nodes["risky"].settled_seq, nodes["risky"].reason) == (
        ["error"],
        3,
        "handled",
    )
    assert nodes["later"].settled_seq is None
    assert other.get_result("r1").nodes["risky"].reason == "handled"
    with pytest.raises(RunNotFoundError):
        other.load_nodes("nope")


def test_get_result_of_a_finished_run_keeps_node_settle_data(store: RunStore) -> None:
    store.record_run_started(record("r1"))
    store.record_node("r1", "a", NodeResult(NodeStatus.COMPLETED, 1, ports=["out"], settled_seq=1))
    store.record_run_finished(
        RunResult("r1", "flow", RunStatus.COMPLETED, nodes={"a": NodeResult(NodeStatus.COMPLETED)})
    )
    flush(store)
    node = store.get_result("r1").nodes["a"]
    assert (node.ports, node.settled_seq) == (["out"], 1)


def test_of_many_concurrent_claims_exactly_one_wins(store_backend: StoreBackend) -> None:
    with store_backend.open() as first:
        start_paused(first, "r1")
    stores = [store_backend.open() for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def claim(index: int) -> None:
        barrier.wait()
        try:
            stores[index].claim_run(
                "r1", owner(str(index), hostname="far"), LEASE, statuses=(RunStatus.PAUSED,)
            )
            outcomes.append("won")
        except RunStateError:
            outcomes.append("lost")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert sorted(outcomes) == ["lost"] * (len(stores) - 1) + ["won"]


def test_claim_and_load_gives_what_continuing_a_run_needs(
    store: RunStore, other: RunStore, store_backend: StoreBackend
) -> None:
    start_paused(store, "r1")
    store.record_node("r1", "start", NodeResult(NodeStatus.COMPLETED, 1, {"v": 1}, settled_seq=2))
    for seq in (1, 2, 3):
        store.record_event(Event("r1", seq, EventType.LOG, 0.0, None, {}))
    start_paused(store, "r2")  # the same document
    start_paused(store, "r3")
    store.record_run_started(record("r3", document={"version": 1, "nodes": []}))
    store.record_run_finished(paused_result("r3", PAUSE))
    flush(store)

    claimed = other.claim_and_load("r1", owner("b"), LEASE, statuses=(RunStatus.PAUSED,))
    assert claimed.record.run_id == "r1"
    assert claimed.record.status is RunStatus.RUNNING
    assert claimed.record.inputs == {"n": 1}
    assert claimed.record.document == record("r1").document
    assert list(claimed.nodes) == ["approve", "start"]  # first recorded first
    assert claimed.nodes["start"] == NodeResult(NodeStatus.COMPLETED, 1, {"v": 1}, settled_seq=2)
    assert claimed.last_seq == 3
    assert claimed.unreadable is None
    assert store_backend.owner_columns("r1")[0] == "host-b"
    assert store.get_result("r1").status is RunStatus.RUNNING

    # The document's key: equal for equal documents, different otherwise.
    second = other.claim_and_load("r2", owner("b"), LEASE, statuses=(RunStatus.PAUSED,))
    third = other.claim_and_load("r3", owner("b"), LEASE, statuses=(RunStatus.PAUSED,))
    assert second.document_key == claimed.document_key != third.document_key
    assert second.last_seq == 0  # no events


def test_claim_and_load_checks_first_and_a_refusal_changes_nothing(
    store: RunStore, other: RunStore
) -> None:
    start_paused(store, "r1")
    seen: list[tuple[RunStatus, dict[str, Any] | None]] = []

    def refuse(status: RunStatus, pause: dict[str, Any] | None) -> None:
        seen.append((status, pause))
        raise InputError("not this input")

    with pytest.raises(InputError, match="not this input"):
        other.claim_and_load("r1", owner("b"), LEASE, statuses=(RunStatus.PAUSED,), check=refuse)
    assert seen == [(RunStatus.PAUSED, {**PAUSE, "wake_at": None})]
    assert store.get_result("r1").status is RunStatus.PAUSED
    # Refused like claim_run: the status, an unknown id; a unique prefix is enough.
    with pytest.raises(RunStateError, match="run r1 is paused, not failed"):
        other.claim_and_load("r1", owner("b"), LEASE, statuses=(RunStatus.FAILED,))
    with pytest.raises(RunNotFoundError):
        other.claim_and_load("nope", owner("b"), LEASE, statuses=(RunStatus.PAUSED,))
    claimed = other.claim_and_load(
        "r", owner("b"), LEASE, statuses=(RunStatus.PAUSED,), check=lambda *_: None
    )
    assert claimed.record.run_id == "r1"
