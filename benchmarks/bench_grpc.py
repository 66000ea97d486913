"""The grpc runtime's costs against a bare grpcio call to the same sidecar. Prints one JSON object.

For the Go and the TypeScript testkit sidecars (built by `make build`), each started once on a
loopback port and shared by every contender:

* floor: a bare grpcio (asyncio) unary call to the sidecar (health ``Check``), p50 and p99;
* bare Execute: the same node's ``Execute`` stream called directly, without the engine;
* through the engine: a chain of echo nodes (declared ``unary``: one ``Run`` call each); each
  node's round trip is the time from one node's completion event to the next one's (scheduling,
  the call and the commit), p50 and p99; and the same with a streaming node (``stream`` with
  n = 0: an ``Execute`` stream that carries only the result);
* throughput: 2,000 independent echo nodes with 32 in flight (``HostConfig.concurrency``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from _common import run_and_print
from grpc_health.v1 import health_pb2, health_pb2_grpc

from polyhost import Host, HostConfig
from polyhost._proto import runtime_pb2, runtime_pb2_grpc
from polyhost.events._events import Event, EventType
from polyhost.runtimes.grpc._sidecar_process import free_port

ROOT = Path(__file__).resolve().parents[1]
CALLS = 2000
CHAIN = 500
FANOUT = 2000
IN_FLIGHT = 32
SIDECARS = {
    "go": ([str(ROOT / "sandboxes/go/bin/testkit-sidecar")], "go.echo"),
    "ts": (["node", str(ROOT / "sandboxes/node/dist/examples/testkit.js")], "ts.echo"),
}


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(statistics.median(ordered) * 1e6, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] * 1e6, 1),
    }


async def timed_calls(calls: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(200):  # warm up the channel and the sidecar
        await call()
    samples = []
    for _ in range(calls):
        begin = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - begin)
    return samples


async def floor_and_bare(target: str, node_type: str) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        runtime = runtime_pb2_grpc.NodeRuntimeStub(channel)
        check = health_pb2.HealthCheckRequest(service="")
        request = runtime_pb2.ExecuteRequest(
            protocol_version="1.0",
            node_type=node_type,
            params_json='{"x":1}',
            context=runtime_pb2.NodeContext(run_id="r", node_id="n", attempt=1),
        )

        async def unary() -> None:
            await health.Check(check)

        async def execute() -> None:
            call = runtime.Execute(request)
            while (event := await call.read()) is not grpc.aio.EOF:
                if event.WhichOneof("event") == "result":
                    json.loads(event.result.output_json)

        return {
            "floor_unary": percentiles(await timed_calls(CALLS, unary)),
            "bare_execute_stream": percentiles(await timed_calls(CALLS, execute)),
        }


def chain_doc(node_type: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "id": "chain",
        "nodes": [{"id": f"n{i}", "type": node_type, "with": params} for i in range(CHAIN)],
        "edges": [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(CHAIN - 1)],
    }


def project(folder: Path, target: str, node_type: str) -> tuple[Path, Path]:
    (folder / "polyhost.toml").write_text(f'[sidecars.bench]\nendpoint = "{target}"\n')
    chain = chain_doc(node_type, {"x": 1})
    fanout = {
        "version": 1,
        "id": "fanout",
        "nodes": [{"id": f"n{i}", "type": node_type, "with": {"x": i}} for i in range(FANOUT)],
        "edges": [],
    }
    streaming = chain_doc(node_type.replace(".echo", ".stream"), {"n": 0})
    (folder / "chain.json").write_text(json.dumps(chain))
    (folder / "streaming.json").write_text(json.dumps(streaming))
    (folder / "fanout.json").write_text(json.dumps(fanout))
    return folder / "chain.json", folder / "fanout.json"


async def through_engine(target: str, node_type: str, home: Path) -> dict[str, Any]:
    chain, fanout = project(home, target, node_type)
    config = HostConfig(home=home / "home", concurrency=IN_FLIGHT)
    async with Host(config, store=None) as host:
        await host.run(chain)  # warm up
        per_node: dict[str, Any] = {}
        flows = {"chain_per_node": chain, "streaming_chain_per_node": home / "streaming.json"}
        for name, flow in flows.items():
            gaps: list[float] = []
            last: list[float] = []

            def on_event(event: Event, gaps: list[float] = gaps, last: list[float] = last) -> None:
                if event.type is EventType.NODE_COMPLETED:
                    now = time.perf_counter()
                    if last:
                        gaps.append(now - last[0])
                    last[:] = [now]

            for _ in range(3):
                last.clear()
                result = await host.run(flow, on_event=on_event)
                assert result.ok, result.error
            per_node[name] = percentiles(gaps)
        rates = []
        for _ in range(3):
            begin = time.perf_counter()
            result = await host.run(fanout)
            rates.append(FANOUT / (time.perf_counter() - begin))
            assert result.ok, result.error
    return {
        **per_node,
        "throughput_nodes_per_s": round(max(rates)),
        "in_flight": IN_FLIGHT,
    }


async def one_sidecar(name: str, command: list[str], node_type: str) -> dict[str, Any]:
    port = free_port()
    target = f"127.0.0.1:{port}"
    env = {**os.environ, "POLYHOST_LISTEN": target}
    env.pop("POLYHOST_SIDECAR_TOKEN", None)
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE) as sidecar:
        try:
            assert sidecar.stdout is not None
            ready = sidecar.stdout.readline().decode()
            assert ready.startswith("POLYHOST_SIDECAR_READY"), ready
            out = await floor_and_bare(target, node_type)
            with tempfile.TemporaryDirectory() as folder:
                out.update(await through_engine(target, node_type, Path(folder)))
        finally:
            sidecar.terminate()
            sidecar.wait()
    floor = out["floor_unary"]["p50_us"]
    out["engine_p50_over_floor"] = round(out["chain_per_node"]["p50_us"] / floor, 2)
    out["bare_execute_p50_over_floor"] = round(out["bare_execute_stream"]["p50_us"] / floor, 2)
    return out


async def main() -> dict[str, Any]:
    out: dict[str, Any] = {"benchmark": "grpc_runtime", "calls": CALLS, "chain": CHAIN}
    for name, (command, node_type) in SIDECARS.items():
        out[name] = await one_sidecar(name, command, node_type)
    out["goals"] = {
        "p50_over_floor_max": 1.5,
        "nodes_per_s_min": 3000,
        **{
            f"{name}_met": out[name]["engine_p50_over_floor"] <= 1.5
            and out[name]["throughput_nodes_per_s"] >= 3000
            for name in SIDECARS
        },
    }
    return out


if __name__ == "__main__":
    run_and_print(main)
