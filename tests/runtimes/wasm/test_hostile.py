"""Hostile guests: each broken limit or rule fails its node with a typed error naming it, and the
host goes on running."""

from __future__ import annotations

import time

import anyio
import pytest

from polyhost import Host, RunStatus
from polyhost.runtimes import WasmRuntime
from polyhost.runtimes._context import NodeContext
from polyhost.workflow._catalog import NodeType
from tests.runtimes.wasm.conftest import RunOne
from tests.runtimes.wasm.guests import (
    DIVIDE_BY_ZERO,
    ECHO,
    GROW,
    RECURSE,
    SPIN,
    UNREACHABLE,
    Project,
    reactor,
    returns,
)

pytestmark = pytest.mark.anyio


async def failure(run_one: RunOne, type_name: str, **node: object) -> dict[str, object]:
    result = await run_one(type_name, **node)
    assert result.status is RunStatus.FAILED, result.nodes["w"].output
    error = result.nodes["w"].error
    assert error is not None
    assert error["node"] == "w"
    return error


async def test_an_endless_loop_runs_out_of_fuel(run_one: RunOne, project: Project) -> None:
    project.wasm("t.spin", SPIN, limits={"fuel": 5_000_000, "timeout": "30s"})
    begin = time.monotonic()
    error = await failure(run_one, "t.spin")
    assert error["code"] == "wasm_out_of_fuel"
    assert "limits.fuel" in str(error["message"])
    assert time.monotonic() - begin < 5


@pytest.mark.parametrize("fuel", [None, 10**15], ids=["unmetered", "metered"])
async def test_an_endless_loop_times_out(
    run_one: RunOne, project: Project, fuel: int | None
) -> None:
    limits: dict[str, object] = {"timeout": "200ms"}
    if fuel is not None:
        limits["fuel"] = fuel
    project.wasm("t.spin", SPIN, limits=limits)
    begin = time.monotonic()
    error = await failure(run_one, "t.spin")
    elapsed = time.monotonic() - begin
    assert error["code"] == "wasm_timeout"
    assert "limits.timeout" in str(error["message"])
    assert 0.19 < elapsed < 2


async def test_the_node_timeout_stops_the_guest_thread(project: Project, host: Host) -> None:
    # The workflow's own `timeout` cancels the call; the guest must stop, not spin on unseen.
    project.wasm("t.spin", SPIN, limits={"timeout": "60s"})
    flow = project.workflow([{"id": "w", "type": "t.spin", "timeout": "200ms"}])
    result = await host.run(flow)
    assert result.error is not None
    assert result.error["code"] == "timeout"
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if _guests_running(host) == 0:
            break
        await anyio.sleep(0.01)
    assert _guests_running(host) == 0


def _guests_running(host: Host) -> int:
    runtime = host.router.adapter("wasm")
    return sum(machine.ticker._active for machine in runtime._machines.values())


async def test_memory_growth_stops_at_the_cap(run_one: RunOne, project: Project) -> None:
    project.wasm("t.grow", GROW, limits={"memory": "4MiB"})
    error = await failure(run_one, "t.grow")
    assert error["code"] == "wasm_memory_limit"
    assert "limits.memory" in str(error["message"])


async def test_a_module_needing_more_memory_than_allowed(run_one: RunOne, project: Project) -> None:
    project.wasm("t.big", returns('{"ok": {}}', pages=100), limits={"memory": "1MiB"})
    error = await failure(run_one, "t.big")
    assert error["code"] == "wasm_memory_limit"


@pytest.mark.parametrize(
    ("wat", "limits", "field"),
    [
        ("(table 200000 funcref)", {}, "limits.table_elements"),
        ("(table 1 funcref) (table 1 funcref)", {"tables": 1}, "limits.tables"),
        ("(memory 1)", {}, "limits.memories"),  # a second memory, beside the prelude's
    ],
)
async def test_tables_and_memories_over_their_limits(
    run_one: RunOne, project: Project, wat: str, limits: dict[str, object], field: str
) -> None:
    project.wasm("t.res", returns('{"ok": {}}', extra=wat), limits=limits)
    error = await failure(run_one, "t.res")
    assert (error["code"], error["field"]) == ("wasm_resource_limit", field)


async def test_deep_recursion_is_a_stack_overflow_trap(run_one: RunOne, project: Project) -> None:
    project.wasm("t.deep", RECURSE)
    error = await failure(run_one, "t.deep")
    assert error["code"] == "wasm_trap"
    assert "stack overflow" in str(error["message"])


@pytest.mark.parametrize(
    ("wat", "kind"),
    [(UNREACHABLE, "unreachable"), (DIVIDE_BY_ZERO, "integer divide by zero")],
)
async def test_traps_name_their_kind(
    run_one: RunOne, project: Project, wat: str, kind: str
) -> None:
    project.wasm("t.trap", wat)
    error = await failure(run_one, "t.trap")
    assert error["code"] == "wasm_trap"
    assert kind in str(error["message"])


async def test_out_of_bounds_access_is_a_trap(run_one: RunOne, project: Project) -> None:
    project.wasm("t.oob", reactor("(i64.load (i32.const 0x7ffffff0))"))
    error = await failure(run_one, "t.oob")
    assert error["code"] == "wasm_trap"
    assert "out of bounds" in str(error["message"])


async def test_output_over_the_limit(run_one: RunOne, project: Project) -> None:
    # Claims 2 MiB at address 0 (inside its 3 MiB of memory), against a 1 MiB limit.
    wat = reactor("(call $pack (i32.const 0) (i32.const 2097152))", pages=48)
    project.wasm("t.huge", wat, limits={"output": "1MiB"})
    error = await failure(run_one, "t.huge")
    assert error["code"] == "wasm_output_too_large"
    assert "limits.output" in str(error["message"])


async def test_output_outside_memory(run_one: RunOne, project: Project) -> None:
    project.wasm("t.wild", reactor("(call $pack (i32.const 65000) (i32.const 1000))"))
    error = await failure(run_one, "t.wild")
    assert error["code"] == "wasm_invalid_output"


async def test_an_allocator_returning_garbage(run_one: RunOne, project: Project) -> None:
    wat = ECHO.replace(
        '(func $alloc (export "polyhost_alloc") (param $n i32) (result i32)',
        '(func (export "polyhost_alloc") (param i32) (result i32) (i32.const -16))\n'
        "  (func $alloc (param $n i32) (result i32)",
    )
    project.wasm("t.badalloc", wat)
    error = await failure(run_one, "t.badalloc")
    assert error["code"] == "wasm_abi"
    assert "polyhost_alloc" in str(error["message"])


@pytest.mark.parametrize(
    "text",
    [
        "not json at all",
        b"\xff\xfe{}",
        "[1, 2]",
        '"a string"',
        '{"ok": [1, 2]}',
        '{"ok": "text"}',
        '{"ok": {}, "error": {}}',
        '{"result": {}}',
        "",
    ],
)
async def test_invalid_output(run_one: RunOne, project: Project, text: str | bytes) -> None:
    project.wasm("t.garbage", returns(text))
    error = await failure(run_one, "t.garbage")
    assert error["code"] == "wasm_invalid_output"


async def test_the_host_survives_every_hostile_guest_in_one_run(
    project: Project, host: Host
) -> None:
    guests = {"spin": SPIN, "grow": GROW, "deep": RECURSE, "trap": UNREACHABLE, "echo": ECHO}
    for name, wat in guests.items():
        limits = {"fuel": 20_000_000, "memory": "4MiB"} if name != "echo" else {}
        project.wasm(f"t.{name}", wat, limits=limits)
    nodes = [{"id": name, "type": f"t.{name}", "on_error": "continue"} for name in guests]
    result = await host.run(project.workflow(nodes))
    assert result.status is RunStatus.COMPLETED
    codes = {name: (r.error or {}).get("code") for name, r in result.nodes.items()}
    assert codes == {
        "spin": "wasm_out_of_fuel",
        "grow": "wasm_memory_limit",
        "deep": "wasm_trap",
        "trap": "wasm_trap",
        "echo": None,
    }


async def test_closing_the_runtime_still_stops_a_cancelled_guest(project: Project) -> None:
    module = project.module("spin.wasm", SPIN)
    node_type = NodeType(type="t.spin", runtime="wasm", module=module, base_dir=str(project.root))
    runtime = WasmRuntime()
    ctx = NodeContext("run", "wf", "w", "t.spin", 1, "key")
    with anyio.move_on_after(0.2):
        await runtime.execute(node_type, {}, ctx)
    machine = runtime.machine()
    await runtime.aclose()
    deadline = time.monotonic() + 2
    while machine.ticker._active and time.monotonic() < deadline:
        await anyio.sleep(0.01)
    assert machine.ticker._active == 0
