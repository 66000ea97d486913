"""The embedding API: sync wrapper, entry-point node types, closing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from polyhost import Host, HostConfig, NodeType, RunStateError, RunStatus
from tests.helpers.workflows import workflow


def test_run_sync_without_an_event_loop(tmp_path: Path) -> None:
    with Host(HostConfig(home=tmp_path)) as host:
        result = host.run_sync(
            workflow([{"id": "a", "type": "core.transform", "with": {"value": "{{ 6 * 7 }}"}}])
        )
        assert result.status is RunStatus.COMPLETED
        assert result.outputs == {"a": {"value": 42}}
        assert host.store is not None
        assert host.store.get_result(result.execution_id).outputs == result.outputs


def shout(params: dict[str, Any]) -> dict[str, Any]:
    return {"text": str(params["text"]).upper()}


def _provided() -> list[Any]:
    return [(NodeType(type="plugin.shout", runtime="python", handler=f"{__name__}:shout"), shout)]


class _EntryPoint:
    name = "plugin"
    value = f"{__name__}:_provided"

    def load(self) -> Any:
        return _provided


def test_installed_packages_register_node_types_through_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    def entry_points(group: str) -> list[_EntryPoint]:
        return [_EntryPoint()] if group == "polyhost.nodes" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    with Host(HostConfig(home=tmp_path), store=None) as host:
        node_type = host.catalog.get("plugin.shout")
        assert node_type is not None and node_type.runtime == "python"
        result = host.run_sync(
            workflow([{"id": "s", "type": "plugin.shout", "with": {"text": "hi"}}])
        )
    assert result.outputs == {"s": {"text": "HI"}}


def test_a_closed_host_refuses_to_run(tmp_path: Path) -> None:
    host = Host(HostConfig(home=tmp_path), store=None)
    host.close()
    host.close()  # idempotent
    with pytest.raises(RunStateError):
        host.run_sync(workflow([{"id": "a", "type": "core.transform"}]))


def test_allowed_roots_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.setenv("POLYHOST_ALLOWED_ROOTS", os.pathsep.join([str(tmp_path / "a"), "/srv/b"]))
    assert HostConfig(home=tmp_path).allowed_roots == [tmp_path / "a", Path("/srv/b")]
    monkeypatch.delenv("POLYHOST_ALLOWED_ROOTS")
    assert HostConfig(home=tmp_path).allowed_roots == [Path.cwd()]
