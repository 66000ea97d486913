"""A sidecar in Python that repeats whatever it is given everywhere it can, for the secret tests.

Run as a script, like tests/helpers/rogue_sidecar.py. Node types:
  leaky.fail    writes params.s to stderr, logs it, then fails with it as code, field and message
  leaky.crash   writes params.s to stderr and dies in the middle of the call
"""

from __future__ import annotations

import json
import os
import sys
import threading
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from polyhost._proto import runtime_pb2, runtime_pb2_grpc

TYPES = ["leaky.fail", "leaky.crash"]


class Leaky(runtime_pb2_grpc.NodeRuntimeServicer):
    def Describe(self, request: Any, context: Any) -> Any:
        return runtime_pb2.DescribeResponse(
            protocol_version="1.0",
            name="leaky",
            sdk="leaky/0",
            node_types=[runtime_pb2.NodeTypeSpec(type=t, description=t) for t in TYPES],
        )

    def Execute(self, request: Any, context: Any) -> Any:
        secret = str(json.loads(request.params_json or "{}").get("s", ""))
        print(f"sidecar stderr {secret}", file=sys.stderr, flush=True)
        if request.node_type == "leaky.crash":
            os._exit(3)
        yield runtime_pb2.ExecuteEvent(log=runtime_pb2.Log(message=f"sidecar log {secret}"))
        error = runtime_pb2.Error(code=secret, field=secret, message=f"sidecar failed {secret}")
        yield runtime_pb2.ExecuteEvent(error=error)


def main() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    runtime_pb2_grpc.add_NodeRuntimeServicer_to_server(Leaky(), server)
    checker = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    listen = os.environ["POLYHOST_LISTEN"]
    server.add_insecure_port(listen)
    server.start()
    checker.set("", health_pb2.HealthCheckResponse.SERVING)
    print(f"POLYHOST_SIDECAR_READY {listen}", flush=True)
    if os.environ.get("POLYHOST_PARENT_WATCH") == "stdin":

        def watch() -> None:
            sys.stdin.buffer.read()
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
