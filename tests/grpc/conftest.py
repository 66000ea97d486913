"""A project folder whose manifest declares sidecars, and a host to run its workflows."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from polyhost import Host, HostConfig
from polyhost.runtimes import GrpcRuntime
from tests.helpers.manifests import toml_value
from tests.helpers.processes import wait_gone

ROOT = Path(__file__).resolve().parents[2]
ROGUE = [sys.executable, str(ROOT / "tests" / "helpers" / "rogue_sidecar.py")]


class SidecarProject:
    """A folder with a polyhost.toml declaring sidecars (and node types), and workflows."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.sidecars: dict[str, dict[str, Any]] = {}
        self.types: list[dict[str, Any]] = []

    def sidecar(self, name: str, **settings: Any) -> None:
        self.sidecars[name] = settings
        self._write()

    def rogue(self, name: str = "rogue", **settings: Any) -> None:
        env = {"PYTHONPATH": str(ROOT), **settings.pop("env", {})}
        self.sidecar(name, command=ROGUE, env=env, **settings)

    def node_type(self, type_name: str, sidecar: str) -> None:
        self.types.append({"type": type_name, "runtime": "grpc", "sidecar": sidecar})
        self._write()

    def workflow(
        self, nodes: list[dict[str, Any]], edges: list[dict[str, Any]] | None = None
    ) -> Path:
        path = self.root / "flow.json"
        path.write_text(
            json.dumps({"version": 1, "id": "flow", "nodes": nodes, "edges": edges or []})
        )
        return path

    def _write(self) -> None:
        lines: list[str] = []
        for entry in self.types:
            lines.append("[[nodes]]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in entry.items())
        for name, settings in self.sidecars.items():
            lines.append(f"[sidecars.{name}]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in settings.items())
        (self.root / "polyhost.toml").write_text("\n".join(lines) + "\n")


@pytest.fixture
def project(tmp_path: Path) -> SidecarProject:
    return SidecarProject(tmp_path / "project")


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    async with Host(HostConfig(home=tmp_path / "home"), store=None) as h:
        yield h


def grpc_runtime(host: Host) -> GrpcRuntime:
    found = host.router.adapter("grpc")
    assert isinstance(found, GrpcRuntime)
    return found


def kill_host_and_check_sidecars_exit(flow: Path, pid_nodes: list[str], home: Path) -> None:
    """Run ``flow`` in a host process, SIGKILL the host, and check that the sidecars whose pids
    the ``pid_nodes`` returned exit within seconds."""
    script = (
        "import anyio\n"
        "from polyhost import Host, HostConfig\n"
        "async def main():\n"
        f"    async with Host(HostConfig(home={str(home)!r}), store=None) as host:\n"
        f"        result = await host.run({str(flow)!r})\n"
        f"        print(*[result.nodes[n].output['pid'] for n in {pid_nodes!r}], flush=True)\n"
        "        await anyio.sleep(60)\n"
        "anyio.run(main)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT) as host:
        try:
            assert host.stdout is not None
            pids = [int(p) for p in host.stdout.readline().split()]
            assert len(pids) == len(pid_nodes)
            host.kill()
            host.wait()
            assert wait_gone(pids, 5) == [], "a sidecar outlived its host"
        finally:
            host.kill()
