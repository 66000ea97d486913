"""WASI command guests: the input on stdin, the output object on stdout, the exit status."""

from __future__ import annotations

import json

import pytest

from polyhost import RunStatus
from tests.runtimes.wasm.conftest import RunOne
from tests.runtimes.wasm.guests import COMMAND_ECHO, Project, command_printing

pytestmark = pytest.mark.anyio


async def test_stdin_in_stdout_out(run_one: RunOne, project: Project) -> None:
    project.wasm("t.cmd", COMMAND_ECHO)
    result = await run_one("t.cmd", {"city": "Zürich"})
    assert result.status is RunStatus.COMPLETED, result.error
    echoed = result.nodes["w"].output["echo"]
    assert echoed["params"] == {"city": "Zürich"}
    assert echoed["ctx"]["node_id"] == "w"


async def test_a_failing_exit_status_carries_the_tail_of_stderr(
    run_one: RunOne, project: Project
) -> None:
    stderr = "x" * 10_000 + "\nfatal: the input was empty\n"
    project.wasm("t.exit", command_printing("", stderr=stderr, status=3))
    result = await run_one("t.exit")
    error = result.nodes["w"].error
    assert error is not None
    assert error["code"] == "wasm_exit"
    assert "status 3" in error["message"]
    assert error["message"].endswith("fatal: the input was empty")
    assert len(error["message"]) < 5000


async def test_an_error_object_on_stdout_keeps_its_code(run_one: RunOne, project: Project) -> None:
    stdout = json.dumps({"error": {"code": "no_such_city", "message": "unknown city"}})
    project.wasm("t.err", command_printing(stdout, status=1))
    result = await run_one("t.err")
    error = result.nodes["w"].error
    assert error is not None
    assert (error["code"], error["message"]) == ("no_such_city", "unknown city")


@pytest.mark.parametrize("stdout", ["", "plain text", "[1, 2]", "{} {}"])
async def test_stdout_must_be_one_object(run_one: RunOne, project: Project, stdout: str) -> None:
    project.wasm("t.bad", command_printing(stdout))
    result = await run_one("t.bad")
    error = result.nodes["w"].error
    assert error is not None
    assert error["code"] == "wasm_invalid_output"


async def test_stdout_over_the_output_limit(run_one: RunOne, project: Project) -> None:
    project.wasm("t.loud", command_printing('{"a": "' + "x" * 5000 + '"}'), limits={"output": 1024})
    result = await run_one("t.loud")
    error = result.nodes["w"].error
    assert error is not None
    assert error["code"] == "wasm_output_too_large"


async def test_exit_status_zero_through_proc_exit(run_one: RunOne, project: Project) -> None:
    # proc_exit(0) ends a command successfully; the output is what it printed.
    wat = command_printing('{"fine": true}').replace(
        "(if (i32.ne (i32.const 0)", "(call $exit (i32.const 0)) (if (i32.ne (i32.const 0)"
    )
    project.wasm("t.exit0", wat)
    result = await run_one("t.exit0")
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["w"].output == {"fine": True}


async def test_limits_apply_to_commands_too(run_one: RunOne, project: Project) -> None:
    spin = '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))'
    project.wasm("t.spincmd", spin, limits={"fuel": 1_000_000})
    result = await run_one("t.spincmd")
    error = result.nodes["w"].error
    assert error is not None
    assert error["code"] == "wasm_out_of_fuel"


@pytest.mark.parametrize("depth", [200, 5_000])
async def test_an_output_nested_too_deep_fails_the_node_naming_the_limit(
    run_one: RunOne, project: Project, depth: int
) -> None:
    project.wasm("t.deep", command_printing('{"a": ' + "[" * depth + "]" * depth + "}"))
    result = await run_one("t.deep")
    assert result.status is RunStatus.FAILED
    error = result.nodes["w"].error
    assert error is not None
    assert error["code"] == "limit_exceeded"
    assert "max_value_depth" in error["message"]
