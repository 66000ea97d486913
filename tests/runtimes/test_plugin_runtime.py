"""A runtime from a package of one's own, found through the ``polyhost.runtimes`` entry point.

The package (``tests/runtimes/echo_runtime``) is registered the way pip would register it:
a ``*.dist-info`` folder with an ``entry_points.txt``, on ``sys.path``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from polyhost import Catalog, Host, HostConfig, ManifestError, RunStatus
from polyhost.runtimes import _registry
from tests.runtimes.echo_runtime import EchoRuntime

pytestmark = pytest.mark.anyio

ENTRY_POINTS = "[polyhost.runtimes]\necho = tests.runtimes.echo_runtime:EchoPlugin\n"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The echo runtime installed for this test only (the registry forgets it after)."""
    site = tmp_path / "site"
    dist = site / "polyhost_echo_runtime-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: polyhost-echo-runtime\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    _registry.runtime_plugins()  # the built-ins, loaded before the copy the test changes
    monkeypatch.setattr(_registry, "_plugins", dict(_registry._plugins))
    monkeypatch.syspath_prepend(str(site))
    yield tmp_path


def project(
    root: Path, manifest: str, nodes: list[dict[str, object]], edges: Sequence[object] = ()
) -> Path:
    root.mkdir(exist_ok=True)
    (root / "polyhost.toml").write_text(manifest)
    flow = root / "flow.json"
    flow.write_text(json.dumps({"version": 1, "id": "flow", "nodes": nodes, "edges": list(edges)}))
    return flow


MANIFEST = """
[[nodes]]
type = "acme.echo"
runtime = "echo"
prefix = "hi "
shout = true
"""


async def test_a_runtime_from_an_entry_point_runs_a_node_in_a_workflow(installed: Path) -> None:
    assert "echo" not in _registry._plugins  # nothing imported it by name
    flow = project(
        installed / "p",
        MANIFEST,
        [
            {"id": "a", "type": "acme.echo", "with": {"name": "ada", "n": 2}},
            {"id": "b", "type": "echo.plain", "with": {"text": "{{ a.name }}"}},
        ],
        [{"from": "a", "to": "b"}],
    )
    async with Host(HostConfig(home=installed / "home"), store=None) as host:
        assert "echo" in host.router.runtimes
        assert isinstance(host.router.adapter("echo"), EchoRuntime)
        result = await host.run(flow)
        adapter = host.router.adapter("echo")
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["a"].output == {"name": "HI ADA", "n": 2}
    assert result.nodes["b"].output == {"text": "> HI ADA"}  # a node type it brought
    assert isinstance(adapter, EchoRuntime) and adapter.closed


async def test_a_plugin_runtime_node_fails_like_any_other(installed: Path) -> None:
    flow = project(
        installed / "p", MANIFEST, [{"id": "a", "type": "acme.echo", "with": {"fail": True}}]
    )
    async with Host(HostConfig(home=installed / "home"), store=None) as host:
        result = await host.run(flow)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert (result.error["node"], result.error["code"]) == ("a", "echo_failed")


def test_the_plugin_checks_its_node_types_when_a_workflow_compiles(installed: Path) -> None:
    manifest = MANIFEST.replace('prefix = "hi "', 'prefix = "{oops}"')
    flow = project(installed / "p", manifest, [{"id": "a", "type": "acme.echo"}])
    with Host(HostConfig(home=installed / "home"), store=None) as host:
        found = host.check(host.load(flow))
    assert [(d.code, d.node, d.field) for d in found] == [("invalid_value", "a", "type")]
    assert "holds a brace" in found[0].message


def test_an_option_of_another_runtime_names_the_node_type_and_the_key(installed: Path) -> None:
    catalog = Catalog()
    path = installed / "polyhost.toml"
    path.write_text(
        '[[nodes]]\ntype = "acme.py"\nruntime = "python"\nhandler = "m:f"\nmodule = "x.wasm"\n'
    )
    with pytest.raises(ManifestError) as caught:
        catalog.load_manifest(path)
    assert "node type acme.py" in caught.value.message
    assert "`module` is not an option of the python runtime" in caught.value.message
    path.write_text('[[nodes]]\ntype = "acme.e"\nruntime = "echo"\nprefix = "x"\nsidecar = "s"\n')
    with pytest.raises(ManifestError, match=r"acme\.e: .*`sidecar` is not an option of the echo"):
        catalog.load_manifest(path)
    path.write_text('[[nodes]]\ntype = "acme.e"\nruntime = "echo"\n')
    with pytest.raises(ManifestError, match=r"acme\.e: .*needs `prefix`"):
        catalog.load_manifest(path)


def test_a_runtime_nobody_registered_is_refused(installed: Path) -> None:
    path = installed / "polyhost.toml"
    path.write_text('[[nodes]]\ntype = "acme.x"\nruntime = "cobol"\nhandler = "m:f"\n')
    with pytest.raises(ManifestError, match=r"acme\.x: .*unknown runtime 'cobol' \(known: .*echo"):
        Catalog().load_manifest(path)


def test_without_the_entry_point_the_runtime_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "polyhost.toml"
    path.write_text('[[nodes]]\ntype = "acme.echo"\nruntime = "echo"\nprefix = "x"\n')
    with pytest.raises(ManifestError, match="unknown runtime 'echo'"):
        Catalog().load_manifest(path)
