"""Run inputs: defaults from the workflow's ``inputs`` schema, then validation."""

from __future__ import annotations

import copy
from typing import Any

from jsonschema.protocols import Validator

from ._errors import InputError, PolyhostError
from ._limits import Limits
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
