"""The grpc runtime: node types served by sidecar processes over the NodeRuntime service.

A node type names its ``sidecar``; the manifest declares the sidecar as managed (``command``:
the host starts, watches, restarts and stops it, see ``_sidecar_process``) or remote
(``endpoint``). When a manifest is loaded, each sidecar is asked for its node types
(``Describe``), which join the catalog, so the compiler checks workflows against their
schemas; ``discover = false`` skips that (the manifest then declares the types it uses).

A call is one ``Execute`` stream on a channel kept per sidecar: logs, chunks and progress
become events as they arrive; the result or the typed error ends it. The node's timeout is the
call's deadline, a cancelled node cancels the call, and a sidecar that cannot be reached (it
died, it is restarting) fails the attempt with the retryable ``sidecar_unavailable``, so the
node's retry policy decides what happens next. Nothing a sidecar does can fail the run beyond
its own node, nor the host.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from ..._errors import NodeError
from ..._limits import Limits
from ...workflow._catalog import Catalog, NodeType, SidecarSpec
from .._context import NodeContext

if TYPE_CHECKING:
    from ._call import GrpcCalls
    from ._sidecars import SidecarManager

__all__ = ["GrpcRuntime"]


class GrpcRuntime:
    """Runs ``runtime = "grpc"`` node types on their sidecars.

    grpcio is loaded on first use (a manifest that declares a sidecar, or a grpc node), so hosts
    without sidecars do not pay for it.
    """

    name = "grpc"

    def __init__(self, catalog: Catalog, *, limits: Limits | None = None) -> None:
        self.catalog = catalog
        self.limits = limits
        self._calls: GrpcCalls | None = None
        self._lock = threading.Lock()

    @property
    def sidecars(self) -> SidecarManager:
        """The sidecars this runtime started or connected to."""
        return self._machinery().sidecars

    def discover(self, sidecars: dict[str, SidecarSpec]) -> None:
        """Ask each sidecar for its node types and add them to the catalog (blocking: a managed
        sidecar is started). One that cannot be asked is recorded in the catalog's
        ``sidecar_problems``, which unknown-type diagnostics name."""
        self._machinery().discover(sidecars)

    async def execute(
        self, node_type: NodeType, params: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any] | None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # trio, say: grpcio's asyncio API cannot run there
            raise NodeError(
                "grpc nodes need an asyncio event loop (grpcio's asyncio API)",
                node=ctx.node_id,
                code="runtime_unavailable",
                retryable=False,
            ) from None
        return await self._machinery().execute(node_type, params, ctx)

    async def aclose(self) -> None:
        """Close the channels and stop every managed sidecar; idempotent."""
        calls, self._calls = self._calls, None
        if calls is not None:
            await calls.aclose()

    def _machinery(self) -> GrpcCalls:
        found = self._calls
        if found is None:
            with self._lock:
                found = self._calls
                if found is None:
                    from ._call import GrpcCalls  # noqa: PLC0415 (loads grpcio)

                    found = self._calls = GrpcCalls(self.catalog, self.limits)
        return found
