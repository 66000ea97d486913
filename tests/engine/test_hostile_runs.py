"""Runs that try to break the engine end as failed runs, recorded, with the error naming the node.

Whatever stops a node (an output no JSON can hold, one nested past ``max_value_depth``, a handler
raising ``KeyboardInterrupt``, a runtime with a bug, a store that refuses a write), the run ends
``failed`` in the result *and* in the store, and nothing is left ``running``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from polyhost import Catalog, Host, HostConfig, NodeContext, NodeStatus, RunResult, RunStatus
from polyhost._limits import Limits
from polyhost.router._router import RuntimeRouter
from polyhost.workflow._catalog import NodeType
from tests.helpers.workflows import workflow

pytestmark = pytest.mark.anyio


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _self_containing() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


# name -> (what the handler returns, code, where in the output the message points)
OUTPUTS: dict[str, tuple[Any, str, str]] = {
    "lone_surrogate": ({"s": "a\ud83d"}, "invalid_output", "output.s"),
    "surrogate_key": ({"rows": [{"\udc00k": 1}]}, "invalid_output", "output.rows[0]"),
    "deep_list": ({"v": _deep_list(100_000)}, "limit_exceeded", "output.v[0][0]"),
    "self_containing": ({"v": _self_containing()}, "limit_exceeded", "output.v[0]"),
    "nan": ({"x": [1, {"y": float("nan")}]}, "invalid_output", "output.x[1].y"),
    "infinity": ({"x": float("inf")}, "invalid_output", "output.x"),
    "object": ({"o": object()}, "invalid_output", "output.o"),
}


def _catalog() -> Catalog:
    catalog = Catalog.with_builtins()

    @catalog.node("hostile.output")
    def output(params: dict[str, Any], ctx: NodeContext) -> Any:
        return OUTPUTS[params["kind"]][0]

    @catalog.node("hostile.interrupt")
    def interrupt(params: dict[str, Any], ctx: NodeContext) -> Any:
        raise KeyboardInterrupt

    @catalog.node("hostile.async_interrupt")
    async def async_interrupt(params: dict[str, Any], ctx: NodeContext) -> Any:
        raise KeyboardInterrupt

    @catalog.node("hostile.exit")
    def exit_(params: dict[str, Any], ctx: NodeContext) -> Any:
        raise SystemExit(3)

    @catalog.node("hostile.message")
    def message(params: dict[str, Any], ctx: NodeContext) -> Any:
        ctx.log("a log line with a lone surrogate: \ud800")
        raise ValueError("bad \udc00 value")

    @catalog.node("hostile.sabotage")
    def sabotage(params: dict[str, Any], ctx: NodeContext) -> Any:
        # What a full disk or a failing database does to one write, from another connection.
        with sqlite3.connect(params["db"]) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON node_results WHEN NEW.node_id = 'victim' "
                "BEGIN SELECT RAISE(ABORT, 'the disk refuses'); END"
            )
        return {}

    @catalog.node("hostile.unreachable")
    def unreachable(params: dict[str, Any], ctx: NodeContext) -> Any:
        raise ConnectionError("the service is down")

    catalog.add(NodeType(type="hostile.buggy", runtime="native", handler="buggy"))
    return catalog


class BuggyRuntime:
    """An app's own adapter for a runtime, with bugs: it raises what no adapter should let
    escape."""

    name = "native"

    async def execute(
        self, node_type: NodeType, params: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any] | None:
        kind = params.get("raise")
        if kind == "recursion":
            raise RecursionError("maximum recursion depth exceeded")
        if kind == "interrupt":
            raise KeyboardInterrupt
        raise RuntimeError("a bug in the adapter")

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[Host]:
    router = RuntimeRouter()
    router.register(BuggyRuntime())
    async with Host(HostConfig(home=tmp_path / "home"), catalog=_catalog(), router=router) as host:
        yield host


async def _ended(host: Host, result: RunResult) -> RunResult:
    """The run as the store has it: it must agree with the result and not be running."""
    assert host.store is not None
    await host.store.flush()
    stored = host.store.get_result(result.execution_id)
    assert stored.status is result.status
    assert stored.status.is_final
    return stored


@pytest.mark.parametrize("kind", sorted(OUTPUTS))
async def test_an_output_no_json_can_hold_fails_its_node(hostile: Host, kind: str) -> None:
    _, code, where = OUTPUTS[kind]
    begin = time.perf_counter()
    result = await hostile.run(
        workflow(
            [
                {"id": "n", "type": "hostile.output", "with": {"kind": kind}},
                {"id": "after", "type": "core.transform", "with": {"value": 1}},
            ],
            ["n->after"],
        )
    )
    assert time.perf_counter() - begin < 2
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error["node"] == "n"
    assert result.error["code"] == code
    assert where in result.error["message"]
    if code == "limit_exceeded":
        assert "max_value_depth = 128" in result.error["message"]
    assert result.nodes["n"].error is not None
    assert result.nodes["n"].error["field"].startswith(where)
    assert result.nodes["after"].status is NodeStatus.CANCELLED
    stored = await _ended(hostile, result)
    assert stored.nodes["n"].status is NodeStatus.FAILED


async def test_max_value_depth_is_a_setting(tmp_path: Path) -> None:
    config = HostConfig(home=tmp_path / "home", limits=Limits(max_value_depth=3))
    async with Host(config, catalog=_catalog()) as host:
        ok = await host.run(
            workflow([{"id": "n", "type": "core.transform", "with": {"value": [[1]]}}])
        )
        deep = await host.run(
            workflow([{"id": "n", "type": "core.transform", "with": {"value": [[[1]]]}}])
        )
    assert ok.status is RunStatus.COMPLETED, ok.error
    assert deep.error is not None
    assert deep.error["code"] == "limit_exceeded"
    assert "output.value[0][0]" in deep.error["message"]


@pytest.mark.parametrize(
    ("node_type", "stopped_with"),
    [
        ("hostile.interrupt", "KeyboardInterrupt"),
        ("hostile.async_interrupt", "KeyboardInterrupt"),
        ("hostile.exit", "SystemExit"),
    ],
)
async def test_a_handler_raising_a_base_exception_fails_its_node(
    hostile: Host, node_type: str, stopped_with: str
) -> None:
    result = await hostile.run(workflow([{"id": "n", "type": node_type}]))
    assert result.status is RunStatus.FAILED
    assert result.error == {
        "node": "n",
        "code": "internal_error",
        "message": f"the node stopped with {stopped_with}",
    }
    await _ended(hostile, result)


@pytest.mark.parametrize(
    ("raise_", "code", "says"),
    [
        ("bug", "internal_error", "RuntimeError: a bug in the adapter"),
        ("recursion", "limit_exceeded", "max_value_depth"),
        ("interrupt", "internal_error", "KeyboardInterrupt"),
    ],
)
async def test_a_runtime_with_a_bug_fails_the_node_not_the_engine(
    hostile: Host, raise_: str, code: str, says: str
) -> None:
    result = await hostile.run(
        workflow(
            [
                {"id": "n", "type": "hostile.buggy", "with": {"raise": raise_}},
                {"id": "other", "type": "core.wait", "with": {"duration": "5s"}},
            ]
        )
    )
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error["node"] == "n"
    assert result.error["code"] == code
    assert says in result.error["message"]
    assert result.nodes["other"].status is NodeStatus.CANCELLED
    await _ended(hostile, result)


async def test_messages_with_lone_surrogates_are_stored_and_printable(hostile: Host) -> None:
    result = await hostile.run(workflow([{"id": "n", "type": "hostile.message"}]))
    assert result.error is not None
    assert result.error["message"] == "ValueError: bad \ufffd value"
    await _ended(hostile, result)
    assert hostile.store is not None
    events = hostile.store.events(result.execution_id)
    [log] = [e for e in events if e.type == "log"]
    assert "\ufffd" in log.data["message"]  # stored, as valid text
    assert events[-1].type == "run.failed"


async def test_a_store_that_refuses_a_write_fails_the_run_and_records_its_end(
    hostile: Host,
) -> None:
    assert hostile.store is not None
    db = str(hostile.store.path)  # type: ignore[attr-defined]
    result = await hostile.run(
        workflow(
            [
                {"id": "sabotage", "type": "hostile.sabotage", "with": {"db": db}},
                {"id": "victim", "type": "core.transform", "with": {"value": 1}},
                {"id": "after", "type": "core.transform", "with": {"value": 2}},
            ],
            ["sabotage->victim", "victim->after"],
        )
    )
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error["code"] == "store_error"
    assert result.error["node"] == "victim"
    assert "the disk refuses" in result.error["message"]
    assert result.nodes["after"].status is not NodeStatus.COMPLETED
    stored = await _ended(hostile, result)
    assert stored.error == result.error


async def test_a_subscriber_that_raises_does_not_stop_the_run(hostile: Host) -> None:
    seen: list[str] = []

    def broken(event: Any) -> None:
        seen.append(event.type)
        raise RuntimeError("the display is gone")

    result = await hostile.run(
        workflow([{"id": "n", "type": "core.transform", "with": {"value": 1}}]), on_event=broken
    )
    assert result.status is RunStatus.COMPLETED
    assert seen == ["run.started"]  # dropped after its first failure
    await _ended(hostile, result)


async def test_run_outputs_that_are_not_json_fail_the_run(hostile: Host) -> None:
    result = await hostile.run(
        workflow(
            [{"id": "n", "type": "core.transform", "with": {"value": 0.0}}],
            outputs={"ratio": "{{ n.value / 0.0 }}"},
        )
    )
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error["code"] == "invalid_output"
    assert "outputs.ratio" in result.error["message"]
    await _ended(hostile, result)


async def test_retry_waits_are_capped_by_max_retry_delay(tmp_path: Path) -> None:
    config = HostConfig(home=tmp_path / "home", limits=Limits(max_retry_delay=0.01))
    wf = workflow(
        [
            {
                "id": "n",
                "type": "hostile.unreachable",
                "retry": {"attempts": 3, "delay": "24h", "max_delay": "24h"},
            }
        ]
    )
    events: list[Any] = []
    async with Host(config, catalog=_catalog()) as host:
        with anyio.fail_after(5):
            result = await host.run(wf, on_event=events.append)
    assert result.nodes["n"].attempts == 3
    assert [e.data["delay"] for e in events if e.type == "node.retrying"] == [0.01, 0.01]


async def test_a_timer_in_the_year_9999_is_a_durable_pause(hostile: Host) -> None:
    result = await hostile.run(
        workflow([{"id": "w", "type": "core.wait", "with": {"until": "9999-12-31T23:59:59Z"}}])
    )
    assert result.status is RunStatus.PAUSED
    assert result.pause is not None
    assert result.pause["wake_at"] == pytest.approx(253402300799.0)
    assert hostile.store is not None
    await hostile.store.flush()
    assert result.execution_id not in hostile.store.due_runs(time.time())
    assert await hostile.resume_due() == []  # not due: nothing runs, nothing overflows
