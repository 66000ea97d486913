"""Reading workflow files (YAML or JSON) into the model, within the document limits."""

from __future__ import annotations

import json as _json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import CompileError, WorkflowLoadError
from .._limits import Limits, default_limits
from ..workflow._diagnostics import Diagnostic
from ..workflow._diagnostics import DiagnosticCode as C
from ..workflow._document import (
    DocumentLimit,
    Problem,
    Unreadable,
    YamlSyntaxError,
    gc_paused,
    limit_diagnostic,
    parse_json,
    parse_yaml,
    problem_diagnostics,
    read_limited,
)
from ..workflow._model import Workflow
from ._checker import Runtimes
from ._parsing import parse_workflow

if TYPE_CHECKING:
    from ..workflow._catalog import Catalog

__all__ = ["load_document", "load_workflow", "parse_bytes", "read_document"]

MANIFEST_NAME = "polyhost.toml"


def read_document(path: str | Path, limits: Limits | None = None) -> tuple[Any, list[Diagnostic]]:
    """The parsed value of a workflow file and the diagnostics for what it may not hold
    (duplicate keys, non-string keys, lone surrogates, numbers out of range).

    Raises ``WorkflowLoadError`` for a file that cannot be read or parsed, and
    ``CompileError`` (code ``limit_exceeded``) for one past a document limit.
    """
    raw, problems = _read(path, limits or default_limits())
    return raw, problem_diagnostics(problems, raw)


def _read(path: str | Path, limits: Limits) -> tuple[Any, list[Problem]]:
    shown = repr(str(path)) if "\0" in str(path) else str(path)
    try:
        data = read_limited(path, limits.max_document_bytes)
    except Unreadable as exc:
        if exc.limit is not None:
            raise CompileError([Diagnostic("error", C.LIMIT_EXCEEDED, exc.message)]) from None
        raise WorkflowLoadError(exc.message) from None
    return parse_bytes(data, shown, limits, json=Path(path).suffix.lower() == ".json")


def parse_bytes(
    data: bytes, shown: str, limits: Limits, *, json: bool
) -> tuple[Any, list[Problem]]:
    """A document's bytes parsed as JSON or YAML, within the document limits, and what it
    holds that JSON's data model does not; ``shown`` names it in errors (a path, a request)."""
    if len(data) > limits.max_document_bytes:
        message = (
            f"{shown}: {len(data)} bytes, over max_document_bytes ({limits.max_document_bytes})"
        )
        raise CompileError([Diagnostic("error", C.LIMIT_EXCEEDED, message)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkflowLoadError(
            f"{shown}: not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from None
    raw: Any = None
    try:
        if json:
            raw, problems = parse_json(data, text, limits)
        else:
            raw, problems = parse_yaml(text, limits)
    except DocumentLimit as exc:
        raise CompileError([limit_diagnostic(exc)]) from None
    except _json.JSONDecodeError as exc:
        raise WorkflowLoadError(
            f"{shown}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    except YamlSyntaxError as exc:
        raise WorkflowLoadError(f"{shown}{exc.where}: not valid YAML: {exc.message}") from None
    return raw, problems


def load_document(path: str | Path, limits: Limits | None = None) -> Any:
    """The parsed YAML or JSON value of a workflow file; ``CompileError`` for what it may not
    hold (see :func:`read_document`)."""
    raw, problems = read_document(path, limits)
    if problems:
        raise CompileError(problems)
    return raw


def load_workflow(
    path: str | Path,
    *,
    limits: Limits | None = None,
    catalog: Catalog | None = None,
    runtimes: Runtimes = None,
) -> Workflow:
    """Read and validate a workflow file; its id defaults to the file name.

    With a ``catalog``, an invalid document's ``CompileError`` also holds what compiling the
    rest of it finds, so that one error does not hide the others.
    """
    path = Path(path)
    limits = limits or default_limits()
    with gc_paused():
        raw, problems = _read(path, limits)
        return parse_workflow(
            raw,
            default_id=path.stem,
            limits=limits,
            catalog=catalog,
            runtimes=runtimes,
            checked=problems,
        )
