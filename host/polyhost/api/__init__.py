"""The HTTP API's wire models (v1): what the server accepts and answers, and what the client
reads. Pydantic models, so the server's OpenAPI document is generated from the very classes that
validate its requests; the console's TypeScript types are generated from that document.
"""

from ._models import (
    API_PREFIX,
    AdhocRunRequest,
    CompileRequest,
    CompileResponse,
    Deployed,
    DiagnosticModel,
    EventList,
    EventModel,
    Health,
    NodeTypeModel,
    Problem,
    ResumeRequest,
    RunAccepted,
    RunList,
    RunSummaryModel,
    StartRunRequest,
    TriggerModel,
    WebhookAccepted,
    WorkflowDetail,
    WorkflowList,
    WorkflowSummary,
    WorkflowVersion,
)

__all__ = [
    "API_PREFIX",
    "AdhocRunRequest",
    "CompileRequest",
    "CompileResponse",
    "Deployed",
    "DiagnosticModel",
    "EventList",
    "EventModel",
    "Health",
    "NodeTypeModel",
    "Problem",
    "ResumeRequest",
    "RunAccepted",
    "RunList",
    "RunSummaryModel",
    "StartRunRequest",
    "TriggerModel",
    "WebhookAccepted",
    "WorkflowDetail",
    "WorkflowList",
    "WorkflowSummary",
    "WorkflowVersion",
]
