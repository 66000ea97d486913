"""The read side of a host (``host.history``): list with filters and a cursor, one run's
result and record, events after a sequence number, id prefixes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from polyhost import (
    CompiledWorkflow,
    Host,
    HostConfig,
    InputError,
    RunNotFoundError,
    RunResult,
    RunStateError,
    RunStatus,
    Workflow,
)
from polyhost._errors import AmbiguousRunIdError
from polyhost.events._result import RunPage
from polyhost.store import RunRecord, open_store
from tests.helpers.workflows import workflow

_DOC = {"version": 1, "id": "seeded", "nodes": [{"id": "a", "type": "core.transform"}]}


def _seed(db: Path, runs: list[tuple[str, str, RunStatus, float]]) -> None:
    """Write finished runs (id, workflow id, status, start time) through the store protocol."""
    with open_store(str(db), db.parent) as store:
        for run_id, workflow_id, status, started_at in runs:
            store.record_run_started(
                RunRecord(
                    run_id=run_id,
                    workflow_id=workflow_id,
                    status=RunStatus.RUNNING,
                    inputs={},
                    document=_DOC,
                    started_at=started_at,
                )
            )
            store.record_run_finished(
                RunResult(
                    execution_id=run_id,
                    workflow_id=workflow_id,
                    status=status,
                    started_at=started_at,
                    duration_ms=1.0,
                )
            )


def _host(db: Path) -> Host:
    return Host(HostConfig(home=db.parent, db=str(db)))


def _pages(host: Host, limit: int, **filters: Any) -> list[RunPage]:
    pages = [host.history.list(limit=limit, **filters)]
    while pages[-1].next_cursor is not None:
        pages.append(host.history.list(limit=limit, cursor=pages[-1].next_cursor, **filters))
    return pages


def _ids(pages: list[RunPage]) -> list[str]:
    return [run.execution_id for page in pages for run in page.runs]


@pytest.fixture
def many(tmp_path: Path) -> Path:
    """250 runs of two workflows, every third one failed; three runs share each start time,
    so paging must break ties by id."""
    db = tmp_path / "runs.db"
    _seed(
        db,
        [
            (
                f"run{i:04d}",
                "even" if i % 2 == 0 else "odd",
                RunStatus.FAILED if i % 3 == 0 else RunStatus.COMPLETED,
                1_000.0 + i // 3,
            )
            for i in range(250)
        ],
    )
    return db


def test_the_cursor_pages_through_every_run_once_newest_first(many: Path) -> None:
    with _host(many) as host:
        everything = host.history.list(limit=0)
        assert everything.next_cursor is None and len(everything.runs) == 250
        newest_first = [run.execution_id for run in everything.runs]
        assert newest_first == [f"run{i:04d}" for i in reversed(range(250))]

        pages = _pages(host, 7)
        assert len(pages) == 36  # 35 full pages and one of 5
        assert all(len(page.runs) == 7 for page in pages[:-1]) and len(pages[-1].runs) == 5
        assert _ids(pages) == newest_first


def test_filters_combine_and_page_with_the_cursor(many: Path) -> None:
    with _host(many) as host:
        failed_even = _ids(_pages(host, 4, status="failed", workflow_id="even"))
        assert failed_even == [f"run{i:04d}" for i in reversed(range(0, 250, 6))]
        assert all(
            run.status is RunStatus.FAILED and run.workflow_id == "even"
            for run in host.history.list(limit=0, status=RunStatus.FAILED, workflow_id="even").runs
        )
        # Start times are 1000 + i // 3: [1010, 1020) holds runs 30 to 59.
        window = _ids(_pages(host, 8, since=1_010.0, until=1_020.0))
        assert window == [f"run{i:04d}" for i in reversed(range(30, 60))]
        assert host.history.list(workflow_id="nosuch").runs == ()
        with pytest.raises(InputError) as info:
            host.history.list(status="done")
        assert info.value.field == "status"


def test_runs_that_start_while_paging_do_not_shift_the_pages(many: Path) -> None:
    with _host(many) as host:
        first = host.history.list(limit=10)
        _seed(many, [(f"new{i}", "even", RunStatus.COMPLETED, 5_000.0 + i) for i in range(5)])
        second = host.history.list(limit=10, cursor=first.next_cursor)
        assert [run.execution_id for run in second.runs] == [
            f"run{i:04d}" for i in reversed(range(230, 240))
        ]
        assert [r.execution_id for r in host.history.list(limit=5).runs] == [
            f"new{i}" for i in reversed(range(5))
        ]


def test_a_page_serialises_to_the_runs_list_json(many: Path) -> None:
    with _host(many) as host:
        page = host.history.list(limit=1, status="failed")
    row = page.runs[0].to_dict()
    # The HTTP API's run summary (workflow_version, trigger, ended_at) and the CLI's keys.
    assert set(row) == {
        "execution_id",
        "workflow_id",
        "workflow_version",
        "status",
        "trigger",
        "started_at",
        "ended_at",
        "finished_at",
        "duration_ms",
        "error",
        "nodes",
    }
    assert row["execution_id"] == "run0249" and row["status"] == "failed"
    assert row["trigger"] == "manual" and row["workflow_version"] is None
    assert row["ended_at"] == row["finished_at"]
    assert page.to_dict()["next_cursor"] == page.next_cursor is not None


@pytest.mark.parametrize("cursor", ["", "garbage!", "W10", "x" * 5000, "WyJuYW4iLCJhIl0"])
def test_a_cursor_that_this_history_did_not_give_is_refused(many: Path, cursor: str) -> None:
    with _host(many) as host, pytest.raises(InputError) as info:
        host.history.list(cursor=cursor)
    assert info.value.field == "cursor"


def test_id_prefixes_resolve_and_an_ambiguous_one_lists_candidates(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    ids = ["abc001", "abc002", "abd001", "abe", "abe1"]
    _seed(db, [(run_id, "w", RunStatus.COMPLETED, 1.0) for run_id in ids])
    with _host(db) as host:
        assert host.history.resolve("abd") == "abd001"
        assert host.history.resolve("abc002") == "abc002"
        assert host.history.resolve("abe") == "abe"  # an exact id wins over longer ones
        assert host.history.result("abd").execution_id == "abd001"
        assert host.history.details("abd").execution_id == "abd001"

        with pytest.raises(AmbiguousRunIdError) as info:
            host.history.resolve("abc")
        assert info.value.candidates == ["abc001", "abc002"]
        assert info.value.code == "ambiguous_run_id"
        assert "abc001, abc002" in info.value.message
        with pytest.raises(AmbiguousRunIdError):
            host.history.events("ab")  # every read resolves the same way

        with pytest.raises(RunNotFoundError) as missing:
            host.history.resolve("zzz")
        assert not isinstance(missing.value, AmbiguousRunIdError)
        assert missing.value.code == "run_not_found"


def _flow(tmp_path: Path) -> Path:
    """A workflow file with a manifest beside it declaring the node type it uses."""
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "reads_nodes.py").write_text(
        "def upper(params):\n    return {'text': params['text'].upper()}\n", encoding="utf-8"
    )
    (folder / "polyhost.toml").write_text(
        '[[nodes]]\ntype = "reads.upper"\nruntime = "python"\nhandler = "reads_nodes:upper"\n',
        encoding="utf-8",
    )
    flow = folder / "flow.yaml"
    flow.write_text(
        "version: 1\nid: reads\nnodes:\n"
        "  - {id: up, type: reads.upper, with: {text: '{{ input.word }}'}}\n"
        "  - {id: again, type: core.transform, with: {value: '{{ up.text }}'}}\n"
        "edges:\n  - {from: up, to: again}\n",
        encoding="utf-8",
    )
    return flow


@pytest.mark.anyio
async def test_one_run_reads_back_as_result_record_and_events(tmp_path: Path) -> None:
    flow = _flow(tmp_path)
    manifest = str((flow.parent / "polyhost.toml").resolve())
    async with Host(HostConfig(home=tmp_path / "home")) as host:
        result = await host.run(flow, {"word": "loud"})
        assert result.status is RunStatus.COMPLETED
        # A run's end is committed before run() returns: its history is readable at once.

        shown = host.history.result(result.execution_id[:-4])
        assert shown.to_dict() == result.to_dict()

        details = host.history.details(result.execution_id)
        assert details.workflow_id == "reads"
        assert details.inputs == {"word": "loud"}
        assert details.source == str(flow.resolve())
        assert details.manifests == (manifest,)
        assert details.node_ids == ["up", "again"]
        assert details.to_dict()["document"]["nodes"][0]["type"] == "reads.upper"

        every = host.history.events(result.execution_id)
        assert every.more is False and every.next_seq == every.events[-1].seq
        seqs = [event.seq for event in every.events]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 4

        paged: list[int] = []
        after = 0
        while True:
            page = host.history.events(result.execution_id, after_seq=after, limit=2)
            paged += [event.seq for event in page.events]
            after = page.next_seq
            if not page.more:
                break
        assert paged == seqs
        tail = host.history.events(result.execution_id, after_seq=seqs[-2])
        assert [event.seq for event in tail.events] == [seqs[-1]]
        assert tail.to_dict()["events"][0]["type"] == "run.completed"
        empty = host.history.events(result.execution_id, after_seq=seqs[-1], limit=5)
        assert empty.events == () and empty.next_seq == seqs[-1] and not empty.more
        with pytest.raises(InputError):
            host.history.events(result.execution_id, limit=0)


@pytest.mark.anyio
async def test_the_manifest_travels_with_the_workflow_into_reruns(tmp_path: Path) -> None:
    flow = _flow(tmp_path)
    manifest = str((flow.parent / "polyhost.toml").resolve())
    async with Host(HostConfig(home=tmp_path / "home")) as host:
        loaded = host.load(flow)
        assert loaded.manifests == (manifest,)
        compiled = host.compile(loaded)
        assert compiled.manifests == (manifest,)
        first = await host.run(compiled, {"word": "a"})
        second = await host.rerun(first.execution_id)
        third = await host.rerun(second.execution_id)
        assert third.outputs == first.outputs
        for run in (first, second, third):
            assert host.history.details(run.execution_id).manifests == (manifest,)
        assert host.history.details(third.execution_id).parent_run_id == second.execution_id


@pytest.mark.anyio
async def test_a_run_compiles_its_workflow_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[str] = []
    original = Host.compile

    def counting(self: Host, target: Workflow) -> CompiledWorkflow:
        compiled.append(target.id or "")
        return original(self, target)

    monkeypatch.setattr(Host, "compile", counting)
    async with Host(HostConfig(home=tmp_path / "home"), store=None) as host:
        await host.run(_flow(tmp_path), {"word": "x"})
        assert compiled == ["reads"]
        plan = host.compile(workflow([{"id": "a", "type": "core.transform", "with": {"value": 1}}]))
        await host.run(plan)
        assert compiled == ["reads", "t"]  # a plan is run as it is


def test_the_cli_compiles_a_run_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from polyhost.cli import _commands

    calls: list[str] = []
    original = Host.compile

    def counting(self: Host, target: Workflow) -> CompiledWorkflow:
        calls.append(target.id or "")
        return original(self, target)

    monkeypatch.setattr(Host, "compile", counting)
    status = _commands.run_workflow(
        _flow(tmp_path),
        ["word=x"],
        inputs_file=None,
        nodes=None,
        as_json=False,
        db=str(tmp_path / "runs.db"),
    )
    assert status == 0
    assert calls == ["reads"]


def test_a_host_without_a_store_has_no_history(tmp_path: Path) -> None:
    with Host(HostConfig(home=tmp_path), store=None) as host:
        assert host.history.available is False
        with pytest.raises(RunStateError):
            host.history.list()
        with pytest.raises(RunStateError):
            host.history.resolve("x")
