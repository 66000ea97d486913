"""The exception hierarchy of polyhost.

Every error polyhost raises on purpose derives from :class:`PolyhostError` and carries a stable
snake_case ``code`` that diagnostics, events and the CLI share::

    PolyhostError
    ├── WorkflowError              a document or manifest that cannot be used
    │   ├── WorkflowLoadError      unreadable file, bad YAML/JSON
    │   ├── CompileError           diagnostics with severity "error" (carries them all)
    │   └── ManifestError          a polyhost.toml that cannot be read or is invalid
    ├── InputError                 run inputs that break the workflow's inputs schema
    ├── ExpressionError            a CEL expression that does not parse or evaluate
    ├── NodeError                  one attempt of one node failed (node id, code, attempt)
    │   ├── NodeTimeoutError       the attempt ran past its timeout
    │   ├── NodeOutputError        the output is not JSON-serialisable, or too large
    │   ├── NodeParameterError     resolved parameters break the node type's input schema
    │   └── HandlerError           the handler raised; the cause is kept
    ├── RuntimeUnavailableError    no adapter for a node type's runtime
    ├── RunNotFoundError           the store has no run with that id
    ├── RunStateError              an operation that the run's status does not allow
    ├── StoreError                 the store could not be read or written
    └── LimitExceededError         input or work past one of the host's limits (docs/limits.md)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CompileError",
    "ExpressionError",
    "HandlerError",
    "InputError",
    "LimitExceededError",
    "ManifestError",
    "NodeError",
    "NodeOutputError",
    "NodeParameterError",
    "NodeTimeoutError",
    "PolyhostError",
    "RunNotFoundError",
    "RunStateError",
    "RuntimeUnavailableError",
    "StoreError",
    "WorkflowError",
    "WorkflowLoadError",
]


class PolyhostError(Exception):
    """Root of every error polyhost raises on purpose."""

    code: str = "polyhost_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class WorkflowError(PolyhostError):
    """A workflow document or manifest that cannot be used."""

    code = "invalid_workflow"


class WorkflowLoadError(WorkflowError):
    """The file could not be read or parsed as YAML/JSON."""

    code = "load_error"


class CompileError(WorkflowError):
    """Compilation found errors; ``diagnostics`` holds every one of them."""

    code = "compile_error"

    def __init__(self, diagnostics: list[Any]) -> None:
        errors = [d for d in diagnostics if d.severity == "error"]
        first = errors[0] if errors else None
        summary = f"{len(errors)} error(s)"
        if first is not None:
            summary += f"; first: {first.render()}"
        super().__init__(summary)
        self.diagnostics = diagnostics


class ManifestError(WorkflowError):
    """A node-type manifest (polyhost.toml) is unreadable or invalid."""

    code = "invalid_manifest"


class InputError(PolyhostError):
    """Run inputs do not satisfy the workflow's ``inputs`` schema."""

    code = "invalid_inputs"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ExpressionError(PolyhostError):
    """A CEL expression or template failed to parse or evaluate."""

    code = "expression_error"

    def __init__(
        self, message: str, *, source: str = "", node: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.source = source
        self.node = node
        self.field = field


class NodeError(PolyhostError):
    """One attempt of a node failed."""

    code = "node_error"
    retryable: bool = True

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        code: str | None = None,
        field: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.node = node
        self.field = field
        if retryable is not None:
            self.retryable = retryable


class NodeTimeoutError(NodeError):
    """The attempt ran past the node's ``timeout``."""

    code = "timeout"


class NodeOutputError(NodeError):
    """The output is not JSON-serialisable or is larger than allowed."""

    code = "invalid_output"
    retryable = False


class NodeParameterError(NodeError):
    """Resolved ``with`` parameters break the node type's input schema."""

    code = "invalid_parameters"
    retryable = False


class HandlerError(NodeError):
    """A node handler raised; ``__cause__`` keeps the original exception."""

    code = "handler_error"


class RuntimeUnavailableError(PolyhostError):
    """No runtime adapter is registered for a node type's ``runtime``."""

    code = "runtime_unavailable"


class RunNotFoundError(PolyhostError):
    """The store holds no run with that id."""

    code = "run_not_found"


class RunStateError(PolyhostError):
    """The run's status does not allow the operation."""

    code = "invalid_run_state"


class StoreError(PolyhostError):
    """The run store could not be read or written."""

    code = "store_error"


class LimitExceededError(PolyhostError):
    """Something went past one of :class:`Limits`; ``limit`` names the field."""

    code = "limit_exceeded"

    def __init__(
        self,
        limit: str,
        value: int | float,
        detail: str,
        *,
        node: str | None = None,
        field: str | None = None,
    ) -> None:
        self.limit = limit
        self.value = value
        self.node = node
        self.field = field
        super().__init__(f"{detail} (limit {limit} = {value}; see docs/limits.md)")
