"""Python node types that misbehave on request, for the run fuzz tests (``polyhost.toml`` here).

``emit`` returns (or raises, or prints) the hostile thing its ``kind`` parameter names; ``echo``
returns its parameters as they arrived, so hostile values made by templates flow on to the
nodes after it.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from polyhost import NodeError

__all__ = ["KINDS", "aemit", "echo", "emit"]


class _Unprintable:
    """An object whose ``repr``, ``str`` and equality all raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    __hash__ = object.__hash__


def _deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def _deep_map(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = {"k": value}
    return value


def _recurse(n: int) -> int:
    return _recurse(n + 1) + 1


def _loop() -> Any:
    items: list[Any] = []
    items.append(items)
    return {"v": items}


def _raise_base(exc: type[BaseException]) -> Any:
    raise exc("raised by a node")


# kind -> a function of the node's parameters that returns the output (or raises).
KINDS: dict[str, Any] = {
    "surrogate": lambda p: {"v": "a\ud83d"},
    "surrogate_key": lambda p: {"a\udfff": 1},
    "surrogate_nested": lambda p: {"v": [{"w": ["ok", "\udc80"]}]},
    "nan": lambda p: {"v": math.nan},
    "inf": lambda p: {"v": [math.inf, -math.inf]},
    "huge_int": lambda p: {"v": 10**400},
    "big_int": lambda p: {"v": 2**64},
    "min_int": lambda p: {"v": -(2**63)},
    "tiny": lambda p: {"v": 5e-324},
    "deep": lambda p: {"v": _deep(int(p.get("depth", 200)))},
    "deep_map": lambda p: {"v": _deep_map(int(p.get("depth", 200)))},
    "self_loop": lambda p: _loop(),
    "bytes": lambda p: {"v": b"\xff\x00"},
    "set": lambda p: {"v": {1, 2}},
    "tuple": lambda p: {"v": (1, "a")},
    "int_key": lambda p: {1: "one"},
    "none_key": lambda p: {None: 1},
    "float_key": lambda p: {1.5: 1},
    "tuple_key": lambda p: {(1, 2): 1},
    "object": lambda p: {"v": object()},
    "unprintable": lambda p: {"v": _Unprintable()},
    "unprintable_out": lambda p: _Unprintable(),
    "none": lambda p: None,
    "list": lambda p: [1, 2],
    "string": lambda p: "\ud800",
    "wide": lambda p: {"v": list(range(int(p.get("size", 10_000))))},
    "long_text": lambda p: {"v": "x" * int(p.get("size", 100_000))},
    "odd_text": lambda p: {"v": "\u202e\x00\ufeff\U0001f600e\u0301", "\x00": "\u2028"},
    "print": lambda p: print("printed \ud800", "x" * 70_000) or {"printed": True},
    "print_stderr": lambda p: print("\udcff" * 3, file=sys.stderr) or {"printed": True},
    "value_error": lambda p: _raise_base(ValueError),
    "surrogate_error": lambda p: (_ for _ in ()).throw(ValueError("bad \ud800 message")),
    "node_error": lambda p: (_ for _ in ()).throw(
        NodeError(str(p.get("message", "m")), code=p.get("code"), field=p.get("field"))
    ),
    "recursion": lambda p: _recurse(0),
    "memory_error": lambda p: _raise_base(MemoryError),
    "system_exit": lambda p: _raise_base(SystemExit),
    "keyboard_interrupt": lambda p: _raise_base(KeyboardInterrupt),
    "generator_exit": lambda p: _raise_base(GeneratorExit),
    "stop_iteration": lambda p: _raise_base(StopIteration),
    "echo": dict,
}


def emit(params: dict[str, Any], ctx: Any) -> Any:
    """Return (or raise) the hostile thing ``params["kind"]`` names."""
    return KINDS[str(params.get("kind", "echo"))](params)


async def aemit(params: dict[str, Any], ctx: Any) -> Any:
    """``emit``, from an async handler on the event loop."""
    return KINDS[str(params.get("kind", "echo"))](params)


def echo(params: dict[str, Any], ctx: Any) -> Any:
    """The parameters, as the templates made them."""
    return dict(params)
