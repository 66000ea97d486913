"""Crash recovery with real processes and real signals.

``polyhost run`` is killed with SIGKILL at seeded random moments (before the first node, in the
middle, near the end) and ``polyhost runs resume`` finishes the run. Whatever the moment, the run
must end completed with the outputs of an uninterrupted run; nodes the store had as completed at
the kill never run again; a node that was in flight runs again with the same idempotency key,
so each side effect happens exactly once.

Every assertion names the trial's seed and kill delay. To replay trials, set
``POLYHOST_FAULT_SEEDS`` to a comma-separated list of seeds.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fault_nodes import EFFECTS_ENV, LOG_ENV, invocations, step_value

POLYHOST = Path(sys.executable).parent / "polyhost"
FAULT_NODES = Path(__file__).parents[1] / "helpers" / "fault_nodes.py"
MANIFEST = """\
[[nodes]]
type = "fault.step"
runtime = "python"
handler = "fault_nodes:step"
"""
TRIALS_PER_FLOW = 17
SHORT_SLEEP = 0.02
UNSETTLED = {"running", "pending"}
BODY_ENTRY = re.compile(r"(?P<loop>\w+)\[(?P<index>\d+)\]\.(?P<node>\w+)")


@dataclass
class Flow:
    """A workflow of ``fault.step`` nodes and what an uninterrupted run of it gives."""

    name: str
    document: dict[str, Any]
    outputs: dict[str, Any]  # computed here, independently of the engine
    step_nodes: set[str]  # top-level step nodes; their invocations are named by node id
    loops: dict[str, set[str]] = field(default_factory=dict)  # loop id -> body invocation names

    @property
    def names(self) -> set[str]:
        """The name of every invocation an uninterrupted run makes, each exactly once."""
        return self.step_nodes.union(*self.loops.values())


def _step(node_id: str, x: Any, *, sleep: float = SHORT_SLEEP, name: str | None = None) -> dict:
    return {
        "id": node_id,
        "type": "fault.step",
        "with": {"x": x, "name": name or node_id, "sleep": sleep},
    }


def chain_flow(n: int = 15) -> Flow:
    """``s0 -> s1 -> ... -> s14``, each reading the previous value."""
    nodes = [_step("s0", 1, sleep=0.025)]
    nodes += [_step(f"s{i}", f"{{{{ s{i - 1}.value }}}}", sleep=0.025) for i in range(1, n)]
    edges = [{"from": f"s{i - 1}", "to": f"s{i}"} for i in range(1, n)]
    values = [step_value(1)]
    for _ in range(1, n):
        values.append(step_value(values[-1]))
    document = {
        "version": 1,
        "id": "chain",
        "nodes": nodes,
        "edges": edges,
        "outputs": {
            "last": f"{{{{ s{n - 1}.value }}}}",
            "values": "{{ [" + ", ".join(f"s{i}.value" for i in range(n)) + "] }}",
        },
    }
    outputs = {"last": values[-1], "values": values}
    return Flow("chain", document, outputs, {f"s{i}" for i in range(n)})


def fanout_flow(n: int = 15) -> Flow:
    """``root`` feeds ``f0..f14`` (10 to 150 ms each, so they finish one by one); ``join``
    reads them all."""
    nodes = [_step("root", 1)]
    nodes += [_step(f"f{i}", f"{{{{ root.value + {i} }}}}", sleep=0.01 * (i + 1)) for i in range(n)]
    nodes.append(_step("join", "{{ [" + ", ".join(f"f{i}.value" for i in range(n)) + "] }}"))
    edges = [{"from": "root", "to": f"f{i}"} for i in range(n)]
    edges += [{"from": f"f{i}", "to": "join"} for i in range(n)]
    root = step_value(1)
    branches = [step_value(root + i) for i in range(n)]
    document = {
        "version": 1,
        "id": "fanout",
        "nodes": nodes,
        "edges": edges,
        "outputs": {
            "join": "{{ join.value }}",
            "branches": "{{ [" + ", ".join(f"f{i}.value" for i in range(n)) + "] }}",
        },
    }
    outputs = {"join": step_value(branches), "branches": branches}
    names = {"root", "join"} | {f"f{i}" for i in range(n)}
    return Flow("fanout", document, outputs, names)


def loop_flow(count: int = 6) -> Flow:
    """``start``, then a ``core.loop`` of ``count`` iterations of ``body_a -> body_b``, then
    ``after`` reading every iteration's result."""
    body = {
        "nodes": [
            _step("body_a", "{{ loop.index + start.value }}", name="body_a.{{ loop.index }}"),
            _step("body_b", "{{ [body_a.value, loop.iteration] }}", name="body_b.{{ loop.index }}"),
        ],
        "edges": [{"from": "body_a", "to": "body_b"}],
        "outputs": {
            "a": "{{ body_a.value }}",
            "b": "{{ body_b.value }}",
            "index": "{{ loop.index }}",
        },
    }
    document = {
        "version": 1,
        "id": "looped",
        "nodes": [
            _step("start", 2),
            {"id": "each", "type": "core.loop", "with": {"count": count}, "body": body},
            _step("after", "{{ each.results.map(r, r.b) }}"),
        ],
        "edges": [{"from": "start", "to": "each"}, {"from": "each", "to": "after"}],
        "outputs": {"results": "{{ each.results }}", "after": "{{ after.value }}"},
    }
    start = step_value(2)
    results = []
    for i in range(count):
        a = step_value(i + start)
        results.append({"a": a, "b": step_value([a, i + 1]), "index": i})
    outputs = {"results": results, "after": step_value([r["b"] for r in results])}
    body_names = {f"body_{part}.{i}" for part in "ab" for i in range(count)}
    return Flow("loop", document, outputs, {"start", "after"}, {"each": body_names})


FLOWS = {"chain": chain_flow, "fanout": fanout_flow, "loop": loop_flow}


# the command line -----------------------------------------------------------------------------


@dataclass
class Place:
    """One trial's folder: the workflow with its manifest and node module, a home, two logs."""

    root: Path
    flow_file: Path

    @property
    def log(self) -> Path:
        return self.root / "invocations.log"

    @property
    def effects(self) -> Path:
        return self.root / "effects.log"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "POLYHOST_DEBUG"}}
        env.update(
            POLYHOST_HOME=str(self.root / "home"),
            NO_COLOR="1",
            **{LOG_ENV: str(self.log), EFFECTS_ENV: str(self.effects)},
        )
        return env

    def polyhost(self, *args: str) -> tuple[int, str, str]:
        done = subprocess.run(
            [str(POLYHOST), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
            timeout=60,
            check=False,
        )
        return done.returncode, done.stdout, done.stderr

    def polyhost_json(self, *args: str, label: str) -> Any:
        code, out, err = self.polyhost(*args, "--json")
        assert code == 0, f"{label}: `polyhost {' '.join(args)}` exited {code}: {err}"
        return json.loads(out)

    def start_run(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(POLYHOST), "run", str(self.flow_file), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.root,
        )


def make_place(root: Path, flow: Flow) -> Place:
    root.mkdir(parents=True)
    (root / "polyhost.toml").write_text(MANIFEST)
    shutil.copy(FAULT_NODES, root / "fault_nodes.py")
    flow_file = root / f"{flow.name}.json"
    flow_file.write_text(json.dumps(flow.document, indent=1))
    return Place(root, flow_file)


def wait_for_first_invocation(place: Place, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if place.log.exists() or proc.poll() is not None:
            return
        time.sleep(0.001)
    raise AssertionError("no node was invoked within 30 s of `polyhost run`")


def effect_keys(place: Place) -> list[str]:
    if not place.effects.exists():
        return []
    return [
        line.removeprefix("effect ")
        for line in place.effects.read_text().split("\n")
        if line.startswith("effect ")
    ]


# the baseline ---------------------------------------------------------------------------------


@dataclass
class Baseline:
    outputs: dict[str, Any]
    to_first_node_s: float  # from launch to the first invocation
    span_s: float  # from the first invocation to the last side effect


def run_baseline(place: Place, flow: Flow) -> Baseline:
    begin = time.monotonic()
    proc = place.start_run()
    wait_for_first_invocation(place, proc)
    first = last = time.monotonic()
    while proc.poll() is None and len(effect_keys(place)) < len(flow.names):
        time.sleep(0.001)
        last = time.monotonic()
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"the uninterrupted {flow.name} run failed: {stderr}"
    result = json.loads(stdout)
    assert result["status"] == "completed", result["error"]
    assert result["outputs"] == flow.outputs

    calls = invocations(place.log)
    names = Counter(name for _, name in calls)
    assert names == Counter(flow.names), "each node runs exactly once in an uninterrupted run"
    keys = {key for key, _ in calls}
    assert len(keys) == len(flow.names), "every node (and loop iteration) has its own key"
    assert sorted(effect_keys(place)) == sorted(keys)
    return Baseline(result["outputs"], first - begin, last - first)


# one trial ------------------------------------------------------------------------------------


@dataclass
class Tally:
    trials: int = 0
    no_run_recorded: int = 0
    completed_before_kill: int = 0
    resumed: int = 0
    completed_nodes_at_kill: list[int] = field(default_factory=list)


def kill_and_resume(flow: Flow, baseline: Baseline, root: Path, seed: int, tally: Tally) -> None:
    rng = random.Random(seed)
    place = make_place(root, flow)
    proc = place.start_run()
    # One kill in ten lands between launch and the first node; the rest from the first node to
    # a little past the last side effect (the last commits, the run's completion, the exit),
    # timed from the first invocation so that start-up jitter cannot bunch the kills together.
    if rng.random() < 0.1:
        delay = rng.uniform(0, baseline.to_first_node_s)
        where = "after launch"
    else:
        wait_for_first_invocation(place, proc)
        delay = rng.uniform(0, baseline.span_s * 1.15)
        where = "after the first node started"
    time.sleep(delay)
    proc.kill()
    proc.communicate(timeout=30)
    label = f"{flow.name} seed={seed} (kill {delay * 1000:.0f} ms {where})"
    tally.trials += 1

    runs = place.polyhost_json("runs", "list", label=label)
    if not runs:
        tally.no_run_recorded += 1
        assert invocations(place.log) == [], f"{label}: nodes ran, but no run was recorded"
        return
    assert len(runs) == 1, f"{label}: one `polyhost run`, {len(runs)} runs recorded"
    run_id = runs[0]["execution_id"]

    before = place.polyhost_json("runs", "show", run_id, label=label)
    completed_at_kill = {n for n, r in before["nodes"].items() if r["status"] == "completed"}
    tally.completed_nodes_at_kill.append(len(completed_at_kill))
    if before["status"] == "completed":
        tally.completed_before_kill += 1
        final = before
    else:
        tally.resumed += 1
        code, out, err = place.polyhost("runs", "resume", run_id, "--json")
        assert code == 0, (
            f"{label}: resume of a run left {before['status']} with "
            f"{sorted(completed_at_kill)} completed exited {code}: {err}"
        )
        final = json.loads(out)
    after = place.polyhost_json("runs", "show", run_id, label=label)

    # (1) the run completes with the outputs of an uninterrupted run
    assert final["status"] == "completed", f"{label}: {final['status']}: {final['error']}"
    assert final["outputs"] == baseline.outputs, f"{label}: outputs differ from the baseline"
    assert after["outputs"] == baseline.outputs, f"{label}: stored outputs differ"

    # (2) nodes completed at the kill never ran again; a re-run node keeps its key
    calls = invocations(place.log)
    counts = Counter(name for _, name in calls)
    keys_of: dict[str, set[str]] = defaultdict(set)
    for key, name in calls:
        keys_of[name].add(key)
    assert set(counts) == flow.names, f"{label}: invoked {sorted(counts)}"
    for node in sorted(completed_at_kill):
        names = invocation_names(flow, node)
        assert names is not None, f"{label}: the store shows an unknown node {node!r}"
        again = {name: counts[name] for name in sorted(names) if counts[name] != 1}
        assert not again, f"{label}: {node} was completed at the kill, yet ran {again} times"
    # One crash re-runs a node at most once, and in a chain only one node can be in flight.
    repeated = {name: n for name, n in counts.items() if n > 1}
    assert max(counts.values()) <= 2, f"{label}: invoked more than twice: {repeated}"
    if flow.name == "chain":
        assert len(repeated) <= 1, f"{label}: more than the in-flight node re-ran: {repeated}"
    changed = {name: sorted(keys) for name, keys in keys_of.items() if len(keys) != 1}
    assert not changed, f"{label}: a node ran again under another idempotency key: {changed}"

    # (3) every side effect happened exactly once, the same set as the baseline's
    effects = Counter(effect_keys(place))
    twice = {key: n for key, n in effects.items() if n != 1}
    assert not twice, f"{label}: side effects repeated: {twice}"
    name_of = {key: name for key, name in calls}
    effect_names = sorted(name_of.get(key, f"<unknown key {key}>") for key in effects)
    assert effect_names == sorted(flow.names), f"{label}: effects of {effect_names}"

    # (4) nothing is left running or pending
    assert after["status"] == "completed", f"{label}: stored status {after['status']}"
    for shown in (final, after):
        stuck = {n: r["status"] for n, r in shown["nodes"].items() if r["status"] in UNSETTLED}
        assert not stuck, f"{label}: nodes left unsettled after resume: {stuck}"


def invocation_names(flow: Flow, node: str) -> set[str] | None:
    """The invocations a node entry of ``runs show`` stands for: a step node's own, a loop's
    whole body, or one body node of one iteration (shown as ``loop[index].node``)."""
    if node in flow.step_nodes:
        return {node}
    if node in flow.loops:
        return flow.loops[node]
    match = BODY_ENTRY.fullmatch(node)
    if match is None or match["loop"] not in flow.loops:
        return None
    name = f"{match['node']}.{match['index']}"
    return {name} if name in flow.loops[match["loop"]] else None


def _seeds(flow_name: str) -> list[int]:
    chosen = os.environ.get("POLYHOST_FAULT_SEEDS", "").strip()
    if chosen:
        return [int(seed) for seed in chosen.split(",")]
    base = zlib.crc32(flow_name.encode()) % 100_000 * 1000
    return [base + trial for trial in range(TRIALS_PER_FLOW)]


@pytest.mark.timeout(110)
@pytest.mark.parametrize("flow_name", sorted(FLOWS))
def test_killed_runs_resume_to_the_uninterrupted_result(flow_name: str, tmp_path: Path) -> None:
    flow = FLOWS[flow_name]()
    baseline = run_baseline(make_place(tmp_path / "baseline", flow), flow)
    tally = Tally()
    for seed in _seeds(flow_name):
        kill_and_resume(flow, baseline, tmp_path / f"seed-{seed}", seed, tally)
    print(f"{flow_name}: {tally}")
    # The kills must exercise recovery, not just finished or unstarted runs.
    if not os.environ.get("POLYHOST_FAULT_SEEDS"):
        assert tally.resumed >= tally.trials // 3, f"too few kills landed mid-run: {tally}"
