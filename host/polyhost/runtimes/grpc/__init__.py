"""The grpc runtime: node types served by sidecars (grpcio loads on first use)."""

from ._options import GrpcOptions
from ._plugin import PLUGIN, GrpcPlugin
from ._runtime import GrpcRuntime

__all__ = ["PLUGIN", "GrpcOptions", "GrpcPlugin", "GrpcRuntime"]
