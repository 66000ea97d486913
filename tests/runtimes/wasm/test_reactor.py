"""Reactor guests (memory + polyhost_alloc + polyhost_run) through real workflows."""

from __future__ import annotations

import json

import pytest

from polyhost import Host, RunStatus
from polyhost.events._events import Event, EventType
from tests.runtimes.wasm.conftest import RunOne
from tests.runtimes.wasm.guests import ECHO, Project, returns, wat_string

pytestmark = pytest.mark.anyio

MESSAGES = ["hello guest", "oops!", '{"n": 1}', '{"n": 2}']
OFFSETS = [4096 + sum(len(m) for m in MESSAGES[:i]) for i in range(len(MESSAGES))]
LOG_AND_CHUNK = returns(
    '{"ok": {"done": true}}',
    imports="""
      (import "polyhost" "log" (func $log (param i32 i32 i32)))
      (import "polyhost" "chunk" (func $chunk (param i32 i32)))""",
    extra=f"(data (i32.const 4096) {wat_string(''.join(MESSAGES))})",
    before="\n".join(
        [
            f"(call $log (i32.const 1) (i32.const {OFFSETS[0]}) (i32.const {len(MESSAGES[0])}))",
            f"(call $log (i32.const 3) (i32.const {OFFSETS[1]}) (i32.const {len(MESSAGES[1])}))",
            f"(call $chunk (i32.const {OFFSETS[2]}) (i32.const {len(MESSAGES[2])}))",
            f"(call $chunk (i32.const {OFFSETS[3]}) (i32.const {len(MESSAGES[3])}))",
        ]
    ),
)


async def test_params_and_ctx_reach_the_guest_and_its_output_flows_on(
    run_one: RunOne, project: Project, host: Host
) -> None:
    project.wasm("t.echo", ECHO)
    flow = project.workflow(
        [
            {"id": "a", "type": "t.echo", "with": {"text": "héllo", "n": [1, 2.5, None]}},
            {"id": "b", "type": "t.echo", "with": {"from_a": "{{ a.input.params.text }}"}},
        ],
        [{"from": "a", "to": "b"}],
    )
    result = await host.run(flow)
    assert result.status is RunStatus.COMPLETED, result.error
    first = result.nodes["a"].output["input"]
    assert first["params"] == {"text": "héllo", "n": [1, 2.5, None]}
    assert first["ctx"]["node_id"] == "a"
    assert first["ctx"]["run_id"] == result.execution_id
    assert first["ctx"]["attempt"] == 1
    assert first["ctx"]["idempotency_key"]
    assert result.nodes["b"].output["input"]["params"] == {"from_a": "héllo"}


async def test_a_guest_error_keeps_its_code_and_message(run_one: RunOne, project: Project) -> None:
    project.wasm("t.refuse", returns('{"error": {"code": "bad_input", "message": "no n"}}'))
    result = await run_one("t.refuse")
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert (result.error["node"], result.error["code"]) == ("w", "bad_input")
    assert result.error["message"] == "no n"


@pytest.mark.parametrize("code", ["E_FIRE", "quota.exceeded", "débit refusé", "x" * 128])
async def test_any_printable_code_of_a_guest_stands(
    run_one: RunOne, project: Project, code: str
) -> None:
    error = json.dumps({"error": {"code": code, "message": "no"}})
    project.wasm("t.coded", returns(error))
    result = await run_one("t.coded")
    assert result.error is not None
    assert (result.error["code"], result.error["message"]) == (code, "no")


@pytest.mark.parametrize(
    ("code", "shown"),
    [("", "''"), ("bad\x07code", "'bad\\x07code'"), ("x" * 129, "(129 characters)"), (7, "'7'")],
)
async def test_a_guest_code_that_breaks_the_rule_is_wasm_error_with_the_original_shown(
    run_one: RunOne, project: Project, code: object, shown: str
) -> None:
    error = json.dumps({"error": {"code": code, "message": "vague"}})
    project.wasm("t.vague", returns(error))
    result = await run_one("t.vague")
    assert result.error is not None
    assert result.error["code"] == "wasm_error"
    assert result.error["message"].startswith("vague (the error code ")
    assert shown in result.error["message"]


async def test_guest_errors_take_the_error_port(project: Project, host: Host) -> None:
    project.wasm("t.refuse", returns('{"error": {"code": "bad_input", "message": "no"}}'))
    flow = project.workflow(
        [
            {"id": "w", "type": "t.refuse"},
            {"id": "handled", "type": "core.transform", "with": {"value": "{{ w.code }}"}},
        ],
        [{"from": "w", "port": "error", "to": "handled"}],
    )
    result = await host.run(flow)
    assert result.status is RunStatus.COMPLETED
    assert result.nodes["handled"].output == {"value": "bad_input"}


async def test_log_and_chunk_imports_become_events(run_one: RunOne, project: Project) -> None:
    project.wasm("t.chatty", LOG_AND_CHUNK)
    events: list[Event] = []
    result = await run_one("t.chatty", events=events)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["w"].output == {"done": True}
    logs = [(e.node, e.data["level"], e.data["message"]) for e in events if e.type is EventType.LOG]
    assert logs == [("w", "info", "hello guest"), ("w", "error", "oops!")]
    chunks = [e.data["data"] for e in events if e.type is EventType.NODE_CHUNK]
    assert chunks == [{"n": 1}, {"n": 2}]


async def test_a_chunk_that_is_not_json_fails_the_node(run_one: RunOne, project: Project) -> None:
    project.wasm(
        "t.badchunk",
        returns(
            '{"ok": {}}',
            imports='(import "polyhost" "chunk" (func $chunk (param i32 i32)))',
            before="(call $chunk (i32.const 1024) (i32.const 3))",  # '{"o' is not JSON
        ),
    )
    result = await run_one("t.badchunk")
    assert result.error is not None
    assert result.error["code"] == "wasm_invalid_output"
    assert "chunk" in result.error["message"]


async def test_a_wasi_reactor_is_initialised_and_may_print(
    run_one: RunOne, project: Project
) -> None:
    # `_initialize` sets a global that polyhost_run reads; stdout goes nowhere.
    wat = returns(
        '{"ok": {"ready": true}}',
        imports="""
          (import "wasi_snapshot_preview1" "fd_write"
            (func $fd_write (param i32 i32 i32 i32) (result i32)))""",
        before="""
          (if (i32.eqz (global.get $ready)) (then unreachable))
          (i32.store (i32.const 0) (i32.const 1024))
          (i32.store (i32.const 4) (i32.const 5))
          (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))""",
        extra="""
          (global $ready (mut i32) (i32.const 0))
          (func (export "_initialize") (global.set $ready (i32.const 1)))""",
    )
    project.wasm("t.wasi", wat)
    result = await run_one("t.wasi")
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["w"].output == {"ready": True}


async def test_each_call_gets_a_fresh_instance(project: Project, host: Host) -> None:
    # A counter in a global: it would read 2, 3, ... if instances were reused.
    wat = returns(
        '{"ok": {}}',
        before="""
          (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
          (if (i32.ne (global.get $calls) (i32.const 1)) (then unreachable))""",
        extra="(global $calls (mut i32) (i32.const 0))",
    )
    project.wasm("t.once", wat)
    nodes = [{"id": f"n{i}", "type": "t.once"} for i in range(5)]
    result = await host.run(project.workflow(nodes))
    assert result.status is RunStatus.COMPLETED, result.error
