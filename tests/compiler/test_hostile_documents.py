"""Hostile and careless documents, through the real ``polyhost`` command.

Each one gets exit status 2 and diagnostics naming the node and field, quickly and in bounded
memory; ``compile --json`` always prints its one object.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import polyhost_command

ONE_NODE = """\
version: 1
nodes:
  - id: a
    type: core.transform
    with: {value: 1}
"""


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.stdout)

    def diagnostics(self) -> list[dict[str, Any]]:
        found = self.json()
        assert found["ok"] is False
        return list(found["diagnostics"])


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def polyhost(cwd: Path, *args: str, **env: str) -> Done:
    environ = {k: v for k, v in os.environ.items() if k != "POLYHOST_DEBUG"}
    environ.update({"POLYHOST_HOME": str(cwd / "home"), "NO_COLOR": "1", **env})
    start = time.monotonic()
    done = subprocess.run(
        [*polyhost_command(), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Done(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def diagnose(path: Path) -> list[dict[str, Any]]:
    """What ``compile --json`` reports, in this process (the many small cases)."""
    from polyhost import CompileError, Host, HostConfig

    with Host(HostConfig(home=path.parent / "home"), store=None) as host:
        try:
            found = host.check(host.load(path))
        except CompileError as exc:
            found = list(exc.diagnostics)
    assert any(d.severity == "error" for d in found), found
    return [d.to_dict() for d in found]


def compile_json(path: Path, *extra: str, **env: str) -> list[dict[str, Any]]:
    done = polyhost(path.parent, "compile", str(path), "--json", *extra, **env)
    assert done.code == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.diagnostics()


def one(found: list[dict[str, Any]], code: str) -> dict[str, Any]:
    matches = [d for d in found if d["code"] == code]
    assert matches, f"no {code} in {found}"
    return matches[0]


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# 1. aliases ---------------------------------------------------------------------------------


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = ['  l0: &l0 "lol"']
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"  l{level}: &l{level} [{refs}]")
    return "\n".join(lines)


def test_an_alias_bomb_in_with_is_refused_fast(tmp_path: Path) -> None:
    text = (
        "version: 1\nnodes:\n  - id: a\n    type: core.transform\n    with:\n"
        + billion_laughs().replace("\n  ", "\n      ").replace("  l0", "      l0", 1)
        + "\n"
    )
    path = write(tmp_path, "bomb.yaml", text)
    found = compile_json(path)
    limit = one(found, "limit_exceeded")
    assert "max_document_values" in limit["message"]
    assert limit["node"] == "a" and limit["field"].startswith("with.")
    done = polyhost(tmp_path, "run", str(path), "--json")
    assert done.code == 2 and done.seconds < 30
    assert "max_document_values" in done.stderr


def test_an_alias_of_its_own_anchor_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "loop.yaml", ONE_NODE.replace("{value: 1}", "{value: &x [*x]}"))
    diagnostic = one(compile_json(path), "invalid_value")
    assert diagnostic["node"] == "a" and diagnostic["field"] == "with.value[0]"


# 2. size ------------------------------------------------------------------------------------


def test_a_document_past_max_document_bytes_is_refused_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path, "big.yaml", ONE_NODE + "#" * 5000 + "\n")
    found = compile_json(path, POLYHOST_LIMIT_MAX_DOCUMENT_BYTES="4096")
    assert "max_document_bytes" in one(found, "limit_exceeded")["message"]


def test_a_large_yaml_file_of_small_lists_loads_in_bounded_time(tmp_path: Path) -> None:
    rows = "".join(f"        - [{i}, {i + 1}, x{i}, true]\n" for i in range(60_000))
    text = ONE_NODE.replace("with: {value: 1}", "with:\n      value:\n") + rows
    path = write(tmp_path, "rows.yaml", text)
    assert path.stat().st_size > 1_500_000
    done = polyhost(tmp_path, "compile", str(path), "--json")
    assert done.code == 0, done.stdout + done.stderr
    assert done.seconds < 30


# 3. size of the graph ------------------------------------------------------------------------


def test_a_10000_node_chain_compiles_in_bounded_time_and_memory(tmp_path: Path) -> None:
    nodes = [{"id": "n0", "type": "core.transform", "with": {"value": 0}}]
    nodes += [
        {"id": f"n{i}", "type": "core.transform", "with": {"value": f"{{{{ n{i - 1}.value }}}}"}}
        for i in range(1, 10_000)
    ]
    edges = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(9_999)]
    path = write(tmp_path, "chain.json", json.dumps({"version": 1, "nodes": nodes, "edges": edges}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = polyhost(tmp_path, "compile", str(path), "--json")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert done.code == 0, done.stdout[:2000]
    assert done.seconds < 30
    # ru_maxrss of children is the largest child so far: bounded either way.
    assert max(peak_kib, before) < 600 * 1024


# 4. depth -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_100000_deep_document_is_a_limit_not_a_crash(tmp_path: Path, suffix: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    if suffix == ".json":
        text = '{"version": 1, "nodes": [{"id": "a", "type": "core.transform", "with": {"value": '
        text += deep + "}}]}"
    else:
        text = ONE_NODE.replace("{value: 1}", "{value: " + deep + "}")
    path = write(tmp_path, "deep" + suffix, text)
    limit = one(compile_json(path), "limit_exceeded")
    assert "max_document_depth" in limit["message"]
    if suffix == ".yaml":  # the YAML reader knows where it stopped
        assert limit["node"] == "a" and limit["field"].startswith("with.value")
    done = polyhost(tmp_path, "run", str(path), "--json")
    assert done.code == 2 and "Traceback" not in done.stderr


def test_with_nested_150_deep_names_the_node(tmp_path: Path) -> None:
    value = "{a: " * 150 + "1" + "}" * 150
    path = write(tmp_path, "with.yaml", ONE_NODE.replace("{value: 1}", "{value: " + value + "}"))
    limit = one(compile_json(path), "limit_exceeded")
    assert limit["node"] == "a" and limit["field"].startswith("with.value.a.a")


def nested_loops(depth: int) -> str:
    lines = ["version: 1", "nodes:"]
    indent = ""
    for level in range(depth):
        lines += [
            f"{indent}  - id: l{level}",
            f"{indent}    type: core.loop",
            f"{indent}    with: {{count: 1}}",
            f"{indent}    body:",
            f"{indent}      nodes:",
        ]
        indent += "      "
    lines.append(f"{indent}  - {{id: leaf, type: core.transform, with: {{value: 1}}}}")
    return "\n".join(lines) + "\n"


def test_45_nested_loops_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "loops.yaml", nested_loops(45))
    limit = one(compile_json(path), "limit_exceeded")
    assert "max_document_depth" in limit["message"]
    # With room in the document, the body limit names the loop node that goes past it.
    found = compile_json(path, POLYHOST_LIMIT_MAX_DOCUMENT_DEPTH="512")
    limit = one(found, "limit_exceeded")
    assert "max_body_depth" in limit["message"]
    assert limit["node"].endswith("l16") and limit["field"] == "body"


# 5. what may not be in a document --------------------------------------------------------------


def test_duplicate_keys_are_errors_naming_where(tmp_path: Path) -> None:
    yaml_path = write(
        tmp_path,
        "dup.yaml",
        ONE_NODE.replace("{value: 1}", "{value: 1, value: 2}").replace(
            "    type: core.transform", "    type: core.transform\n    type: core.log"
        ),
    )
    found = compile_json(yaml_path)
    fields = {(d["node"], d["field"]) for d in found if d["code"] == "duplicate_key"}
    assert fields == {("a", "type"), ("a", "with.value")}
    json_path = write(
        tmp_path,
        "dup.json",
        '{"version": 1, "version": 1, "nodes": [{"id": "a", "type": "core.transform", '
        '"with": {"value": 1, "value": 2}}]}',
    )
    found = compile_json(json_path)
    fields = {(d["node"], d["field"]) for d in found if d["code"] == "duplicate_key"}
    assert fields == {(None, "version"), ("a", "with.value")}


@pytest.mark.parametrize("version", ["true", "1.0", '"1"', "2"])
def test_version_is_only_the_integer_1(tmp_path: Path, version: str) -> None:
    path = write(tmp_path, "v.yaml", ONE_NODE.replace("version: 1", f"version: {version}"))
    assert one(diagnose(path), "invalid_value")["field"] == "version"


def test_a_lone_surrogate_is_refused_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.json",
        '{"version": 1, "nodes": [{"id": "a", "type": "core.transform", '
        '"with": {"value": "x\\uD800"}}]}',
    )
    diagnostic = one(compile_json(path), "invalid_value")
    assert (diagnostic["node"], diagnostic["field"]) == ("a", "with.value")
    assert "surrogate" in diagnostic["message"]
    done = polyhost(tmp_path, "run", str(path), "--json")
    assert done.code == 2 and "store_error" not in done.stdout + done.stderr


@pytest.mark.parametrize("key", ["1.5", "true", "null", "[1]"])
def test_a_key_that_is_not_a_string_is_a_diagnostic(tmp_path: Path, key: str) -> None:
    path = write(tmp_path, "k.yaml", ONE_NODE.replace("{value: 1}", f"{{value: {{? {key} : x}}}}"))
    diagnostic = one(diagnose(path), "invalid_value")
    assert diagnostic["node"] == "a" and diagnostic["field"].startswith("with.value")


@pytest.mark.parametrize(
    ("snippet", "field"),
    [
        ("    with: {count: 1e30}", "with.count"),
        ("    with: {value: 1.0e+30}", "with.value"),
        ("    with: {value: 99999999999999999999}", "with.value"),
        ("    with: {value: -.inf}", "with.value"),
        ("    retry: {delay: .inf}\n    with: {value: 1}", "retry.delay"),
        ("    timeout: .nan\n    with: {value: 1}", "timeout"),
        ("    timeout: 1e400\n    with: {value: 1}", "timeout"),
        ('    timeout: "999999h"\n    with: {value: 1}', "timeout"),
        ("    timeout: -1\n    with: {value: 1}", "timeout"),
    ],
)
def test_huge_and_non_finite_numbers_name_the_field(
    tmp_path: Path, snippet: str, field: str
) -> None:
    if "1e30" in snippet:  # YAML 1.1 reads 1e30 as text; JSON as a number
        text = (
            '{"version": 1, "nodes": [{"id": "a", "type": "core.loop", "with": {"count": 1e30}}]}'
        )
        path = write(tmp_path, "n.json", text)
    else:
        path = write(tmp_path, "n.yaml", ONE_NODE.replace("    with: {value: 1}", snippet))
    found = diagnose(path)
    assert any(d["node"] == "a" and d["field"] == field for d in found), found


def test_a_nul_byte_in_any_path_is_a_typed_error(tmp_path: Path) -> None:
    # argv cannot carry a NUL (the command line never sees one): the API paths can.
    good = write(tmp_path, "ok.yaml", ONE_NODE)
    from polyhost import Host, HostConfig, ManifestError, WorkflowLoadError

    with Host(HostConfig(home=tmp_path / "home"), store=None) as host:
        with pytest.raises(WorkflowLoadError, match="NUL"):
            host.load(str(tmp_path / "a\0b.yaml"))
        with pytest.raises(ManifestError, match="NUL"):
            host.load(good, str(tmp_path / "m\0.toml"))
    from polyhost._errors import InputError
    from polyhost.cli._inputs import parse_inputs

    with pytest.raises(InputError, match="NUL"):
        parse_inputs([], tmp_path / "i\0.json")


def test_an_unknown_input_name_exits_2_naming_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "in.yaml",
        "version: 1\ninputs:\n  type: object\n  properties:\n    name: {type: string}\n"
        "nodes:\n  - id: a\n    type: core.transform\n    with: {value: '{{ input.name }}'}\n",
    )
    done = polyhost(tmp_path, "run", str(path), "--input", "nmae=x", "--json")
    assert done.code == 2
    assert "nmae" in done.stderr and "did you mean 'name'" in done.stderr
    ok = polyhost(tmp_path, "run", str(path), "--input", "name=x", "--json")
    assert ok.code == 0, ok.stderr


# 6. the output contract -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "[1, 2]\n",
        "version: 1\nnodes: 3\n",
        "version: 1\nnodse: []\n",
        "version: 1\nnodes:\n  - {id: a, type: core.transform, retyr: {}}\n",
        "version: 1\nnodes:\n  - {id: 3, type: core.transform}\n",
        "{",
    ],
)
def test_compile_json_always_prints_its_object(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    found = compile_json(path)
    assert found and all(d["severity"] == "error" and d["code"] for d in found)


def test_one_structural_error_does_not_hide_the_others(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "many.yaml",
        "version: 1\n"
        "nodes:\n"
        "  - {id: a, type: core.transform, with: {value: 1}, retyr: {}}\n"
        "  - {id: b, type: core.transfrom}\n"
        "  - {id: c, type: core.transform, with: {value: '{{ nowhere.value }}'}}\n"
        "  - {id: d, type: core.transform, with: {value: '{{ a.value }}'}}\n"
        "edges:\n"
        "  - {from: a, to: d}\n",
    )
    found = compile_json(path)
    codes = {(d["code"], d["node"]) for d in found}
    assert ("unknown_key", "a") in codes
    assert ("unknown_node_type", "b") in codes
    assert ("unknown_reference", "c") in codes
    # `a` is only set aside: the edge from it and `d`'s read of it are not reported.
    assert not any(d["node"] == "d" for d in found)
