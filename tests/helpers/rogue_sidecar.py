"""A sidecar in Python that breaks the contract on request, for the host's fault tests.

Run as a script; it follows the same environment as the SDKs (POLYHOST_LISTEN, the token, the
stdin watch). Node types:
  rogue.echo       {"params": ..., "context": ...}
  rogue.garbage    an output that is not JSON
  rogue.list       an output that is a JSON list, not an object
  rogue.silent     ends the stream with no result and no error
  rogue.twice      a result, then a second result
  rogue.sleep      sleeps params.ms, then {}
  rogue.big        {"data": "x" * params.bytes}
  rogue.pid        {"pid": its process id}
  rogue.env        {"env": its environment}
  rogue.spawn      starts a child in its process group and a `setsid` daemon, both sleeping:
                   {"pid", "child", "daemon"}
  rogue.flood      writes params.bytes of "x" to stderr with no newline, then {}
  rogue.fail       an Error event with params.code, params.field and params.message
ROGUE_PROTOCOL overrides the protocol version it reports; ROGUE_NOT_SERVING keeps its health at
NOT_SERVING; ROGUE_SICK_AFTER (seconds) turns its health to NOT_SERVING that long after start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from polyhost._proto import runtime_pb2, runtime_pb2_grpc

VERSION = os.environ.get("ROGUE_PROTOCOL", "1.0")
TYPES = [
    "rogue.echo",
    "rogue.garbage",
    "rogue.list",
    "rogue.silent",
    "rogue.twice",
    "rogue.sleep",
    "rogue.big",
    "rogue.pid",
    "rogue.env",
    "rogue.spawn",
    "rogue.flood",
    "rogue.fail",
]


class Rogue(runtime_pb2_grpc.NodeRuntimeServicer):
    def Describe(self, request: Any, context: Any) -> Any:
        return runtime_pb2.DescribeResponse(
            protocol_version=VERSION,
            name="rogue",
            sdk="rogue/0",
            node_types=[runtime_pb2.NodeTypeSpec(type=t, description=t) for t in TYPES],
        )

    def Execute(self, request: Any, context: Any) -> Any:
        params = json.loads(request.params_json or "{}")
        kind = request.node_type
        if kind == "rogue.echo":
            ctx = {"node_id": request.context.node_id, "attempt": request.context.attempt}
            out = json.dumps({"params": params, "context": ctx})
            yield runtime_pb2.ExecuteEvent(result=runtime_pb2.Result(output_json=out))
        elif kind == "rogue.garbage":
            yield runtime_pb2.ExecuteEvent(result=runtime_pb2.Result(output_json="{nope"))
        elif kind == "rogue.list":
            yield runtime_pb2.ExecuteEvent(result=runtime_pb2.Result(output_json="[1, 2]"))
        elif kind == "rogue.silent":
            yield runtime_pb2.ExecuteEvent(log=runtime_pb2.Log(message="about to say nothing"))
        elif kind == "rogue.twice":
            yield runtime_pb2.ExecuteEvent(result=runtime_pb2.Result(output_json='{"n": 1}'))
            yield runtime_pb2.ExecuteEvent(result=runtime_pb2.Result(output_json='{"n": 2}'))
        elif kind == "rogue.big":
            out = json.dumps({"data": "x" * int(params.get("bytes", 0))})
            yield runtime_pb2.ExecuteEvent(result=runtime_pb2.Result(output_json=out))
        elif kind == "rogue.env":
            out = json.dumps({"env": dict(os.environ)})
            yield runtime_pb2.ExecuteEvent(result=runtime_pb2.Result(output_json=out))
        elif kind == "rogue.pid":
            out = json.dumps({"pid": os.getpid()})
            yield runtime_pb2.ExecuteEvent(result=runtime_pb2.Result(output_json=out))
        elif kind == "rogue.spawn":
            child = subprocess.Popen(["sleep", "300"])
            daemon = subprocess.Popen(["sleep", "301"], start_new_session=True)
            out = json.dumps({"pid": os.getpid(), "child": child.pid, "daemon": daemon.pid})
            yield runtime_pb2.ExecuteEvent(result=runtime_pb2.Result(output_json=out))
        elif kind == "rogue.flood":
            left = int(params.get("bytes", 0))
            block = b"x" * 1024 * 1024
            while left > 0:
                left -= os.write(2, block[: min(left, len(block))])
            yield runtime_pb2.ExecuteEvent(result=runtime_pb2.Result(output_json="{}"))
        elif kind == "rogue.fail":
            error = runtime_pb2.Error(
                code=params.get("code", ""),
                field=params.get("field", ""),
                message=params.get("message", ""),
            )
            yield runtime_pb2.ExecuteEvent(error=error)
        elif kind == "rogue.sleep":
            time.sleep(params.get("ms", 0) / 1000)
            yield runtime_pb2.ExecuteEvent(result=runtime_pb2.Result(output_json="{}"))


class Token(grpc.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self.token = token

        def deny(request: Any, context: Any) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")

        self.deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        if details.method.startswith("/grpc.health"):
            return continuation(details)
        sent = dict(details.invocation_metadata).get("authorization")
        if sent != f"Bearer {self.token}":
            return self.deny
        return continuation(details)


def main() -> None:
    token = os.environ.get("POLYHOST_SIDECAR_TOKEN", "")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        interceptors=[Token(token)] if token else [],
    )
    runtime_pb2_grpc.add_NodeRuntimeServicer_to_server(Rogue(), server)
    checker = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    listen = os.environ.get("POLYHOST_LISTEN", "127.0.0.1:50051")
    server.add_insecure_port(listen)
    server.start()
    status = (
        health_pb2.HealthCheckResponse.NOT_SERVING
        if os.environ.get("ROGUE_NOT_SERVING")
        else health_pb2.HealthCheckResponse.SERVING
    )
    checker.set("", status)
    sick_after = os.environ.get("ROGUE_SICK_AFTER")
    if sick_after:
        timer = threading.Timer(
            float(sick_after), checker.set, ("", health_pb2.HealthCheckResponse.NOT_SERVING)
        )
        timer.daemon = True
        timer.start()
    print(f"POLYHOST_SIDECAR_READY {listen}", flush=True)
    if os.environ.get("POLYHOST_PARENT_WATCH") == "stdin":

        def watch() -> None:
            sys.stdin.buffer.read()
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
