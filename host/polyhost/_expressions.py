"""CEL expressions and ``{{ }}`` templates, parsed once at compile time.

This module and :mod:`._planning` are the only ones that import the Rust extension; its errors
are translated here into :class:`ExpressionError`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from typing import Any

from . import _native
from ._errors import ExpressionError

__all__ = [
    "Const",
    "Expr",
    "Expression",
    "Scope",
    "Template",
    "Text",
    "compile_expression",
    "compile_template",
]

Scope = _native.Scope


class Expression:
    """A parsed CEL expression and the free names it reads."""

    __slots__ = ("_program", "references", "source")

    def __init__(self, source: str) -> None:
        try:
            self._program = _native.Expression(source)
        except _native.ExpressionSyntaxError as exc:
            raise ExpressionError(str(exc), source=source) from None
        self.source = source
        self.references: frozenset[str] = frozenset(self._program.references())

    def evaluate(self, scope: _native.Scope) -> Any:
        """The expression's value in ``scope``; ``ExpressionError`` when it cannot be had."""
        try:
            return self._program.evaluate(scope)
        except _native.ExpressionEvalError as exc:
            raise ExpressionError(f"{self.source!r}: {exc}", source=self.source) from None


def compile_expression(source: str) -> Expression:
    """Parse a bare CEL expression (``when``, ``core.condition``'s ``if``)."""
    return Expression(source)


class Template(ABC):
    """A ``with`` value or output, with its templates parsed; ``resolve`` gives the value.

    ``nulls`` names the nodes whose output is null (skipped, or failed with ``on_error:
    continue``): an expression that fails because it reads one of them gives null, as the spec
    says a reference to a skipped node does.
    """

    __slots__ = ()

    @abstractmethod
    def resolve(self, scope: _native.Scope, nulls: AbstractSet[str] = frozenset()) -> Any:
        """The value with every template evaluated in ``scope``."""

    def expressions(self) -> Iterator[Expression]:
        """Every expression inside, for reference checks."""
        return iter(())

    @property
    def is_constant(self) -> bool:
        """True when no template is inside."""
        return False


class Const(Template):
    """A value with no template inside (strings, numbers, and containers of them)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def resolve(self, scope: _native.Scope, nulls: AbstractSet[str] = frozenset()) -> Any:
        # Containers are copied so a handler that mutates its params cannot change the plan.
        return _copy(self.value)

    @property
    def is_constant(self) -> bool:
        return True


class Expr(Template):
    """A string that is exactly one template: the value keeps its own type."""

    __slots__ = ("expression",)

    def __init__(self, expression: Expression) -> None:
        self.expression = expression

    def resolve(self, scope: _native.Scope, nulls: AbstractSet[str] = frozenset()) -> Any:
        return _evaluate(self.expression, scope, nulls)

    def expressions(self) -> Iterator[Expression]:
        yield self.expression


class Text(Template):
    """Text with templates inside: each value is written as text (JSON for non-strings)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[str | Expression]) -> None:
        self.parts = parts

    def resolve(self, scope: _native.Scope, nulls: AbstractSet[str] = frozenset()) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(as_text(_evaluate(part, scope, nulls)))
        return "".join(out)

    def expressions(self) -> Iterator[Expression]:
        for part in self.parts:
            if isinstance(part, Expression):
                yield part


class Mapping(Template):
    """A dict some of whose values hold templates."""

    __slots__ = ("items",)

    def __init__(self, items: dict[str, Template]) -> None:
        self.items = items

    def resolve(
        self, scope: _native.Scope, nulls: AbstractSet[str] = frozenset()
    ) -> dict[str, Any]:
        return {key: item.resolve(scope, nulls) for key, item in self.items.items()}

    def expressions(self) -> Iterator[Expression]:
        for item in self.items.values():
            yield from item.expressions()


class Sequence(Template):
    """A list some of whose items hold templates."""

    __slots__ = ("items",)

    def __init__(self, items: list[Template]) -> None:
        self.items = items

    def resolve(self, scope: _native.Scope, nulls: AbstractSet[str] = frozenset()) -> list[Any]:
        return [item.resolve(scope, nulls) for item in self.items]

    def expressions(self) -> Iterator[Expression]:
        for item in self.items:
            yield from item.expressions()


_SCALARS = (str, int, float, bool, type(None))


def _copy(value: Any) -> Any:
    """A copy of JSON-like data that shares only immutable leaves."""
    if isinstance(value, dict):
        return {
            key: item if isinstance(item, _SCALARS) else _copy(item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [item if isinstance(item, _SCALARS) else _copy(item) for item in value]
    return value


def _evaluate(expression: Expression, scope: _native.Scope, nulls: AbstractSet[str]) -> Any:
    try:
        return expression.evaluate(scope)
    except ExpressionError:
        if nulls and not expression.references.isdisjoint(nulls):
            return None
        raise


def as_text(value: Any) -> str:
    """How a template inside longer text writes a value: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def compile_template(value: Any) -> Template:
    """Parse every ``{{ }}`` in a value tree. ``ExpressionError`` names the first bad one."""
    if isinstance(value, str):
        return _compile_string(value)
    if isinstance(value, dict):
        items = {str(key): compile_template(item) for key, item in value.items()}
        if all(item.is_constant for item in items.values()):
            return Const(value)
        return Mapping(items)
    if isinstance(value, list):
        seq = [compile_template(item) for item in value]
        if all(item.is_constant for item in seq):
            return Const(value)
        return Sequence(seq)
    return Const(value)


def _compile_string(text: str) -> Template:
    if "{{" not in text:
        return Const(text)
    parts = split_template(text)
    if len(parts) == 1 and not isinstance(parts[0], str):
        return Expr(parts[0])
    if all(isinstance(part, str) for part in parts):
        return Const("".join(part for part in parts if isinstance(part, str)))
    return Text(parts)


def split_template(text: str) -> list[str | Expression]:
    """Literal text and expressions, in order. ``\\{{`` writes literal braces."""
    parts: list[str | Expression] = []
    literal: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        if text.startswith("\\{{", i):
            literal.append("{{")
            i += 3
            continue
        if text.startswith("{{", i):
            end = _closing_braces(text, i + 2)
            if end < 0:
                raise ExpressionError(
                    f"unclosed template: {text[i : i + 40]!r} has no closing }}}}", source=text
                )
            source = text[i + 2 : end].strip()
            if not source:
                raise ExpressionError("empty template {{ }}", source=text)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(Expression(source))
            i = end + 2
            continue
        literal.append(text[i])
        i += 1
    if literal:
        parts.append("".join(literal))
    return parts


def _closing_braces(text: str, start: int) -> int:
    """Index of the ``}}`` that closes a template, skipping CEL string literals and maps."""
    depth = 0
    quote: str | None = None
    i = start
    while i < len(text):
        char = text[i]
        if quote is not None:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0 and text.startswith("}}", i):
                return i
            depth = max(depth - 1, 0)
        i += 1
    return -1
