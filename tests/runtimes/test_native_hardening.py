"""Hostile input to the native nodes through `polyhost run`, as a user meets it: a bad
document exits 2 with a diagnostic naming the node and field, a bad run exits 1 with a failed
node, the process exits promptly, its memory stays bounded by the limit set, and the run is
recorded as ended."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import POLYHOST, listed_runs

MiB = 1024 * 1024


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    root.mkdir()
    (root / "ok.csv").write_text("a,b\n1,2\n3,4\n")
    return root


@pytest.fixture
def env(tmp_path: Path, folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "POLYHOST_HOME": str(tmp_path / "home"),
        "POLYHOST_ALLOWED_ROOTS": str(folder),
    }


def flow(folder: Path, node: dict[str, Any], **extra: Any) -> Path:
    path = folder / "flow.json"
    path.write_text(
        json.dumps({"version": 1, "name": "t", "nodes": [{"id": "n", **node}], **extra})
    )
    return path


def run(
    path: Path, env: dict[str, str], *args: str, timeout: float = 60
) -> tuple[int, dict[str, Any], float, int]:
    """`polyhost run --json`: exit code, its JSON, wall seconds, and peak RSS in bytes."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [str(POLYHOST), "run", str(path), "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=path.parent,
    )
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.stdout.close()
        # wait4, not wait: it also gives the child's peak RSS.
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    took = time.monotonic() - start
    assert took < timeout, "polyhost run did not exit"
    return proc.returncode, json.loads(out), took, usage.ru_maxrss * 1024


def node_error(document: dict[str, Any]) -> dict[str, Any]:
    error: dict[str, Any] = document["nodes"]["n"]["error"]
    return error


def test_a_deep_constant_where_is_a_diagnostic(folder: Path, env: dict[str, str]) -> None:
    where = "(" * 10_000 + "a = 1" + ")" * 10_000
    code, doc, _, _ = run(
        flow(folder, {"type": "csv.query", "with": {"path": "ok.csv", "where": where}}), env
    )
    assert code == 2
    [diagnostic] = doc["diagnostics"]
    assert diagnostic["code"] == "limit_exceeded"
    assert (diagnostic["node"], diagnostic["field"]) == ("n", "with.where")
    assert "max_csv_where_depth" in diagnostic["message"]


def test_a_where_syntax_error_is_a_diagnostic(folder: Path, env: dict[str, str]) -> None:
    code, doc, _, _ = run(
        flow(folder, {"type": "csv.query", "with": {"path": "ok.csv", "where": "a >"}}), env
    )
    assert code == 2
    [diagnostic] = doc["diagnostics"]
    assert (diagnostic["code"], diagnostic["field"]) == ("invalid_parameters", "with.where")
    assert "position 4" in diagnostic["message"]


def test_a_deep_where_from_an_input_fails_the_node(folder: Path, env: dict[str, str]) -> None:
    inputs = {"type": "object", "properties": {"w": {"type": "string"}}}
    node = {"type": "csv.query", "with": {"path": "ok.csv", "where": "{{ input.w }}"}}
    code, doc, _, _ = run(
        flow(folder, node, inputs=inputs), env, "--input", "w=" + "not " * 20_000 + "a = 1"
    )
    assert code == 1 and doc["status"] == "failed"
    error = node_error(doc)
    assert (error["code"], error["field"]) == ("limit_exceeded", "where")
    assert listed_runs(env)[0]["status"] == "failed"


def test_a_fifo_fails_the_node_and_the_process_exits(folder: Path, env: dict[str, str]) -> None:
    os.mkfifo(folder / "pipe")
    node = {"type": "csv.read", "timeout": "5s", "with": {"path": "pipe"}}
    code, doc, took, _ = run(flow(folder, node), env, timeout=30)
    assert code == 1
    error = node_error(doc)
    assert (error["code"], error["field"]) == ("invalid_path", "path")
    assert "FIFO" in error["message"]
    assert took < 5  # refused at once, not after the node's timeout
    assert listed_runs(env)[0]["status"] == "failed"


def test_a_huge_record_fails_with_memory_bounded_by_the_setting(
    folder: Path, env: dict[str, str]
) -> None:
    _, _, _, baseline = run(flow(folder, {"type": "csv.read", "with": {"path": "ok.csv"}}), env)
    with (folder / "long.csv").open("wb") as f:
        f.write(b"a,b\n")
        for _ in range(64):
            f.write(b"x" * MiB)
        f.write(b",y\n")
    limit = 4 * MiB
    env = {**env, "POLYHOST_LIMIT_MAX_CSV_RECORD_BYTES": str(limit)}
    code, doc, _, rss = run(flow(folder, {"type": "csv.read", "with": {"path": "long.csv"}}), env)
    assert code == 1
    error = node_error(doc)
    assert (error["code"], error["field"]) == ("limit_exceeded", "path")
    assert f"max_csv_record_bytes = {limit}" in error["message"]
    # The old reader peaked at three times the line (here 192 MiB).
    assert rss - baseline < 6 * limit + 16 * MiB, (rss, baseline)


def test_a_timeout_is_noticed_promptly(folder: Path, env: dict[str, str]) -> None:
    with (folder / "words.txt").open("wb") as f:
        for _ in range(64):
            f.write(b"lorem ipsum dolor sit amet " * (MiB // 27 + 1))
    _, _, baseline, _ = run(flow(folder, {"type": "csv.read", "with": {"path": "ok.csv"}}), env)
    node = {"type": "text.stats", "timeout": "200ms", "with": {"path": "words.txt"}}
    code, doc, took, _ = run(flow(folder, node), env)
    assert code == 1
    assert node_error(doc)["code"] == "timeout"
    # The node's share: its 200 ms, then the cancel within one 64 KiB chunk.
    assert took < baseline + 0.2 + 1.0, (took, baseline)
