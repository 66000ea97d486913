"""Without wasmtime-py's private bindings (a later release may move them) the runtime falls back
to the public API: slower calls, and a fixed epoch deadline instead of a per-tick check."""

from __future__ import annotations

import time

import pytest

from polyhost import RunStatus
from polyhost.runtimes.wasm import _ffi as _wasm_ffi
from tests.runtimes.wasm.conftest import RunOne
from tests.runtimes.wasm.guests import ECHO, SPIN, UNREACHABLE, Project, reactor
from tests.runtimes.wasm.test_reactor import LOG_AND_CHUNK

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _public_api_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_wasm_ffi, "AVAILABLE", False)


async def test_a_call_and_its_events(run_one: RunOne, project: Project) -> None:
    project.wasm("t.echo", ECHO)
    project.wasm("t.chatty", LOG_AND_CHUNK)
    result = await run_one("t.echo", {"a": 1})
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["w"].output["input"]["params"] == {"a": 1}
    result = await run_one("t.chatty")
    assert result.nodes["w"].output == {"done": True}


async def test_a_timeout_from_the_fixed_deadline(run_one: RunOne, project: Project) -> None:
    project.wasm("t.spin", SPIN, limits={"timeout": "200ms"})
    begin = time.monotonic()
    result = await run_one("t.spin")
    assert result.error is not None
    assert result.error["code"] == "wasm_timeout"
    assert time.monotonic() - begin < 2


@pytest.mark.parametrize(
    ("wat", "code"),
    [
        (UNREACHABLE, "wasm_trap"),
        (reactor("(call $pack (i32.const 65000) (i32.const 1000))"), "wasm_invalid_output"),
    ],
)
async def test_failures(run_one: RunOne, project: Project, wat: str, code: str) -> None:
    project.wasm("t.bad", wat)
    result = await run_one("t.bad")
    assert result.error is not None
    assert result.error["code"] == code
