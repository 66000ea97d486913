"""``polyhost compile``, ``nodes``, ``schema`` and ``--help``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .conftest import Polyhost


def test_help_lists_the_commands(polyhost: Polyhost) -> None:
    done = polyhost("--help")
    assert done.code == 0
    for command in ("run", "compile", "runs", "nodes", "schema"):
        assert command in done.stdout


def test_compile_json_of_a_valid_workflow(polyhost: Polyhost, two_nodes: Path) -> None:
    done = polyhost("compile", str(two_nodes), "--json")
    assert done.code == 0, done.stderr
    assert done.json()["ok"] is True
    assert all(d["severity"] == "warning" for d in done.json()["diagnostics"])


def test_compile_json_of_an_invalid_workflow(polyhost: Polyhost, invalid: Path) -> None:
    done = polyhost("compile", str(invalid), "--json")
    assert done.code == 2
    report = done.json()
    assert report["ok"] is False
    errors = [d for d in report["diagnostics"] if d["severity"] == "error"]
    assert errors
    assert set(errors[0]) == {"severity", "code", "message", "node", "field"}
    assert any(d["node"] == "first" and d["field"] == "with.value" for d in errors)


def test_compile_names_node_and_field_on_stderr(polyhost: Polyhost, invalid: Path) -> None:
    done = polyhost("compile", str(invalid))
    assert done.code == 2
    assert "node 'first'" in done.stderr and "with.value" in done.stderr


def test_compile_of_unparsable_yaml_exits_2(
    polyhost: Polyhost, write: Callable[[str, str], Path]
) -> None:
    flow = write("broken.yaml", "version: 1\nnodes: [\n")
    done = polyhost("compile", str(flow), "--json")
    assert done.code == 2
    assert done.json()["ok"] is False


def test_nodes_lists_the_core_types_with_their_runtime(polyhost: Polyhost) -> None:
    done = polyhost("nodes", "--json")
    assert done.code == 0, done.stderr
    types = {entry["type"]: entry for entry in done.json()}
    assert types["core.transform"]["runtime"] == "python"
    assert {"type", "runtime", "version", "description", "ports"} <= set(types["core.transform"])
    table = polyhost("nodes")
    assert "core.transform" in table.stdout and "python" in table.stdout


def test_nodes_reads_a_manifest(polyhost: Polyhost, write: Callable[[str, str], Path]) -> None:
    write("acme/acme_nodes.py", "def upper(params):\n    return {'text': params['text'].upper()}\n")
    manifest = write(
        "acme/polyhost.toml",
        '[[nodes]]\ntype = "acme.upper"\nruntime = "python"\nhandler = "acme_nodes:upper"\n',
    )
    done = polyhost("nodes", "--json", "--nodes", str(manifest))
    assert done.code == 0, done.stderr
    assert "acme.upper" in {entry["type"] for entry in done.json()}


def test_schema_prints_the_workflow_json_schema(polyhost: Polyhost) -> None:
    done = polyhost("schema")
    assert done.code == 0
    schema = json.loads(done.stdout)
    assert schema["type"] == "object"
    assert "nodes" in schema["properties"]
