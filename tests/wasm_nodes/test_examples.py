"""The example wasm nodes of wasm-nodes/examples.toml, each run through a real workflow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from polyhost import Host, HostConfig, RunResult, RunStatus
from tests.helpers.workflows import workflow
from tests.wasm_nodes.abi import BUILD, ROOT

pytestmark = pytest.mark.anyio

EXAMPLES = ROOT / "examples.toml"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One home for the module, so its wasm cache compiles each module once (Go's take seconds).
    return tmp_path_factory.mktemp("home")


@pytest.fixture
async def host(home: Path) -> AsyncIterator[Host]:
    async with Host(HostConfig(home=home)) as h:
        h.catalog.load_manifest(EXAMPLES)
        yield h


async def run_one(host: Host, node_type: str, params: dict[str, Any]) -> RunResult:
    wf = workflow([{"id": "n", "type": node_type, "with": params}], outputs={"out": "{{ n }}"})
    return await host.run(wf)


async def test_word_count_a_c_reactor(host: Host) -> None:
    result = await run_one(host, "wasm.word_count", {"text": "one two  three\nfour\n\tfive"})
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == {"out": {"words": 5, "lines": 3}}


async def test_upper_a_c_command_keeps_what_is_not_ascii(host: Host) -> None:
    result = await run_one(host, "wasm.upper", {"text": 'héllo "wörld" 😀\n'})
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == {"out": {"text": 'HéLLO "WöRLD" 😀\n'}}


@pytest.mark.parametrize("node_type", ["wasm.sum", "wasm.sum_reactor"])
async def test_sum_in_go_as_a_command_and_as_a_reactor(host: Host, node_type: str) -> None:
    result = await run_one(host, node_type, {"values": [1, 2.5, -4, 10]})
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == {"out": {"sum": 9.5, "count": 4}}


async def test_greet_an_assemblyscript_reactor(host: Host) -> None:
    result = await run_one(host, "wasm.greet", {"name": "Zoë 🌍"})
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == {"out": {"greeting": "Hello, Zoë 🌍!"}}


async def test_languages_chained_by_templates(host: Host) -> None:
    wf = workflow(
        [
            {"id": "greet", "type": "wasm.greet", "with": {"name": "{{ input.name }}"}},
            {"id": "shout", "type": "wasm.upper", "with": {"text": "{{ greet.greeting }}"}},
            {"id": "count", "type": "wasm.word_count", "with": {"text": "{{ shout.text }}"}},
            {"id": "total", "type": "wasm.sum",
             "with": {"values": "{{ [count.words, count.lines, 0.5] }}"}},
        ],
        ["greet->shout", "shout->count", "count->total"],
        inputs={"type": "object", "properties": {"name": {"type": "string"}}},
        outputs={"shout": "{{ shout.text }}", "total": "{{ total.sum }}"},
    )  # fmt: skip
    result = await host.run(wf, {"name": "wasm world"})
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == {"shout": "HELLO, WASM WORLD!", "total": 4.5}
    assert result.nodes["count"].output == {"words": 3, "lines": 1}


async def test_the_same_node_many_times_in_parallel(host: Host) -> None:
    # A fresh instance per call: calls share nothing, so each sees only its own params.
    names = [f"n{i}" for i in range(12)]
    wf = workflow(
        [{"id": name, "type": "wasm.greet", "with": {"name": name}} for name in names],
        outputs={name: f"{{{{ {name}.greeting }}}}" for name in names},
    )
    result = await host.run(wf)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == {name: f"Hello, {name}!" for name in names}


async def test_a_guest_reported_error_fails_the_node_with_its_code(
    host: Host, tmp_path: Path
) -> None:
    # The examples validate their params by schema first, so this uses a test guest that
    # reports its own error: reading a file it was granted nothing for.
    (tmp_path / "secret.txt").write_text("no")
    manifest = tmp_path / "polyhost.toml"
    manifest.write_text(
        f'[[nodes]]\ntype = "test.read_file"\nruntime = "wasm"\n'
        f'module = "{BUILD / "hostile" / "read_file.wasm"}"\n'
    )
    host.catalog.load_manifest(manifest)
    result = await run_one(host, "test.read_file", {"path": "secret.txt"})
    assert result.status is RunStatus.FAILED
    error = result.nodes["n"].error
    assert error is not None
    assert error["code"] == "io", error
    assert "Capabilities insufficient" in error["message"], error
