"""A project folder whose manifest declares sidecars, and a host to run its workflows."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from polyhost import Host, HostConfig

ROOT = Path(__file__).resolve().parents[2]
ROGUE = [sys.executable, str(ROOT / "tests" / "helpers" / "rogue_sidecar.py")]


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


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
            lines.extend(f"{k} = {toml(v)}" for k, v in entry.items())
        for name, settings in self.sidecars.items():
            lines.append(f"[sidecars.{name}]")
            lines.extend(f"{k} = {toml(v)}" for k, v in settings.items())
        (self.root / "polyhost.toml").write_text("\n".join(lines) + "\n")


@pytest.fixture
def project(tmp_path: Path) -> SidecarProject:
    return SidecarProject(tmp_path / "project")


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    async with Host(HostConfig(home=tmp_path / "home"), store=None) as h:
        yield h
