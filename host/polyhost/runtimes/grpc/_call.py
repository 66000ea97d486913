"""The grpc runtime's machinery (imported on first use: grpcio takes some 50 ms to load)."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import anyio
import anyio.to_thread
import grpc

from ..._codes import check_node_error
from ..._errors import (
    NodeError,
    NodeOutputError,
    NodeTimeoutError,
    PolyhostError,
    RuntimeUnavailableError,
)
from ..._limits import Limits
from ..._proto import runtime_pb2, runtime_pb2_grpc
from ...workflow._catalog import Catalog, NodeType, SidecarSpec
from .._context import NodeContext
from .._plugin import options_of
from ._options import GrpcOptions
from ._sidecars import RemoteSidecar, Sidecar, SidecarManager
from ._wire import (
    PROTOCOL_VERSION,
    Endpoint,
    SidecarAuthError,
    SidecarProtocolError,
    describe,
)

__all__ = ["GrpcCalls"]

_LOG = logging.getLogger("polyhost.grpc")
_LEVELS = {0: "info", 1: "debug", 2: "info", 3: "warning", 4: "error"}
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})


class GrpcCalls:
    """Sidecars, their channels, discovery and calls, for one ``GrpcRuntime``."""

    def __init__(self, catalog: Catalog, limits: Limits | None = None) -> None:
        self.catalog = catalog
        self.sidecars = SidecarManager(limits)
        self._channels: dict[str, tuple[Endpoint, grpc.aio.Channel, Any]] = {}
        self._described: dict[str, SidecarSpec] = {}
        self._discover_lock = threading.Lock()
        self._handshakes: set[Endpoint] = set()  # endpoints whose protocol version was checked
        self._discovered: set[str] = set()  # node types added from a Describe

    # discovery ---------------------------------------------------------------------------

    def discover(self, sidecars: dict[str, SidecarSpec]) -> None:
        """Add the node types of each sidecar (``Describe``) to the catalog. Blocking: a managed
        sidecar is started. A sidecar that cannot be described is logged and recorded in
        the catalog's ``sidecar_problems`` (unknown-type diagnostics name it)."""
        with self._discover_lock:
            for name, spec in sidecars.items():
                if not spec.discover or self._described.get(name) == spec:
                    continue
                try:
                    sidecar = self.sidecars.get(name, spec)
                    endpoint = sidecar.ensure()
                    offered = describe(endpoint, spec.base_dir)
                    self._handshakes.add(endpoint)
                except PolyhostError as exc:
                    self.catalog.sidecar_problems[name] = exc.message
                    _LOG.warning("node types of sidecar %s are unknown: %s", name, exc.message)
                    continue
                self.catalog.sidecar_problems.pop(name, None)
                self._described[name] = spec
                for node_type in offered:
                    declared = self.catalog.get(node_type.type)
                    if declared is None or node_type.type in self._discovered:
                        self.catalog.add(node_type)  # new, or newer than the last Describe
                        self._discovered.add(node_type.type)
                    elif (
                        isinstance(declared.options, GrpcOptions)
                        and declared.options.sidecar == name
                    ):
                        pass  # declared in the manifest too: the manifest's entry stands
                    else:
                        _LOG.warning(
                            "sidecar %s offers %s, which is already a %s node type; kept that",
                            name,
                            node_type.type,
                            declared.runtime,
                        )

    # calls -------------------------------------------------------------------------------

    async def execute(
        self, node_type: NodeType, params: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any] | None:
        sidecar = self._sidecar(node_type, ctx.node_id)
        endpoint = sidecar.ready_endpoint()
        if endpoint is None or endpoint not in self._handshakes:
            endpoint = await self._connect(sidecar, ctx.node_id)
        request = runtime_pb2.ExecuteRequest(
            protocol_version=PROTOCOL_VERSION,
            node_type=node_type.type,
            params_json=_params_json(params, ctx.node_id),
            context=runtime_pb2.NodeContext(
                run_id=ctx.run_id,
                workflow_id=ctx.workflow_id,
                node_id=ctx.node_id,
                attempt=ctx.attempt,
                idempotency_key=ctx.idempotency_key,
                deadline_unix=0.0
                if ctx.deadline is None
                else time.time() + (ctx.deadline - time.monotonic()),
            ),
        )
        try:
            return await self._call(node_type, request, endpoint, ctx, sidecar.name)
        except grpc.aio.AioRpcError as exc:
            if not _never_sent(exc) or isinstance(sidecar, RemoteSidecar):
                if exc.code() in _RETRYABLE and isinstance(sidecar, RemoteSidecar):
                    sidecar.unhealthy()
                raise _rpc_error(exc, sidecar, ctx.node_id) from None
        # The call never left the host: the managed sidecar died a moment ago and its
        # restart had not been seen. Wait for it and send the call once more.
        endpoint = await self._connect(sidecar, ctx.node_id, failed=endpoint)
        try:
            return await self._call(node_type, request, endpoint, ctx, sidecar.name)
        except grpc.aio.AioRpcError as exc:
            raise _rpc_error(exc, sidecar, ctx.node_id) from None

    async def _call(
        self,
        node_type: NodeType,
        request: Any,
        endpoint: Endpoint,
        ctx: NodeContext,
        sidecar: str,
    ) -> dict[str, Any]:
        timeout = None if ctx.deadline is None else max(ctx.deadline - time.monotonic(), 0.001)
        stub = self._stub(endpoint)
        metadata = endpoint.metadata()
        if options_of(node_type, GrpcOptions).unary:
            reply = await stub.Run(request, timeout=timeout, metadata=metadata)
            return _outcome(reply.events, ctx, sidecar)
        call = stub.Execute(request, timeout=timeout, metadata=metadata)
        try:
            return await _streamed_outcome(call, ctx, sidecar)
        finally:
            call.cancel()  # a no-op once it ended; stops the sidecar's work if we gave up

    async def _connect(
        self, sidecar: Sidecar, node_id: str, failed: Endpoint | None = None
    ) -> Endpoint:
        """Start or reach the sidecar and check, once per process, that it speaks our major
        protocol version (``Describe``)."""

        def connect() -> Endpoint:
            endpoint = sidecar.ensure(failed)
            if endpoint not in self._handshakes:
                describe(endpoint, sidecar.spec.base_dir)
                self._handshakes.add(endpoint)
            return endpoint

        try:
            return await anyio.to_thread.run_sync(connect, abandon_on_cancel=True)
        except (SidecarProtocolError, SidecarAuthError) as exc:
            raise NodeError(exc.message, node=node_id, code=exc.code, retryable=False) from None
        except RuntimeUnavailableError as exc:
            raise NodeError(
                exc.message, node=node_id, code="sidecar_unavailable", retryable=True
            ) from None

    async def aclose(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for _, channel, _ in channels:
            await channel.close(grace=None)
        await anyio.to_thread.run_sync(self.sidecars.close)

    def _sidecar(self, node_type: NodeType, node_id: str) -> Sidecar:
        name = options_of(node_type, GrpcOptions).sidecar
        spec = self.catalog.sidecars.get(name)
        if spec is None:
            raise NodeError(
                f"node type {node_type.type} names sidecar {name!r}, which no manifest declares",
                node=node_id,
                code="sidecar_unavailable",
                field="type",
                retryable=False,
            )
        try:
            return self.sidecars.get(name, spec)
        except RuntimeUnavailableError as exc:
            raise NodeError(
                exc.message, node=node_id, code="sidecar_unavailable", retryable=False
            ) from None

    def _stub(self, endpoint: Endpoint) -> Any:
        # One channel (and stub) per sidecar, reused by every call; a restarted sidecar on a
        # new address (a new port) gets a new one.
        found = self._channels.get(endpoint.name)
        if found is not None and found[0] is endpoint:
            return found[2]
        channel = endpoint.async_channel()
        stub = runtime_pb2_grpc.NodeRuntimeStub(channel)  # type: ignore[no-untyped-call]
        self._channels[endpoint.name] = (endpoint, channel, stub)
        if found is not None:
            _close_later(found[1])
        return stub


async def _streamed_outcome(call: Any, ctx: NodeContext, sidecar: str) -> dict[str, Any]:
    """Read an Execute stream to its one result or error, passing events on as they come."""
    while (event := await call.read()) is not grpc.aio.EOF:
        output = _event(event, ctx, sidecar)
        if output is not None:
            return output
    raise _no_outcome(sidecar, ctx.node_id)


def _outcome(events: Any, ctx: NodeContext, sidecar: str) -> dict[str, Any]:
    """The result of a Run reply's events (its logs and chunks passed on first)."""
    for event in events:
        output = _event(event, ctx, sidecar)
        if output is not None:
            return output
    raise _no_outcome(sidecar, ctx.node_id)


def _event(event: Any, ctx: NodeContext, sidecar: str) -> dict[str, Any] | None:
    """Pass one event on; the output if it is the result (an error event raises)."""
    kind = event.WhichOneof("event")
    if kind == "log":
        ctx.log(event.log.message, _LEVELS.get(event.log.level, "info"))
    elif kind == "chunk":
        ctx.chunk(_json(event.chunk.data_json, "a chunk", ctx.node_id, sidecar))
    elif kind == "progress":
        fraction = event.progress.fraction
        ctx.log(event.progress.message or f"{fraction:.0%}", "info", progress=fraction)
    elif kind == "result":
        output = _json(event.result.output_json, "the output", ctx.node_id, sidecar)
        if not isinstance(output, dict):
            raise NodeOutputError(
                f"sidecar {sidecar} returned an output that is not a JSON object",
                node=ctx.node_id,
                code="sidecar_invalid_output",
            )
        return output
    elif kind == "error":
        error = event.error
        # The sidecar's own code and field, if they follow the rule for user-given codes.
        raise check_node_error(
            NodeError(
                error.message or "the node failed",
                node=ctx.node_id,
                code=error.code or "sidecar_error",
                field=error.field or None,
                retryable=error.retryable,
            ),
            "sidecar_error",
        )
    return None


def _no_outcome(sidecar: str, node_id: str) -> NodeError:
    return NodeError(
        f"sidecar {sidecar} ended the call without a result or an error",
        node=node_id,
        code="sidecar_protocol",
        retryable=False,
    )


def _never_sent(exc: grpc.aio.AioRpcError) -> bool:
    """True when grpc could not connect at all, so the sidecar never saw the call."""
    return exc.code() is grpc.StatusCode.UNAVAILABLE and "failed to connect to all addresses" in (
        exc.details() or ""
    )


def _rpc_error(exc: grpc.aio.AioRpcError, sidecar: Sidecar, node_id: str) -> NodeError:
    code = exc.code()
    details = exc.details() or code.name
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return NodeTimeoutError(
            f"sidecar {sidecar.name} did not answer before the node's timeout",
            node=node_id,
            field="timeout",
        )
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return NodeOutputError(
            f"sidecar {sidecar.name}: {details} (the limit is "
            f"{sidecar.spec.max_message_bytes} bytes, `max_message_bytes` of the sidecar)",
            node=node_id,
            code="sidecar_message_too_large",
        )
    if code is grpc.StatusCode.FAILED_PRECONDITION:
        return NodeError(
            f"sidecar {sidecar.name} refused the call: {details}",
            node=node_id,
            code="sidecar_protocol",
        )
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return NodeError(
            f"sidecar {sidecar.name} refused the host's token: {details}",
            node=node_id,
            code="sidecar_unauthenticated",
        )
    if code in _RETRYABLE:
        why = sidecar.describe_failure()
        return NodeError(
            f"sidecar {sidecar.name} is unavailable: {details}" + (f" ({why})" if why else ""),
            node=node_id,
            code="sidecar_unavailable",
            retryable=True,
        )
    return NodeError(
        f"sidecar {sidecar.name} failed the call: {code.name}: {details}",
        node=node_id,
        code="sidecar_error",
        retryable=False,
    )


def _params_json(params: dict[str, Any], node_id: str) -> str:
    try:
        return json.dumps(params, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise NodeError(
            f"the parameters are not JSON: {exc}",
            node=node_id,
            code="invalid_parameters",
            retryable=False,
        ) from None


def _json(text: str, what: str, node_id: str, sidecar: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise NodeOutputError(
            f"sidecar {sidecar} sent {what} that is not JSON: {exc}",
            node=node_id,
            code="sidecar_invalid_output",
        ) from None


def _close_later(channel: grpc.aio.Channel) -> None:
    import asyncio  # noqa: PLC0415 (grpc.aio runs on asyncio only)

    task = asyncio.get_running_loop().create_task(channel.close(grace=1.0))
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


_PENDING: set[Any] = set()
