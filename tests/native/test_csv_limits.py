"""Hostile input to the CSV and text nodes: deep `where` predicates, huge records and rows of
millions of fields, FIFOs, and cancels that must land promptly. Memory is measured in a
subprocess (its peak RSS) against the limit the test sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from polyhost import _native
from polyhost._limits import Limits

MiB = 1024 * 1024


def call(name: str, limits: dict[str, int] | None = None, **params: Any) -> Any:
    return _native.call_native(name, params, _native.CancelToken(), "n", limits)


def failure(name: str, limits: dict[str, int] | None = None, **params: Any) -> tuple[Any, ...]:
    with pytest.raises(_native.NativeNodeError) as info:
        call(name, limits, **params)
    return tuple(info.value.args)


def in_thread(func: Any, timeout: float = 10.0) -> Any:
    """Runs ``func`` on a fresh thread, as the native runtime does; fails if it hangs."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the call blocked"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    path.write_text("qty,city\n1,oslo\n2,rome\n3,oslo\n")
    return path


# -- `where` nesting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        "(" * 10_000 + "qty = 1" + ")" * 10_000,
        "not " * 20_000 + "qty = 1",
        "not (" * 5_000 + "qty = 1" + ")" * 5_000,
    ],
    ids=["parentheses", "not", "both"],
)
def test_deep_where_is_a_limit_not_a_crash(small: Path, where: str) -> None:
    code, message, field = failure("csv.query", path=str(small), where=where)
    assert (code, field) == ("limit_exceeded", "where")
    assert "max_csv_where_depth = 100" in message


def test_the_deepest_allowed_where_runs_on_a_worker_thread(small: Path) -> None:
    deepest = Limits.model_fields["max_csv_where_depth"].metadata
    maximum = next(m.le for m in deepest if hasattr(m, "le"))
    where = "not " * (maximum - 1) + "(qty = 1)"  # odd count of `not`s: rows with qty != 1
    out = in_thread(
        lambda: call("csv.query", {"max_csv_where_depth": maximum}, path=str(small), where=where)
    )
    assert [r["qty"] for r in out["rows"]] == [2, 3]


def test_long_chains_of_and_or_do_not_nest(small: Path) -> None:
    where = " or ".join(f"qty = {i}" for i in range(100_000, 200_000)) + " or city = 'rome'"
    out = in_thread(lambda: call("csv.query", path=str(small), where=where))
    assert [r["qty"] for r in out["rows"]] == [2]
    where = " and ".join(["city = 'oslo'"] * 100_000)
    assert call("csv.query", path=str(small), where=where)["rows_matched"] == 2


# -- memory: records and fields ----------------------------------------------------------------

CHILD = """
import json, resource, sys
from polyhost import _native
name, params, limits = json.loads(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    out = {"output": _native.call_native(name, params, _native.CancelToken(), "n", limits)}
except _native.NativeNodeError as exc:
    out = {"error": list(exc.args)}
out["grew_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps(out))
"""


def in_child(name: str, params: dict[str, Any], limits: dict[str, int]) -> dict[str, Any]:
    """Runs one node call in a fresh process: its answer, and how far its peak RSS grew."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps([name, params, limits])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def long_line(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A header, then one 96 MiB record (no line break in it), then a short row."""
    path = tmp_path_factory.mktemp("big") / "long.csv"
    with path.open("wb") as f:
        f.write(b"a,b\n")
        chunk = b"x" * MiB
        for _ in range(96):
            f.write(chunk)
        f.write(b",y\n1,2\n")
    return path


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("csv.read", {}),
        ("csv.query", {"where": "b = 'y'"}),
        ("csv.query", {"group_by": ["b"], "aggregate": {"n": {"op": "count"}}}),
    ],
    ids=["read", "query", "grouped-query"],
)
def test_a_record_past_the_limit_fails_with_memory_bounded_by_the_limit(
    long_line: Path, name: str, extra: dict[str, Any]
) -> None:
    limit = 2 * MiB
    out = in_child(name, {"path": str(long_line), **extra}, {"max_csv_record_bytes": limit})
    code, message, field = out["error"]
    assert (code, field) == ("limit_exceeded", "path")
    assert "line 2" in message and f"max_csv_record_bytes = {limit}" in message
    # The reader holds at most the limit plus one block, twice over while it grows.
    assert out["grew_kib"] * 1024 < 6 * limit + 8 * MiB, out


def test_a_record_just_under_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "fits.csv"
    value = "v" * (MiB - 10)
    path.write_text(f"a,b\n1,{value}\n")
    out = call("csv.read", {"max_csv_record_bytes": MiB}, path=str(path))
    assert out["rows"] == [{"a": 1, "b": value}]
    code, _, _ = failure("csv.read", {"max_csv_record_bytes": MiB - 100}, path=str(path))
    assert code == "limit_exceeded"


def test_a_row_of_ten_million_fields_fails_early(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes(b"," * 10_000_000 + b"\n")
    out = in_child("csv.read", {"path": str(path)}, {})
    code, message, field = out["error"]
    assert (code, field) == ("limit_exceeded", "path")
    assert "max_csv_record_fields = 100000" in message
    assert out["grew_kib"] < 64 * 1024, out  # the file is 10 MB; the old reader took 3.8 GB


def test_the_field_limit_counts_exactly(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text(",".join(f"c{i}" for i in range(1000)) + "\n" + ",".join("1" * 1000) + "\n")
    out = call("csv.read", {"max_csv_record_fields": 1000}, path=str(path))
    assert len(out["rows"][0]) == 1000
    code, message, _ = failure("csv.read", {"max_csv_record_fields": 999}, path=str(path))
    assert code == "limit_exceeded" and "line 1" in message


def test_text_stats_streams_a_long_line(long_line: Path) -> None:
    # One 96 MiB "word": listing words past the vocabulary limit fails, counting streams.
    limit = 4 * MiB
    out = in_child("text.stats", {"path": str(long_line)}, {"max_text_vocabulary_bytes": limit})
    code, message, field = out["error"]
    assert (code, field) == ("limit_exceeded", "path")
    assert "top: 0" in message
    assert out["grew_kib"] * 1024 < 4 * limit + 8 * MiB, out
    out = in_child("text.stats", {"path": str(long_line), "top": 0}, {})
    assert out["output"]["lines"] == 3 and out["output"]["words"] == 6
    assert out["grew_kib"] < 16 * 1024, out


def test_inline_rows_stop_at_the_output_limit(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n" + "".join(f"{i},{'z' * 100}\n" for i in range(1000)))
    code, message, _ = failure("csv.read", {"max_output_bytes": 10_000}, path=str(path))
    assert code == "invalid_output" and "10000 bytes" in message
    assert len(call("csv.read", {"max_output_bytes": 200_000}, path=str(path))["rows"]) == 1000


# -- FIFOs and other files that are not regular ------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("csv.read", {}, "path"),
        ("csv.query", {"where": "a = 1"}, "path"),
        ("text.stats", {}, "path"),
        ("csv.write", {"rows": [{"a": 1}]}, "path"),
        ("csv.write", {"rows": [{"a": 1}], "append": True}, "path"),
    ],
    ids=["read", "query", "text", "write", "append"],
)
def test_a_fifo_is_refused_without_blocking(
    fifo: Path, name: str, params: dict[str, Any], field: str
) -> None:
    with pytest.raises(_native.NativeNodeError) as info:
        in_thread(lambda: call(name, path=str(fifo), **params), timeout=5)
    code, message, got_field = info.value.args
    assert (code, got_field) == ("invalid_path", field)
    assert "FIFO" in message and str(fifo) in message


def test_a_fifo_as_query_output_is_refused(small: Path, fifo: Path) -> None:
    with pytest.raises(_native.NativeNodeError) as info:
        in_thread(lambda: call("csv.query", path=str(small), output={"path": str(fifo)}), 5)
    assert info.value.args[0] == "invalid_path" and info.value.args[2] == "output"
    assert fifo.is_fifo()  # not replaced by a regular file


def test_a_folder_is_refused(tmp_path: Path) -> None:
    code, message, field = failure("csv.read", path=str(tmp_path))
    assert (code, field) == ("invalid_path", "path") and "folder" in message


# -- cancels land promptly ---------------------------------------------------------------------


def cancelled_within(name: str, params: dict[str, Any], after: float = 0.2) -> float:
    """Cancels a call ``after`` seconds in; how long it took to stop after the cancel."""
    token = _native.CancelToken()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = _native.call_native(name, params, token, "n")
        except _native.NativeNodeError as exc:
            box["err"] = exc.args

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    time.sleep(after)
    assert thread.is_alive(), "the work finished before the cancel; make it larger"
    token.cancel()
    start = time.monotonic()
    thread.join(10)
    took = time.monotonic() - start
    assert box.get("err", (None,))[0] == "cancelled", box
    return took


def test_a_cancel_lands_promptly_in_a_slow_filter(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    path.write_text("qty\n" + "7\n" * 1_000_000)
    where = " or ".join(f"qty = {i}" for i in range(100, 5_000))
    assert cancelled_within("csv.query", {"path": str(path), "where": where}) < 0.3


def test_a_cancel_lands_promptly_in_text_stats(long_line: Path) -> None:
    assert cancelled_within("text.stats", {"path": str(long_line), "top": 0}, 0.05) < 0.3


# -- the limits' names and defaults ----------------------------------------------------------------


def test_native_defaults_match_the_limits_model() -> None:
    defaults = _native.native_limit_defaults()
    model = Limits()
    for name, value in defaults.items():
        if name != "max_output_bytes":  # the host's output limit, a HostConfig field
            assert getattr(model, name) == value, name
    with pytest.raises(ValueError, match="unknown native limit"):
        call("csv.read", {"max_nothing": 1}, path="/x.csv")
