"""Small guests written as WAT, and a project folder (modules, manifest, workflow) to run them.

Reactor guests share a prelude: one memory, a bump allocator that grows memory as needed, and
``$pack`` building polyhost_run's ``(ptr << 32) | len`` result. Command guests use WASI directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wasmtime import wat2wasm

from tests.helpers.manifests import toml_value

PRELUDE = """
  (memory (export "memory") {pages})
  (global $heap (mut i32) (i32.const 8192))
  (func $alloc (export "polyhost_alloc") (param $n i32) (result i32)
    (local $p i32) (local $short i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (local.set $short
      (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
    (if (i32.gt_s (local.get $short) (i32.const 0))
      (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (local.get $short) (i32.const 16))
                                               (i32.const 1)))
                        (i32.const -1))
              (then (return (i32.const 0))))))
    (local.get $p))
  (func $pack (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
            (i64.extend_i32_u (local.get $n))))
"""

STATIC = 1024  # where returns() puts its text


def wat_string(text: str | bytes) -> str:
    """``text`` as a WAT string literal (every byte escaped, so quotes and UTF-8 are safe)."""
    raw = text.encode() if isinstance(text, str) else text
    return '"' + "".join(f"\\{b:02x}" for b in raw) + '"'


def reactor(run: str, *, imports: str = "", extra: str = "", pages: int = 1) -> str:
    """A reactor module whose polyhost_run body is ``run`` (params $ptr, $len; returns i64)."""
    return f"""(module
  {imports}
  {PRELUDE.format(pages=pages)}
  {extra}
  (func (export "polyhost_run") (param $ptr i32) (param $len i32) (result i64)
    {run})
)"""


def returns(
    text: str | bytes, *, before: str = "", imports: str = "", extra: str = "", pages: int = 1
) -> str:
    """A reactor that runs ``before`` and then returns ``text`` verbatim as its result."""
    raw = text.encode() if isinstance(text, str) else text
    return reactor(
        f"{before}\n(call $pack (i32.const {STATIC}) (i32.const {len(raw)}))",
        imports=imports,
        extra=f"(data (i32.const {STATIC}) {wat_string(raw)})\n{extra}",
        pages=pages,
    )


# Echoes its whole input: {"ok": {"input": <the input document>}}.
ECHO = reactor(
    """
    (local $out i32)
    (local.set $out (call $alloc (i32.add (local.get $len) (i32.const 32))))
    (memory.copy (local.get $out) (i32.const 1024) (i32.const 15))
    (memory.copy (i32.add (local.get $out) (i32.const 15)) (local.get $ptr) (local.get $len))
    (i32.store16 (i32.add (local.get $out) (i32.add (local.get $len) (i32.const 15)))
                 (i32.const 0x7d7d))
    (call $pack (local.get $out) (i32.add (local.get $len) (i32.const 17)))""",
    extra='(data (i32.const 1024) "{\\"ok\\":{\\"input\\":")',
)

SPIN = reactor("(loop $forever (br $forever)) (i64.const 0)")
GROW = reactor(
    """(loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable"""
)
RECURSE = reactor(
    "(drop (call $deep (i32.const 0))) (i64.const 0)",
    extra="""
  (func $deep (param $n i32) (result i32)
    (i32.add (call $deep (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))""",
)
UNREACHABLE = reactor("unreachable")
DIVIDE_BY_ZERO = reactor(
    "(i64.div_u (i64.const 1) (i64.extend_i32_u (i32.sub (local.get $len) (local.get $len))))"
)

# WASI command: reads stdin (up to 60 KiB), writes {"echo": <stdin>} to stdout, exits 0.
COMMAND_ECHO = """(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 100) "{\\"echo\\":")
  (data (i32.const 120) "}")
  (func $write (param $fd i32) (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (local $total i32)
    (block $done (loop $more
      (i32.store (i32.const 16) (i32.add (i32.const 4096) (local.get $total)))
      (i32.store (i32.const 20) (i32.sub (i32.const 61440) (local.get $total)))
      (br_if $done (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
      (br_if $done (i32.eqz (i32.load (i32.const 24))))
      (local.set $total (i32.add (local.get $total) (i32.load (i32.const 24))))
      (br $more)))
    (call $write (i32.const 1) (i32.const 100) (i32.const 8))
    (call $write (i32.const 1) (i32.const 4096) (local.get $total))
    (call $write (i32.const 1) (i32.const 120) (i32.const 1)))
)"""


def command_printing(stdout: str, *, stderr: str = "", status: int = 0) -> str:
    """A WASI command that prints ``stdout`` and ``stderr`` and exits with ``status``."""
    out, err = stdout.encode(), stderr.encode()
    return f"""(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) {wat_string(out)})
  (data (i32.const 32768) {wat_string(err)})
  (func $write (param $fd i32) (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (call $write (i32.const 1) (i32.const 1024) (i32.const {len(out)}))
    (call $write (i32.const 2) (i32.const 32768) (i32.const {len(err)}))
    (if (i32.ne (i32.const {status}) (i32.const 0)) (then (call $exit (i32.const {status})))))
)"""


class Project:
    """A folder holding wasm modules, their polyhost.toml, and workflows using them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._types: list[dict[str, Any]] = []

    def module(self, name: str, wat: str) -> str:
        """Compile ``wat`` to ``name`` in the project; returns ``name``."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(wat2wasm(wat))
        return name

    def node_type(self, type_name: str, module: str, **extra: Any) -> str:
        """Declare a wasm node type (``limits``, ``grants``, ...) in the manifest."""
        self._types.append({"type": type_name, "runtime": "wasm", "module": module, **extra})
        lines = []
        for entry in self._types:
            lines.append("[[nodes]]")
            lines.extend(f"{key} = {toml_value(value)}" for key, value in entry.items())
            lines.append("")
        (self.root / "polyhost.toml").write_text("\n".join(lines))
        return type_name

    def wasm(self, type_name: str, wat: str, **extra: Any) -> str:
        """A module and a node type for it in one step."""
        module = self.module(type_name.replace(".", "_") + ".wasm", wat)
        return self.node_type(type_name, module, **extra)

    def workflow(
        self,
        nodes: list[dict[str, Any]],
        edges: list[dict[str, Any]] | None = None,
        name: str = "flow",
        **extra: Any,
    ) -> Path:
        """Write a workflow document beside the manifest; returns its path."""
        path = self.root / f"{name}.json"
        document = {"version": 1, "id": name, "nodes": nodes, "edges": edges or [], **extra}
        path.write_text(json.dumps(document))
        return path
