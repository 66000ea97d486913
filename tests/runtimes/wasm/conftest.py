"""Fixtures of the wasm runtime tests: a project folder and a host without a store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from polyhost import Host, HostConfig, RunResult
from polyhost.events._events import Event
from tests.runtimes.wasm.guests import Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "project")


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    async with Host(HostConfig(home=tmp_path / "home"), store=None) as h:
        yield h


RunOne = Callable[..., Awaitable[RunResult]]


@pytest.fixture
def run_one(host: Host, project: Project) -> RunOne:
    """Run a one-node workflow of ``type_name``; events land in the ``events`` list given."""

    async def run(
        type_name: str,
        params: dict[str, Any] | None = None,
        events: list[Event] | None = None,
        **node: Any,
    ) -> RunResult:
        flow = project.workflow([{"id": "w", "type": type_name, "with": params or {}, **node}])
        return await host.run(flow, on_event=events.append if events is not None else None)

    return run
