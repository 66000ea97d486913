"""The native runtime's own behaviour: out-of-tree modules named by a manifest, files confined
to the allowed roots, failures as typed errors, cancellation that reaches the native code."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from polyhost import Host, HostConfig, RunStatus
from tests.helpers.workflows import workflow

HELPERS = Path(__file__).parents[1] / "helpers"
pytestmark = pytest.mark.anyio

MANIFEST = """
[[nodes]]
type = "ext.size"
runtime = "native"
module = "native_like"
handler = "read_size"
input_schema = { type = "object", properties = { path = { type = "string", format = "path" } }, required = ["path"] }

[[nodes]]
type = "ext.refuse"
runtime = "native"
module = "native_like"
handler = "refuse"

[[nodes]]
type = "ext.spin"
runtime = "native"
module = "native_like"
handler = "spin"

[[nodes]]
type = "ext.missing"
runtime = "native"
module = "no_such_native_module"
handler = "f"
"""


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    (root / "in.txt").write_text("hello")
    (tmp_path / "secret.txt").write_text("top secret")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    return root


@pytest.fixture
async def host(tmp_path: Path, data: Path) -> AsyncIterator[Host]:
    path = tmp_path / "native.toml"
    path.write_text(MANIFEST)
    h = Host(HostConfig(home=tmp_path / "home", allowed_roots=[data]), store=None)
    h.catalog.load_manifest(path)
    for name in ("ext.size", "ext.refuse", "ext.spin"):
        node_type = h.catalog.get(name)
        assert node_type is not None
        h.catalog.add(node_type.model_copy(update={"base_dir": str(HELPERS)}))
    yield h
    await h.aclose()


async def test_a_module_handler_runs_with_paths_resolved_in_the_root(
    host: Host, data: Path
) -> None:
    result = await host.run(workflow([{"id": "s", "type": "ext.size", "with": {"path": "in.txt"}}]))
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == {"s": {"path": str(data / "in.txt"), "bytes": 5}}


@pytest.mark.parametrize("path", ["../secret.txt", "/etc/passwd", "escape"])
async def test_paths_outside_the_roots_are_refused(host: Host, path: str) -> None:
    result = await host.run(workflow([{"id": "s", "type": "ext.size", "with": {"path": path}}]))
    assert result.status is RunStatus.FAILED
    assert result.error["node"] == "s" and result.error["code"] == "invalid_parameters"
    assert "outside the allowed roots" in result.error["message"]
    assert result.nodes["s"].error["field"] == "with.path"


async def test_a_failure_is_a_typed_error_naming_the_node(host: Host) -> None:
    result = await host.run(workflow([{"id": "r", "type": "ext.refuse"}]))
    assert result.error == {
        "node": "r",
        "code": "native_error",
        "message": "the input is not acceptable",
    }


async def test_a_timeout_reaches_the_native_code(host: Host) -> None:
    # The manifest's module is imported by name from its folder: the same module object.
    await host.run(workflow([{"id": "warm", "type": "ext.refuse"}]))
    seen = sys.modules["native_like"].SEEN_CANCEL
    seen.clear()
    begin = time.monotonic()
    with anyio.fail_after(5):
        result = await host.run(workflow([{"id": "s", "type": "ext.spin", "timeout": "100ms"}]))
    assert result.error["code"] == "timeout"
    deadline = time.monotonic() + 2
    while not seen and time.monotonic() < deadline:
        await anyio.sleep(0.01)
    assert seen == [True]
    assert time.monotonic() - begin < 3


async def test_a_module_that_cannot_be_imported_is_a_compile_error(host: Host) -> None:
    from polyhost import CompileError

    with pytest.raises(CompileError) as info:
        host.compile(workflow([{"id": "m", "type": "ext.missing"}]))
    [diagnostic] = info.value.diagnostics
    assert (diagnostic.code, diagnostic.node) == ("handler_not_found", "m")
