"""A grpc node type's options: the sidecar that serves it, and how it is called."""

from __future__ import annotations

from pydantic import Field

from .._plugin import RuntimeOptions

__all__ = ["GrpcOptions"]


class GrpcOptions(RuntimeOptions):
    """The keys of a grpc node type."""

    sidecar: str = Field(description="the name of a sidecar under the manifest's [sidecars]")
    unary: bool = Field(
        False, description="one unary call (Run) per attempt; logs arrive with the result"
    )
