"""The workflow format's own example runs as written: CSV totals, a CEL condition over them,
a retried HTTP call to a real server on loopback, and a fallback on the error port."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from polyhost import Host, HostConfig, NodeStatus, RunStatus

SPEC = Path(__file__).parent / "spec" / "order_report.yaml"
pytestmark = pytest.mark.anyio


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    fail_with: int | None = None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        status = self.fail_with or 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[type[_Hook]]:
    handler = type("Hook", (_Hook,), {"received": [], "fail_with": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/hook"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def orders(tmp_path: Path) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text("region,amount\nEU,120\nUS,30\nEU,15.5\nAPAC,7\n", encoding="utf-8")
    return path


async def run_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: Any, inputs: dict[str, Any]
) -> Any:
    monkeypatch.setenv("HOOK_URL", hook.url)
    config = HostConfig(home=tmp_path / "home", env_allow=["HOOK_URL"])
    async with Host(config) as host:
        return await host.run(SPEC, inputs)


async def test_the_example_posts_totals_above_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: Any, orders: Path
) -> None:
    result = await run_spec(tmp_path, monkeypatch, hook, {"path": str(orders)})
    assert result.status is RunStatus.COMPLETED
    rows = [{"region": "APAC", "amount": 7.0, "sum": 7.0},
            {"region": "EU", "amount": 135.5, "sum": 135.5},
            {"region": "US", "amount": 30.0, "sum": 30.0}]  # fmt: skip
    assert result.outputs == {"rows": rows, "notified": True}
    assert hook.received == [{"rows": rows, "currency": "EUR"}]
    assert result.nodes["fallback"].status is NodeStatus.SKIPPED


async def test_below_the_threshold_nothing_is_posted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: Any, orders: Path
) -> None:
    result = await run_spec(tmp_path, monkeypatch, hook, {"path": str(orders), "threshold": 1000})
    assert result.status is RunStatus.COMPLETED
    assert result.nodes["notify"].status is NodeStatus.SKIPPED
    assert result.outputs["notified"] is None
    assert hook.received == []


async def test_a_failing_hook_is_retried_then_routed_to_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: Any, orders: Path
) -> None:
    hook.fail_with = 503
    result = await run_spec(tmp_path, monkeypatch, hook, {"path": str(orders)})
    assert result.status is RunStatus.COMPLETED
    assert len(hook.received) == 3  # attempts: 3
    notify = result.nodes["notify"]
    assert notify.status is NodeStatus.FAILED and notify.attempts == 3
    message = result.nodes["fallback"].output["message"]
    assert message.startswith("notify failed: ") and "503" in message
    # The hook's address came from env; it is masked wherever events could show it.
    assert hook.url not in json.dumps(result.nodes["notify"].error)
