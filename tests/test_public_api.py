"""The public surface changes only on purpose: this list is the contract with embedders."""

from __future__ import annotations

import polyhost

PUBLIC = [
    "AmbiguousRunIdError", "CancelOutcome", "EventPage", "RunDetails", "RunHistory", "RunOverview",
    "RunPage", "WorkflowNotFoundError",
    "Catalog", "CompileError", "CompiledWorkflow", "Diagnostic", "Edge", "Event", "EventType",
    "ExpressionError", "HandlerError", "Host", "HostConfig", "InputError", "LimitExceededError",
    "Limits", "ManifestError",
    "Node", "NodeContext", "NodeError", "NodeOutputError", "NodeParameterError", "NodeResult",
    "NodeStatus", "NodeTimeoutError", "NodeType", "PauseRequested", "PolyhostError", "RetryPolicy",
    "RunNotFoundError", "RunResult", "RunStateError", "RunStatus", "RuntimeAdapter",
    "RuntimeRouter", "RuntimeUnavailableError", "SidecarSpec", "StoreError", "Workflow",
    "WorkflowError", "WorkflowLoadError", "__version__", "workflow_json_schema",
]  # fmt: skip


def test_all_is_pinned() -> None:
    assert sorted(polyhost.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(polyhost, name), name


def test_every_error_is_a_polyhost_error() -> None:
    errors = [getattr(polyhost, n) for n in PUBLIC if n.endswith("Error")]
    assert all(issubclass(e, polyhost.PolyhostError) for e in errors)
    assert all(e.code and e.code == e.code.lower() for e in errors)
