"""Running workflows: data flow, branching, errors, retries, timeouts, cancellation, events."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from polyhost import Event, EventType, Host, InputError, NodeStatus, RunStatus
from tests.helpers.nodes import CALLS
from tests.helpers.workflows import workflow

pytestmark = pytest.mark.anyio


async def test_chain_passes_outputs_and_templates_keep_types(host: Host) -> None:
    wf = workflow(
        [
            {"id": "a", "type": "core.transform", "with": {"value": {"n": 41, "tags": ["x"]}}},
            {"id": "b", "type": "test.echo", "with": {
                "n": "{{ a.value.n + 1 }}", "tags": "{{ a.value.tags }}",
                "text": "n={{ a.value.n }} tags={{ a.value.tags }} ok={{ true }}",
                "literal": "\\{{ not a template }}",
            }},
        ],
        ["a->b"],
        outputs={"n": "{{ b.n }}", "text": "{{ b.text }}", "literal": "{{ b.literal }}"},
    )  # fmt: skip
    result = await host.run(wf)
    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {
        "n": 42,
        "text": 'n=41 tags=["x"] ok=true',
        "literal": "{{ not a template }}",
    }
    assert result.nodes["b"].output["tags"] == ["x"]


async def test_without_outputs_the_result_is_the_leaves(host: Host) -> None:
    wf = workflow(
        [{"id": "a", "type": "core.transform", "with": {"value": 1}},
         {"id": "b", "type": "core.transform", "with": {"value": "{{ a.value * 2 }}"}},
         {"id": "c", "type": "core.transform", "with": {"value": 3}}],
        ["a->b"],
    )  # fmt: skip
    result = await host.run(wf)
    assert result.outputs == {"b": {"value": 2}, "c": {"value": 3}}


async def test_inputs_get_defaults_and_bad_inputs_are_refused(host: Host) -> None:
    wf = workflow(
        [{"id": "a", "type": "core.transform", "with": {"value": "{{ input.n * 2 }}"}}],
        inputs={"type": "object", "properties": {"n": {"type": "integer", "default": 4}}},
    )
    assert (await host.run(wf)).outputs == {"a": {"value": 8}}
    assert (await host.run(wf, {"n": 5})).outputs == {"a": {"value": 10}}
    with pytest.raises(InputError) as info:
        await host.run(wf, {"n": "five"})
    assert info.value.field == "n"


async def test_condition_routes_and_dead_paths_are_skipped(host: Host) -> None:
    wf = workflow(
        [
            {"id": "n", "type": "core.transform", "with": {"value": 7}},
            {"id": "big", "type": "core.condition", "with": {"if": "n.value > 5"}},
            {"id": "yes", "type": "test.echo", "with": {"v": "big"}},
            {"id": "no", "type": "test.echo", "with": {"v": "small"}},
            {"id": "after_no", "type": "test.echo"},
            {"id": "join", "type": "test.echo", "with": {"yes": "{{ yes.v }}"}},
        ],
        ["n->big", "big.true->yes", "big.false->no", "no->after_no", "yes->join", "after_no->join"],
        outputs={"picked": "{{ yes.v }}", "other": "{{ no.v }}"},
    )
    result = await host.run(wf)
    statuses = {k: v.status for k, v in result.nodes.items()}
    assert statuses["yes"] is NodeStatus.COMPLETED
    assert statuses["no"] is NodeStatus.SKIPPED and statuses["after_no"] is NodeStatus.SKIPPED
    # One incoming edge taken is enough: the join runs.
    assert statuses["join"] is NodeStatus.COMPLETED
    assert result.outputs == {"picked": "big", "other": None}


async def test_when_false_skips_the_node_and_what_only_it_feeds(host: Host) -> None:
    wf = workflow(
        [
            {"id": "a", "type": "core.transform", "with": {"value": 0}, "when": "input.go"},
            {"id": "b", "type": "test.echo"},
        ],
        ["a->b"],
    )
    off = await host.run(wf, {"go": False})
    assert [off.nodes[n].status for n in "ab"] == [NodeStatus.SKIPPED, NodeStatus.SKIPPED]
    assert off.status is RunStatus.COMPLETED
    on = await host.run(wf, {"go": True})
    assert on.nodes["b"].status is NodeStatus.COMPLETED


async def test_switch_takes_the_matching_case_or_default(host: Host) -> None:
    nodes = [
        {"id": "s", "type": "core.switch", "with": {"value": "{{ input.v }}", "cases": ["a", "b"]}},
        {"id": "on_a", "type": "test.echo"},
        {"id": "on_b", "type": "test.echo"},
        {"id": "other", "type": "test.echo"},
    ]
    wf = workflow(nodes, ["s.a->on_a", "s.b->on_b", "s.default->other"])
    result = await host.run(wf, {"v": "b"})
    done = {k for k, v in result.nodes.items() if v.status is NodeStatus.COMPLETED}
    assert done == {"s", "on_b"}
    result = await host.run(wf, {"v": "zzz"})
    assert result.nodes["other"].status is NodeStatus.COMPLETED


async def test_unhandled_failure_fails_the_run_and_names_the_node(host: Host) -> None:
    wf = workflow(
        [
            {"id": "boom", "type": "core.fail", "with": {"message": "no way", "code": "nope"}},
            {"id": "slow", "type": "test.sleep", "with": {"seconds": 30}},
            {"id": "after", "type": "test.echo"},
        ],
        ["boom->after"],
    )
    result = await host.run(wf)
    assert result.status is RunStatus.FAILED
    assert result.error == {"node": "boom", "code": "nope", "message": "no way"}
    assert result.nodes["boom"].status is NodeStatus.FAILED
    # The in-flight node is cancelled rather than left running; the rest never started.
    assert result.nodes["slow"].status is NodeStatus.CANCELLED
    assert result.nodes["after"].status is NodeStatus.CANCELLED
    assert result.outputs is None


async def test_error_port_routes_the_failure_and_the_run_goes_on(host: Host) -> None:
    wf = workflow(
        [
            {"id": "call", "type": "core.fail", "with": {"message": "down", "code": "svc"}},
            {"id": "ok_path", "type": "test.echo"},
            {"id": "fallback", "type": "core.log",
             "with": {"message": "failed: {{ call.error.message }} ({{ call.code }})"}},
        ],
        ["call->ok_path", "call.error->fallback"],
    )  # fmt: skip
    result = await host.run(wf)
    assert result.status is RunStatus.COMPLETED
    assert result.nodes["fallback"].output == {"message": "failed: down (svc)"}
    assert result.nodes["ok_path"].status is NodeStatus.SKIPPED
    assert result.nodes["call"].status is NodeStatus.FAILED
    assert result.nodes["call"].output["attempts"] == 1


async def test_on_error_continue_records_the_error_and_dependents_run(host: Host) -> None:
    wf = workflow(
        [
            {"id": "x", "type": "core.fail", "on_error": "continue"},
            {"id": "y", "type": "test.echo", "with": {"got": "{{ x.value }}"}},
        ],
        ["x->y"],
    )
    result = await host.run(wf)
    assert result.status is RunStatus.COMPLETED
    assert result.nodes["x"].error is not None and result.nodes["x"].output is None
    assert result.nodes["y"].output == {"got": None}


async def test_retries_until_success_with_backoff(host: Host) -> None:
    events: list[Event] = []
    wf = workflow(
        [{"id": "f", "type": "test.flaky", "with": {"succeed_on": 3},
          "retry": {"attempts": 3, "backoff": "exponential", "delay": "10ms"}}]
    )  # fmt: skip
    result = await host.run(wf, on_event=events.append)
    assert result.status is RunStatus.COMPLETED
    assert result.nodes["f"].attempts == 3 and CALLS["f"] == 3
    retrying = [e for e in events if e.type is EventType.NODE_RETRYING]
    assert [e.data["attempt"] for e in retrying] == [1, 2]
    assert "attempt 1 failed" in retrying[0].data["error"]["message"]


async def test_retries_exhausted_fail_with_the_attempt_count(host: Host) -> None:
    wf = workflow(
        [{"id": "f", "type": "test.flaky", "with": {"succeed_on": 9},
          "retry": {"attempts": 2, "delay": "1ms"}}]
    )  # fmt: skip
    result = await host.run(wf)
    assert result.status is RunStatus.FAILED
    assert result.nodes["f"].attempts == 2
    assert result.nodes["f"].error["attempts"] == 2
    assert result.nodes["f"].error["code"] == "handler_error"


async def test_non_retryable_errors_are_not_retried(host: Host) -> None:
    wf = workflow(
        [{"id": "p", "type": "test.raise_polyhost", "retry": {"attempts": 5, "delay": 0}}]
    )
    result = await host.run(wf)
    assert result.nodes["p"].attempts == 1


async def test_timeout_fails_the_attempt(host: Host) -> None:
    wf = workflow([{"id": "s", "type": "test.sleep", "with": {"seconds": 10}, "timeout": "50ms"}])
    result = await host.run(wf)
    assert result.status is RunStatus.FAILED
    assert result.error["code"] == "timeout" and result.error["node"] == "s"


async def test_timeout_reaches_sync_handlers_through_ctx_cancelled(host: Host) -> None:
    wf = workflow([{"id": "b", "type": "test.busy", "with": {"seconds": 10}, "timeout": "100ms"}])
    with anyio.fail_after(5):
        result = await host.run(wf)
    assert result.error["code"] == "timeout"


async def test_cancel_stops_a_running_run(host: Host) -> None:
    wf = workflow([{"id": "s", "type": "test.sleep", "with": {"seconds": 30}}])
    events: list[Event] = []

    def on_event(event: Event) -> None:
        events.append(event)
        if event.type is EventType.NODE_STARTED:
            host.cancel(event.run_id)

    with anyio.fail_after(5):
        result = await host.run(wf, on_event=on_event)
    assert result.status is RunStatus.CANCELLED
    assert result.nodes["s"].status is NodeStatus.CANCELLED
    assert events[-1].type is EventType.RUN_CANCELLED
    stored = host.store.get_result(result.execution_id)  # type: ignore[union-attr]
    assert stored.status is RunStatus.CANCELLED


async def test_cancelling_the_caller_records_the_run_as_cancelled(host: Host) -> None:
    wf = workflow([{"id": "s", "type": "test.sleep", "with": {"seconds": 30}}])
    run_ids: list[str] = []
    with anyio.move_on_after(0.2):
        await host.run(wf, on_event=lambda e: run_ids.append(e.run_id))
    stored = host.store.get_result(run_ids[0])  # type: ignore[union-attr]
    assert stored.status is RunStatus.CANCELLED


async def test_outputs_must_be_json_and_within_the_size_limit(host: Host) -> None:
    wf = workflow(
        [
            {"id": "s", "type": "test.bad_output", "with": {"kind": "set"}, "on_error": "continue"},
            {
                "id": "l",
                "type": "test.bad_output",
                "with": {"kind": "list"},
                "on_error": "continue",
            },
        ]
    )
    result = await host.run(wf)
    assert result.nodes["s"].error["code"] == "invalid_output"
    assert "JSON" in result.nodes["s"].error["message"]
    assert "dict" in result.nodes["l"].error["message"]


async def test_oversized_output_fails_the_node(catalog: Any, tmp_path: Any) -> None:
    from polyhost import HostConfig

    config = HostConfig(home=tmp_path / "h", max_output_bytes=1000)
    async with Host(config, catalog=catalog, store=None) as small:
        wf = workflow(
            [{"id": "big", "type": "test.bad_output", "with": {"kind": "big", "size": 5000}}]
        )
        result = await small.run(wf)
    assert result.error["code"] == "invalid_output" and "limit" in result.error["message"]


async def test_independent_nodes_run_concurrently(host: Host) -> None:
    arrived = anyio.Event()
    both = anyio.Event()
    count = 0

    @host.catalog.node("test.rendezvous")
    async def rendezvous(params: dict[str, Any]) -> dict[str, Any]:
        nonlocal count
        count += 1
        if count == 2:
            both.set()
        arrived.set()
        await both.wait()  # deadlocks (and times out) unless the two run at once
        return {}

    wf = workflow([{"id": "a", "type": "test.rendezvous"}, {"id": "b", "type": "test.rendezvous"}])
    with anyio.fail_after(5):
        result = await host.run(wf)
    assert result.status is RunStatus.COMPLETED


async def test_events_are_numbered_without_gaps_and_logs_reach_them(host: Host) -> None:
    events: list[Event] = []
    wf = workflow([{"id": "l", "type": "test.log", "with": {"detail": 7}}])
    result = await host.run(wf, on_event=events.append)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    types = [e.type for e in events]
    assert types[0] is EventType.RUN_STARTED and types[-1] is EventType.RUN_COMPLETED
    log = next(e for e in events if e.type is EventType.LOG)
    assert log.node == "l" and log.data["message"] == "from a thread" and log.data["detail"] == 7
    assert any(e.type is EventType.NODE_CHUNK and e.data["data"] == {"part": 1} for e in events)
    stored = host.store.events(result.execution_id)  # type: ignore[union-attr]
    assert [e.seq for e in stored] == [e.seq for e in events]


async def test_stream_yields_events_until_the_run_ends(host: Host) -> None:
    wf = workflow([{"id": "a", "type": "core.transform", "with": {"value": 1}}])
    seen = [event.type async for event in host.stream(wf)]
    assert seen[0] is EventType.RUN_STARTED and seen[-1] is EventType.RUN_COMPLETED


async def test_allowed_env_is_readable_and_masked_in_events(
    catalog: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polyhost import HostConfig

    monkeypatch.setenv("API_TOKEN", "s3cr3t-token-value")
    monkeypatch.setenv("NOT_ALLOWED", "hidden")
    config = HostConfig(home=tmp_path / "h", env_allow=["API_TOKEN"])
    events: list[Event] = []
    async with Host(config, catalog=catalog) as h:
        wf = workflow(
            [
                {"id": "log", "type": "core.log", "with": {"message": "token={{ env.API_TOKEN }}"}},
                {"id": "fail", "type": "core.fail",
                 "with": {"message": "bad {{ env.API_TOKEN }}"}, "on_error": "continue"},
                {"id": "peek", "type": "core.transform",
                 "with": {"value": "{{ 'NOT_ALLOWED' in env }}"}},
            ]
        )  # fmt: skip
        result = await h.run(wf, on_event=events.append)
    # The node read the value; what left the run (its result, like events) is masked.
    assert result.nodes["log"].output == {"message": "token=***"}
    assert result.nodes["peek"].output == {"value": False}
    text = repr([e.to_dict() for e in events])
    assert "s3cr3t-token-value" not in text and "***" in text


async def test_rerun_repeats_with_the_same_inputs(host: Host) -> None:
    wf = workflow(
        [{"id": "a", "type": "core.transform", "with": {"value": "{{ input.x }}"}}],
        inputs={"type": "object", "properties": {"x": {"type": "integer"}}},
    )
    first = await host.run(wf, {"x": 3})
    again = await host.rerun(first.execution_id)
    assert again.execution_id != first.execution_id
    assert again.outputs == first.outputs == {"a": {"value": 3}}
