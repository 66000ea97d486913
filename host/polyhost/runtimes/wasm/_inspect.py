"""Reading a module's imports and exports from its binary, to check it against the guest ABI.

The compiler checks every wasm node type before a run (without compiling the module, which can
take seconds for a large guest), and the runtime uses the same reading to pick the call style.
Only the sections that matter are decoded: types, imports, functions and exports. The counts
of functions, imports and exports are checked against the host's limits (``ModuleLimits``) as
each section's count is read, before anything is compiled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..._errors import LimitExceededError

__all__ = [
    "ModuleInfo",
    "ModuleLimitError",
    "ModuleLimits",
    "abi_problems",
    "inspect_module",
]

Style = Literal["reactor", "command"]
WASI_MODULE = "wasi_snapshot_preview1"
HOST_MODULE = "polyhost"
_I32, _I64 = 0x7F, 0x7E
# The host functions a guest may import from "polyhost", with their (params, results).
HOST_FUNCS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "log": ((_I32, _I32, _I32), ()),
    "chunk": ((_I32, _I32), ()),
}
_EXPECTED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "polyhost_alloc": ((_I32,), (_I32,)),
    "polyhost_run": ((_I32, _I32), (_I64,)),
    "_start": ((), ()),
    "_initialize": ((), ()),
}
_KINDS = {0: "function", 1: "table", 2: "memory", 3: "global", 4: "tag"}
Signature = tuple[tuple[int, ...], tuple[int, ...]]
# The exports whose kinds and signatures matter to the guest ABI; others are only counted.
ABI_EXPORTS = frozenset({*_EXPECTED, "memory"})
# wasmtime's pooling allocator refuses modules whose instance state (some 32 bytes per imported
# or escaping function) passes its per-instance size, 1 MiB by default. Past this estimate a
# module goes to the engine without a pool before it is compiled for one in vain.
_POOL_INSTANCE_BUDGET = 768 * 1024
_BYTES_PER_FUNC_REF = 32


class ModuleLimitError(LimitExceededError, ValueError):
    """A module past one of the host's limits; ``limit`` names the ``Limits`` field.

    Also a ``ValueError``, as every other reason a module cannot be used is."""

    def __init__(self, limit: str, value: int, found: int, what: str) -> None:
        super().__init__(limit, value, f"the module has {found:,} {what}")


@dataclass(frozen=True, slots=True)
class ModuleLimits:
    """The host's limits on a module, checked from its sections (``Limits.max_wasm_*``)."""

    max_bytes: int = 128 * 1024 * 1024
    max_functions: int = 50_000
    max_imports: int = 10_000
    max_exports: int = 10_000

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise ModuleLimitError("max_wasm_module_bytes", self.max_bytes, size, "bytes")

    def check(self, info: ModuleInfo) -> None:
        """``ModuleLimitError`` for a module (read now, or from the cache's index) past a limit."""
        self._count("max_wasm_imports", self.max_imports, len(info.imports), "imports")
        self._count("max_wasm_functions", self.max_functions, info.functions, "functions")
        self._count("max_wasm_exports", self.max_exports, info.export_count, "exports")

    @staticmethod
    def _count(limit: str, value: int, found: int, what: str) -> None:
        if found > value:
            raise ModuleLimitError(limit, value, found, what)


@dataclass(slots=True)
class ModuleInfo:
    """What a module imports and exports; ``signatures`` is None when its types use encodings
    beyond plain function types (the GC proposal), so signatures were not read."""

    imports: list[tuple[str, str, str]] = field(default_factory=list)  # module, name, kind
    exports: dict[str, str] = field(default_factory=dict)  # name -> kind
    signatures: dict[str, Signature] | None = field(default_factory=dict)  # funcs by name
    functions: int = 0  # imported and defined
    export_count: int = 0  # all exports (``exports`` may hold only the ABI's)
    exported_functions: int = 0

    def fits_pool(self) -> bool:
        """False when the module surely needs more instance state than a pool slot holds."""
        imported = sum(1 for _, _, kind in self.imports if kind == "function")
        estimate = _BYTES_PER_FUNC_REF * (imported + self.exported_functions)
        return estimate <= _POOL_INSTANCE_BUDGET

    @property
    def style(self) -> Style | None:
        """``reactor`` (memory, polyhost_alloc, polyhost_run), ``command`` (_start), or None."""
        exports = self.exports
        if (
            exports.get("polyhost_run") == exports.get("polyhost_alloc") == "function"
            and exports.get("memory") == "memory"
        ):
            return "reactor"
        if self.exports.get("_start") == "function":
            return "command"
        return None

    @property
    def uses_wasi(self) -> bool:
        """True when the module imports anything from WASI preview 1."""
        return any(module == WASI_MODULE for module, _, _ in self.imports)


class _Reader:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ValueError("unexpected end of section")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uleb(self) -> int:
        result = shift = 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("integer too long")

    def name(self) -> str:
        size = self.uleb()
        if self.pos + size > self.end:
            raise ValueError("name runs past its section")
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        return raw.decode("utf-8", errors="replace")

    def valtype(self) -> int:
        kind = self.byte()
        if kind in (0x63, 0x64):  # (ref null? heaptype): the heap type is an s33
            self.uleb()
        return kind

    def limits(self) -> None:
        flags = self.byte()
        self.uleb()
        if flags & 0x01:
            self.uleb()
        if flags & 0x08:  # custom page size
            self.uleb()


def inspect_module(data: bytes, limits: ModuleLimits | None = None) -> ModuleInfo:
    """The imports and exports of a core module; ``ValueError`` when it is not one,
    ``ModuleLimitError`` (before reading further) when it is past one of ``limits``."""
    limits = limits or ModuleLimits()
    limits.check_size(len(data))
    if data[:4] != b"\0asm":
        raise ValueError("not a WebAssembly binary (no \\0asm header)")
    if data[4:8] != b"\x01\x00\x00\x00":
        if data[6:8] == b"\x01\x00":
            raise ValueError("a component, not a core module; build a core wasm module")
        raise ValueError("unsupported WebAssembly binary version")
    info = ModuleInfo()
    types: list[Signature] | None = []
    func_types: list[int] = []  # type index of every function, imported ones first
    exported_funcs: dict[str, int] = {}
    reader = _Reader(data, 8)
    while reader.pos < reader.end:
        section = reader.byte()
        size = reader.uleb()
        body = _Reader(data, reader.pos, reader.pos + size)
        if body.end > len(data):
            raise ValueError("a section runs past the end of the file")
        if section == 1:
            types = _types(body)
        elif section == 2:
            _imports(body, info, func_types, limits)
        elif section == 3:
            count = body.uleb()
            info.functions = len(func_types) + count
            limits.check(info)
            func_types.extend(body.uleb() for _ in range(count))
        elif section == 7:
            info.export_count = body.uleb()
            limits.check(info)
            for _ in range(info.export_count):
                name, kind, index = body.name(), body.byte(), body.uleb()
                if kind == 0:
                    info.exported_functions += 1
                if name in ABI_EXPORTS:
                    info.exports[name] = _KINDS.get(kind, "unknown")
                    if kind == 0:
                        exported_funcs[name] = index
        reader.pos = body.end
    info.functions = max(info.functions, len(func_types))
    if types is None:
        info.signatures = None
    else:
        assert info.signatures is not None
        for name, index in exported_funcs.items():
            if index < len(func_types) and func_types[index] < len(types):
                info.signatures[name] = types[func_types[index]]
        imported = [(m, n) for m, n, k in info.imports if k == "function"]
        for (module, name), type_index in zip(imported, func_types, strict=False):
            if module == HOST_MODULE and type_index < len(types):
                info.signatures[f"{HOST_MODULE}.{name}"] = types[type_index]
    return info


def _imports(body: _Reader, info: ModuleInfo, func_types: list[int], limits: ModuleLimits) -> None:
    count = body.uleb()
    if count > limits.max_imports:
        raise ModuleLimitError("max_wasm_imports", limits.max_imports, count, "imports")
    for _ in range(count):
        module, name, kind = body.name(), body.name(), body.byte()
        info.imports.append((module, name, _KINDS.get(kind, "unknown")))
        if kind == 0:
            func_types.append(body.uleb())
        elif kind == 1:
            body.valtype()
            body.limits()
        elif kind == 2:
            body.limits()
        elif kind == 3:
            body.valtype()
            body.byte()
        elif kind == 4:
            body.byte()
            body.uleb()
        else:
            raise ValueError(f"unknown import kind {kind}")


def _types(body: _Reader) -> list[Signature] | None:
    types: list[Signature] = []
    for _ in range(body.uleb()):
        if body.byte() != 0x60:  # rec groups, structs, arrays: leave signatures unchecked
            return None
        params = tuple(body.valtype() for _ in range(body.uleb()))
        results = tuple(body.valtype() for _ in range(body.uleb()))
        types.append((params, results))
    return types


def abi_problems(info: ModuleInfo) -> list[str]:
    """Why the module cannot run as a polyhost node (empty when it can)."""
    problems: list[str] = []
    style = info.style
    if style is None:
        problems.append(
            "the module exports neither `polyhost_run` (with `memory` and `polyhost_alloc`) "
            "nor `_start`, so it follows neither style of the guest ABI"
        )
    for module, name, kind in info.imports:
        if module == WASI_MODULE:
            continue
        if module == HOST_MODULE and name in HOST_FUNCS and kind == "function":
            continue
        if module == HOST_MODULE:
            known = ", ".join(sorted(HOST_FUNCS))
            problems.append(f"imports {module}.{name}, which the host does not provide ({known})")
        else:
            problems.append(
                f"imports {module}.{name} from {module!r}; a guest may import only from "
                f"{HOST_MODULE!r} and {WASI_MODULE!r}"
            )
    if info.signatures is None:
        return problems
    wanted: dict[str, Signature] = dict(_EXPECTED)
    wanted.update({f"{HOST_MODULE}.{n}": sig for n, sig in HOST_FUNCS.items()})
    for name, expected in wanted.items():
        found = info.signatures.get(name)
        if found is not None and found != expected:
            problems.append(
                f"`{name}` has the signature {_render(found)}; the guest ABI needs "
                f"{_render(expected)}"
            )
    return problems


def _render(signature: Signature) -> str:
    names = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128"}
    params, results = (", ".join(names.get(t, "ref") for t in part) for part in signature)
    return f"({params}) -> ({results})"
