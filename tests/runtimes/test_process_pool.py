"""ProcessPool against real worker processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from polyhost._errors import HandlerError, NodeError, NodeOutputError
from polyhost.runtimes.python._process_pool import ProcessPool, RemoteHandlerError
from tests.helpers.processes import is_running, wait_gone

pytestmark = pytest.mark.anyio

HANDLERS = str(Path(__file__).parent.parent / "helpers")
CTX = {
    "run_id": "run1",
    "workflow_id": "wf",
    "node_id": "crunch",
    "node_type": "test.crunch",
    "attempt": 2,
    "idempotency_key": "run1:crunch",
}


@pytest.fixture
async def pool() -> AsyncIterator[ProcessPool]:
    async with ProcessPool(max_workers=2) as pool:
        yield pool


async def call(pool: ProcessPool, name: str, **params: Any) -> Any:
    return await pool.run(f"pool_handlers:{name}", HANDLERS, params, CTX)


async def worker_pid(pool: ProcessPool) -> int:
    result, _ = await pool.run("pool_handlers:pid", HANDLERS, {}, CTX)
    assert result is not None
    return int(result["pid"])


async def test_round_trip_returns_output_and_logs(pool: ProcessPool) -> None:
    result, logs = await call(pool, "double", x=21)
    assert result["value"] == 42
    assert result["attempt"] == 2
    assert result["pid"] != os.getpid()
    assert logs == [("info", "doubling", {"x": 21})]


async def test_async_model_and_none_handlers(pool: ProcessPool) -> None:
    assert await call(pool, "async_double", x=2) == ({"value": 4}, [])
    assert await call(pool, "typed", x=2) == ({"total": 3}, [])
    assert await call(pool, "nothing") == (None, [])


async def test_worker_is_reused(pool: ProcessPool) -> None:
    assert await worker_pid(pool) == await worker_pid(pool)


async def test_handler_exception_becomes_handler_error(pool: ProcessPool) -> None:
    with pytest.raises(RemoteHandlerError) as caught:
        await call(pool, "boom")
    assert caught.value.message == "ValueError: no good"
    assert caught.value.node == "crunch"
    assert caught.value.code == "handler_error"
    assert "in boom" in caught.value.remote_traceback
    assert (await call(pool, "async_double", x=1))[0] == {"value": 2}


async def test_node_error_keeps_its_code(pool: ProcessPool) -> None:
    with pytest.raises(NodeError) as caught:
        await call(pool, "refuse")
    assert (caught.value.code, caught.value.retryable, caught.value.node) == (
        "refused",
        False,
        "crunch",
    )


async def test_worker_death_is_reported_and_replaced(pool: ProcessPool) -> None:
    before = await worker_pid(pool)
    with pytest.raises(HandlerError, match=r"node crunch: .*died.*exit code 3"):
        await call(pool, "exit_hard")
    assert await worker_pid(pool) != before
    assert not is_running(before)


async def test_cancellation_kills_the_worker() -> None:
    async with ProcessPool(max_workers=1) as single:
        warm = await worker_pid(single)
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.3):
                await single.run("pool_handlers:sleep_long", HANDLERS, {}, CTX)
        assert not is_running(warm)
        assert await worker_pid(single) != warm


async def test_missing_handler_is_not_retryable(pool: ProcessPool) -> None:
    with pytest.raises(NodeError, match="no attribute 'missing'") as caught:
        await call(pool, "missing")
    assert (caught.value.code, caught.value.retryable) == ("handler_not_found", False)
    with pytest.raises(NodeError, match="No module named") as caught:
        await pool.run("no_such_module:run", HANDLERS, {}, CTX)
    assert caught.value.code == "handler_not_found"


async def test_unsendable_outputs(pool: ProcessPool) -> None:
    with pytest.raises(NodeOutputError, match="cannot be sent"):
        await call(pool, "unpicklable")
    with pytest.raises(NodeOutputError, match="returned list"):
        await call(pool, "not_a_dict")


async def test_aclose_leaves_no_processes() -> None:
    pool = ProcessPool(max_workers=2)
    async with anyio.create_task_group() as tg:
        # Two overlapping calls make the pool start both workers.
        results: list[int] = []

        async def run_one() -> None:
            results.append(await worker_pid(pool))

        for _ in range(2):
            tg.start_soon(run_one)
    busy = pool.run("pool_handlers:sleep_long", HANDLERS, {}, CTX)
    async with anyio.create_task_group() as tg:

        async def run_busy() -> None:
            with pytest.raises(HandlerError, match="died"):
                await busy

        tg.start_soon(run_busy)
        await anyio.sleep(0.2)
        await pool.aclose()
    await pool.aclose()  # idempotent
    assert multiprocessing.active_children() == []
    assert not any(is_running(pid) for pid in results)
    with pytest.raises(NodeError, match="closed"):
        await pool.run("pool_handlers:pid", HANDLERS, {}, CTX)


def test_a_busy_worker_dies_with_a_host_killed_by_sigkill(tmp_path: Path) -> None:
    # An orphan would run on while `runs resume` runs the same attempt again.
    pid_file = tmp_path / "worker.pid"
    script = (
        "import anyio\n"
        "from polyhost.runtimes.python._process_pool import ProcessPool\n"
        "async def main():\n"
        "    async with ProcessPool(max_workers=1) as pool:\n"
        f"        await pool.run('pool_handlers:announce_and_sleep', {HANDLERS!r},\n"
        f"                       {{'path': {str(pid_file)!r}}}, {CTX!r})\n"
        "if __name__ == '__main__':\n"
        "    anyio.run(main)\n"
    )
    (tmp_path / "host.py").write_text(script)
    with subprocess.Popen([sys.executable, str(tmp_path / "host.py")], cwd=tmp_path) as host:
        try:
            deadline = time.monotonic() + 20
            while not pid_file.exists() or not pid_file.read_text():
                assert time.monotonic() < deadline, "the worker never started"
                time.sleep(0.02)
            worker = int(pid_file.read_text())
            assert is_running(worker)
            host.send_signal(signal.SIGKILL)
            host.wait()
            assert wait_gone([worker], 5) == [], "the worker outlived its host"
        finally:
            host.kill()


@pytest.mark.parametrize("code", ["E_FIRE", "quota.exceeded", "débit"])
async def test_a_workers_node_error_keeps_any_printable_code(pool: ProcessPool, code: str) -> None:
    with pytest.raises(NodeError) as caught:
        await call(pool, "refuse_with", code=code, field="with.x")
    assert (caught.value.code, caught.value.field) == (code, "with.x")


async def test_a_workers_code_and_field_that_break_the_rule_are_replaced(
    pool: ProcessPool,
) -> None:
    with pytest.raises(NodeError) as caught:
        await call(pool, "refuse_with", code="bad\ncode", field="f" * 10_000)
    error = caught.value
    assert (error.code, error.field) == ("handler_error", None)
    assert "'bad\\x0acode'" in error.message
    assert "(10000 characters)" in error.message
