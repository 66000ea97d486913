"""core.loop and core.parallel: iteration modes, scope, errors, nesting, concurrency."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from polyhost import Host, HostConfig, NodeStatus, RunStatus
from polyhost._limits import Limits
from tests.helpers.workflows import workflow

pytestmark = pytest.mark.anyio


def loop(node_id: str, with_: dict[str, Any], nodes: list[Any], **body: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "core.loop", "with": with_, "body": {"nodes": nodes, **body}}


async def test_count_over_and_the_loop_variables(host: Host) -> None:
    wf = workflow(
        [
            loop("counted", {"count": 3}, [{"id": "c", "type": "core.transform",
                 "with": {"value": "{{ [loop.index, loop.iteration, loop.total] }}"}}]),
            loop("each", {"over": ["a", "b"]}, [{"id": "e", "type": "core.transform",
                 "with": {"value": "{{ loop.item + string(loop.index) }}"}}],
                 outputs={"v": "{{ e.value }}", "prev": "{{ loop.previous }}"}),
        ]
    )  # fmt: skip
    result = await host.run(wf)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["counted"].output == {
        "results": [
            {"c": {"value": [0, 1, 3]}},
            {"c": {"value": [1, 2, 3]}},
            {"c": {"value": [2, 3, 3]}},
        ]
    }
    assert result.nodes["each"].output == {
        "results": [{"v": "a0", "prev": None}, {"v": "b1", "prev": {"v": "a0", "prev": None}}]
    }


async def test_while_and_do_while(host: Host) -> None:
    wf = workflow(
        [
            loop("w", {"while": "loop.index < 2"},
                 [{"id": "s", "type": "core.transform", "with": {"value": "{{ loop.index }}"}}],
                 outputs={"n": "{{ s.value }}"}),
            loop("d", {"do_while": "s2.value < 10"},
                 [{"id": "s2", "type": "core.transform",
                   "with": {"value": "{{ (loop.index + 1) * 5 }}"}}],
                 outputs={"n": "{{ s2.value }}"}),
        ]
    )  # fmt: skip
    result = await host.run(wf)
    assert [r["n"] for r in result.nodes["w"].output["results"]] == [0, 1]
    assert [r["n"] for r in result.nodes["d"].output["results"]] == [5, 10]


async def test_body_nodes_read_outer_upstream_nodes(host: Host) -> None:
    wf = workflow(
        [
            {"id": "base", "type": "core.transform", "with": {"value": 100}},
            loop("l", {"over": [1, 2]}, [{"id": "add", "type": "core.transform",
                 "with": {"value": "{{ base.value + loop.item }}"}}],
                 outputs={"v": "{{ add.value }}"}),
        ],
        ["base->l"],
        outputs={"sums": "{{ l.results.map(r, r.v) }}"},
    )  # fmt: skip
    result = await host.run(wf)
    assert result.outputs == {"sums": [101, 102]}


async def test_max_iterations_stops_the_loop_with_a_clear_error(host: Host) -> None:
    wf = workflow(
        [
            loop("forever", {"while": "true", "max_iterations": 5},
                 [{"id": "n", "type": "core.transform", "with": {"value": 1}}]),
            {"id": "handler", "type": "core.log",
             "with": {"message": "{{ forever.code }}: {{ forever.message }}"}},
        ],
        ["forever.error->handler"],
    )  # fmt: skip
    result = await host.run(wf)
    assert result.status is RunStatus.COMPLETED
    assert result.nodes["forever"].error["code"] == "max_iterations"
    message = result.nodes["handler"].output["message"]
    assert message.startswith("max_iterations: loop 'forever' reached max_iterations (5)")


async def test_an_unhandled_error_in_an_iteration_fails_the_loop_node(host: Host) -> None:
    wf = workflow(
        [loop("l", {"count": 3}, [{"id": "boom", "type": "core.fail",
              "when": "loop.index == 1", "with": {"message": "bad item", "code": "bad"}}])]
    )  # fmt: skip
    result = await host.run(wf)
    assert result.status is RunStatus.FAILED
    assert result.error["node"] == "l" and result.error["code"] == "bad"
    assert "loop 1: node 'l[1].boom' failed: bad item" in result.error["message"]


async def test_error_ports_inside_the_body_keep_the_loop_going(host: Host) -> None:
    wf = workflow(
        [
            loop(
                "l",
                {"count": 2},
                [
                    {"id": "boom", "type": "core.fail", "with": {"message": "x{{ loop.index }}"}},
                    {
                        "id": "caught",
                        "type": "core.transform",
                        "with": {"value": "{{ boom.message }}"},
                    },
                ],
                edges=[{"from": "boom", "port": "error", "to": "caught"}],
                outputs={"got": "{{ caught.value }}"},
            )
        ]
    )
    result = await host.run(wf)
    assert result.nodes["l"].output == {"results": [{"got": "x0"}, {"got": "x1"}]}


async def test_parallel_keeps_order_and_respects_concurrency(host: Host) -> None:
    running = 0
    peak = 0

    @host.catalog.node("test.track")
    async def track(params: dict[str, Any]) -> dict[str, Any]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.02 * (5 - params["i"]))  # later branches finish first
        running -= 1
        return {"i": params["i"]}

    wf = workflow(
        [{"id": "p", "type": "core.parallel", "with": {"over": [0, 1, 2, 3, 4], "concurrency": 2},
          "body": {"nodes": [{"id": "t", "type": "test.track", "with": {"i": "{{ parallel.item }}"}}],
                   "outputs": {"i": "{{ t.i }}"}}}]
    )  # fmt: skip
    result = await host.run(wf)
    assert [r["i"] for r in result.nodes["p"].output["results"]] == [0, 1, 2, 3, 4]
    assert peak == 2


async def test_loops_nest(host: Host) -> None:
    inner = loop("inner", {"count": 2}, [{"id": "cell", "type": "core.transform",
                 "with": {"value": "{{ parallel.index * 10 + loop.index }}"}}],
                 outputs={"v": "{{ cell.value }}"})  # fmt: skip
    wf = workflow(
        [{"id": "rows", "type": "core.parallel", "with": {"count": 2},
          "body": {"nodes": [inner], "outputs": {"row": "{{ inner.results.map(r, r.v) }}"}}}]
    )  # fmt: skip
    result = await host.run(wf)
    assert result.nodes["rows"].output == {"results": [{"row": [0, 1]}, {"row": [10, 11]}]}


async def test_a_failing_branch_cancels_its_siblings(host: Host) -> None:
    wf = workflow(
        [{"id": "p", "type": "core.parallel", "with": {"count": 3},
          "body": {"nodes": [
              {"id": "slow", "type": "test.sleep", "with": {"seconds": 30}, "when": "parallel.index != 0"},
              {"id": "bad", "type": "core.fail", "when": "parallel.index == 0"}]}}]
    )  # fmt: skip
    with anyio.fail_after(10):
        result = await host.run(wf)
    assert result.status is RunStatus.FAILED
    assert result.nodes["p"].status is NodeStatus.FAILED


# -- limits: counts and iterations are checked before anything is built ---------------------

_BODY = [{"id": "x", "type": "core.transform", "with": {"value": 1}}]


def _parallel(with_: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "p", "type": "core.parallel", "with": with_, "body": {"nodes": _BODY}, **extra}


@pytest.mark.parametrize(
    ("count", "code", "says"),
    [
        (1_000_000_000, "limit_exceeded", "would run 1000000000 branches"),
        ("{{ 1e30 }}", "limit_exceeded", "would run 1e+30 branches"),
        ("{{ 100.0 * 1000.0 }}", "limit_exceeded", "max_parallel_branches = 10000"),
        ("{{ 2.5 }}", "invalid_parameters", ""),
        ("{{ 0.0 / 0.0 }}", "invalid_parameters", ""),
        ("{{ -1 }}", "invalid_parameters", ""),
        ("many", "invalid_parameters", "`count` must be a whole number"),
    ],
)
async def test_a_parallel_count_is_checked_before_any_branch(
    host: Host, count: Any, code: str, says: str
) -> None:
    begin = time.perf_counter()
    result = await host.run(workflow([_parallel({"count": count}, timeout=2)]))
    assert time.perf_counter() - begin < 1
    assert result.status is RunStatus.FAILED
    error = result.nodes["p"].error
    assert error is not None
    assert (error["node"], error["code"]) == ("p", code)
    assert error["field"].startswith("with")
    assert says in error["message"]


async def test_a_whole_float_count_is_a_count(host: Host) -> None:
    result = await host.run(workflow([_parallel({"count": "{{ 2.0 }}"})]))
    assert result.status is RunStatus.COMPLETED, result.error
    assert len(result.nodes["p"].output["results"]) == 2


async def test_loop_counts_and_max_iterations_are_bounded(host: Host) -> None:
    seen: list[Any] = []
    result = await host.run(
        workflow([loop("l", {"count": 20, "max_iterations": 5}, _BODY)]), on_event=seen.append
    )
    error = result.nodes["l"].error
    assert error is not None
    assert error["code"] == "max_iterations" and error["field"] == "with.count"
    assert "would run 20 iterations, over max_iterations (5)" in error["message"]
    assert not [e for e in seen if e.node and e.node.startswith("l[")]  # no iteration ran

    result = await host.run(workflow([loop("l", {"count": 1_000_000_000}, _BODY)]))
    assert "over max_iterations (10000)" in result.nodes["l"].error["message"]  # the default

    result = await host.run(
        workflow([loop("l", {"while": "true", "max_iterations": 10**12}, _BODY)])
    )
    error = result.nodes["l"].error
    assert (error["code"], error["field"]) == ("limit_exceeded", "with.max_iterations")
    assert "max_loop_iterations = 1000000" in error["message"]


async def test_the_loop_limits_are_settings(tmp_path: Path) -> None:
    limits = Limits(max_parallel_branches=3, default_loop_iterations=2, max_loop_iterations=4)
    async with Host(HostConfig(home=tmp_path / "home", limits=limits)) as host:
        four = await host.run(workflow([_parallel({"count": 4})]))
        looped = await host.run(workflow([loop("l", {"while": "true"}, _BODY)]))
        capped = await host.run(workflow([loop("l", {"count": 3, "max_iterations": 5}, _BODY)]))
    assert "max_parallel_branches = 3" in four.nodes["p"].error["message"]
    assert "reached max_iterations (2)" in looped.nodes["l"].error["message"]
    assert "max_loop_iterations = 4" in capped.nodes["l"].error["message"]


async def test_a_loop_that_never_waits_still_honours_its_timeout(host: Host) -> None:
    begin = time.perf_counter()
    result = await host.run(
        workflow(
            [
                {
                    "id": "l",
                    "type": "core.loop",
                    "with": {"while": "true", "max_iterations": 1_000_000},
                    "timeout": 0.3,
                    "body": {"nodes": _BODY},
                }
            ]
        )
    )
    assert time.perf_counter() - begin < 2
    assert result.nodes["l"].error["code"] == "timeout"


async def test_a_wide_parallel_honours_its_timeout_and_starts_branches_lazily(
    tmp_path: Path,
) -> None:
    started = 0

    async with Host(HostConfig(home=tmp_path / "home"), store=None) as host:

        @host.catalog.node("test.count_and_wait")
        async def count_and_wait(params: dict[str, Any]) -> dict[str, Any]:
            nonlocal started
            started += 1
            await anyio.sleep(10)
            return {}

        wf = workflow(
            [
                {
                    "id": "p",
                    "type": "core.parallel",
                    "with": {"count": 10_000, "concurrency": 100},
                    "timeout": 0.3,
                    "body": {"nodes": [{"id": "w", "type": "test.count_and_wait"}]},
                }
            ]
        )
        begin = time.perf_counter()
        result = await host.run(wf)
    assert time.perf_counter() - begin < 2
    assert result.nodes["p"].error["code"] == "timeout"
    assert started <= 100  # the other 9,900 branches were never built
