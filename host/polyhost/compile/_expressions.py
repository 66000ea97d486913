"""CEL expressions and ``{{ }}`` templates, parsed once at compile time.

The CEL engine is the Rust extension's, reached through :mod:`._bridge`, which turns its errors
into :class:`ExpressionError` (:class:`ExpressionLimitError` past a limit).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from typing import Any

from .._errors import ExpressionError, ExpressionLimitError
from .._limits import Limits, default_limits
from ..plan._bridge import Program, Scope

__all__ = [
    "Const",
    "Expr",
    "Expression",
    "ExpressionLimitError",
    "Scope",
    "Template",
    "Text",
    "compile_expression",
    "compile_template",
    "diagnose",
]


class Expression:
    """A parsed CEL expression and the free names it reads.

    The source is checked against ``max_expression_bytes`` and ``max_expression_depth``
    before it is parsed; each evaluation against ``max_expression_steps`` and
    ``max_expression_memory``.
    """

    __slots__ = ("_program", "references", "source")

    def __init__(self, source: str, limits: Limits | None = None) -> None:
        lim = limits or default_limits()
        self._program = Program(
            source,
            lim.max_expression_bytes,
            lim.max_expression_depth,
            lim.max_expression_steps,
            lim.max_expression_memory,
        )
        self.source = source
        self.references: frozenset[str] = frozenset(self._program.references())

    def evaluate(self, scope: Scope) -> Any:
        """The expression's value in ``scope``; ``ExpressionError`` when it cannot be had
        (``ExpressionLimitError`` past a limit)."""
        return self._program.evaluate(scope)


def diagnose(exc: ExpressionError) -> tuple[str, str]:
    """The diagnostic code and message for an expression that does not compile:
    ``limit_exceeded`` past a limit, else ``expression_syntax``; the source is quoted
    (shortened when long)."""
    source = exc.source if len(exc.source) <= 120 else exc.source[:100] + "..."
    code = "limit_exceeded" if isinstance(exc, ExpressionLimitError) else "expression_syntax"
    return code, f"{exc.message} in {source!r}"


def compile_expression(source: str, limits: Limits | None = None) -> Expression:
    """Parse a bare CEL expression (``when``, ``core.condition``'s ``if``)."""
    return Expression(source, limits)


class Template(ABC):
    """A ``with`` value or output, with its templates parsed; ``resolve`` gives the value.

    ``nulls`` names the nodes whose output is null (skipped, or failed with ``on_error:
    continue``): an expression that fails because it reads one of them gives null, as the spec
    says a reference to a skipped node does.
    """

    __slots__ = ()

    @abstractmethod
    def resolve(self, scope: Scope, nulls: AbstractSet[str] = frozenset()) -> Any:
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

    def resolve(self, scope: Scope, nulls: AbstractSet[str] = frozenset()) -> Any:
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

    def resolve(self, scope: Scope, nulls: AbstractSet[str] = frozenset()) -> Any:
        return _evaluate(self.expression, scope, nulls)

    def expressions(self) -> Iterator[Expression]:
        yield self.expression


class Text(Template):
    """Text with templates inside: each value is written as text (JSON for non-strings)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[str | Expression]) -> None:
        self.parts = parts

    def resolve(self, scope: Scope, nulls: AbstractSet[str] = frozenset()) -> str:
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

    def resolve(self, scope: Scope, nulls: AbstractSet[str] = frozenset()) -> dict[str, Any]:
        return {key: item.resolve(scope, nulls) for key, item in self.items.items()}

    def expressions(self) -> Iterator[Expression]:
        for item in self.items.values():
            yield from item.expressions()


class Sequence(Template):
    """A list some of whose items hold templates."""

    __slots__ = ("items",)

    def __init__(self, items: list[Template]) -> None:
        self.items = items

    def resolve(self, scope: Scope, nulls: AbstractSet[str] = frozenset()) -> list[Any]:
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


def _evaluate(expression: Expression, scope: Scope, nulls: AbstractSet[str]) -> Any:
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


def compile_template(value: Any, limits: Limits | None = None) -> Template:
    """Parse every ``{{ }}`` in a value tree. ``ExpressionError`` names the first bad one."""
    if isinstance(value, str):
        return _compile_string(value, limits)
    if isinstance(value, dict):
        items = {str(key): compile_template(item, limits) for key, item in value.items()}
        if all(item.is_constant for item in items.values()):
            return Const(value)
        return Mapping(items)
    if isinstance(value, list):
        seq = [compile_template(item, limits) for item in value]
        if all(item.is_constant for item in seq):
            return Const(value)
        return Sequence(seq)
    return Const(value)


def _compile_string(text: str, limits: Limits | None) -> Template:
    if "{{" not in text:
        return Const(text)
    parts = split_template(text, limits)
    if len(parts) == 1 and not isinstance(parts[0], str):
        return Expr(parts[0])
    if all(isinstance(part, str) for part in parts):
        return Const("".join(part for part in parts if isinstance(part, str)))
    return Text(parts)


def split_template(text: str, limits: Limits | None = None) -> list[str | Expression]:
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
            parts.append(Expression(source, limits))
            i = end + 2
            continue
        literal.append(text[i])
        i += 1
    if literal:
        parts.append("".join(literal))
    return parts


def _closing_braces(text: str, start: int) -> int:
    """Index of the ``}}`` that closes a template, skipping maps and CEL's string literals
    (quoted, triple-quoted, raw, bytes) and quoted fields, where braces are text."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        char = text[i]
        if char in "\"'":
            i = _skip_string(text, i)
            continue
        if char == "`":
            close = text.find("`", i + 1)
            i = n if close < 0 else close + 1
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0 and text.startswith("}}", i):
                return i
            depth = max(depth - 1, 0)
        i += 1
    return -1


def _skip_string(text: str, quote_at: int) -> int:
    """The index just past the CEL string literal whose opening quote is at ``quote_at``
    (its prefix, ``r``/``b``/``rb``, precedes it); past the end when it is not closed."""
    quote = text[quote_at]
    prefix = text[max(0, quote_at - 2) : quote_at].lower()
    raw = prefix.endswith("r") or prefix in ("rb",)
    triple = text.startswith(quote * 3, quote_at)
    i = quote_at + (3 if triple else 1)
    n = len(text)
    while i < n:
        char = text[i]
        if char == "\\" and not raw:
            i += 2
        elif triple and text.startswith(quote * 3, i):
            return i + 3
        elif not triple and char == quote:
            return i + 1
        elif not triple and char == "\n":
            return i
        else:
            i += 1
    return n
