"""The tools a node offers (``llm.chat``'s ``tools``): node types, resolved at compile time.

A tool is written as a node type name (``csv.query``) or as a map that names it and fixes some
of its parameters (``{type: csv.query, name: sales, with: {path: data/sales.csv}}``): the model
gives the rest. Each becomes a :class:`ToolBinding`: the node type, the function name a model
calls it by, and the JSON Schema of the arguments the model gives (the input schema without the
fixed parameters).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..runtimes._context import ToolSpec
from ..workflow._catalog import Catalog, NodeType
from ..workflow._diagnostics import DiagnosticCode as C

__all__ = ["TOOL_CHOICE_KEYWORDS", "ToolBinding", "resolve_tools", "tool_choice_problem"]

# What the OpenAI protocol (and every compatible server) accepts as a function name.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOOL_KEYS = frozenset({"type", "name", "description", "with"})
# The tool choices that name no tool, as the OpenAI protocol spells them.
TOOL_CHOICE_KEYWORDS = ("auto", "none", "required")

Report = Callable[[str, str, str], None]  # (code, message, field)


@dataclass(frozen=True, slots=True)
class ToolBinding:
    """A node type offered as a tool, with the parameters the workflow fixed."""

    spec: ToolSpec
    node_type: NodeType
    fixed: Mapping[str, Any]


def resolve_tools(
    value: Any, field: str, catalog: Catalog, report: Report
) -> tuple[ToolBinding, ...] | None:
    """The tools ``value`` lists, or None after reporting what is wrong (each problem once)."""
    if not isinstance(value, list):
        report(C.INVALID_PARAMETERS, "`tools` must be a list of node types", field)
        return None
    bindings: list[ToolBinding] = []
    names: dict[str, str] = {}
    ok = True
    for index, entry in enumerate(value):
        where = f"{field}[{index}]"
        binding = _binding(entry, where, catalog, report)
        if binding is None:
            ok = False
            continue
        name = binding.spec.name
        if name in names:
            report(
                C.INVALID_PARAMETERS,
                f"two tools are called {name!r} ({names[name]} and {binding.node_type.type}); "
                "give one a `name`",
                where,
            )
            ok = False
            continue
        names[name] = binding.node_type.type
        bindings.append(binding)
    return tuple(bindings) if ok else None


def tool_choice_problem(choice: Any, names: Sequence[str]) -> str | None:
    """What is wrong with ``choice`` as a tool choice among the tools ``names``: None for a
    keyword, one of the names, or a value of another type (the input schema reports that)."""
    if not isinstance(choice, str) or choice in TOOL_CHOICE_KEYWORDS or choice in names:
        return None
    offered = f"one of the tools ({', '.join(names)})" if names else "a tool: the node offers none"
    return f"tool_choice {choice!r} is neither {', '.join(TOOL_CHOICE_KEYWORDS)} nor {offered}"


def _binding(entry: Any, where: str, catalog: Catalog, report: Report) -> ToolBinding | None:
    if isinstance(entry, str):
        entry = {"type": entry}
    if not isinstance(entry, dict):
        report(C.INVALID_PARAMETERS, "a tool is a node type name or a map with `type`", where)
        return None
    unknown = sorted(set(entry) - _TOOL_KEYS)
    if unknown:
        report(
            C.INVALID_PARAMETERS,
            f"a tool has no key {unknown[0]!r} (it takes type, name, description, with)",
            f"{where}.{unknown[0]}",
        )
        return None
    type_name = entry.get("type")
    if not isinstance(type_name, str):
        report(C.INVALID_PARAMETERS, "a tool needs `type`: a node type name", f"{where}.type")
        return None
    node_type = catalog.get(type_name)
    if node_type is None:
        report(C.UNKNOWN_NODE_TYPE, f"unknown node type '{type_name}' offered as a tool", where)
        return None
    if node_type.control is not None or node_type.tools_param is not None:
        report(
            C.INVALID_PARAMETERS,
            f"{type_name} cannot be a tool: only node types that run on a runtime by "
            "themselves can (not loops, parallel branches or nodes with tools of their own)",
            where,
        )
        return None
    name = entry.get("name", type_name.replace(".", "_"))
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        report(
            C.INVALID_PARAMETERS,
            f"tool name {name!r} is not a function name (1-64 of A-Z, a-z, 0-9, _ and -)",
            f"{where}.name",
        )
        return None
    fixed = entry.get("with", {})
    if not isinstance(fixed, dict):
        report(C.INVALID_PARAMETERS, "a tool's `with` must be a map", f"{where}.with")
        return None
    description = entry.get("description", node_type.description)
    if not isinstance(description, str):
        report(C.INVALID_PARAMETERS, "a tool's `description` must be text", f"{where}.description")
        return None
    spec = ToolSpec(
        name=name,
        node_type=type_name,
        description=description or f"the {type_name} node type",
        parameters=_arguments_schema(node_type.input_schema, set(fixed)),
    )
    return ToolBinding(spec=spec, node_type=node_type, fixed=dict(fixed))


def _arguments_schema(schema: dict[str, Any] | None, fixed: set[str]) -> dict[str, Any]:
    """The input schema as a model sees it: an object, without the fixed parameters."""
    if not schema:
        return {"type": "object", "properties": {}}
    shown = dict(schema)
    shown.setdefault("type", "object")
    properties = shown.get("properties")
    if isinstance(properties, dict) and fixed:
        shown["properties"] = {k: v for k, v in properties.items() if k not in fixed}
    required = shown.get("required")
    if isinstance(required, list) and fixed:
        shown["required"] = [r for r in required if r not in fixed]
    return shown
