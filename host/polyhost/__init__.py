"""polyhost: run workflows whose nodes are Python, Rust, WebAssembly or gRPC sidecars.

The public API; everything else lives in private modules and may change.
"""

from ._catalog import Catalog, NodeType, SidecarSpec
from ._compiled import CompiledWorkflow
from ._config import HostConfig
from ._context import NodeContext
from ._diagnostics import Diagnostic
from ._errors import (
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
)
from ._events import Event, EventType
from ._host import Host
from ._limits import Limits
from ._model import Edge, Node, RetryPolicy, Workflow, workflow_json_schema
from ._pause import PauseRequested
from ._result import NodeResult, NodeStatus, RunResult, RunStatus
from ._router import RuntimeRouter
from .runtimes import RuntimeAdapter

__version__ = "0.1.0"

__all__ = [
    "Catalog",
    "CompileError",
    "CompiledWorkflow",
    "Diagnostic",
    "Edge",
    "Event",
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
    "RunNotFoundError",
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
    "__version__",
    "workflow_json_schema",
]
