"""Build workflow documents in tests without YAML noise."""

from __future__ import annotations

from typing import Any

from polyhost import Workflow
from polyhost.compile._parsing import parse_workflow


def doc(nodes: list[dict[str, Any]], edges: list[Any] = (), **extra: Any) -> dict[str, Any]:  # type: ignore[assignment]
    """A version-1 document; edges may be given as ``"a->b"`` or ``"a.port->b"`` strings."""
    parsed = []
    for edge in edges:
        if isinstance(edge, str):
            left, right = edge.split("->")
            source, _, port = left.partition(".")
            parsed.append({"from": source, "to": right, **({"port": port} if port else {})})
        else:
            parsed.append(edge)
    return {"version": 1, "id": "t", "nodes": nodes, "edges": parsed, **extra}


def workflow(nodes: list[dict[str, Any]], edges: list[Any] = (), **extra: Any) -> Workflow:  # type: ignore[assignment]
    """A parsed workflow model."""
    return parse_workflow(doc(nodes, edges, **extra))
