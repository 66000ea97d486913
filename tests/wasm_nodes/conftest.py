"""The wasm node tests need the modules `make wasm` builds into wasm-nodes/build/."""

from __future__ import annotations

import pytest

from tests.wasm_nodes.abi import BUILD


@pytest.fixture(autouse=True, scope="session")
def _built() -> None:
    if not (BUILD / "word_count.wasm").exists():
        pytest.fail("wasm-nodes/build/ is missing: run `make wasm` (or `make build`) first")
