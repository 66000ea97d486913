"""Fixtures that start a real `polyhost serve` (see tests/helpers/server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.server import ServerProcess, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server without tokens on loopback, with its own home and store."""
    with running_server(tmp_path / "home") as started:
        yield started


@pytest.fixture
def secured_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server that requires the bearer token ``server.token``."""
    with running_server(tmp_path / "home", token="s3cret-token-for-tests-0001") as started:
        yield started
