"""The guests on their own, driven straight through the ABI (abi.py), in both styles.

The host's suite checks what the host does with them; these check that each guest does what
wasm-nodes/ABI.md and its source say, so a failure there points at the right side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from tests.wasm_nodes.abi import BUILD, Grants, OutOfBounds, module, run

HOSTILE = BUILD / "hostile"
STYLES = ["command", "reactor"]


def guest(name: str, style: str) -> Path:
    return HOSTILE / name if style == "command" else HOSTILE / "reactor" / name


def result(raw: bytes, style: str) -> dict[str, Any]:
    """The output object, or the error object, whichever the style wraps it in."""
    value: dict[str, Any] = json.loads(raw)
    assert isinstance(value, dict)
    if style == "reactor" and "error" not in value:
        assert list(value) == ["ok"], value
        value = value["ok"]
    return value


def exports(path: Path) -> set[str]:
    return {export.name for export in module(path).exports}


# ---- the examples ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "style"),
    [("word_count", "reactor"), ("upper", "command"), ("sum", "command"),
     ("sum_reactor", "reactor"), ("greet", "reactor")],
)  # fmt: skip
def test_each_example_has_the_exports_of_its_style(name: str, style: str) -> None:
    found = exports(BUILD / f"{name}.wasm")
    if style == "reactor":
        assert {"memory", "polyhost_alloc", "polyhost_run"} <= found
        assert "_start" not in found
    else:
        assert "_start" in found
        assert "polyhost_run" not in found


def test_c_sdk_decodes_escapes_and_skips_nested_values() -> None:
    raw = (
        b'{"ctx": {"attempt": 2}, "params": {"nested": {"text": [1, "x"]}, '
        b'"te\\u0078t": "caf\\u00e9 \\ud83c\\udf0d\\n\\"q\\"", "after": true}}'
    )
    call = run(BUILD / "upper.wasm", {}, raw_input=raw)
    assert call.output == {"text": 'CAFé 🌍\n"Q"'}
    call = run(BUILD / "word_count.wasm", {}, raw_input=raw)
    assert call.output == {"ok": {"words": 3, "lines": 2}}
    assert call.logs == [(0, "counted 3 words in 14 bytes")]


@pytest.mark.parametrize("name", ["word_count", "upper", "sum", "sum_reactor", "greet"])
@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"params": {"text": "a"'])
def test_every_sdk_rejects_input_that_is_not_an_object(name: str, raw: bytes) -> None:
    call = run(BUILD / f"{name}.wasm", {}, raw_input=raw)
    assert call.output["error"]["code"] == "bad_input"
    assert call.exit_code == 0


@pytest.mark.parametrize(
    ("name", "params"),
    [("word_count", {"text": 3}), ("upper", {}), ("sum", {"values": [1, "2"]}),
     ("sum_reactor", {"values": "1"}), ("greet", {"name": None})],
)  # fmt: skip
def test_every_example_reports_bad_params_itself(name: str, params: dict[str, object]) -> None:
    call = run(BUILD / f"{name}.wasm", params)
    assert call.output["error"]["code"] == "bad_params"


def test_go_reactor_sends_logs_to_the_host_and_the_command_to_stderr() -> None:
    reactor = run(BUILD / "sum_reactor.wasm", {"values": [1, 2]})
    assert reactor.output == {"ok": {"sum": 3, "count": 2}}
    assert reactor.logs == [(0, "summed 2 values")]
    command = run(BUILD / "sum.wasm", {"values": [1, 2]})
    assert command.output == {"sum": 3, "count": 2}
    assert command.stderr == "debug: summed 2 values\n"


# ---- the hostile guests ---------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Grants]:
    (tmp_path / "data").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "data" / "in.txt").write_text("read me\n")
    (tmp_path / "outside.txt").write_text("never")
    grants = Grants(
        preopens=[(tmp_path / "data", "/data", False), (tmp_path / "out", "/out", True)],
        env={"TZ": "UTC"},
    )
    return tmp_path, grants


@pytest.mark.parametrize("style", STYLES)
def test_read_file_reads_a_granted_folder_and_reports_the_rest(
    style: str, sandbox: tuple[Path, Grants]
) -> None:
    _, grants = sandbox
    path = guest("read_file.wasm", style)
    assert result(run(path, {"path": "data/in.txt"}, grants).raw, style) == {"content": "read me\n"}
    assert result(run(path, {"path": "/data/in.txt"}, grants).raw, style) == {
        "content": "read me\n"
    }
    for elsewhere in ["outside.txt", "/etc/passwd", "data/../outside.txt"]:
        call = run(path, {"path": elsewhere}, grants)
        assert call.exit_code == 0
        assert result(call.raw, style)["error"]["code"] == "io", elsewhere


@pytest.mark.parametrize("style", STYLES)
def test_write_file_writes_only_where_it_may(style: str, sandbox: tuple[Path, Grants]) -> None:
    root, grants = sandbox
    path = guest("write_file.wasm", style)
    done = run(path, {"path": "out/new.txt", "text": "héllo"}, grants)
    assert result(done.raw, style) == {"written": 6}
    assert (root / "out" / "new.txt").read_text() == "héllo"
    refused = result(run(path, {"path": "data/new.txt", "text": "x"}, grants).raw, style)
    assert refused["error"]["code"] == "io"
    assert not (root / "data" / "new.txt").exists()


@pytest.mark.parametrize("style", STYLES)
def test_getenv_sees_only_what_it_is_given(style: str, sandbox: tuple[Path, Grants]) -> None:
    _, grants = sandbox
    path = guest("getenv.wasm", style)
    assert result(run(path, {"name": "TZ"}, grants).raw, style) == {"value": "UTC"}
    assert result(run(path, {"name": "PATH"}, grants).raw, style) == {"value": None}


@pytest.mark.parametrize("style", STYLES)
def test_loop_runs_until_the_fuel_is_gone(style: str) -> None:
    with pytest.raises(wasmtime.Trap, match="fuel"):
        run(guest("loop.wasm", style), {}, fuel=20_000_000)


@pytest.mark.parametrize("style", STYLES)
def test_grow_takes_memory_up_to_the_limit(style: str) -> None:
    small = result(run(guest("grow.wasm", style), {}, memory=8 << 20).raw, style)
    large = result(run(guest("grow.wasm", style), {}, memory=32 << 20).raw, style)
    assert 4 << 20 <= small["allocated"] <= 8 << 20
    assert 28 << 20 <= large["allocated"] <= 32 << 20


@pytest.mark.parametrize("style", STYLES)
def test_recurse_exhausts_the_stack_unless_bounded(style: str) -> None:
    path = guest("recurse.wasm", style)
    with pytest.raises(wasmtime.Trap, match="call stack exhausted"):
        run(path, {})
    assert "result" in result(run(path, {"depth": 1000}).raw, style)


@pytest.mark.parametrize("style", STYLES)
def test_trap_traps(style: str) -> None:
    with pytest.raises(wasmtime.Trap, match="unreachable"):
        run(guest("trap.wasm", style), {})


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("size", [100, 65536 + 7, 3 << 20])
def test_big_output_is_exactly_as_big_as_asked(style: str, size: int) -> None:
    raw = run(guest("big_output.wasm", style), {"bytes": size}).raw
    assert len(raw) == size
    assert set(result(raw, style)["data"]) == {"x"}


@pytest.mark.parametrize("style", STYLES)
def test_bad_json_is_not_json(style: str) -> None:
    raw = run(guest("bad_json.wasm", style), {}).raw
    assert raw == b"this is not JSON {"


def test_bad_pointer_points_outside_the_memory() -> None:
    with pytest.raises(OutOfBounds):
        run(HOSTILE / "reactor" / "bad_pointer.wasm", {})


def test_exit_code_exits_with_the_code_and_message() -> None:
    call = run(HOSTILE / "exit_code.wasm", {"code": 3, "message": "boom"})
    assert (call.exit_code, call.raw, call.stderr) == (3, b"", "boom\n")
    with pytest.raises(wasmtime.ExitTrap) as exit_:
        run(HOSTILE / "reactor" / "exit_code.wasm", {"code": 4})
    assert exit_.value.code == 4


def test_stream_sends_chunks_and_logs_from_a_reactor() -> None:
    call = run(HOSTILE / "reactor" / "stream.wasm", {"count": 3})
    assert call.output == {"ok": {"count": 3}}
    assert call.chunks == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert call.logs == [(1, f"chunk {i} of 3") for i in (1, 2, 3)]
    command = run(HOSTILE / "stream.wasm", {"count": 2})
    assert command.output == {"count": 2}
    assert command.stderr == "info: chunk 1 of 2\ninfo: chunk 2 of 2\n"
