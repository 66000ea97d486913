"""Pause, resume in another host, retry from the failed node, cancel from elsewhere, timers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from polyhost import Catalog, Host, HostConfig, InputError, NodeStatus, RunStateError, RunStatus
from tests.helpers.nodes import CALLS, build_catalog
from tests.helpers.workflows import workflow

pytestmark = pytest.mark.anyio

APPROVAL = {
    "id": "approve",
    "type": "core.approval",
    "with": {
        "prompt": "Ship {{ build.value }}?",
        "schema": {
            "type": "object",
            "properties": {"approved": {"type": "boolean"}},
            "required": ["approved"],
        },
    },
}


def approval_flow() -> Any:
    return workflow(
        [
            {"id": "build", "type": "test.echo", "with": {"value": "v1"}},
            APPROVAL,
            {"id": "ship", "type": "test.echo", "with": {"ok": "{{ approve.approved }}"}},
        ],
        ["build->approve", "approve->ship"],
        outputs={"shipped": "{{ ship.ok }}", "built": "{{ build.value }}"},
    )


def config(tmp_path: Path, **extra: Any) -> HostConfig:
    return HostConfig(home=tmp_path / "home", **extra)


async def test_an_approval_pauses_and_another_host_resumes(
    tmp_path: Path, catalog: Catalog
) -> None:
    async with Host(config(tmp_path), catalog=catalog) as first:
        paused = await first.run(approval_flow())
    assert paused.status is RunStatus.PAUSED
    assert paused.nodes["approve"].status is NodeStatus.PAUSED
    [waiting] = paused.pause["waiting"]  # type: ignore[index]
    assert waiting["node"] == "approve" and waiting["kind"] == "approval"
    assert waiting["prompt"] == "Ship v1?"
    assert CALLS["build"] == 1

    async with Host(config(tmp_path), catalog=catalog) as second:
        with pytest.raises(InputError) as bad:
            await second.resume(paused.execution_id, {"approved": "yes"})
        assert bad.value.field == "approved"
        done = await second.resume(paused.execution_id, {"approved": True})
    assert done.status is RunStatus.COMPLETED, done.error
    assert done.outputs == {"shipped": True, "built": "v1"}
    assert done.nodes["approve"].output == {"approved": True}
    assert CALLS["build"] == 1  # completed before the pause: not run again
    assert done.execution_id == paused.execution_id


async def test_a_resumed_run_lasts_from_its_first_start_to_its_end(
    tmp_path: Path, catalog: Catalog
) -> None:
    async with Host(config(tmp_path), catalog=catalog) as host:
        paused = await host.run(approval_flow())
        await anyio.sleep(0.5)
        done = await host.resume(paused.execution_id, {"approved": True})
        [summary] = host.history.list().runs
    assert done.status is RunStatus.COMPLETED, done.error
    assert paused.duration_ms < 500
    assert done.duration_ms >= 500  # the pause is part of the run's time
    assert done.started_at == paused.started_at
    assert summary.duration_ms == done.duration_ms
    assert summary.finished_at is not None and summary.started_at is not None
    elapsed_ms = (summary.finished_at - summary.started_at) * 1000
    assert abs(elapsed_ms - done.duration_ms) < 100


async def test_resume_is_refused_for_finished_runs(tmp_path: Path, host: Host) -> None:
    result = await host.run(workflow([{"id": "a", "type": "core.transform", "with": {"value": 1}}]))
    with pytest.raises(RunStateError):
        await host.resume(result.execution_id)


async def test_retry_continues_from_the_failed_node(tmp_path: Path, host: Host) -> None:
    flag = tmp_path / "fixed"

    @host.catalog.node("test.until_fixed")
    def until_fixed(params: dict[str, Any]) -> dict[str, Any]:
        CALLS["until_fixed"] += 1
        if not flag.exists():
            raise RuntimeError("not fixed yet")
        return {"fixed": True}

    wf = workflow(
        [
            {"id": "first", "type": "test.echo", "with": {"n": 1}},
            {"id": "fragile", "type": "test.until_fixed"},
            {"id": "last", "type": "test.echo", "with": {"n": "{{ first.n + 1 }}"}},
        ],
        ["first->fragile", "fragile->last"],
    )
    failed = await host.run(wf)
    assert failed.status is RunStatus.FAILED and failed.error["node"] == "fragile"
    flag.touch()
    retried = await host.retry(failed.execution_id)
    assert retried.status is RunStatus.COMPLETED, retried.error
    assert retried.outputs == {"last": {"n": 2}}
    assert CALLS["first"] == 1 and CALLS["until_fixed"] == 2
    with pytest.raises(RunStateError):
        await host.retry(failed.execution_id)  # completed now


async def test_cancel_from_another_host_stops_the_run(tmp_path: Path, catalog: Catalog) -> None:
    fast = config(tmp_path, renew_every=0.05)
    wf = workflow([{"id": "s", "type": "test.sleep", "with": {"seconds": 30}}])
    async with Host(fast, catalog=catalog) as runner, Host(fast, catalog=catalog) as other:
        started = anyio.Event()
        run_ids: list[str] = []

        def on_event(event: Any) -> None:
            run_ids.append(event.run_id)
            if event.node == "s":
                started.set()

        async with anyio.create_task_group() as tg:
            results: list[Any] = []

            async def drive() -> None:
                results.append(await runner.run(wf, on_event=on_event))

            tg.start_soon(drive)
            with anyio.fail_after(10):
                await started.wait()
                assert await other.cancel_run(run_ids[0]) is RunStatus.RUNNING
        result = results[0]
    assert result.status is RunStatus.CANCELLED
    assert result.nodes["s"].status is NodeStatus.CANCELLED


async def test_cancelling_a_paused_run_needs_no_process(tmp_path: Path, catalog: Catalog) -> None:
    async with Host(config(tmp_path), catalog=catalog) as host:
        paused = await host.run(approval_flow())
        assert await host.cancel_run(paused.execution_id) is RunStatus.CANCELLED
        assert host.store is not None
        assert host.store.get_result(paused.execution_id).status is RunStatus.CANCELLED
        with pytest.raises(RunStateError):
            await host.resume(paused.execution_id, {"approved": True})


async def test_a_long_wait_is_a_durable_timer(
    tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    import polyhost.nodes.core as core

    monkeypatch.setattr(core, "DURABLE_WAIT_SECONDS", 0.2)
    wf = workflow(
        [
            {"id": "wait", "type": "core.wait", "with": {"duration": "300ms"}},
            {"id": "after", "type": "test.echo", "with": {"waited": "{{ wait.waited }}"}},
        ],
        ["wait->after"],
    )
    async with Host(config(tmp_path), catalog=catalog) as host:
        paused = await host.run(wf)
        assert paused.status is RunStatus.PAUSED
        assert paused.pause is not None and paused.pause["wake_at"] is not None
        assert await host.resume_due() == []  # not due yet
        await anyio.sleep(0.35)
        [done] = await host.resume_due()
    assert done.status is RunStatus.COMPLETED, done.error
    assert done.nodes["after"].output == {"waited": 0.3}


async def test_a_paused_loop_resumes_inside_its_iteration(tmp_path: Path) -> None:
    wf = workflow(
        [{"id": "each", "type": "core.loop", "with": {"count": 2},
          "body": {"nodes": [
              {"id": "work", "type": "test.echo", "with": {"i": "{{ loop.index }}"}},
              {**APPROVAL, "with": {**APPROVAL["with"], "prompt": "ok?"},
               "when": "loop.index == 1"},
              {"id": "done", "type": "test.echo", "with": {"i": "{{ work.i }}"}}],
              "edges": [{"from": "work", "to": "approve"}, {"from": "approve", "to": "done"}],
              "outputs": {"i": "{{ work.i }}", "done": "{{ done.i }}"}}}]
    )  # fmt: skip
    async with Host(config(tmp_path), catalog=build_catalog()) as host:
        paused = await host.run(wf)
        assert paused.status is RunStatus.PAUSED
        assert paused.pause["waiting"][0]["node"] == "each[1].approve"  # type: ignore[index]
        calls_before = dict(CALLS)
        done = await host.resume(paused.execution_id, {"approved": True})
    assert done.status is RunStatus.COMPLETED, done.error
    assert done.nodes["each"].output == {"results": [{"i": 0, "done": None}, {"i": 1, "done": 1}]}
    # Iteration 0 and the work of iteration 1 completed before the pause: not run again.
    assert CALLS["each[0].work"] == calls_before["each[0].work"] == 1
    assert CALLS["each[1].work"] == 1
