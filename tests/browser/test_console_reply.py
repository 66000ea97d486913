"""The console shows an ``llm.chat`` node's reply growing while it streams, the tool it called,
and the tokens it used once done, in the node panel and the run's header, while the rest of the
run still goes on (a scripted OpenAI-compatible server on a real socket)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.test_console import node, start
from tests.helpers.server import ServerProcess
from tests.llm.fake_openai import FakeOpenAI, Stream, tool_call_delta, usage

WORDS = [f"word{i} " for i in range(20)]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def workflows(tmp_path: Path, fake: FakeOpenAI) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    flow = {
        "version": 1,
        "id": "chat",
        "nodes": [
            {
                "id": "ask",
                "type": "llm.chat",
                "with": {
                    "model": "fake-model",
                    "base_url": fake.base_url,
                    "prompt": "What is the weather?",
                    "tools": ["core.transform"],
                },
            },
            # Keeps the run going after the reply (in-process: under the durable timer's 60 s)
            # until the test cancels it.
            {"id": "rest", "type": "core.wait", "with": {"duration": "50s"}},
        ],
        "edges": [{"from": "ask", "to": "rest"}],
    }
    (folder / "chat.json").write_text(json.dumps(flow))
    return folder


def header_fact(page: Page, name: str) -> Locator:
    return page.locator(f"header.run-head dt:text-is('{name}') + dd")


def test_a_streaming_reply_grows_in_the_node_panel(
    fake: FakeOpenAI, server: ServerProcess, page: Page, screenshots: Path
) -> None:
    call = tool_call_delta(0, id="c1", name="core_transform", arguments='{"value": "sunny"}')
    fake.script(
        Stream(
            ["Let me check."], tool_calls=[call], finish_reason="tool_calls", usage=usage(20, 5)
        ),
        # Slow enough to watch: the page sees the reply before its last word.
        Stream(WORDS, usage=usage(40, 8), delay=0.25),
    )
    run_id = start(server, "chat")
    page.goto(f"{server.url}/runs/{run_id}")
    node(page, "ask").click()
    panel = page.get_by_role("complementary", name="Node ask")
    reply = panel.get_by_label("reply", exact=True)

    expect(reply).to_contain_text("word3", timeout=30_000)
    expect(panel.locator(".badge")).to_have_text("running")
    assert "word19" not in reply.inner_text()
    tools = panel.get_by_role("list", name="tool calls")
    expect(tools).to_contain_text("core_transform done")
    expect(panel.get_by_role("heading", name="Reply")).to_contain_text("step 2")
    # No node has reported tokens yet: the header has no tokens line.
    expect(header_fact(page, "tokens")).to_have_count(0)
    page.screenshot(path=screenshots / "run-llm-reply-streaming.png")

    expect(panel.locator(".badge")).to_have_text("completed", timeout=30_000)
    expect(reply).to_have_text("".join(WORDS).strip())
    # The tokens come with the node's completion, not with the end of the run: it still waits.
    expect(panel).to_contain_text("tokens: 60 prompt + 13 completion = 73")
    expect(panel).not_to_contain_text("(estimated)")
    expect(header_fact(page, "tokens")).to_have_text("73 (60 prompt + 13 completion)")
    expect(page.locator("header.run-head h1 .badge")).to_have_text("running")
    # The raw chunks are still there, folded away until asked for.
    expect(panel.get_by_label("chunks")).to_have_count(0)
    panel.get_by_text("Streamed chunks").click()
    expect(panel.get_by_label("chunks")).to_contain_text('"tool_call"')
    page.screenshot(path=screenshots / "run-llm-reply-done.png")

    cancelled = httpx.post(f"{server.api}/runs/{run_id}/cancel", timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    expect(page.locator("header.run-head h1 .badge")).to_have_text("cancelled", timeout=30_000)
    expect(header_fact(page, "tokens")).to_have_text("73 (60 prompt + 13 completion)")
