"""core.loop and core.parallel: iteration modes, scope, errors, nesting, concurrency."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from polyhost import Host, NodeStatus, RunStatus
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
