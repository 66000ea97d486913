"""``polyhost run``: the JSON object, exit statuses, inputs and plain progress."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .conftest import Polyhost

SPEC_KEYS = {"execution_id", "status", "outputs", "error", "duration_ms", "nodes"}
NODE_KEYS = {"status", "attempts", "output", "error", "duration_ms"}


def test_run_json_prints_one_result_object(polyhost: Polyhost, two_nodes: Path) -> None:
    done = polyhost("run", str(two_nodes), "--input", "name=world", "--json")
    assert done.code == 0, done.stderr
    result = done.json()
    assert set(result) >= SPEC_KEYS
    assert result["status"] == "completed"
    assert result["outputs"] == {"greeting": "hello world!"}
    assert result["error"] is None
    assert isinstance(result["execution_id"], str) and result["execution_id"]
    assert isinstance(result["duration_ms"], int | float)
    assert list(result["nodes"]) == ["hello", "shout"]
    for node in result["nodes"].values():
        assert set(node) == NODE_KEYS
        assert node["status"] == "completed" and node["attempts"] == 1
    assert result["nodes"]["shout"]["output"] == {"value": "hello world!"}


def test_a_failing_run_exits_1_naming_the_node(polyhost: Polyhost, failing: Path) -> None:
    done = polyhost("run", str(failing), "--json")
    assert done.code == 1
    result = done.json()
    assert result["status"] == "failed"
    assert result["error"]["node"] == "boom"
    assert result["error"]["code"] == "broken"
    assert "it broke" in result["error"]["message"]
    assert result["nodes"]["start"]["status"] == "completed"
    assert result["nodes"]["boom"]["status"] == "failed"


def test_a_failing_run_without_json_names_the_node(polyhost: Polyhost, failing: Path) -> None:
    done = polyhost("run", str(failing))
    assert done.code == 1
    assert "failed" in done.stdout
    assert "node 'boom'" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_an_invalid_workflow_exits_2_naming_node_and_field(
    polyhost: Polyhost, invalid: Path
) -> None:
    done = polyhost("run", str(invalid))
    assert done.code == 2
    assert "node 'first'" in done.stderr
    assert "with.value" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_invalid_workflow_with_json_still_prints_one_object(
    polyhost: Polyhost, invalid: Path
) -> None:
    done = polyhost("run", str(invalid), "--json")
    assert done.code == 2
    result = done.json()
    assert result["execution_id"] is None
    assert result["status"] == "invalid"
    assert result["error"]["node"] == "first"
    assert any(
        d["node"] == "first" and d["field"] == "with.value" and d["severity"] == "error"
        for d in result["diagnostics"]
    )


def test_a_missing_file_exits_2_without_a_traceback(polyhost: Polyhost) -> None:
    done = polyhost("run", "no-such-file.yaml")
    assert done.code == 2
    assert "no-such-file.yaml" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_inputs_exit_2(polyhost: Polyhost, two_nodes: Path) -> None:
    done = polyhost("run", str(two_nodes), "--json")
    assert done.code == 2
    result = done.json()
    assert result["status"] == "invalid"
    assert result["error"]["code"] == "invalid_inputs"
    assert "name" in result["error"]["message"]


def test_a_malformed_input_pair_exits_2(polyhost: Polyhost, two_nodes: Path) -> None:
    done = polyhost("run", str(two_nodes), "--input", "name")
    assert done.code == 2
    assert "KEY=VALUE" in done.stderr


def test_input_values_are_json_when_they_parse_else_text(
    polyhost: Polyhost, write: Callable[[str, str], Path]
) -> None:
    flow = write(
        "echo.yaml",
        "version: 1\n"
        "nodes:\n"
        "  - {id: echo, type: core.transform, with: {value: '{{ input }}'}}\n"
        "outputs:\n"
        "  inputs: '{{ echo.value }}'\n",
    )
    inputs = write("inputs.json", json.dumps({"n": 1, "kept": "from file", "s": "replaced"}))
    done = polyhost(
        "run",
        str(flow),
        "--inputs",
        str(inputs),
        "--input",
        "n=42",
        "--input",
        "s=hello world",
        "--input",
        "b=true",
        "--input",
        "l=[1, 2]",
        "--input",
        'q="42"',
        "--input",
        "nan=NaN",
        "--input",
        "empty=",
        "--json",
    )
    assert done.code == 0, done.stderr
    assert done.json()["outputs"]["inputs"] == {
        "n": 42,
        "kept": "from file",
        "s": "hello world",
        "b": True,
        "l": [1, 2],
        "q": "42",
        "nan": "NaN",
        "empty": "",
    }


def test_an_unreadable_inputs_file_exits_2(polyhost: Polyhost, two_nodes: Path) -> None:
    done = polyhost("run", str(two_nodes), "--inputs", "missing.json")
    assert done.code == 2
    assert "missing.json" in done.stderr


def test_piped_output_has_a_line_per_transition_and_a_summary(
    polyhost: Polyhost, two_nodes: Path
) -> None:
    done = polyhost("run", str(two_nodes), "--input", "name=world")
    assert done.code == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("hello" in line and "running" in line for line in lines)
    assert any("hello" in line and "completed" in line for line in lines)
    assert any("shout" in line and "completed" in line for line in lines)
    assert "hello world!" in done.stdout
    assert "\x1b[" not in done.stdout  # no terminal control codes in a pipe
