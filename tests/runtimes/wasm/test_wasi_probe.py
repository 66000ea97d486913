"""WASI grants, probed by a WAT command that makes the raw WASI calls and prints the errno.

The probe's argv (from ``grants.args``) says what to do: ``p`` lists the preopened folders,
``e`` the environment, ``r<fd> PATH`` reads a file relative to preopen ``fd``, ``w<fd> PATH``
creates and writes one. The host must make every ungranted access fail.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from polyhost import RunStatus
from tests.runtimes.wasm.conftest import RunOne
from tests.runtimes.wasm.guests import Project

pytestmark = pytest.mark.anyio

PROBE = """(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name"
    (func $prestat_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "{\\"errno\\":")
  (data (i32.const 120) ",\\"content\\":\\"")
  (data (i32.const 140) "\\"}")
  (data (i32.const 150) "}")
  (data (i32.const 160) "{\\"count\\":")
  (data (i32.const 220) "written")
  (func $out (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $num (param $v i32)
    (local $p i32)
    (local.set $p (i32.const 16400))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $digit (local.get $v)))
    (call $out (local.get $p) (i32.sub (i32.const 16400) (local.get $p))))
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $end (loop $more
      (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $more)))
    (local.get $n))
  (func $nul_to_semicolon (param $p i32) (param $n i32)
    (block $end (loop $more
      (br_if $end (i32.eqz (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (if (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n))))
        (then (i32.store8 (i32.add (local.get $p) (local.get $n)) (i32.const 59))))
      (br $more))))
  (func $content (param $p i32) (param $n i32)
    (call $out (i32.const 120) (i32.const 12))
    (call $out (local.get $p) (local.get $n))
    (call $out (i32.const 140) (i32.const 2)))
  (func (export "_start")
    (local $op i32) (local $fd i32) (local $path i32) (local $err i32) (local $i i32)
    (local $w i32)
    (drop (call $args_sizes (i32.const 32) (i32.const 36)))
    (drop (call $args_get (i32.const 1024) (i32.const 2048)))
    (local.set $op (i32.load8_u (i32.load (i32.const 1028))))
    (local.set $fd
      (i32.sub (i32.load8_u (i32.add (i32.load (i32.const 1028)) (i32.const 1))) (i32.const 48)))
    (local.set $path (i32.load (i32.const 1032)))
    (if (i32.eq (local.get $op) (i32.const 112)) (then  ;; p: the preopened folders
      (local.set $i (i32.const 3))
      (local.set $w (i32.const 8192))
      (block $end (loop $more
        (br_if $end (call $prestat (local.get $i) (i32.const 48)))
        (drop (call $prestat_name (local.get $i) (local.get $w) (i32.load (i32.const 52))))
        (local.set $w (i32.add (local.get $w) (i32.load (i32.const 52))))
        (i32.store8 (local.get $w) (i32.const 59))
        (local.set $w (i32.add (local.get $w) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $more)))
      (call $out (i32.const 160) (i32.const 9))
      (call $num (i32.sub (local.get $i) (i32.const 3)))
      (call $content (i32.const 8192) (i32.sub (local.get $w) (i32.const 8192)))
      (return)))
    (if (i32.eq (local.get $op) (i32.const 101)) (then  ;; e: the environment
      (drop (call $env_sizes (i32.const 32) (i32.const 36)))
      (drop (call $env_get (i32.const 1024) (i32.const 8192)))
      (call $nul_to_semicolon (i32.const 8192) (i32.load (i32.const 36)))
      (call $out (i32.const 160) (i32.const 9))
      (call $num (i32.load (i32.const 32)))
      (call $content (i32.const 8192) (i32.load (i32.const 36)))
      (return)))
    (if (i32.eq (local.get $op) (i32.const 114)) (then  ;; r: read a file
      (local.set $err (call $path_open (local.get $fd) (i32.const 1) (local.get $path)
        (call $strlen (local.get $path)) (i32.const 0) (i64.const 2) (i64.const 0)
        (i32.const 0) (i32.const 40)))
      (call $out (i32.const 100) (i32.const 9))
      (call $num (local.get $err))
      (if (i32.eqz (local.get $err)) (then
        (i32.store (i32.const 16) (i32.const 8192))
        (i32.store (i32.const 20) (i32.const 4096))
        (drop (call $fd_read (i32.load (i32.const 40)) (i32.const 16) (i32.const 1)
                             (i32.const 24)))
        (call $content (i32.const 8192) (i32.load (i32.const 24)))
        (return)))
      (call $out (i32.const 150) (i32.const 1))
      (return)))
    ;; w: create (O_CREAT | O_TRUNC) and write a file
    (local.set $err (call $path_open (local.get $fd) (i32.const 1) (local.get $path)
      (call $strlen (local.get $path)) (i32.const 9) (i64.const 64) (i64.const 0)
      (i32.const 0) (i32.const 40)))
    (if (i32.eqz (local.get $err)) (then
      (i32.store (i32.const 16) (i32.const 220))
      (i32.store (i32.const 20) (i32.const 7))
      (local.set $err (call $fd_write (i32.load (i32.const 40)) (i32.const 16) (i32.const 1)
                                      (i32.const 24)))))
    (call $out (i32.const 100) (i32.const 9))
    (call $num (local.get $err))
    (call $out (i32.const 150) (i32.const 1)))
)"""


@pytest.fixture
def tree(project: Project) -> Path:
    """data/ (read-only grant), out/ (writable grant), a secret beside them, and symlinks."""
    root = project.root
    (root / "data").mkdir()
    (root / "data" / "hello.txt").write_text("hello from data")
    (root / "out").mkdir()
    (root / "secret.txt").write_text("not for guests")
    (root.parent / "outside.txt").write_text("far away")
    (root / "data" / "escape").symlink_to(root / "secret.txt")
    (root / "data" / "up").symlink_to("../secret.txt")
    (root / "data" / "tmp").symlink_to("/tmp")
    project.module("probe.wasm", PROBE)
    return root


async def probe(
    run_one: RunOne, project: Project, *args: str, grants: dict[str, Any] | None = None
) -> dict[str, Any]:
    name = f"t.probe{len(project._types)}"
    project.node_type(name, "probe.wasm", grants={**(grants or {}), "args": list(args)})
    result = await run_one(name)
    assert result.status is RunStatus.COMPLETED, result.error
    output: dict[str, Any] = result.nodes["w"].output
    return output


GRANTED = {"read": ["data/"], "write": ["out"]}


async def test_nothing_is_preopened_without_grants(
    run_one: RunOne, project: Project, tree: Path
) -> None:
    assert await probe(run_one, project, "p") == {"count": 0, "content": ""}
    assert (await probe(run_one, project, "r3", "secret.txt"))["errno"] != 0


async def test_granted_folders_appear_at_their_names(
    run_one: RunOne, project: Project, tree: Path
) -> None:
    found = await probe(run_one, project, "p", grants=GRANTED)
    assert found == {"count": 2, "content": "/data;/out;"}


async def test_a_granted_file_can_be_read(run_one: RunOne, project: Project, tree: Path) -> None:
    found = await probe(run_one, project, "r3", "hello.txt", grants=GRANTED)
    assert found == {"errno": 0, "content": "hello from data"}


async def test_a_read_only_grant_refuses_writes(
    run_one: RunOne, project: Project, tree: Path
) -> None:
    found = await probe(run_one, project, "w3", "new.txt", grants=GRANTED)
    assert found["errno"] != 0
    assert not (tree / "data" / "new.txt").exists()
    found = await probe(run_one, project, "w3", "hello.txt", grants=GRANTED)
    assert found["errno"] != 0
    assert (tree / "data" / "hello.txt").read_text() == "hello from data"


async def test_a_write_grant_allows_writes(run_one: RunOne, project: Project, tree: Path) -> None:
    found = await probe(run_one, project, "w4", "result.txt", grants=GRANTED)
    assert found == {"errno": 0}
    assert (tree / "out" / "result.txt").read_text() == "written"


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "../../outside.txt",
        "/secret.txt",
        "escape",
        "up",
        "tmp/x",
        "./../secret.txt",
    ],
)
async def test_escapes_fail(run_one: RunOne, project: Project, tree: Path, path: str) -> None:
    found = await probe(run_one, project, "r3", path, grants=GRANTED)
    assert found["errno"] != 0, found
    found = await probe(run_one, project, "w4", "../" + path.lstrip("./"), grants=GRANTED)
    assert found["errno"] != 0, found


async def test_only_granted_variables_are_visible(
    run_one: RunOne, project: Project, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Europe/Zurich")
    monkeypatch.setenv("POLYHOST_TEST_SECRET", "hunter2")
    found = await probe(run_one, project, "e", grants={"env": ["TZ", "UNSET_VARIABLE"]})
    assert found == {"count": 1, "content": "TZ=Europe/Zurich;"}
    assert await probe(run_one, project, "e") == {"count": 0, "content": ""}
    assert "POLYHOST_TEST_SECRET" in os.environ


async def test_a_missing_granted_folder_fails_the_node(run_one: RunOne, project: Project) -> None:
    project.module("probe.wasm", PROBE)
    project.node_type("t.lost", "probe.wasm", grants={"read": ["nowhere"], "args": ["p"]})
    result = await run_one("t.lost")
    error = result.nodes["w"].error
    assert error is not None
    assert (error["code"], error["field"]) == ("wasm_grant", "grants")
    assert "nowhere" in error["message"]


async def test_a_grant_swapped_for_a_symlink_is_refused(
    run_one: RunOne, project: Project, tree: Path
) -> None:
    project.node_type("t.swap", "probe.wasm", grants={"read": ["data"], "args": ["p"]})
    result = await run_one("t.swap")
    assert result.status is RunStatus.COMPLETED
    (tree / "data").rename(tree / "data_was")
    (tree / "data").symlink_to(tree.parent)
    result = await run_one("t.swap")
    assert result.nodes["w"].error is not None
    assert result.nodes["w"].error["code"] == "wasm_grant"


async def test_a_grant_symlinked_out_of_the_folder_is_refused(
    run_one: RunOne, project: Project, tree: Path
) -> None:
    (tree / "sneaky").symlink_to(tree.parent)
    project.node_type("t.sneaky", "probe.wasm", grants={"read": ["sneaky"], "args": ["p"]})
    result = await run_one("t.sneaky")
    error = result.nodes["w"].error
    assert error is not None
    assert error["code"] == "wasm_grant"
    assert "outside the manifest's folder" in error["message"]
