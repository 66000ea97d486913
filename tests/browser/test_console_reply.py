"""The console shows an ``llm.chat`` node's reply growing while it streams, the tool it called,
and the tokens it used once done (a scripted OpenAI-compatible server on a real socket)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

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
            }
        ],
    }
    (folder / "chat.json").write_text(json.dumps(flow))
    return folder


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
    page.screenshot(path=screenshots / "run-llm-reply-streaming.png")

    expect(panel.locator(".badge")).to_have_text("completed", timeout=30_000)
    expect(reply).to_have_text("".join(WORDS).strip())
    expect(panel).to_contain_text("tokens: 60 prompt + 13 completion = 73")
    expect(panel).not_to_contain_text("(estimated)")
    # The raw chunks are still there, folded away until asked for.
    expect(panel.get_by_label("chunks")).to_have_count(0)
    panel.get_by_text("Streamed chunks").click()
    expect(panel.get_by_label("chunks")).to_contain_text('"tool_call"')
    page.screenshot(path=screenshots / "run-llm-reply-done.png")
