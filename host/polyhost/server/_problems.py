"""Errors as ``application/problem+json`` (RFC 9457) with the stable codes of the CLI.

Every error a client can see goes through :func:`problem_of`: a ``PolyhostError`` keeps its code
and the node and field it names; anything else is a 500 ``internal_error`` whose detail says
nothing about the code that failed (the server's log has the traceback).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Final

from starlette.responses import JSONResponse

from .._errors import (
    AmbiguousRunIdError,
    CompileError,
    ExpressionError,
    InputError,
    LimitExceededError,
    NodeError,
    PolyhostError,
    RunNotFoundError,
    RunStateError,
    StoreError,
    WorkflowError,
    WorkflowNotFoundError,
)
from ..api import DiagnosticModel, Problem
from ..events._redaction import known
from ..workflow._diagnostics import Diagnostic

__all__ = ["PROBLEM_JSON", "ApiError", "problem_of", "problem_response"]

PROBLEM_JSON: Final = "application/problem+json"
_log = logging.getLogger("polyhost.server")


class ApiError(PolyhostError):
    """A request the API refuses for a reason of HTTP's own (auth, size, routing, syntax)."""

    def __init__(self, status: int, message: str, *, code: str, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.field = field


def _status_of(exc: PolyhostError) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, AmbiguousRunIdError):
        return 400
    if isinstance(exc, RunNotFoundError | WorkflowNotFoundError):
        return 404
    if isinstance(exc, RunStateError):
        return 409
    if isinstance(exc, CompileError | WorkflowError | InputError | ExpressionError):
        return 422
    if isinstance(exc, LimitExceededError):
        return 413 if exc.node is None and getattr(exc, "field", None) == "body" else 422
    if isinstance(exc, StoreError):
        return 503
    return 400


def _diagnostics(exc: PolyhostError) -> list[DiagnosticModel] | None:
    if isinstance(exc, CompileError):
        return [DiagnosticModel(**d.to_dict()) for d in exc.diagnostics]
    if isinstance(exc, InputError | ExpressionError):
        node = exc.node if isinstance(exc, ExpressionError) else None
        return [
            DiagnosticModel(**Diagnostic("error", exc.code, exc.message, node, exc.field).to_dict())
        ]
    return None


def problem_of(exc: BaseException) -> Problem:
    """The problem object a client gets for ``exc``, with secrets masked."""
    if not isinstance(exc, PolyhostError):
        _log.error("internal error answering a request", exc_info=exc)
        return Problem(
            title=HTTPStatus.INTERNAL_SERVER_ERROR.phrase,
            status=500,
            detail="the server failed to answer this request; its log has the details",
            code="internal_error",
        )
    status = _status_of(exc)
    detail = exc.message
    if isinstance(exc, CompileError):
        first = next((d for d in exc.diagnostics if d.severity == "error"), None)
        detail = first.message if first is not None else detail
    node = (
        getattr(exc, "node", None)
        if isinstance(exc, NodeError | ExpressionError | LimitExceededError)
        else None
    )
    extra: dict[str, Any] = {}
    if isinstance(exc, AmbiguousRunIdError):
        extra["candidates"] = list(exc.candidates)
    elif isinstance(exc, RunNotFoundError) and exc.run_id is not None:
        detail = f"no run with id {exc.run_id!r}"  # not where the server keeps its store
    return Problem(
        title=_title(status),
        status=status,
        detail=detail,
        code=exc.code,
        node=node,
        field=getattr(exc, "field", None),
        diagnostics=_diagnostics(exc),
        **extra,
    )


def problem_response(exc: BaseException, headers: dict[str, str] | None = None) -> JSONResponse:
    problem = problem_of(exc)
    return JSONResponse(
        # Diagnostics may quote what a client sent, which may hold a secret the server knows.
        known().redact(problem.model_dump(mode="json", exclude_none=True)),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
