"""Document parsing: a loaded YAML/JSON value in, a ``Workflow`` or every problem out."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .._errors import CompileError
from .._limits import Limits, default_limits
from ..workflow._catalog import Catalog
from ..workflow._diagnostics import Diagnostic
from ..workflow._diagnostics import DiagnosticCode as C
from ..workflow._document import (
    DocumentLimit,
    Loc,
    Problem,
    check_value,
    limit_diagnostic,
    locate,
    problem_diagnostics,
)
from ..workflow._model import Node, Workflow
from ..workflow._triggers import without_tag
from ._checker import PLACEHOLDER_TYPE, Runtimes, compile_workflow

__all__ = ["parse_workflow"]


def parse_workflow(
    raw: Any,
    *,
    default_id: str | None = None,
    limits: Limits | None = None,
    catalog: Catalog | None = None,
    runtimes: Runtimes = None,
    checked: list[Problem] | None = None,
) -> Workflow:
    """Validate a loaded YAML/JSON value as a workflow; ``CompileError`` lists every problem.

    The value is first checked against the document limits and JSON's data model (unless the
    loader did so and passes what it found as ``checked``). With a ``catalog``, an invalid
    document's error also holds what compiling its valid nodes finds.
    """
    limits = limits or default_limits()
    if checked is None:
        try:
            checked = check_value(raw, limits)
        except DocumentLimit as exc:
            raise CompileError([limit_diagnostic(exc)]) from None
    diagnostics = problem_diagnostics(checked, raw)
    if not isinstance(raw, dict):
        found = type(raw).__name__ if raw is not None else "an empty document"
        diagnostics.append(
            Diagnostic("error", C.INVALID_VALUE, f"a workflow is a mapping, found {found}")
        )
        raise CompileError(diagnostics)
    bad: list[Loc] = [p.loc for p in checked]
    try:
        workflow = Workflow.model_validate(raw)
    except ValidationError as exc:
        diagnostics += _schema_diagnostics(exc, raw)
        bad += [tuple(error["loc"]) for error in exc.errors()]
    else:
        if not diagnostics:
            if workflow.id is None and default_id is not None:
                workflow = workflow.model_copy(update={"id": default_id})
            return workflow
    if catalog is not None:
        diagnostics += _salvage(raw, bad, catalog, runtimes, limits)
    raise CompileError(diagnostics)


def _salvage(
    raw: dict[str, Any],
    bad: list[Loc],
    catalog: Catalog,
    runtimes: Runtimes,
    limits: Limits,
) -> list[Diagnostic]:
    """What compiling the valid part of an invalid document finds: nodes the model rejected
    stand in as placeholders (so edges and reads naming them are not reported), other keys
    at fault are left out."""
    nodes = raw.get("nodes")
    if not isinstance(nodes, list):
        return []
    bad_nodes: set[int] = set()
    bad_edges: set[int] = set()
    drop: set[str] = set()
    for loc in bad:
        if not loc:
            return []
        head = loc[0]
        if head in ("nodes", "edges") and len(loc) >= 2 and isinstance(loc[1], int):
            (bad_nodes if head == "nodes" else bad_edges).add(loc[1])
        elif head == "nodes":
            return []
        else:
            drop.add(str(head))
    partial: dict[str, Any] = {k: v for k, v in raw.items() if k not in drop}
    partial["version"] = 1
    kept: list[Any] = []
    for index, node in enumerate(nodes):
        if index not in bad_nodes:
            kept.append(node)
            continue
        node_id = node.get("id") if isinstance(node, dict) else None
        if isinstance(node_id, str):
            kept.append(Node.model_construct(id=node_id, type=PLACEHOLDER_TYPE))
    partial["nodes"] = kept
    edges = raw.get("edges")
    if isinstance(edges, list) and "edges" not in drop:
        partial["edges"] = [e for i, e in enumerate(edges) if i not in bad_edges]
    try:
        workflow = Workflow.model_validate(partial)
        compiled = compile_workflow(workflow, catalog, runtimes=runtimes, limits=limits)
    except ValidationError:
        return []
    except CompileError as exc:
        return list(exc.diagnostics)
    return list(compiled.warnings)


# pydantic errors -> diagnostics ------------------------------------------------------------

_PYDANTIC_CODES = {"extra_forbidden": C.UNKNOWN_KEY, "missing": C.MISSING_FIELD}


def _schema_diagnostics(exc: ValidationError, raw: dict[str, Any]) -> list[Diagnostic]:
    diagnostics = []
    for error in exc.errors():
        loc = without_tag(list(error["loc"]))
        node, field = locate(loc, raw)
        code = _PYDANTIC_CODES.get(error["type"], C.INVALID_VALUE)
        if code == C.UNKNOWN_KEY:
            message = f"unknown key '{loc[-1]}'"
        elif code == C.MISSING_FIELD:
            message = f"'{loc[-1]}' is required"
        else:
            message = str(error["msg"])
        diagnostics.append(Diagnostic("error", code, message, node, field))
    return diagnostics
