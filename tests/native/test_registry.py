"""The native node registry: metadata, calls, failures, panics and cancellation."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from polyhost import _native

BUILTIN = ["csv.read", "csv.query", "csv.write", "text.stats", "debug.panic"]
CODES = {
    "invalid_parameters",
    "invalid_path",
    "io_error",
    "csv_error",
    "too_many_rows",
    "invalid_input",
    "cancelled",
    "panic",
    "unknown_native_node",
}


def call(name: str, params: dict[str, Any], token: _native.CancelToken | None = None) -> Any:
    return _native.call_native(name, params, token or _native.CancelToken())


def failure(name: str, params: dict[str, Any]) -> tuple[str, str, str | None]:
    with pytest.raises(_native.NativeNodeError) as info:
        call(name, params)
    code, message, field = info.value.args
    assert code in CODES
    return code, message, field


def test_nodes_are_listed_with_their_schemas() -> None:
    nodes = _native.native_nodes()
    assert [n["name"] for n in nodes] == BUILTIN
    for node in nodes:
        assert set(node) == {"name", "description", "input_schema", "output_schema"}
        assert node["description"]
        for key in ("input_schema", "output_schema"):
            schema = node[key]
            assert isinstance(schema, dict)
            assert schema["type"] == "object"
            jsonschema.Draft202012Validator.check_schema(schema)
        assert node["input_schema"]["additionalProperties"] is False


def test_call_round_trip_matches_the_output_schema() -> None:
    out = call("text.stats", {"text": "a b a\nc", "top": 2})
    assert out == {"chars": 7, "words": 4, "lines": 2, "top_words": [["a", 2], ["b", 1]]}
    schema = next(n for n in _native.native_nodes() if n["name"] == "text.stats")
    jsonschema.validate(out, schema["output_schema"])


def test_text_stats_reads_files(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("Don't stop. don't!\n", encoding="utf-8")
    out = call("text.stats", {"path": str(path)})
    assert out["top_words"][0] == ["don't", 2]
    path.write_bytes(b"\xff\xfe")
    assert failure("text.stats", {"path": str(path)})[0] == "invalid_input"
    assert failure("text.stats", {"path": "t.txt"})[0] == "invalid_path"


def test_native_node_error_is_not_a_value_error() -> None:
    assert issubclass(_native.NativeNodeError, Exception)
    assert not issubclass(_native.NativeNodeError, ValueError)


def test_unknown_node() -> None:
    code, message, field = failure("no.such", {})
    assert code == "unknown_native_node"
    assert "csv.query" in message
    assert field is None


def test_parameters_must_be_json_like() -> None:
    code, message, field = failure("text.stats", {"text": "x", "top": object()})
    assert (code, field) == ("invalid_parameters", "top")
    assert "object" in message
    code, _, field = failure("text.stats", {"text": "x", "top": 2**70})
    assert (code, field) == ("invalid_parameters", "top")
    code, _, field = failure("text.stats", {"nope": 1})
    assert (code, field) == ("invalid_parameters", "nope")
    with pytest.raises(TypeError):
        _native.call_native("text.stats", ["not", "a", "dict"], _native.CancelToken())  # type: ignore[arg-type]


def test_a_panic_becomes_an_error_and_the_interpreter_survives(
    capfd: pytest.CaptureFixture[str],
) -> None:
    for _ in range(3):
        code, message, field = failure("debug.panic", {"message": "boom"})
        assert (code, message, field) == ("panic", "debug.panic panicked: boom", None)
    assert capfd.readouterr().err == ""
    assert call("text.stats", {"text": "still here"})["words"] == 2


def test_cancel_token() -> None:
    token = _native.CancelToken()
    assert not token.cancelled
    token.cancel()
    token.cancel()
    assert token.cancelled
    assert repr(token) == "CancelToken(cancelled=True)"
    assert failure_with(token) == "cancelled"


def failure_with(token: _native.CancelToken) -> str:
    text = "word " * 200_000
    with pytest.raises(_native.NativeNodeError) as info:
        call("text.stats", {"text": text}, token)
    return str(info.value.args[0])


def test_cancel_from_another_thread_stops_a_long_query(tmp_path: Path) -> None:
    block = "".join(f"{i},key{i % 97},{i % 1000}.5\n" for i in range(10_000))
    path = tmp_path / "big.csv"
    path.write_text("a,b,c\n" + block * 300)  # 3,000,000 rows
    token = _native.CancelToken()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call(
                "csv.query",
                {
                    "path": str(path),
                    "order_by": ["-c", "b"],
                    "output": {"path": str(tmp_path / "out.jsonl"), "format": "jsonl"},
                },
                token,
            )
        except _native.NativeNodeError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.05)
    # The GIL is free while the query runs, or this line would wait for it to finish.
    cancelled_at = time.perf_counter()
    token.cancel()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert time.perf_counter() - cancelled_at < 2.0
    assert "result" not in outcome, "the query finished before the cancel"
    assert outcome["error"].args[0] == "cancelled"
    # A cancelled query leaves no output file behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]


def test_calls_run_in_parallel_threads(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a\n" + "1\n" * 1000)
    results: list[Any] = []

    def run() -> None:
        results.append(call("csv.query", {"path": str(path), "aggregate": {"n": {"op": "count"}}}))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r["rows"] for r in results] == [[{"n": 1000}]] * 4
