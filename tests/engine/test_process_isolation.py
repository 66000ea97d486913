"""isolation = "process" through a workflow: results come back, a timed-out worker is killed."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from polyhost import Host, HostConfig, RunStatus
from tests.helpers.workflows import workflow

HELPERS = Path(__file__).parents[1] / "helpers"
pytestmark = pytest.mark.anyio


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "polyhost.toml"
    path.write_text(
        "\n".join(
            f'[[nodes]]\ntype = "pool.{name}"\nruntime = "python"\n'
            f'handler = "pool_handlers:{name}"\nisolation = "process"\n'
            for name in ("spin", "typed")
        )
    )
    return path


async def test_a_timed_out_process_node_is_killed_and_the_pool_goes_on(
    tmp_path: Path, manifest: Path
) -> None:
    async with Host(HostConfig(home=tmp_path, process_workers=1), store=None) as host:
        host.catalog.load_manifest(manifest)
        # load_manifest points handlers at the manifest's folder; these live in tests/helpers.
        for name in ("pool.spin", "pool.typed"):
            node_type = host.catalog.get(name)
            assert node_type is not None
            host.catalog.add(node_type.model_copy(update={"base_dir": str(HELPERS)}))
        stuck = workflow([{"id": "spin", "type": "pool.spin", "timeout": "300ms"}])
        with anyio.fail_after(30):
            result = await host.run(stuck)
        assert result.status is RunStatus.FAILED
        assert result.error == {
            "node": "spin",
            "code": "timeout",
            "message": "timed out after 0.3s",
        }
        # One worker only: had the spinning one been leaked, this would never run.
        fine = workflow([{"id": "add", "type": "pool.typed", "with": {"x": 41}}])
        with anyio.fail_after(30):
            result = await host.run(fine)
        assert result.status is RunStatus.COMPLETED, result.error
        assert result.outputs == {"add": {"total": 42}}
