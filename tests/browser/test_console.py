"""The console in a real browser against a real `polyhost serve`: a run lights up live, the
failed node shows its error state, the approval form validates and resumes the run, the list
shows it; a server restart in the middle of a run is caught up with nothing missing; a server
with tokens asks for one."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from playwright.sync_api import Page, expect

from tests.helpers.server import ServerProcess, running_server, start_server

# Records every status each graph node shows, in order, as the page changes it.
STATUS_RECORDER = """
window.__statuses = [];
const last = new Map();
const note = (el) => {
  const key = el.getAttribute("data-key"), status = el.getAttribute("data-status");
  if (!key || !status || last.get(key) === status) return;
  last.set(key, status);
  window.__statuses.push([key, status]);
};
new MutationObserver((changes) => {
  for (const change of changes) {
    if (change.type === "attributes") note(change.target);
    for (const added of change.addedNodes) {
      if (added.nodeType !== 1) continue;
      if (added.matches("[data-key]")) note(added);
      added.querySelectorAll("[data-key]").forEach(note);
    }
  }
}).observe(document, { subtree: true, childList: true, attributes: true,
                       attributeFilter: ["data-status"] });
"""


def start(server: ServerProcess, workflow: str, inputs: dict[str, Any] | None = None) -> str:
    answer = httpx.post(
        f"{server.api}/workflows/{workflow}/runs",
        json={"inputs": inputs or {}},
        headers=server.headers(),
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["execution_id"]
    return run_id


def result(server: ServerProcess, run_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.api}/runs/{run_id}", headers=server.headers(), timeout=30)
    body: dict[str, Any] = answer.json()
    return body


def statuses_of(page: Page, key: str) -> list[str]:
    recorded: list[list[str]] = page.evaluate("window.__statuses")
    return [status for seen, status in recorded if seen == key]


def node(page: Page, key: str) -> Any:
    return page.locator(f'[data-key="{key}"]').first


def test_a_run_lights_up_fails_into_its_error_port_and_waits_for_approval(
    server: ServerProcess, page: Page, screenshots: Path
) -> None:
    page.add_init_script(STATUS_RECORDER)
    run_id = start(server, "review")
    page.goto(f"{server.url}/runs/{run_id}")
    expect(node(page, "approve")).to_have_attribute("data-status", "pending")

    expect(node(page, "approve")).to_have_attribute("data-status", "paused", timeout=30_000)
    # Each node went from pending to running to done, and they ran in the order of the edges.
    for key in ("each", "each.tick", "recover"):
        seen = statuses_of(page, key)
        assert seen[:3] == ["pending", "running", "completed"], (key, seen)
    assert statuses_of(page, "boom")[0] == "pending"
    expect(node(page, "boom")).to_have_attribute("data-status", "failed")
    expect(node(page, "done")).to_have_attribute("data-status", "pending")
    recorded: list[list[str]] = page.evaluate("window.__statuses")
    first_running = [key for key, status in recorded if status == "running"]
    order = [key for key in ("gate", "each", "recover", "approve") if key in first_running]
    assert order == sorted(order, key=first_running.index), first_running
    assert page.get_by_label("iteration of each to show").input_value() == "latest"
    expect(page.get_by_label("iteration of each to show").locator("option")).to_have_count(4)
    page.screenshot(path=screenshots / "run-waiting-for-approval.png")

    # The failed node's details: its error, that it was routed to its error port.
    node(page, "boom").click()
    panel = page.get_by_role("complementary", name="Node boom")
    expect(panel).to_contain_text("broken on purpose")
    expect(panel).to_contain_text("routed to its error port")
    page.screenshot(path=screenshots / "run-failed-node.png")

    # The approval form checks the answer in the browser before anything is sent.
    expect(page.get_by_role("region", name="Waiting for you")).to_contain_text("Ship this release?")
    form = page.get_by_role("form", name="Answer to approve")
    form.get_by_label("approved").check()
    form.get_by_label("note").fill("x")
    form.get_by_role("button", name="Submit and resume").click()
    expect(form.get_by_role("alert")).to_contain_text("2")
    page.screenshot(path=screenshots / "approval-invalid.png")
    assert result(server, run_id)["status"] == "paused"

    form.get_by_label("note").fill("looks good")
    form.get_by_role("button", name="Submit and resume").click()
    expect(node(page, "done")).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(page.locator("h1 .badge")).to_have_text("completed")
    assert result(server, run_id)["outputs"]["note"] == "looks good"
    page.screenshot(path=screenshots / "run-completed.png")

    page.get_by_role("tab", name="Timeline").click()
    expect(page.get_by_role("table", name="Timeline of node attempts")).to_contain_text(
        "each[2].tick"
    )
    page.screenshot(path=screenshots / "run-timeline.png")
    page.get_by_role("tab", name="Events").click()
    expect(page.locator("tr[data-seq]")).to_have_count(len(events_of(server, run_id)))
    page.screenshot(path=screenshots / "run-events.png")
    page.get_by_role("tab", name="Inputs & outputs").click()
    expect(page.get_by_label("outputs", exact=True)).to_contain_text("looks good")

    page.get_by_role("link", name="Runs", exact=True).first.click()
    row = page.locator(f'tr[data-run="{run_id}"]')
    expect(row).to_contain_text("completed")
    expect(row).to_contain_text("review")
    page.screenshot(path=screenshots / "runs-list.png")


def events_of(server: ServerProcess, run_id: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.api}/runs/{run_id}/events", headers=server.headers(), timeout=30)
    found: list[dict[str, Any]] = answer.json()["events"]
    return found


def test_a_restarted_server_is_caught_up_with_nothing_missing(
    tmp_path: Path, workflows: Path, page: Page, screenshots: Path, console_built: Path
) -> None:
    home = tmp_path / "home"
    first = start_server(home, "--workflows", str(workflows))
    port = str(urlparse(first.url).port)
    try:
        run_id = start(first, "ticks")
        page.goto(f"{first.url}/runs/{run_id}")
        page.get_by_role("tab", name=re.compile("Events")).click()
        expect(page.locator('tr[data-seq="8"]')).to_be_visible(timeout=30_000)
    finally:
        assert first.stop(signal.SIGTERM) == 0
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "reconnecting", timeout=10_000
    )
    # The same address, the same store: the new server takes the run over and the page
    # reconnects with Last-Event-ID.
    with running_server(home, "--workflows", str(workflows), "--port", port) as second:
        assert second.url == first.url
        expect(page.locator("h1 .badge")).to_have_text("completed", timeout=60_000)
        stored = [event["seq"] for event in events_of(second, run_id)]
        shown = [
            int(seq)
            for seq in page.locator("tr[data-seq]").evaluate_all(
                "rows => rows.map(row => row.dataset.seq)"
            )
        ]
        assert shown == stored == list(range(1, len(stored) + 1))
        page.get_by_role("tab", name="Graph").click()
        expect(node(page, "after")).to_have_attribute("data-status", "completed")
        options = page.get_by_label("iteration of each to show").locator("option")
        expect(options).to_have_count(17)
        page.screenshot(path=screenshots / "run-after-restart.png")


def test_a_server_with_tokens_asks_for_one_and_keeps_it_for_the_tab(
    tmp_path: Path, workflows: Path, page: Page, screenshots: Path, console_built: Path
) -> None:
    token = "console-test-token-0001"
    with running_server(tmp_path / "home", "--workflows", str(workflows), token=token) as server:
        run_id = start(server, "ticks")
        page.goto(f"{server.url}/runs")
        dialog = page.get_by_role("dialog", name="API token")
        expect(dialog).to_be_visible()
        page.screenshot(path=screenshots / "token-prompt.png")
        dialog.get_by_label("Token").fill(token)
        dialog.get_by_role("button", name="Use token").click()
        expect(page.locator(f'tr[data-run="{run_id}"]')).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('polyhost.token')") == token
        # The token is not in the page's address, nor anywhere but this tab's session storage.
        assert token not in page.url
        assert page.evaluate("localStorage.length") == 0
        page.reload()
        expect(page.locator(f'tr[data-run="{run_id}"]')).to_be_visible()
        expect(page.get_by_role("dialog", name="API token")).to_have_count(0)


def test_workflows_run_form_and_node_catalog(
    server: ServerProcess, page: Page, screenshots: Path
) -> None:
    page.goto(f"{server.url}/workflows")
    expect(page.get_by_role("link", name="Review")).to_be_visible()
    page.screenshot(path=screenshots / "workflows.png")
    page.get_by_role("link", name="Review").click()
    form = page.get_by_role("form", name="Run inputs")
    expect(form.get_by_label("rounds")).to_have_value("3")
    form.get_by_label("rounds").fill("0")
    form.get_by_role("button", name="Run").click()
    expect(form.get_by_role("alert")).to_be_visible()
    page.screenshot(path=screenshots / "workflow-run-form.png")
    form.get_by_label("rounds").fill("1")
    form.get_by_role("button", name="Run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]+$"))
    expect(node(page, "approve")).to_have_attribute("data-status", "paused", timeout=30_000)
    run_id = page.url.rsplit("/", 1)[1]
    assert len(result(server, run_id)["nodes"]["each"]["output"]["results"]) == 1

    # Cancel the waiting run, then start it again with edited inputs.
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("h1 .badge")).to_have_text("cancelled", timeout=30_000)
    page.get_by_role("button", name="Re-run with edited inputs…").click()
    edit = page.get_by_role("form", name="Inputs of the new run")
    edit.get_by_label("rounds").fill("2")
    edit.get_by_role("button", name="Start new run").click()
    expect(page).not_to_have_url(re.compile(run_id))
    expect(node(page, "approve")).to_have_attribute("data-status", "paused", timeout=30_000)
    rerun_id = page.url.rsplit("/", 1)[1]
    assert len(result(server, rerun_id)["nodes"]["each"]["output"]["results"]) == 2

    page.get_by_role("link", name="Node types").click()
    expect(page.get_by_role("heading", name=re.compile("^python"))).to_be_visible()
    expect(page.get_by_role("cell", name="core.approval", exact=True)).to_be_visible()
    page.screenshot(path=screenshots / "node-types.png")
