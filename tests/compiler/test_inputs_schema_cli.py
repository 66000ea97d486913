"""The inputs schema's guarantees seen from the real ``polyhost`` command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.cli.conftest import polyhost_command


def polyhost(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "POLYHOST_DEBUG"}
    env["POLYHOST_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [*polyhost_command(), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def workflow(
    tmp_path: Path, inputs: dict[str, Any], nodes: list[dict[str, Any]] | None = None
) -> Path:
    path = tmp_path / "flow.json"
    document = {
        "version": 1,
        "inputs": inputs,
        "nodes": nodes or [{"id": "say", "type": "core.log", "with": {"message": "hi"}}],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_a_redos_pattern_rejects_bad_input_at_once(tmp_path: Path) -> None:
    path = workflow(
        tmp_path,
        {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}},
    )
    start = time.monotonic()
    code, stdout, _ = polyhost(
        tmp_path, "run", str(path), "--input", "s=" + "a" * 34 + "!", "--json"
    )
    assert time.monotonic() - start < 20  # the whole process; Python's `re` took over 30 s
    assert code == 2
    result = json.loads(stdout)
    assert result["status"] == "invalid"
    assert result["error"]["code"] == "invalid_inputs"
    code, _, stderr = polyhost(tmp_path, "run", str(path), "--input", "s=aaaa")
    assert code == 0, stderr


def test_an_ecma_pattern_with_unicode_properties_runs(tmp_path: Path) -> None:
    path = workflow(
        tmp_path,
        {"type": "object", "properties": {"name": {"type": "string", "pattern": r"^\p{Letter}+$"}}},
    )
    code, _, stderr = polyhost(tmp_path, "run", str(path), "--input", "name=école")
    assert code == 0, stderr
    code, _, stderr = polyhost(tmp_path, "run", str(path), "--input", "name=école1")
    assert code == 2
    assert "name" in stderr


def test_a_remote_ref_is_a_diagnostic_and_nothing_is_fetched(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/schema.json"
        path = workflow(tmp_path, {"type": "object", "properties": {"x": {"$ref": url}}})
        code, stdout, _ = polyhost(tmp_path, "compile", str(path), "--json")
        assert code == 2
        [found] = json.loads(stdout)["diagnostics"]
        assert found["code"] == "invalid_inputs_schema"
        assert found["field"] == "inputs.properties.x.$ref"
        assert url in found["message"]
        code, _, stderr = polyhost(tmp_path, "run", str(path), "--input", "x=1")
        assert code == 2
        assert "inputs.properties.x.$ref" in stderr
        try:
            server.accept()
        except TimeoutError:
            pass
        else:
            raise AssertionError("polyhost connected to the $ref's host")


def test_an_invalid_default_is_reported_at_compile_time_on_the_default(tmp_path: Path) -> None:
    path = workflow(
        tmp_path,
        {
            "type": "object",
            "properties": {"when": {"type": "string", "format": "date-time", "default": "soon"}},
        },
    )
    code, stdout, _ = polyhost(tmp_path, "compile", str(path), "--json")
    assert code == 2
    [found] = json.loads(stdout)["diagnostics"]
    assert (found["code"], found["field"]) == (
        "invalid_inputs_schema",
        "inputs.properties.when.default",
    )
    assert "date-time" in found["message"]


def test_an_approval_schema_is_checked_like_the_inputs_schema(tmp_path: Path) -> None:
    nodes = [
        {
            "id": "ask",
            "type": "core.approval",
            "with": {
                "schema": {
                    "type": "object",
                    "properties": {"ok": {"type": "string", "pattern": "(?=y)"}},
                }
            },
        }
    ]
    path = workflow(tmp_path, {"type": "object"}, nodes)
    code, stdout, _ = polyhost(tmp_path, "compile", str(path), "--json")
    assert code == 2
    [found] = json.loads(stdout)["diagnostics"]
    assert found["node"] == "ask"
    assert found["field"] == "with.schema.properties.ok.pattern"
    assert "lookahead" in found["message"]
