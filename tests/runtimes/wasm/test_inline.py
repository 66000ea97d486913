"""Short reactor calls run on the event loop's thread; long ones never hold the loop for long.

The runtime learns per module whether its calls are short (``_wasm_inline``). A call that goes
inline and then overruns its slice is stopped, its logs and chunks dropped, and run again on a
worker thread, so a user sees each effect once and the loop stays responsive.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
import wasmtime

from polyhost import Host, RunStatus
from polyhost.events._events import Event, EventType
from polyhost.runtimes import WasmRuntime
from polyhost.runtimes.wasm._call import CallRequest, GuestFailure, PoolLimits, WasmMachine
from polyhost.runtimes.wasm._inline import INLINE_SLICE, InlinePace
from polyhost.runtimes.wasm._limits import DEFAULT_LIMITS
from tests.runtimes.wasm.conftest import RunOne
from tests.runtimes.wasm.guests import ECHO, Project, returns, wat_string
from tests.runtimes.wasm.test_reactor import LOG_AND_CHUNK

pytestmark = pytest.mark.anyio

# Logs once, then counts down from 2^31 in a tight loop (well over a slice on any machine).
LOG_THEN_SPIN = returns(
    '{"ok": {"spun": true}}',
    imports='(import "polyhost" "log" (func $log (param i32 i32 i32)))',
    extra=f"(data (i32.const 4096) {wat_string('started')})",
    before="""(call $log (i32.const 1) (i32.const 4096) (i32.const 7))
    (local.set $len (i32.const 0x7fffffff))
    (loop $more
      (local.set $len (i32.sub (local.get $len) (i32.const 1)))
      (br_if $more (i32.gt_s (local.get $len) (i32.const 0))))""",
)


def wasm_runtime(host: Host) -> WasmRuntime:
    found = host.router.adapter("wasm")
    assert isinstance(found, WasmRuntime)
    return found


async def test_short_calls_go_inline_and_keep_logs_and_chunks_per_node(
    project: Project, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.wasm("t.chatty", LOG_AND_CHUNK)
    nodes = [{"id": f"n{i}", "type": "t.chatty"} for i in range(40)]
    edges = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(39)]
    pace = wasm_runtime(host)._pace
    key = str(project.root / "t_chatty.wasm")
    for _ in range(64):  # as if its calls had been short so far: the first call goes inline
        pace.ran(key, 0.0)
    # Whether later calls stay inline depends on how busy the machine is; what a user sees
    # (each log and chunk once, on its own node) must not.
    decisions: list[bool] = []
    decide = pace.inline

    def recorded(module: str) -> bool:
        decisions.append(decide(module))
        return decisions[-1]

    monkeypatch.setattr(pace, "inline", recorded)
    events: list[Event] = []
    result = await host.run(project.workflow(nodes, edges), on_event=events.append)
    assert result.status is RunStatus.COMPLETED, result.error
    assert decisions and decisions[0], "the first call should have gone inline"
    for i in range(40):
        node = f"n{i}"
        logs = [e.data["message"] for e in events if e.type is EventType.LOG and e.node == node]
        chunks = [
            e.data["data"] for e in events if e.type is EventType.NODE_CHUNK and e.node == node
        ]
        assert logs == ["hello guest", "oops!"], node
        assert chunks == [{"n": 1}, {"n": 2}], node
        assert result.nodes[node].output == {"done": True}


async def test_a_long_call_sent_inline_moves_to_a_thread_and_its_effects_happen_once(
    run_one: RunOne, project: Project, host: Host
) -> None:
    project.wasm("t.slow", LOG_THEN_SPIN, limits={"timeout": "60s"})
    runtime = wasm_runtime(host)
    key = str(project.root / "t_slow.wasm")
    for _ in range(64):  # as if its calls had been short so far
        runtime._pace.ran(key, 0.0)
    assert runtime._pace.inline(key)

    gaps: list[float] = []

    async def heartbeat() -> None:
        last = time.monotonic()
        while True:
            await anyio.sleep(0.002)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    events: list[Event] = []
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(heartbeat)
        begin = time.monotonic()
        result = await run_one("t.slow", events=events)
        took = time.monotonic() - begin
        tasks.cancel_scope.cancel()

    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["w"].output == {"spun": True}
    logs = [e.data["message"] for e in events if e.type is EventType.LOG]
    assert logs == ["started"]  # the inline attempt's log was dropped, the re-run's kept
    assert not runtime._pace.inline(key)
    # The loop was held for a slice and a tick at most, not for the whole call.
    assert took > 0.2
    assert max(gaps) < min(0.1, took / 2)


async def test_a_module_that_needs_more_than_a_pool_slot_still_runs(
    run_one: RunOne, project: Project, host: Host
) -> None:
    # Two memories: more than a pooled engine allows per instance, within the node's limits.
    project.wasm(
        "t.two", returns('{"ok": {"two": true}}', extra="(memory 1)"), limits={"memories": 2}
    )
    for _ in range(3):
        result = await run_one("t.two")
        assert result.status is RunStatus.COMPLETED, result.error
        assert result.nodes["w"].output == {"two": True}


async def test_a_full_instance_pool_is_a_retryable_error(tmp_path: Path) -> None:
    path = tmp_path / "echo.wasm"
    path.write_bytes(wasmtime.wat2wasm(ECHO))
    with WasmMachine(None, pool=PoolLimits(slots=1)) as machine:
        module = machine.cache.load(path)
        holder = wasmtime.Store(machine.engine)
        module.pre.instantiate(holder)  # takes the only slot
        with pytest.raises(GuestFailure) as caught:
            machine.call(CallRequest(module=module, limits=DEFAULT_LIMITS, input=b"{}"))
        assert caught.value.code == "wasm_resource_limit"
        assert caught.value.retryable
        holder.close()
        output = machine.call(CallRequest(module=module, limits=DEFAULT_LIMITS, input=b"{}"))
        assert output == {"input": {}}


def test_a_module_goes_inline_after_a_streak_of_short_calls() -> None:
    pace = InlinePace()
    for _ in range(7):
        pace.ran("m", INLINE_SLICE / 10)
    assert not pace.inline("m")
    pace.ran("m", INLINE_SLICE / 10)
    assert pace.inline("m")
    pace.ran("m", INLINE_SLICE * 2)  # one long call on a thread breaks the streak
    assert not pace.inline("m")


def test_each_overrun_doubles_the_streak_needed_to_go_inline_again() -> None:
    pace = InlinePace()
    for needed in (16, 32, 64):
        pace.overran("m")
        for _ in range(needed - 1):
            pace.ran("m", 0.0)
        assert not pace.inline("m")
        pace.ran("m", 0.0)
        assert pace.inline("m")
