"""The run store contract, deployed workflows: versions, undeploy, schedule fires, and where
a run came from (its trigger and deployed version)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from polyhost import RunStatus
from polyhost._errors import WorkflowNotFoundError
from polyhost.store import RunRecord, RunStore, SQLiteStore
from polyhost.store.sqlite._schema import MIGRATIONS
from tests.store.conftest import StoreBackend


def doc(message: str) -> tuple[str, str]:
    """A document's JSON text and its hash."""
    text = json.dumps(
        {"version": 1, "nodes": [{"id": "a", "type": "core.log", "with": {"message": message}}]},
        sort_keys=True,
        separators=(",", ":"),
    )
    return text, hashlib.sha256(text.encode()).hexdigest()


def record(run_id: str, **overrides: Any) -> RunRecord:
    values: dict[str, Any] = {
        "run_id": run_id,
        "workflow_id": "flow",
        "status": RunStatus.RUNNING,
        "inputs": {},
        "document": {"version": 1, "nodes": []},
        "started_at": time.time(),
    }
    values.update(overrides)
    return RunRecord(**values)


def flush(store: RunStore) -> None:
    asyncio.run(store.flush())


# versions ---------------------------------------------------------------------------------------


def test_versions_count_up_and_an_unchanged_document_keeps_its_version(store: RunStore) -> None:
    one, one_hash = doc("one")
    two, two_hash = doc("two")
    assert store.deploy("flow", one, one_hash) == (1, True)
    assert store.deploy("flow", one, one_hash) == (1, False)
    assert store.deploy("flow", two, two_hash) == (2, True)
    # Going back to an older document is a new version: the latest is what counts.
    assert store.deploy("flow", one, one_hash) == (3, True)
    # Each workflow numbers its own versions.
    assert store.deploy("other", two, two_hash) == (1, True)


def test_a_deployment_reads_back_with_its_document_and_every_version(store: RunStore) -> None:
    one, one_hash = doc("one")
    two, two_hash = doc("two")
    store.deploy("flow", one, one_hash, manifest="/nodes/polyhost.toml")
    store.deploy("flow", two, two_hash)
    latest = store.get_deployment("flow")
    assert (latest.workflow_id, latest.version, latest.hash) == ("flow", 2, two_hash)
    assert latest.document == two
    assert latest.active and latest.latest_version == 2
    assert [(v.version, v.hash) for v in latest.versions] == [(1, one_hash), (2, two_hash)]
    assert latest.versions[0].created_at <= latest.versions[1].created_at
    first = store.get_deployment("flow", 1)
    assert (first.version, first.document, first.manifest) == (1, one, "/nodes/polyhost.toml")
    assert first.latest_version == 2


def test_an_unknown_workflow_or_version_is_not_found(store: RunStore) -> None:
    with pytest.raises(WorkflowNotFoundError, match="no workflow 'nope' was ever deployed"):
        store.get_deployment("nope")
    store.deploy("flow", *doc("one"))
    with pytest.raises(WorkflowNotFoundError, match="no version 7") as info:
        store.get_deployment("flow", 7)
    assert info.value.code == "workflow_not_found"


def test_the_list_holds_the_latest_version_of_each_active_workflow(store: RunStore) -> None:
    store.deploy("b", *doc("b1"))
    store.deploy("a", *doc("a1"))
    store.deploy("a", *doc("a2"))
    listed = store.list_deployments()
    assert [(d.workflow_id, d.version, d.active) for d in listed] == [
        ("a", 2, True),
        ("b", 1, True),
    ]
    assert all(d.document is None and d.versions == () for d in listed)  # kept cheap


def test_undeploy_keeps_the_history_and_a_deploy_makes_it_active_again(store: RunStore) -> None:
    one, one_hash = doc("one")
    store.deploy("flow", one, one_hash)
    assert store.undeploy("flow") is True
    assert store.undeploy("flow") is False  # already undeployed
    assert store.undeploy("never") is False
    assert store.list_deployments() == []
    hidden = store.list_deployments(include_undeployed=True)
    assert [(d.workflow_id, d.active) for d in hidden] == [("flow", False)]
    kept = store.get_deployment("flow")
    assert (kept.version, kept.active, kept.document) == (1, False, one)
    # The same document again: active, same version.
    assert store.deploy("flow", one, one_hash) == (1, False)
    assert store.get_deployment("flow").active
    store.undeploy("flow")
    # Another document after an undeploy continues the numbering.
    assert store.deploy("flow", *doc("two")) == (2, True)
    assert [d.workflow_id for d in store.list_deployments()] == ["flow"]


def test_a_second_store_on_the_same_database_sees_deployments_at_once(
    store: RunStore, other: RunStore
) -> None:
    store.deploy("flow", *doc("one"))
    assert other.get_deployment("flow").version == 1
    assert other.deploy("flow", *doc("two")) == (2, True)
    assert store.get_deployment("flow").version == 2


def test_concurrent_deploys_number_versions_without_gaps(
    store_backend: StoreBackend, store: RunStore, other: RunStore
) -> None:
    results: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def deploy_many(target: RunStore, tag: str) -> None:
        for i in range(20):
            got = target.deploy("flow", *doc(f"{tag}{i}"))
            with lock:
                results.append(got)

    threads = [
        threading.Thread(target=deploy_many, args=(target, tag))
        for target, tag in ((store, "x"), (other, "y"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(created for _, created in results)
    assert sorted(version for version, _ in results) == list(range(1, 41))
    assert [v.version for v in store.get_deployment("flow").versions] == list(range(1, 41))


# schedule fires ---------------------------------------------------------------------------------


def test_a_due_time_is_claimed_once(
    store_backend: StoreBackend, store: RunStore, other: RunStore
) -> None:
    due = 1_750_000_000.0
    assert store.claim_fire("flow", "schedule:* * * * *@UTC", due, version=1) is True
    assert store.claim_fire("flow", "schedule:* * * * *@UTC", due, version=1) is False
    assert other.claim_fire("flow", "schedule:* * * * *@UTC", due, version=2) is False
    # Another second, another schedule or another workflow is another fire.
    assert other.claim_fire("flow", "schedule:* * * * *@UTC", due + 1) is True
    assert other.claim_fire("flow", "schedule:0 * * * *@UTC", due) is True
    assert other.claim_fire("else", "schedule:* * * * *@UTC", due) is True
    store.record_fire_run("flow", "schedule:* * * * *@UTC", due, "run-1")
    assert store_backend.fires("flow", "schedule:* * * * *@UTC") == {
        1_750_000_000: "run-1",
        1_750_000_001: None,
    }


def test_racing_claims_from_two_stores_in_two_threads_have_one_winner_each(
    store: RunStore, other: RunStore
) -> None:
    wins: dict[str, list[float]] = {"store": [], "other": []}
    go = threading.Barrier(2)
    base = 1_750_000_000.0

    def claim_all(target: RunStore, name: str) -> None:
        go.wait()
        for i in range(100):
            if target.claim_fire("flow", "schedule:* * * * * *@UTC", base + i, version=1):
                wins[name].append(base + i)

    threads = [
        threading.Thread(target=claim_all, args=(target, name))
        for target, name in ((store, "store"), (other, "other"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = wins["store"] + wins["other"]
    assert sorted(won) == [base + i for i in range(100)]  # every one claimed, none twice


_CLAIMER = """
import sys
from polyhost.store import SQLiteStore
path, start = sys.argv[1], float(sys.argv[2])
with SQLiteStore(path) as store:
    sys.stdin.readline()  # both processes are ready: go
    won = [str(i) for i in range(100) if store.claim_fire("flow", "k", start + i, version=1)]
print(",".join(won))
"""


def test_racing_claims_from_two_processes_have_one_winner_each(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    SQLiteStore(path).close()  # created and migrated before the race
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, str(path), "1750000000"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [child.communicate("go\n", timeout=60)[0].strip() for child in children]
    assert all(child.returncode == 0 for child in children)
    won = [int(i) for out in outputs for i in out.split(",") if i]
    assert sorted(won) == list(range(100))


# where runs come from ---------------------------------------------------------------------------


def test_a_run_keeps_its_trigger_and_version(store: RunStore) -> None:
    store.record_run_started(record("r1", trigger="schedule", workflow_version=3))
    store.record_run_started(record("r2"))
    flush(store)
    first = store.get_record("r1")
    assert (first.trigger, first.workflow_version) == ("schedule", 3)
    plain = store.get_record("r2")
    assert (plain.trigger, plain.workflow_version) == ("manual", None)
    rows = {row.run_id: row for row in store.list_runs()}
    assert (rows["r1"].trigger, rows["r1"].workflow_version) == ("schedule", 3)
    assert (rows["r2"].trigger, rows["r2"].workflow_version) == ("manual", None)
    # Started again (a resumed run): where it came from does not change.
    store.record_run_started(record("r1"))
    flush(store)
    again = store.get_record("r1")
    assert (again.trigger, again.workflow_version) == ("schedule", 3)


def test_history_filters_still_apply(store: RunStore) -> None:
    store.record_run_started(record("r1", workflow_id="a", trigger="webhook", workflow_version=1))
    store.record_run_started(record("r2", workflow_id="b", trigger="api", workflow_version=2))
    flush(store)
    [only] = store.list_runs(workflow_id="b")
    assert (only.run_id, only.trigger, only.workflow_version) == ("r2", "api", 2)
    assert [r.run_id for r in store.list_runs(status=RunStatus.RUNNING)] == ["r2", "r1"]


def test_a_database_of_schema_2_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for script in MIGRATIONS[:2]:
            conn.executescript(script)
        conn.execute("PRAGMA user_version = 2")
        conn.execute(
            "INSERT INTO runs (run_id, workflow_id, status, started_at) "
            "VALUES ('old', 'flow', 'completed', 1.0)"
        )
    with SQLiteStore(path) as store:
        old = store.get_record("old")
        assert (old.trigger, old.workflow_version) == ("manual", None)
        assert store.deploy("flow", *doc("one")) == (1, True)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
