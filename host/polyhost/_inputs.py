"""Run inputs: defaults from the workflow's ``inputs`` schema, then validation."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema

from ._errors import InputError

__all__ = ["InputsSchema"]


class InputsSchema:
    """A workflow's ``inputs`` JSON Schema, checked once and applied to every run's inputs."""

    __slots__ = ("_validator", "schema")

    def __init__(self, schema: dict[str, Any] | None) -> None:
        self.schema = schema
        self._validator: jsonschema.protocols.Validator | None = None
        if schema:
            cls = jsonschema.validators.validator_for(
                schema, default=jsonschema.Draft202012Validator
            )
            cls.check_schema(schema)
            self._validator = cls(schema, format_checker=cls.FORMAT_CHECKER)

    def prepare(self, inputs: dict[str, Any] | None) -> dict[str, Any]:
        """The inputs with defaults filled in; ``InputError`` names every field that is wrong."""
        values = copy.deepcopy(inputs) if inputs else {}
        if not isinstance(values, dict):
            raise InputError(f"run inputs must be an object, got {type(values).__name__}")
        if self.schema is None or self._validator is None:
            return values
        _apply_defaults(self.schema, values)
        errors = sorted(self._validator.iter_errors(values), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            field = ".".join(str(p) for p in first.absolute_path) or None
            lines = [
                f"input '{'.'.join(str(p) for p in e.absolute_path) or '(root)'}': {e.message}"
                for e in errors
            ]
            raise InputError("; ".join(lines), field=field)
        return values


def _apply_defaults(schema: dict[str, Any], value: dict[str, Any]) -> None:
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if name not in value and "default" in prop:
            value[name] = copy.deepcopy(prop["default"])
        if isinstance(value.get(name), dict) and prop.get("type") == "object":
            _apply_defaults(prop, value[name])
