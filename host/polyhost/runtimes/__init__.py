"""Runtime adapters: each runs nodes of one ``runtime`` behind the same small interface."""

from ._base import RuntimeAdapter
from ._grpc import GrpcRuntime
from ._native import NativeRuntime
from ._python import PythonRuntime
from ._wasm import WasmRuntime

__all__ = ["GrpcRuntime", "NativeRuntime", "PythonRuntime", "RuntimeAdapter", "WasmRuntime"]
