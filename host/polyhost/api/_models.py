"""Request and response bodies of the HTTP API v1 (docs/http-api.md).

Response models allow keys they do not name (``extra="allow"``): a newer server may add keys,
and an older client keeps working. Request models forbid unknown keys, so a typo in a request
is a 400 that names it rather than a setting silently ignored.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "API_PREFIX",
    "AdhocRunRequest",
    "CompileRequest",
    "CompileResponse",
    "Deployed",
    "DiagnosticModel",
    "ErrorModel",
    "EventList",
    "EventModel",
    "Health",
    "NodeResultModel",
    "NodeTypeModel",
    "Problem",
    "ResumeRequest",
    "RunAccepted",
    "RunList",
    "RunRecordModel",
    "RunResultModel",
    "RunSummaryModel",
    "StartRunRequest",
    "TriggerModel",
    "UsageModel",
    "WebhookAccepted",
    "WorkflowDetail",
    "WorkflowList",
    "WorkflowSummary",
    "WorkflowVersion",
]

API_PREFIX: Final = "/api/v1"

Trigger = Literal["manual", "api", "webhook", "schedule", "rerun", "retry", "subworkflow"]


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(_Response):
    status: Literal["ok"] = "ok"
    version: str


class DiagnosticModel(_Response):
    """One finding of the compiler: the objects ``polyhost compile --json`` prints."""

    severity: str
    code: str
    message: str
    node: str | None = None
    field: str | None = None


class Problem(_Response):
    """An error, as ``application/problem+json`` (RFC 9457) with a stable ``code``."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    node: str | None = None
    field: str | None = None
    diagnostics: list[DiagnosticModel] | None = None


class NodeTypeModel(_Response):
    """One node type of the catalog: an entry of ``polyhost nodes --json``."""

    type: str
    runtime: str
    version: str
    description: str = ""
    ports: list[str]
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None


class CompileRequest(_Request):
    workflow: dict[str, Any] | str = Field(
        description="A workflow document: an object, or YAML/JSON text"
    )


class CompileResponse(_Response):
    ok: bool
    diagnostics: list[DiagnosticModel]


class TriggerModel(_Response):
    """A trigger of a deployed workflow, as its document writes it (secrets are env names)."""

    schedule: str | None = None
    tz: str | None = None
    webhook: str | None = None
    secret_env: str | None = None
    inputs: Any = None


class Deployed(_Response):
    """What ``PUT /workflows/{id}`` did: ``created`` is false when the document was unchanged."""

    id: str
    version: int
    hash: str
    created: bool


class WorkflowVersion(_Response):
    version: int
    hash: str
    created_at: float


class WorkflowSummary(_Response):
    id: str
    version: int = Field(description="The latest version")
    hash: str
    created_at: float
    name: str | None = None
    description: str | None = None
    triggers: list[TriggerModel] = Field(default_factory=list)


class WorkflowDetail(WorkflowSummary):
    document: dict[str, Any]
    versions: list[WorkflowVersion]
    inputs: dict[str, Any] | None = Field(
        default=None, description="The inputs schema of the version shown"
    )


class WorkflowList(_Response):
    workflows: list[WorkflowSummary]


class StartRunRequest(_Request):
    inputs: dict[str, Any] = Field(default_factory=dict)
    wait: float | Literal[False] = Field(
        default=False,
        description="false: answer at once (202); a number: wait up to that many seconds for "
        "the run to end or pause and answer its result (200), else 202",
    )


class AdhocRunRequest(StartRunRequest):
    workflow: dict[str, Any] | str = Field(
        description="A workflow document: an object, or YAML/JSON text"
    )


class RunAccepted(_Response):
    execution_id: str
    status: str


class WebhookAccepted(_Response):
    execution_id: str


class ResumeRequest(_Request):
    inputs: dict[str, Any] | None = None


class RunSummaryModel(_Response):
    """One run in the history. Times are seconds since the epoch (UTC)."""

    execution_id: str
    workflow_id: str
    workflow_version: int | None = None
    status: str
    trigger: Trigger | str = "manual"
    started_at: float
    ended_at: float | None = None
    duration_ms: float | None = None


class RunList(_Response):
    runs: list[RunSummaryModel]
    next_cursor: str | None = None


class EventModel(_Response):
    run_id: str
    seq: int
    type: str
    ts: float
    node: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class EventList(_Response):
    events: list[EventModel]


class ErrorModel(_Response):
    """What ended a node or a run: a stable ``code``, a message, where when known."""

    code: str
    message: str
    node: str | None = None
    field: str | None = None


class NodeResultModel(_Response):
    """One node's entry in a run's result."""

    status: str
    attempts: int = 0
    output: Any = None
    error: ErrorModel | None = None
    duration_ms: float | None = None


class UsageModel(_Response):
    """Model tokens, summed over the nodes that report them (``llm.chat``); ``estimated`` when
    any part was counted by the host because the server reported none."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool = False


class RunResultModel(_Response):
    """A run's result: exactly the object ``polyhost run --json`` prints. ``pause`` says what a
    paused run waits for (``waiting``: node, kind, prompt, schema; ``wake_at``)."""

    execution_id: str
    workflow_id: str
    status: str
    outputs: dict[str, Any] | None = None
    error: ErrorModel | None = None
    duration_ms: float = 0.0
    nodes: dict[str, NodeResultModel] = Field(default_factory=dict)
    pause: dict[str, Any] | None = None
    usage: UsageModel | None = None


class RunRecordModel(_Response):
    """What a run started with: its document and inputs, where it came from."""

    execution_id: str
    workflow_id: str
    workflow_version: int | None = None
    trigger: str = "manual"
    status: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    document: dict[str, Any]
    source: str | None = None
    manifests: list[str] = Field(default_factory=list)
    started_at: float
    parent_run_id: str | None = None
