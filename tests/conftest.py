"""Shared fixtures: the anyio backend, a host per test with its own POLYHOST_HOME."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from polyhost import Catalog, Host, HostConfig


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may touch the real ~/.polyhost.
    monkeypatch.setenv("POLYHOST_HOME", str(tmp_path / "home"))


@pytest.fixture
def catalog() -> Catalog:
    from tests.helpers.nodes import build_catalog

    return build_catalog()


@pytest.fixture
async def host(catalog: Catalog, tmp_path: Path) -> AsyncIterator[Host]:
    config = HostConfig(home=tmp_path / "home", concurrency=16)
    async with Host(config, catalog=catalog) as h:
        yield h
