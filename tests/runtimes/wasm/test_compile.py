"""Compile-time checks of wasm node types: every problem is a diagnostic naming the node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from polyhost import Host, HostConfig
from polyhost.workflow._diagnostics import Diagnostic
from tests.runtimes.wasm.guests import COMMAND_ECHO, ECHO, Project, reactor

REACTOR_WITH_WASI = reactor(
    "(i64.const 0)",
    imports="""(import "wasi_snapshot_preview1" "fd_write"
                  (func (param i32 i32 i32 i32) (result i32)))""",
)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    with Host(HostConfig(home=tmp_path / "home"), store=None) as h:
        yield h


def diagnostics(host: Host, project: Project) -> list[Diagnostic]:
    flow = project.workflow([{"id": "score", "type": "t.node"}])
    return host.check(host.load(flow))


def only_problem(host: Host, project: Project) -> str:
    found = diagnostics(host, project)
    assert [(d.code, d.node, d.field) for d in found] == [
        ("invalid_wasm_module", "score", "type")
    ], found
    return found[0].message


@pytest.mark.parametrize("wat", [ECHO, COMMAND_ECHO, REACTOR_WITH_WASI])
def test_good_modules_pass(host: Host, project: Project, wat: str) -> None:
    project.wasm("t.node", wat)
    assert diagnostics(host, project) == []


def test_a_missing_module(host: Host, project: Project) -> None:
    project.node_type("t.node", "build/nowhere.wasm")
    assert "nowhere.wasm cannot be read" in only_problem(host, project)


def test_a_file_that_is_not_wasm(host: Host, project: Project) -> None:
    (project.root / "junk.wasm").write_bytes(b"#!/bin/sh\necho hi\n")
    project.node_type("t.node", "junk.wasm")
    assert "not a WebAssembly binary" in only_problem(host, project)


def test_a_module_that_does_not_validate(host: Host, project: Project) -> None:
    project.wasm("t.node", '(module (func (export "_start") (result i32)))')
    assert "does not validate" in only_problem(host, project)


def test_a_truncated_module(host: Host, project: Project) -> None:
    project.wasm("t.node", ECHO)
    path = project.root / "t_node.wasm"
    path.write_bytes(path.read_bytes()[:40])
    message = only_problem(host, project)
    assert "t_node.wasm" in message


def test_a_component_is_not_a_core_module(host: Host, project: Project) -> None:
    (project.root / "c.wasm").write_bytes(b"\0asm\x0d\x00\x01\x00")
    project.node_type("t.node", "c.wasm")
    assert "component" in only_problem(host, project)


def test_a_module_without_the_abi_exports(host: Host, project: Project) -> None:
    project.wasm("t.node", '(module (memory (export "memory") 1) (func (export "main")))')
    assert "neither `polyhost_run`" in only_problem(host, project)


def test_a_reactor_missing_its_allocator(host: Host, project: Project) -> None:
    wat = ECHO.replace('(func $alloc (export "polyhost_alloc")', "(func $alloc")
    project.wasm("t.node", wat)
    assert "neither `polyhost_run`" in only_problem(host, project)


def test_imports_from_an_unknown_module(host: Host, project: Project) -> None:
    project.wasm(
        "t.node",
        '(module (import "env" "abort" (func (param i32))) (func (export "_start")))',
    )
    assert "imports env.abort" in only_problem(host, project)


def test_an_import_the_host_does_not_provide(host: Host, project: Project) -> None:
    project.wasm(
        "t.node", '(module (import "polyhost" "http_get" (func)) (func (export "_start")))'
    )
    assert "polyhost.http_get, which the host does not provide" in only_problem(host, project)


def test_a_wrong_signature(host: Host, project: Project) -> None:
    wat = (
        reactor("(i64.const 0)")
        .replace(
            "(param $ptr i32) (param $len i32) (result i64)",
            "(param $ptr i32) (param $len i32) (result i32)",
        )
        .replace("(i64.const 0)", "(i32.const 0)")
    )
    project.wasm("t.node", wat)
    message = only_problem(host, project)
    assert "`polyhost_run` has the signature (i32, i32) -> (i32)" in message


def test_a_host_import_with_a_wrong_signature(host: Host, project: Project) -> None:
    project.wasm(
        "t.node",
        '(module (import "polyhost" "log" (func (param i32))) (func (export "_start")))',
    )
    assert "`polyhost.log` has the signature (i32) -> ()" in only_problem(host, project)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"limits": {"memroy": "1MiB"}}, "limits.memroy: unknown limit"),
        ({"limits": {"memory": "lots"}}, "limits.memory: not a size"),
        ({"limits": {"fuel": "many"}}, "limits.fuel: expected a whole number"),
        ({"limits": {"timeout": 0}}, "limits.timeout: must be positive"),
        ({"grants": {"read": ["../secrets"]}}, "grants.read: '../secrets' climbs out"),
        ({"grants": {"write": ["/etc"]}}, "grants.write: '/etc' is absolute"),
        ({"grants": {"net": ["example.com"]}}, "grants.net: unknown grant"),
        ({"grants": {"env": "TZ"}}, "grants.env: expected a list of strings"),
    ],
)
def test_bad_limits_and_grants(
    host: Host, project: Project, extra: dict[str, object], expected: str
) -> None:
    project.wasm("t.node", ECHO, **extra)
    assert expected in only_problem(host, project)


def test_every_problem_is_reported(host: Host, project: Project) -> None:
    project.node_type("t.node", "missing.wasm", limits={"memory": "x"}, grants={"net": []})
    assert len(diagnostics(host, project)) == 3
