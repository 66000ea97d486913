"""The exception hierarchy of polyhost.

Every error polyhost raises on purpose derives from :class:`PolyhostError` and carries a stable
snake_case ``code`` that diagnostics, events and the CLI share::

    PolyhostError
    ├── WorkflowError              a document or manifest that cannot be used
    │   ├── WorkflowLoadError      unreadable file, bad YAML/JSON
    │   │   └── YamlSyntaxError    YAML that does not parse (line and column)
    │   ├── CompileError           diagnostics with severity "error" (carries them all)
    │   └── ManifestError          a polyhost.toml that cannot be read or is invalid
    ├── InputError                 run inputs that break the workflow's inputs schema
    ├── ExpressionError            a CEL expression that does not parse or evaluate
    │   └── ExpressionLimitError   one too long, deep or costly (``limit`` names the field)
    ├── InvalidSchemaError         a JSON Schema that cannot be used (``problems``)
    ├── PatternError               a schema ``pattern`` the regex engine cannot run
    ├── PlanError                  the plan or a run's scheduler state refused an operation
    ├── NodeError                  one attempt of one node failed (node id, code, attempt)
    │   ├── NodeTimeoutError       the attempt ran past its timeout
    │   ├── NodeOutputError        the output is not JSON-serialisable, or too large
    │   ├── NodeParameterError     resolved parameters break the node type's input schema
    │   ├── HandlerError           the handler raised; the cause is kept
    │   │   └── RemoteHandlerError a handler in a worker process raised (its traceback kept)
    │   └── LlmError               an llm.chat node's server or model failed it
    │       ├── LlmRateLimitedError    429: retryable, after the server's Retry-After
    │       ├── LlmBadRequestError     a 4xx the server explains (bad model, context too long)
    │       ├── LlmAuthError           401/403: the key is missing, wrong or not allowed
    │       ├── LlmUnavailableError    5xx, connection failures, a stream cut short: retryable
    │       ├── LlmInvalidReplyError   a reply that breaks the protocol or response_format
    │       └── LlmMaxStepsError       the model still called tools after max_steps
    ├── RuntimeUnavailableError    no adapter for a node type's runtime, or it cannot serve
    │   ├── SidecarStartError      a managed sidecar did not start or became unavailable
    │   ├── SidecarProtocolError   a sidecar speaks another major version, or breaks it
    │   └── SidecarAuthError       a sidecar refused the host's token
    ├── RunNotFoundError           the store has no run with that id
    │   └── AmbiguousRunIdError    an id prefix that several runs start with (lists them)
    ├── WorkflowNotFoundError      no deployed workflow (or version of one) with that id
    ├── RunStateError              an operation that the run's status does not allow
    ├── StoreError                 the store could not be read or written
    ├── LimitExceededError         input or work past one of the host's limits (docs/limits.md)
    │   └── ModuleLimitError       a wasm module past a ``max_wasm_*`` limit
    └── PauseRequested             not a failure: a handler asks for its run to pause

``PauseRequested`` lives in ``polyhost.runtimes._pause``, the sidecar errors in the grpc
runtime, the schema errors in ``polyhost.compile._schema``. Errors of the Rust extension never
reach a caller as they are: ``polyhost.plan._bridge`` turns each into one of the above (the
extension's ``PlanError`` into ``PlanError``; ``ExpressionSyntaxError`` and
``ExpressionEvalError`` into ``ExpressionError``; its regex ``PatternError`` into
``PatternError``; ``NativeNodeError`` into a ``NodeError`` naming the node).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AmbiguousRunIdError",
    "CompileError",
    "ExpressionError",
    "ExpressionLimitError",
    "HandlerError",
    "InputError",
    "LimitExceededError",
    "LlmAuthError",
    "LlmBadRequestError",
    "LlmError",
    "LlmInvalidReplyError",
    "LlmMaxStepsError",
    "LlmRateLimitedError",
    "LlmUnavailableError",
    "ManifestError",
    "NodeError",
    "NodeOutputError",
    "NodeParameterError",
    "NodeTimeoutError",
    "PatternError",
    "PlanError",
    "PolyhostError",
    "RunNotFoundError",
    "RunStateError",
    "RuntimeUnavailableError",
    "StoreError",
    "WorkflowError",
    "WorkflowLoadError",
    "WorkflowNotFoundError",
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


class ExpressionLimitError(ExpressionError):
    """An expression went past one of the expression limits (``limit`` names the field of
    :class:`Limits`): too long or deeply nested to parse, or too costly to evaluate."""

    code = "limit_exceeded"

    def __init__(self, exc: LimitExceededError, source: str) -> None:
        super().__init__(exc.message, source=source)
        self.limit = exc.limit
        self.value = exc.value


class PatternError(PolyhostError):
    """A regular expression (a schema's ``pattern``) the linear-time engine cannot run."""

    code = "invalid_pattern"


class PlanError(PolyhostError):
    """The plan or a run's scheduler state refused an operation (an edge to a node that does
    not exist, a node completed twice, a snapshot of another plan)."""

    code = "plan_error"


class NodeError(PolyhostError):
    """One attempt of a node failed."""

    code = "node_error"
    retryable: bool = True
    # Seconds the failing service asked to be left alone (a 429's Retry-After): a retry of the
    # node waits at least this long, within the host's max_retry_delay.
    retry_after: float | None = None

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


class LlmError(NodeError):
    """An ``llm.chat`` node failed because of its server or its model."""

    code = "llm_error"


class LlmRateLimitedError(LlmError):
    """The server answered 429 (after the client's own retries); ``retry_after`` from it."""

    code = "llm_rate_limited"


class LlmBadRequestError(LlmError):
    """The server refused the request (a 4xx other than 401, 403 and 429); its message kept."""

    code = "llm_bad_request"
    retryable = False


class LlmAuthError(LlmError):
    """The server refused the key (401) or what the key may do (403)."""

    code = "llm_auth"
    retryable = False


class LlmUnavailableError(LlmError):
    """The server could not be reached, failed (5xx) or cut its reply short."""

    code = "llm_unavailable"


class LlmInvalidReplyError(LlmError):
    """A reply that breaks the protocol, or that does not match ``response_format`` after the
    repair rounds allowed; ``raw`` holds the text the model gave."""

    code = "llm_invalid_reply"
    retryable = False

    def __init__(
        self, message: str, *, node: str | None = None, field: str | None = None, raw: str = ""
    ) -> None:
        super().__init__(message, node=node, field=field)
        self.raw = raw


class LlmMaxStepsError(LlmError):
    """The model still asked for tools when ``max_steps`` rounds had run."""

    code = "llm_max_steps"
    retryable = False


class RuntimeUnavailableError(PolyhostError):
    """No runtime adapter is registered for a node type's ``runtime``."""

    code = "runtime_unavailable"


class RunNotFoundError(PolyhostError):
    """The store holds no run with that id (``run_id``, when the error knows it)."""

    code = "run_not_found"

    def __init__(self, message: str, *, code: str | None = None, run_id: str | None = None) -> None:
        super().__init__(message, code=code)
        self.run_id = run_id


class AmbiguousRunIdError(RunNotFoundError):
    """Several runs start with the id prefix given; ``candidates`` lists some of them."""

    code = "ambiguous_run_id"

    def __init__(self, prefix: str, candidates: list[str], *, more: bool = False) -> None:
        shown = ", ".join(candidates) + (", ..." if more else "")
        super().__init__(
            f"run id prefix {prefix!r} is ambiguous: it matches {shown}; give more characters"
        )
        self.prefix = prefix
        self.candidates = list(candidates)


class WorkflowNotFoundError(PolyhostError):
    """No workflow is deployed under that id (or it has no such version, or was undeployed)."""

    code = "workflow_not_found"


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
