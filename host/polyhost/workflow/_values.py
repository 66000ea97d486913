"""Checking values that arrive from nodes before anything recursive walks them.

A node's output goes to ``json.dumps``, the store's encoder and the expression scope, all of which
recurse once per level of nesting. :func:`check_output` bounds the depth first, with a loop (no
recursion, so a 100,000-deep list or a list that contains itself costs nothing), then encodes the
value once: strings with lone surrogates (not UTF-8, so not JSON text), NaN and infinities (JSON has
no such numbers) and objects JSON has no value for are refused, naming where in the output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

from .._errors import LimitExceededError, NodeOutputError

__all__ = ["check_output", "exceeds_depth", "where"]

_CONTAINERS = (dict, list, tuple)
_JSON_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_SHOWN_STEPS = 8

Path = tuple[str | int, ...]


def exceeds_depth(value: Any, limit: int) -> bool:
    """True when ``value`` holds lists or maps nested more than ``limit`` levels deep.

    Level by level, so memory is one level's references and a self-containing value ends at
    ``limit`` like any other deep one.
    """
    level = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            below.extend(item for item in items if isinstance(item, _CONTAINERS))
        level = below
    return False


def check_output(
    output: Any,
    node: str,
    max_depth: int,
    max_bytes: int,
    *,
    root: str = "output",
    what: str = "the output",
) -> int:
    """Refuse an output no JSON document can hold; returns its size in UTF-8 bytes.

    Raises ``LimitExceededError`` (``max_value_depth``) or ``NodeOutputError`` naming the place
    (``root`` is the name of the place where ``output`` itself is).
    """
    if exceeds_depth(output, max_depth):
        path = _deepest(output, max_depth)
        raise LimitExceededError(
            "max_value_depth",
            max_depth,
            f"{what} is nested more than {max_depth} levels deep at {where(path, root)}",
            node=node,
            field=where(path, root),
        )
    try:
        text = _JSON_DUMPS(output)
    except (TypeError, ValueError) as exc:
        path, problem = _first(output, _not_json) or ((), str(exc))
        raise NodeOutputError(
            f"{what} is not JSON: {problem} at {where(path, root)}",
            node=node,
            field=where(path, root),
        ) from None
    size = len(text)
    if not text.isascii():
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            path, problem = _first(output, _not_utf8) or ((), "a lone surrogate")
            raise NodeOutputError(
                f"{what} is not JSON: {problem} at {where(path, root)}",
                node=node,
                field=where(path, root),
            ) from None
    if size > max_bytes:
        raise NodeOutputError(
            f"{what} is {size} bytes, over the limit of {max_bytes} bytes", node=node
        )
    return size


def where(path: Path, root: str = "output") -> str:
    """``output.rows[3].name``; long paths keep their first steps and their length."""
    shown = path if len(path) <= _SHOWN_STEPS else path[:_SHOWN_STEPS]
    text = root + "".join(f"[{p}]" if isinstance(p, int) else _key(p) for p in shown)
    if len(path) > _SHOWN_STEPS:
        text += f"... ({len(path)} levels)"
    return text


def _key(key: str) -> str:
    return f".{key}" if key.isidentifier() else f"[{json.dumps(key)}]"


def _children(value: Any) -> Iterator[tuple[str | int, Any]]:
    if isinstance(value, dict):
        yield from value.items()
    else:
        yield from enumerate(value)


def _deepest(value: Any, limit: int) -> Path:
    """The path to the first container below ``limit`` levels (depth-first, no recursion)."""
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        current, path = stack.pop()
        if len(path) >= limit:
            return path
        children = [(k, v) for k, v in _children(current) if isinstance(v, _CONTAINERS)]
        stack.extend((v, (*path, k)) for k, v in reversed(children))
    return ()


def _first(value: Any, problem: Callable[[Any, bool], str | None]) -> tuple[Path, str] | None:
    """The first value (or map key) for which ``problem`` has something to say, depth-first."""
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        current, path = stack.pop()
        found = problem(current, False)
        if found is not None:
            return path, found
        if isinstance(current, _CONTAINERS):
            entries = list(_children(current))
            for key, _ in entries:
                found = problem(key, True) if isinstance(current, dict) else None
                if found is not None:
                    return (*path, str(key)), found
            stack.extend((v, (*path, k)) for k, v in reversed(entries))
    return None


def _not_json(value: Any, is_key: bool) -> str | None:
    if is_key:
        if value is None or isinstance(value, str | int | float | bool):
            return None
        return f"a map key of type {type(value).__name__}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"the number {value} (JSON has no NaN or infinity)"
    if value is None or isinstance(value, str | int | float | bool | dict | list | tuple):
        return None
    return f"a value of type {type(value).__name__}"


def _not_utf8(value: Any, is_key: bool) -> str | None:
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            what = "a map key" if is_key else "a string"
            return f"{what} with a lone surrogate (U+{ord(value[exc.start]):04X})"
    return None
