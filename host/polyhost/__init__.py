"""polyhost: run workflows whose nodes are Python, Rust, WebAssembly or gRPC sidecars.

The public API; everything else lives in private modules and may change.
"""

from ._errors import (
    AmbiguousRunIdError,
    CompileError,
    ExpressionError,
    HandlerError,
    InputError,
    LimitExceededError,
    ManifestError,
    NodeError,
    NodeOutputError,
    NodeParameterError,
    NodeTimeoutError,
    PolyhostError,
    RunNotFoundError,
    RunStateError,
    RuntimeUnavailableError,
    StoreError,
    WorkflowError,
    WorkflowLoadError,
    WorkflowNotFoundError,
)
from ._limits import Limits
from ._version import __version__
from .compile._compiled import CompiledWorkflow
from .events._events import Event, EventType
from .events._result import (
    CancelOutcome,
    EventPage,
    NodeResult,
    NodeStatus,
    RunDetails,
    RunOverview,
    RunPage,
    RunResult,
    RunStatus,
)
from .host._config import HostConfig
from .host._history import RunHistory
from .host._host import Host
from .router._router import RuntimeRouter
from .runtimes import RuntimeAdapter
from .runtimes._context import NodeContext
from .runtimes._pause import PauseRequested
from .workflow._catalog import Catalog, NodeType, SidecarSpec
from .workflow._diagnostics import Diagnostic
from .workflow._model import Edge, Node, RetryPolicy, Workflow, workflow_json_schema

__all__ = [
    "AmbiguousRunIdError",
    "CancelOutcome",
    "Catalog",
    "CompileError",
    "CompiledWorkflow",
    "Diagnostic",
    "Edge",
    "Event",
    "EventPage",
    "EventType",
    "ExpressionError",
    "HandlerError",
    "Host",
    "HostConfig",
    "InputError",
    "LimitExceededError",
    "Limits",
    "ManifestError",
    "Node",
    "NodeContext",
    "NodeError",
    "NodeOutputError",
    "NodeParameterError",
    "NodeResult",
    "NodeStatus",
    "NodeTimeoutError",
    "NodeType",
    "PauseRequested",
    "PolyhostError",
    "RetryPolicy",
    "RunDetails",
    "RunHistory",
    "RunNotFoundError",
    "RunOverview",
    "RunPage",
    "RunResult",
    "RunStateError",
    "RunStatus",
    "RuntimeAdapter",
    "RuntimeRouter",
    "RuntimeUnavailableError",
    "SidecarSpec",
    "StoreError",
    "Workflow",
    "WorkflowError",
    "WorkflowLoadError",
    "WorkflowNotFoundError",
    "__version__",
    "workflow_json_schema",
]
