"""Compile diagnostics: what is wrong, where (node and field), under a stable code."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["Diagnostic", "DiagnosticCode", "Severity"]

Severity = Literal["error", "warning"]


class DiagnosticCode:
    """The stable codes a diagnostic can carry (documented in docs/diagnostics.md)."""

    UNKNOWN_KEY = "unknown_key"
    MISSING_FIELD = "missing_field"
    INVALID_VALUE = "invalid_value"
    DUPLICATE_ID = "duplicate_id"
    RESERVED_ID = "reserved_id"
    UNKNOWN_NODE_TYPE = "unknown_node_type"
    UNKNOWN_NODE = "unknown_node"
    UNKNOWN_PORT = "unknown_port"
    DUPLICATE_EDGE = "duplicate_edge"
    CYCLE = "cycle"
    EXPRESSION_SYNTAX = "expression_syntax"
    UNKNOWN_REFERENCE = "unknown_reference"
    NOT_UPSTREAM = "not_upstream"
    INVALID_PARAMETERS = "invalid_parameters"
    INVALID_INPUTS_SCHEMA = "invalid_inputs_schema"
    HANDLER_NOT_FOUND = "handler_not_found"
    INVALID_WASM_MODULE = "invalid_wasm_module"
    RUNTIME_UNAVAILABLE = "runtime_unavailable"
    UNEXPECTED_BODY = "unexpected_body"
    EMPTY_WORKFLOW = "empty_workflow"
    DUPLICATE_KEY = "duplicate_key"
    LIMIT_EXCEEDED = "limit_exceeded"
    LOAD_ERROR = "load_error"
    INVALID_MANIFEST = "invalid_manifest"

    @classmethod
    def all(cls) -> list[str]:
        """Every code, sorted."""
        return sorted(v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str))


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding of the compiler."""

    severity: Severity
    code: str
    message: str
    node: str | None = None
    field: str | None = None

    def render(self) -> str:
        """One line for people: where, what, and the code."""
        where = []
        if self.node is not None:
            where.append(f"node '{self.node}'")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        prefix = ", ".join(where)
        return (
            f"{prefix}: {self.message} [{self.code}]" if prefix else f"{self.message} [{self.code}]"
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: severity, code, message, node, field."""
        return asdict(self)
