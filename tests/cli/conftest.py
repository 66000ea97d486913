"""Run the real ``polyhost`` command in a subprocess, with its state in a temporary home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Outcome:
    """What one invocation gave."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as exactly one JSON document."""
        return json.loads(self.stdout)


Polyhost = Callable[..., Outcome]


def polyhost_command() -> list[str]:
    """The argv prefix that starts the installed `polyhost` command."""
    script = Path(sys.executable).parent / "polyhost"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "polyhost.cli"]


@pytest.fixture
def polyhost(tmp_path: Path) -> Polyhost:
    """Call ``polyhost(*args)`` to run the command in ``tmp_path`` with POLYHOST_HOME there."""
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "POLYHOST_DEBUG"}}
    env["POLYHOST_HOME"] = str(tmp_path / "home")
    env["NO_COLOR"] = "1"

    def run(*args: str, input_text: str | None = None) -> Outcome:
        done = subprocess.run(
            [*polyhost_command(), *args],
            cwd=tmp_path,
            env=env,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a file under ``tmp_path`` and return its path."""

    def write_file(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write_file


_TWO_NODES = """\
version: 1
id: greet
inputs:
  type: object
  properties:
    name: {type: string}
  required: [name]
nodes:
  - id: hello
    type: core.transform
    with: {value: "hello {{ input.name }}"}
  - id: shout
    type: core.transform
    with: {value: "{{ hello.value }}!"}
edges:
  - {from: hello, to: shout}
outputs:
  greeting: "{{ shout.value }}"
"""

_FAILING = """\
version: 1
id: failing
nodes:
  - id: start
    type: core.transform
    with: {value: 1}
  - id: boom
    type: core.fail
    with: {message: "it broke", code: broken}
edges:
  - {from: start, to: boom}
"""

_INVALID = """\
version: 1
nodes:
  - id: first
    type: core.transform
    with: {value: "{{ nowhere.value }}"}
"""


@pytest.fixture
def two_nodes(write: Callable[[str, str], Path]) -> Path:
    """A workflow of two transforms: ``hello`` then ``shout``; needs the input ``name``."""
    return write("greet.yaml", _TWO_NODES)


@pytest.fixture
def failing(write: Callable[[str, str], Path]) -> Path:
    """A workflow whose node ``boom`` fails with code ``broken``."""
    return write("failing.yaml", _FAILING)


@pytest.fixture
def invalid(write: Callable[[str, str], Path]) -> Path:
    """A workflow whose node ``first`` reads an unknown node in ``with.value``."""
    return write("invalid.yaml", _INVALID)
