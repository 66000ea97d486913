"""Runtimes: each a plug-in (a subpackage here, or an installed package's) that owns its
node-type options, its load-time checks, its node types and the adapter that runs its nodes.

The adapters are loaded on first use: the workflow model imports the plug-in interface from
here, and the adapters import the workflow model.
"""

import os
from typing import TYPE_CHECKING, Any

# gRPC's fork handlers (on by default) print to stderr when anything in a host full of gRPC
# threads forks, and the host has no use for them: it starts processes without fork (vfork
# through subprocess) and never uses gRPC in a child. Read by grpcio when it is imported, which
# happens after this (the grpc runtime loads it on first use); an explicit setting stands.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from ._plugin import Problem, RuntimeOptions, RuntimePlugin, RuntimeSetup, options_of
from ._registry import ENTRY_POINT_GROUP, find_runtime, register_runtime, runtime_plugins

if TYPE_CHECKING:
    from ._base import RuntimeAdapter
    from .grpc import GrpcRuntime
    from .native import NativeRuntime
    from .python import PythonRuntime
    from .wasm import WasmRuntime

__all__ = [
    "ENTRY_POINT_GROUP",
    "GrpcRuntime",
    "NativeRuntime",
    "Problem",
    "PythonRuntime",
    "RuntimeAdapter",
    "RuntimeOptions",
    "RuntimePlugin",
    "RuntimeSetup",
    "WasmRuntime",
    "find_runtime",
    "options_of",
    "register_runtime",
    "runtime_plugins",
]

_LAZY = {
    "RuntimeAdapter": "._base",
    "GrpcRuntime": ".grpc",
    "NativeRuntime": ".native",
    "PythonRuntime": ".python",
    "WasmRuntime": ".wasm",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib  # noqa: PLC0415 (only on first use of an adapter)

    return getattr(importlib.import_module(module, __name__), name)
