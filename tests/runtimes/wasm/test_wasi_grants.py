"""The C guests of wasm-nodes/hostile/ (built by `make wasm`) through a real host, in both styles.

The guests report what WASI gave them; the host must make every ungranted access fail (the
guest's own `io` error, or a null variable), let granted reads through, keep read-only grants
read-only, and stop every escape. The rest of the hostile guests check that each broken limit
comes back with its code when real toolchain output, not hand-written WAT, breaks it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from polyhost import RunStatus
from tests.runtimes.wasm.conftest import RunOne
from tests.runtimes.wasm.guests import Project

pytestmark = pytest.mark.anyio

HOSTILE = Path(__file__).parents[3] / "wasm-nodes" / "build" / "hostile"
STYLES = ["command", "reactor"]


def guest(name: str, style: str) -> str:
    path = HOSTILE / f"{name}.wasm" if style == "command" else HOSTILE / "reactor" / f"{name}.wasm"
    assert path.is_file(), f"{path} is missing: build the guests with `make wasm`"
    return str(path)


@pytest.fixture
def tree(project: Project) -> Path:
    """data/ (read-only grant), out/ (writable grant), a secret beside them, and symlinks."""
    root = project.root
    (root / "data").mkdir()
    (root / "data" / "hello.txt").write_text("hello from data")
    (root / "out").mkdir()
    (root / "secret.txt").write_text("not for guests")
    (root / "data" / "escape").symlink_to(root / "secret.txt")
    (root / "data" / "up").symlink_to("../secret.txt")
    return root


GRANTED = {"read": ["data/"], "write": ["out/"], "env": ["TZ"]}


async def call(
    run_one: RunOne,
    project: Project,
    name: str,
    style: str,
    params: dict[str, Any],
    grants: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(output, error) of one node running the guest ``name``."""
    type_name = f"t.{name}_{style}_{len(project._types)}"
    extra: dict[str, Any] = {"grants": grants or {}}
    if limits:
        extra["limits"] = limits
    project.node_type(type_name, guest(name, style), **extra)
    result = await run_one(type_name, params)
    node = result.nodes["w"]
    return node.output, node.error


# ---- files and variables --------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("path", ["data/hello.txt", "/data/hello.txt"])
async def test_a_granted_file_is_readable(
    run_one: RunOne, project: Project, tree: Path, style: str, path: str
) -> None:
    output, error = await call(run_one, project, "read_file", style, {"path": path}, GRANTED)
    assert error is None
    assert output == {"content": "hello from data"}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    ("path", "grants"),
    [
        ("data/hello.txt", {}),  # nothing granted
        ("secret.txt", GRANTED),  # beside the grants
        ("/secret.txt", GRANTED),
        ("data/../secret.txt", GRANTED),  # ../ out of a grant
        ("../secret.txt", GRANTED),
        ("/data/../../secret.txt", GRANTED),
        ("data/escape", GRANTED),  # symlinks out of a grant
        ("data/up", GRANTED),
        ("/etc/passwd", GRANTED),
        ("/proc/self/environ", GRANTED),
    ],
)
async def test_ungranted_reads_fail(
    run_one: RunOne, project: Project, tree: Path, style: str, path: str, grants: dict[str, Any]
) -> None:
    output, error = await call(run_one, project, "read_file", style, {"path": path}, grants)
    assert output is None
    assert error is not None
    assert error["code"] == "io", error


@pytest.mark.parametrize("style", STYLES)
async def test_a_write_grant_is_writable(
    run_one: RunOne, project: Project, tree: Path, style: str
) -> None:
    params = {"path": "out/result.txt", "text": "from the guest"}
    output, error = await call(run_one, project, "write_file", style, params, GRANTED)
    assert error is None
    assert output == {"written": len("from the guest")}
    assert (tree / "out" / "result.txt").read_text() == "from the guest"


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    "path",
    [
        "data/new.txt",  # a read-only grant
        "data/hello.txt",
        "secret.txt",  # nothing granted there
        "out/../secret.txt",  # ../ out of a writable grant
        "out/../data/hello.txt",
        "new.txt",
    ],
)
async def test_ungranted_writes_fail(
    run_one: RunOne, project: Project, tree: Path, style: str, path: str
) -> None:
    params = {"path": path, "text": "overwritten"}
    output, error = await call(run_one, project, "write_file", style, params, GRANTED)
    assert output is None
    assert error is not None
    assert error["code"] == "io", error
    assert (tree / "secret.txt").read_text() == "not for guests"
    assert (tree / "data" / "hello.txt").read_text() == "hello from data"
    assert not (tree / "data" / "new.txt").exists()
    assert not (tree / "new.txt").exists()


@pytest.mark.parametrize("style", STYLES)
async def test_only_granted_variables_are_visible(
    run_one: RunOne, project: Project, style: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Europe/Zurich")
    monkeypatch.setenv("POLYHOST_TEST_SECRET", "hunter2")
    for name, expected in [("TZ", "Europe/Zurich"), ("POLYHOST_TEST_SECRET", None),
                           ("PATH", None), ("HOME", None)]:  # fmt: skip
        params = {"name": name}
        output, error = await call(run_one, project, "getenv", style, params, {"env": ["TZ"]})
        assert error is None
        assert output == {"value": expected}, name
    output, _ = await call(run_one, project, "getenv", style, {"name": "TZ"})
    assert output == {"value": None}


# ---- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    ("name", "params", "limits", "code"),
    [
        ("loop", {}, {"fuel": 50_000_000, "timeout": "30s"}, "wasm_out_of_fuel"),
        ("loop", {}, {"fuel": 10**15, "timeout": "300ms"}, "wasm_timeout"),
        ("recurse", {}, {}, "wasm_trap"),
        ("trap", {}, {}, "wasm_trap"),
        ("big_output", {"bytes": 2_000_000}, {"output": "1MiB"}, "wasm_output_too_large"),
        ("bad_json", {}, {}, "wasm_invalid_output"),
    ],
)
async def test_broken_limits_have_their_codes(
    run_one: RunOne,
    project: Project,
    style: str,
    name: str,
    params: dict[str, Any],
    limits: dict[str, Any],
    code: str,
) -> None:
    output, error = await call(run_one, project, name, style, params, limits=limits)
    assert output is None
    assert error is not None
    assert error["code"] == code, error


@pytest.mark.parametrize("style", STYLES)
async def test_memory_stops_at_the_cap(run_one: RunOne, project: Project, style: str) -> None:
    # The guest frees everything once malloc fails and reports how far it got.
    output, error = await call(run_one, project, "grow", style, {}, limits={"memory": "8MiB"})
    assert error is None, error
    assert output is not None
    assert 4 * 2**20 <= output["allocated"] <= 8 * 2**20


async def test_an_output_span_outside_memory(run_one: RunOne, project: Project) -> None:
    _, error = await call(run_one, project, "bad_pointer", "reactor", {})
    assert error is not None
    assert error["code"] == "wasm_invalid_output"


@pytest.mark.parametrize("style", STYLES)
async def test_an_exit_status(run_one: RunOne, project: Project, style: str) -> None:
    params = {"code": 7, "message": "giving up on purpose"}
    _, error = await call(run_one, project, "exit_code", style, params)
    assert error is not None
    assert error["code"] == "wasm_exit"
    assert "giving up on purpose" in error["message"]


async def test_streamed_chunks_and_logs(run_one: RunOne, project: Project) -> None:
    from polyhost.events._events import Event, EventType

    project.node_type("t.stream", guest("stream", "reactor"))
    events: list[Event] = []
    result = await run_one("t.stream", {"count": 3}, events=events)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["w"].output == {"count": 3}
    chunks = [e.data["data"] for e in events if e.type is EventType.NODE_CHUNK]
    assert chunks == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert len([e for e in events if e.type is EventType.LOG]) == 3
