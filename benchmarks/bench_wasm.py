"""The wasm runtime's costs, each against its floor in the same run. Prints one JSON object.

* per call: a trivial reactor node (it returns a constant) through the adapter, through the
  engine (a chain of such nodes, against a chain of no-op python nodes), and the floor: the
  same export called with wasmtime-py on an instance made beforehand. The worker-thread hop that
  every call makes is measured on its own, and the synchronous core without it.
* cold start: loading a module in a new engine (a new process, in effect), compiled from source
  and read back from the disk cache.
* CPU budget: fuel metering, epoch interruption, both, and neither, on compute-heavy guests.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import wasmtime
from _common import chain_doc, noop_catalog, run_and_print

from polyhost import Host, HostConfig
from polyhost.compile._checker import compile_workflow
from polyhost.compile._parsing import parse_workflow
from polyhost.runtimes import WasmRuntime
from polyhost.runtimes._context import NodeContext
from polyhost.runtimes.wasm._call import CallRequest, PoolLimits, WasmMachine
from polyhost.workflow._catalog import NodeType

CALLS = 5000
CHAIN = 500
REPEATS = 5
ROOT = Path(__file__).parents[1]

TRIVIAL = """(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 1024) "{\\"ok\\":{}}")
  (func (export "polyhost_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (local.get $p))
  (func (export "polyhost_run") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 9))))"""

COMPUTE = """(module
  (memory (export "memory") 16)
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "sieve") (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $count i32)
    (memory.fill (i32.const 0) (i32.const 0) (local.get $n))
    (local.set $i (i32.const 2))
    (block $done (loop $outer
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (if (i32.eqz (i32.load8_u (local.get $i)))
        (then
          (local.set $count (i32.add (local.get $count) (i32.const 1)))
          (local.set $j (i32.add (local.get $i) (local.get $i)))
          (block $end (loop $inner
            (br_if $end (i32.ge_u (local.get $j) (local.get $n)))
            (i32.store8 (local.get $j) (i32.const 1))
            (local.set $j (i32.add (local.get $j) (local.get $i)))
            (br $inner)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $outer)))
    (local.get $count))
  (func (export "hash") (param $n i32) (result i32)
    (local $i i32) (local $h i32)
    (local.set $h (i32.const 2166136261))
    (loop $more
      (local.set $h (i32.mul (i32.xor (local.get $h)
                                      (i32.load8_u (i32.and (local.get $i) (i32.const 65535))))
                             (i32.const 16777619)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $h)))"""
WORKLOADS = {"fib": 27, "sieve": 1_000_000, "hash": 10_000_000}


def big_module(functions: int) -> str:
    """A module with many small functions: enough code for compilation to be measurable."""
    body = "\n".join(
        f"(func $f{i} (param i32) (result i32) (i32.add (i32.mul (local.get 0) "
        f"(i32.const {i + 3})) (i32.const {i})))"
        for i in range(functions)
    )
    calls = " ".join(f"(call $f{i} (local.get 0))" for i in range(functions))
    adds = " ".join("i32.add" for _ in range(functions - 1))
    mix = f'(func (export "mix") (param i32) (result i32) {calls} {adds})'
    return TRIVIAL.removesuffix(")") + f"\n{body}\n{mix})"


def best(times: list[float]) -> float:
    return min(times)


def per_call_us(seconds: float, calls: int) -> float:
    return round(seconds / calls * 1e6, 2)


# ---- per call --------------------------------------------------------------------------------


def floor_bare(path: Path, calls: int) -> float:
    """wasmtime-py calling polyhost_run on one instance made beforehand: the least a call costs."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module.from_file(engine, str(path)), [])
    run = instance.exports(store)["polyhost_run"]
    assert isinstance(run, wasmtime.Func)
    begin = time.perf_counter()
    for _ in range(calls):
        run(store, 0, 0)
    return time.perf_counter() - begin


async def timed(calls: int, call: Callable[[], Awaitable[Any]]) -> float:
    begin = time.perf_counter()
    for _ in range(calls):
        await call()
    return time.perf_counter() - begin


def noop() -> None:
    return None


async def per_call(path: Path) -> dict[str, Any]:
    node_type = NodeType(type="bench.wasm", runtime="wasm", module=str(path))
    metered_type = NodeType(
        type="bench.wasm", runtime="wasm", module=str(path), limits={"fuel": 1_000_000}
    )
    runtime = WasmRuntime(cache_dir=None)
    ctx = NodeContext("run", "wf", "n", "bench.wasm", 1, "key")
    machine = runtime.machine()
    module = machine.cache.load(path)
    request = CallRequest(module=module, limits=runtime._policy(node_type, "n").limits, input=b"{}")

    async def adapter() -> Any:
        return await runtime.execute(node_type, {"x": 1}, ctx)

    async def metered() -> Any:
        return await runtime.execute(metered_type, {"x": 1}, ctx)

    async def hop() -> None:
        await anyio.to_thread.run_sync(noop, abandon_on_cancel=True)

    async def core() -> Any:
        return machine.call(request)

    results: dict[str, list[float]] = {
        "floor": [], "adapter": [], "metered": [], "hop": [], "core": []
    }  # fmt: skip
    await timed(500, adapter)
    await timed(500, metered)
    for _ in range(REPEATS):
        results["floor"].append(floor_bare(path, CALLS))
        results["adapter"].append(await timed(CALLS, adapter))
        results["metered"].append(await timed(CALLS, metered))
        results["hop"].append(await timed(CALLS, hop))
        results["core"].append(await timed(CALLS, core))
    await runtime.aclose()
    floor, adapter_s = best(results["floor"]), best(results["adapter"])
    return {
        "calls": CALLS,
        "floor_bare_wasmtime_call_us": per_call_us(floor, CALLS),
        "adapter_us": per_call_us(adapter_s, CALLS),
        "adapter_median_us": per_call_us(statistics.median(results["adapter"]), CALLS),
        "adapter_overhead_us": per_call_us(adapter_s - floor, CALLS),
        "adapter_with_fuel_us": per_call_us(best(results["metered"]), CALLS),
        "of_which_thread_hop_us": per_call_us(best(results["hop"]), CALLS),
        "sync_core_us": per_call_us(best(results["core"]), CALLS),
        "sync_core_overhead_us": per_call_us(best(results["core"]) - floor, CALLS),
    }


async def through_engine(path: Path) -> dict[str, Any]:
    catalog = noop_catalog()
    catalog.add(NodeType(type="bench.wasm", runtime="wasm", module=str(path)))
    python_doc = chain_doc(CHAIN)
    wasm_doc = chain_doc(CHAIN)
    for node in wasm_doc["nodes"]:
        node["type"] = "bench.wasm"
    out: dict[str, Any] = {"chain_nodes": CHAIN}
    with tempfile.TemporaryDirectory() as home:
        async with Host(HostConfig(home=Path(home)), catalog=catalog, store=None) as host:
            for name, document in (("python_noop", python_doc), ("wasm", wasm_doc)):
                compiled = compile_workflow(parse_workflow(document), catalog)
                await host.run(compiled)
                times = []
                for _ in range(REPEATS):
                    begin = time.perf_counter()
                    result = await host.run(compiled)
                    times.append(time.perf_counter() - begin)
                    assert result.ok, result.error
                out[f"{name}_us_per_node"] = per_call_us(best(times), CHAIN)
    out["wasm_over_python_noop_us_per_node"] = round(
        out["wasm_us_per_node"] - out["python_noop_us_per_node"], 2
    )
    return out


# ---- cold start ------------------------------------------------------------------------------


def cold_start(modules: dict[str, Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as cache:
        for name, path in modules.items():
            compiled, cached, machines = [], [], []
            for _ in range(REPEATS):
                begin = time.perf_counter()
                machine = WasmMachine(None, pool=PoolLimits())
                machine.cache.load(path)
                compiled.append(time.perf_counter() - begin)
                machines.append(machine)
            filler = WasmMachine(Path(cache), pool=PoolLimits())
            filler.cache.load(path)  # fills the disk cache
            machines.append(filler)
            for _ in range(REPEATS):
                begin = time.perf_counter()
                machine = WasmMachine(Path(cache), pool=PoolLimits())
                machine.cache.load(path)
                cached.append(time.perf_counter() - begin)
                assert machine.cache.stats.disk_hits == 1
                machines.append(machine)
            for machine in machines:
                machine.close()
            out[name] = {
                "module_bytes": path.stat().st_size,
                "compile_ms": round(best(compiled) * 1e3, 2),
                "disk_cache_ms": round(best(cached) * 1e3, 2),
            }
    return out


# ---- CPU budget ------------------------------------------------------------------------------


def cpu_budget() -> dict[str, Any]:
    mechanisms: dict[str, tuple[bool, bool]] = {
        "none": (False, False),
        "fuel": (True, False),
        "epoch": (False, True),
        "fuel_and_epoch": (True, True),
    }
    exports: dict[str, tuple[wasmtime.Store, Any]] = {}
    for name, (fuel, epoch) in mechanisms.items():
        config = wasmtime.Config()
        config.cranelift_opt_level = "speed"
        config.consume_fuel = fuel
        config.epoch_interruption = epoch
        engine = wasmtime.Engine(config)
        store = wasmtime.Store(engine)
        if fuel:
            store.set_fuel(10**15)
        if epoch:
            store.set_epoch_deadline(10**9)
        instance = wasmtime.Instance(store, wasmtime.Module(engine, COMPUTE), [])
        exports[name] = (store, instance.exports(store))
    times: dict[str, dict[str, list[float]]] = {m: {w: [] for w in WORKLOADS} for m in mechanisms}
    for _ in range(4 * REPEATS):  # interleaved, so drift in the machine hits all alike
        for name, (store, funcs) in exports.items():
            for workload, arg in WORKLOADS.items():
                begin = time.perf_counter()
                funcs[workload](store, arg)
                times[name][workload].append(time.perf_counter() - begin)
    out: dict[str, Any] = {"workloads": WORKLOADS}
    baseline = {w: best(times["none"][w]) for w in WORKLOADS}
    for name in mechanisms:
        out[name] = {
            w: {
                "ms": round(best(times[name][w]) * 1e3, 2),
                "vs_none": round(best(times[name][w]) / baseline[w], 2),
            }
            for w in WORKLOADS
        }
    return out


async def main() -> dict[str, Any]:
    out: dict[str, Any] = {"benchmark": "wasm_runtime", "repeats": REPEATS}
    with tempfile.TemporaryDirectory() as tmp:
        trivial = Path(tmp) / "trivial.wasm"
        trivial.write_bytes(wasmtime.wat2wasm(TRIVIAL))
        big = Path(tmp) / "big.wasm"
        big.write_bytes(wasmtime.wat2wasm(big_module(3000)))
        modules = {"trivial_wat": trivial, "3000_functions_wat": big}
        for name in ("word_count", "sum"):  # C and Go guests, when `make wasm` built them
            built = ROOT / "wasm-nodes" / "build" / f"{name}.wasm"
            if built.is_file():
                modules[f"{name}_guest"] = built
        out["per_call"] = await per_call(trivial)
        out["through_engine"] = await through_engine(trivial)
        out["cold_start"] = cold_start(modules)
    out["cpu_budget"] = cpu_budget()
    cached = max(entry["disk_cache_ms"] for entry in out["cold_start"].values())
    out["goals"] = {
        "adapter_overhead_us_max": 50,
        "cached_cold_start_ms_max": 5,
        "adapter_overhead_met": out["per_call"]["adapter_overhead_us"] <= 50,
        "cached_cold_start_met": cached <= 5,
    }
    return out


if __name__ == "__main__":
    run_and_print(main)
