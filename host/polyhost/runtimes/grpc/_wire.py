"""Talking to a sidecar: where it is, how to connect, its health, its node types.

Health and Describe use grpcio's blocking API, so that node types can be discovered from
code without an event loop (``polyhost compile``, ``polyhost nodes``); node calls use the
asyncio API (``_runtime.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..._errors import RuntimeUnavailableError
from ..._proto import runtime_pb2, runtime_pb2_grpc
from ...workflow._catalog import NodeType
from ._options import GrpcOptions

__all__ = [
    "PROTOCOL_VERSION",
    "Endpoint",
    "SidecarAuthError",
    "SidecarProtocolError",
    "check_serving",
    "describe",
    "major_version",
    "wait_serving",
]

PROTOCOL_VERSION = "1.1"
_POLL = 0.02


class SidecarProtocolError(RuntimeUnavailableError):
    """The sidecar speaks another major version of the contract, or breaks it."""

    code = "sidecar_protocol"


class SidecarAuthError(RuntimeUnavailableError):
    """The sidecar refused the host's token."""

    code = "sidecar_unauthenticated"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a sidecar listens and how to reach it."""

    name: str
    target: str  # a gRPC target: "unix:/path" or "host:port"
    listen: str = ""  # what a managed sidecar is told to listen on
    token: str | None = None
    credentials: grpc.ChannelCredentials | None = None  # TLS; None = plaintext
    server_name: str | None = None
    max_message_bytes: int = 64 * 1024 * 1024

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def options(self) -> list[tuple[str, Any]]:
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            # Reconnect quickly after a managed sidecar restarts on the same socket.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        return options

    def blocking_channel(self) -> grpc.Channel:
        if self.credentials is not None:
            return grpc.secure_channel(self.target, self.credentials, options=self.options())
        return grpc.insecure_channel(self.target, options=self.options())

    def async_channel(self) -> grpc.aio.Channel:
        if self.credentials is not None:
            return grpc.aio.secure_channel(self.target, self.credentials, options=self.options())
        return grpc.aio.insecure_channel(self.target, options=self.options())


def major_version(version: str) -> str:
    return version.split(".", 1)[0].strip()


def wait_serving(
    endpoint: Endpoint, timeout: float, alive: Callable[[], bool] = lambda: True
) -> str | None:
    """Poll the health service until it says SERVING: None, or why not ("exited", or what
    the last check answered)."""
    deadline = time.monotonic() + timeout
    last = "timeout"
    with endpoint.blocking_channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if not alive():
                return "exited"
            left = deadline - time.monotonic()
            if left <= 0:
                why = "" if last == "timeout" else f"; last answer: {last}"
                return f"no SERVING answer within {timeout:g}s{why}"
            try:
                reply = stub.Check(
                    health_pb2.HealthCheckRequest(service=""),
                    timeout=min(1.0, max(left, 0.05)),
                    metadata=endpoint.metadata(),
                )
            except grpc.RpcError as exc:
                code, details = _status_of(exc)
                if code is not grpc.StatusCode.DEADLINE_EXCEEDED:
                    last = f"{code.name if code else 'error'}: {details}"
            else:
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return None
                last = (
                    f"health says {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
                )
            time.sleep(_POLL)


def check_serving(endpoint: Endpoint, timeout: float) -> str | None:
    """One health check: None when the sidecar says SERVING, else what it said or why not."""
    with endpoint.blocking_channel() as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""),
                timeout=timeout,
                metadata=endpoint.metadata(),
            )
        except grpc.RpcError as exc:
            code, details = _status_of(exc)
            return f"{code.name if code else 'error'}: {details}"
    if reply.status == health_pb2.HealthCheckResponse.SERVING:
        return None
    return f"health says {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"


def describe(endpoint: Endpoint, base_dir: str | None, timeout: float = 10.0) -> list[NodeType]:
    """The node types the sidecar offers, as catalog entries; ``SidecarProtocolError``."""
    with endpoint.blocking_channel() as channel:
        stub = runtime_pb2_grpc.NodeRuntimeStub(channel)  # type: ignore[no-untyped-call]
        try:
            reply = stub.Describe(
                runtime_pb2.DescribeRequest(protocol_version=PROTOCOL_VERSION),
                timeout=timeout,
                metadata=endpoint.metadata(),
            )
        except grpc.RpcError as exc:
            code, details = _status_of(exc)
            if code is grpc.StatusCode.UNAUTHENTICATED:
                raise SidecarAuthError(
                    f"sidecar {endpoint.name} refused the host's token: {details}"
                ) from None
            if code is grpc.StatusCode.FAILED_PRECONDITION:
                raise SidecarProtocolError(
                    f"sidecar {endpoint.name} refused protocol {PROTOCOL_VERSION}: {details}"
                ) from None
            raise RuntimeUnavailableError(
                f"sidecar {endpoint.name} did not describe its node types: "
                f"{code.name if code else 'error'}: {details}"
            ) from None
    if major_version(reply.protocol_version) != major_version(PROTOCOL_VERSION):
        raise SidecarProtocolError(
            f"sidecar {endpoint.name} speaks protocol {reply.protocol_version or '(none)'}; "
            f"this host speaks {PROTOCOL_VERSION} (major versions must match)"
        )
    return [_node_type(endpoint.name, spec, base_dir) for spec in reply.node_types]


def _status_of(exc: grpc.RpcError) -> tuple[grpc.StatusCode | None, str]:
    if isinstance(exc, grpc.Call):
        return exc.code(), exc.details() or ""
    return None, str(exc)


def _node_type(sidecar: str, spec: Any, base_dir: str | None) -> NodeType:
    def schema(text: str, field: str) -> dict[str, Any] | None:
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise SidecarProtocolError(
                f"sidecar {sidecar}: node type {spec.type}: {field} is not JSON: {exc}"
            ) from None
        if not isinstance(value, dict):
            raise SidecarProtocolError(
                f"sidecar {sidecar}: node type {spec.type}: {field} is not a JSON object"
            )
        return value

    try:
        return NodeType(
            type=spec.type,
            runtime="grpc",
            options=GrpcOptions(sidecar=sidecar, unary=spec.unary),
            version=spec.metadata.get("version", "1"),
            description=spec.description,
            input_schema=schema(spec.input_schema_json, "input_schema_json"),
            output_schema=schema(spec.output_schema_json, "output_schema_json"),
            ports=("out", *(p for p in spec.ports if p not in ("out", "error"))),
            port_field=spec.port_field or None,
            base_dir=base_dir,
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise SidecarProtocolError(
            f"sidecar {sidecar}: node type {spec.type!r} is not valid: {exc}"
        ) from None
