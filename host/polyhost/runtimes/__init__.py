"""Runtime adapters: each runs nodes of one ``runtime`` behind the same small interface."""

import os

# gRPC's fork handlers (on by default) print to stderr when anything in a host full of gRPC
# threads forks, and the host has no use for them: it starts processes without fork (vfork
# through subprocess) and never uses gRPC in a child. Read by grpcio when it is imported, which
# happens after this (the grpc runtime loads it on first use); an explicit setting stands.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from ._base import RuntimeAdapter
from ._grpc import GrpcRuntime
from ._native import NativeRuntime
from ._python import PythonRuntime
from ._wasm import WasmRuntime

__all__ = ["GrpcRuntime", "NativeRuntime", "PythonRuntime", "RuntimeAdapter", "WasmRuntime"]
