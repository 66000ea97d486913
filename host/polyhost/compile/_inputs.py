"""Run inputs: defaults from the workflow's ``inputs`` schema, then validation."""

from __future__ import annotations

import copy
from typing import Any

from jsonschema.protocols import Validator

from .._errors import InputError, LimitExceededError, NodeOutputError, PolyhostError
from .._limits import Limits, default_limits
from ..workflow._values import check_output, where
from ._schema import InvalidSchemaError, SchemaProblem, error_path, schema_errors, validator_for

__all__ = ["InputsSchema"]


class InputsSchema:
    """A workflow's ``inputs`` JSON Schema, checked once and applied to every run's inputs.

    ``problems`` lists what is wrong with the schema itself (each with its path); a schema
    with problems validates nothing, and the compiler reports them as diagnostics.
    """

    __slots__ = ("_validator", "problems", "schema")

    def __init__(self, schema: dict[str, Any] | None, limits: Limits | None = None) -> None:
        self.schema = schema
        self._validator: Validator | None = None
        self.problems: list[SchemaProblem] = []
        if schema:
            try:
                self._validator = validator_for(schema, limits)
            except InvalidSchemaError as exc:
                self.problems = exc.problems

    def prepare(
        self, inputs: dict[str, Any] | None, limits: Limits | None = None
    ) -> dict[str, Any]:
        """The inputs with defaults filled in; ``InputError`` names every field that is wrong.

        An error in a value that came from a default says so: the user never gave it.
        """
        if inputs:
            _check_values(inputs, limits or default_limits())
        values = copy.deepcopy(inputs) if inputs else {}
        if not isinstance(values, dict):
            raise InputError(f"run inputs must be an object, got {type(values).__name__}")
        if self.schema is None or self._validator is None:
            return values
        defaulted: set[tuple[str, ...]] = set()
        _apply_defaults(self.schema, values, (), defaulted)
        try:
            errors = schema_errors(self._validator, values, limits)
        except PolyhostError as exc:
            raise InputError(f"checking the inputs against their schema: {exc.message}") from None
        if errors:
            lines = []
            for error in errors:
                path = tuple(str(p) for p in error.absolute_path)
                where = ".".join(path) or "(root)"
                if any(path[: len(d)] == d for d in defaulted):
                    lines.append(
                        f"input '{where}' (from the schema's default, not given): {error.message}"
                    )
                else:
                    # An object-level error (dependentRequired, if/then) may come of a default.
                    under = sorted(".".join(d) for d in defaulted if d[: len(path)] == path)
                    note = f" (after the defaults for {', '.join(under)})" if under else ""
                    lines.append(f"input '{where}': {error.message}{note}")
            raise InputError("; ".join(lines), field=error_path(errors[0]) or None)
        return values


def _apply_defaults(
    schema: dict[str, Any],
    value: dict[str, Any],
    path: tuple[str, ...],
    defaulted: set[tuple[str, ...]],
) -> None:
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if name not in value and "default" in prop:
            value[name] = copy.deepcopy(prop["default"])
            defaulted.add((*path, name))
        if isinstance(value.get(name), dict) and prop.get("type") == "object":
            _apply_defaults(prop, value[name], (*path, name), defaulted)


# What CEL reads as an int or a uint.
_CEL_INTS = range(-(2**63), 2**64)


def _check_values(inputs: Any, limits: Limits) -> None:
    """Inputs hold JSON's values only, nested no deeper than a document may be, as a document
    does: copying, validating, storing and reading them in expressions all rely on it (and
    recurse, so the depth is checked first, with a loop)."""
    try:
        check_output(
            inputs,
            "",
            limits.max_document_depth,
            limits.max_document_bytes,
            root="input",
            what="the input",
        )
    except LimitExceededError as exc:
        raise InputError(
            f"the input is nested more than {limits.max_document_depth} levels deep at "
            f"{exc.field} (limit max_document_depth; see docs/limits.md)",
            field=exc.field,
        ) from None
    except NodeOutputError as exc:
        raise InputError(exc.message, field=exc.field) from None
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(inputs, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            stack.extend((v, (*path, str(k))) for k, v in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((v, (*path, i)) for i, v in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool) and value not in _CEL_INTS:
            place = where(path, "input")
            raise InputError(
                f"{place} is {value}, an integer expressions cannot read (they take 64 bits "
                "at most): pass it as a string",
                field=place,
            )
