"""The web console in headless chromium against a real ``polyhost serve``. Prints one JSON
object.

- ``initial_load``: the bytes the browser receives (compressed, as sent) to show the runs list
  on a first visit with an empty cache, and to open the 2,000-node run directly (the graph view
  is loaded then): the app's files (budget 500 KiB) and, apart, the API's data.
- ``run_2000``: a finished run of a 2,000-node workflow (40 ranks of 50, each node fed by one of
  the rank before) opened in the run view: the layout's own time (the page's performance entry
  ``polyhost.layout``; budget 1 s), and the time from navigation until every node shows
  completed. ``live``: the same workflow opened while it runs, the events arriving live, with
  the count of the page's long tasks (over 50 ms) while it caught up.

Needs the console built (``make console``) and Debian's chromium (``make chromium``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

POLYHOST = Path(sys.executable).parent / "polyhost"
CHROMIUM = "/usr/bin/chromium"
BUDGET_BYTES = 500 * 1024
RANKS, WIDTH = 40, 50


def wide_flow(workflow_id: str, delay: str | None = None) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, str]] = []
    for rank in range(RANKS):
        for column in range(WIDTH):
            node_id = f"n{rank}_{column}"
            if delay and column == 0:
                nodes.append({"id": node_id, "type": "core.wait", "with": {"duration": delay}})
            else:
                nodes.append({"id": node_id, "type": "core.transform", "with": {"value": column}})
            if rank:
                edges.append({"from": f"n{rank - 1}_{(column * 7) % WIDTH}", "to": node_id})
    return {"version": 1, "id": workflow_id, "nodes": nodes, "edges": edges}


def serve(home: Path, workflows: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "POLYHOST_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("POLYHOST_API_TOKENS", None)
    proc = subprocess.Popen(
        [str(POLYHOST), "serve", "--port", "0", "--workflows", str(workflows)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    match = re.search(r"serving (http://\S+?:\d+)", proc.stdout.readline())
    assert match, "serve did not start"
    url = match.group(1)
    for _ in range(200):
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("serve never answered")


def received_bytes(page: Page, url: str, ready: str) -> dict[str, int]:
    """Bytes received as sent (compressed when they were): the app's files, and API data."""
    sizes = {"assets": 0, "api": 0}

    def count(request: Any) -> None:
        kind = "api" if "/api/" in request.url else "assets"
        response = request.response()
        length = response.headers.get("content-length") if response else None
        # The header is what the server sent; a stream has none, and its size is counted.
        sizes[kind] += int(length) if length else request.sizes()["responseBodySize"]

    page.on("requestfinished", count)
    page.goto(url)
    page.wait_for_selector(ready)
    page.wait_for_load_state("networkidle")
    return sizes


def all_completed(page: Page, timeout_ms: float) -> float:
    started = time.perf_counter()
    page.wait_for_function(
        "() => { const h = document.querySelector('h1 .badge');"
        " return h && h.textContent === 'completed'; }",
        timeout=timeout_ms,
    )
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        flows = root / "workflows"
        flows.mkdir()
        (flows / "wide.json").write_text(json.dumps(wide_flow("wide")))
        (flows / "wide_live.json").write_text(json.dumps(wide_flow("wide_live", "0.05s")))
        proc, url = serve(root / "home", flows)
        try:
            api = f"{url}/api/v1"
            done = httpx.post(f"{api}/workflows/wide/runs", json={"wait": 120}, timeout=180)
            run_id = done.json()["execution_id"]
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                first = received_bytes(page, f"{url}/runs", "tr[data-run]")
                context.close()
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                opening = time.perf_counter()
                run_view = received_bytes(page, f"{url}/runs/{run_id}", "[data-key]")
                loaded = all_completed(page, 120_000) + (time.perf_counter() - opening)
                layout_ms = page.evaluate(
                    "performance.getEntriesByName('polyhost.layout')[0].duration"
                )
                events = page.evaluate("document.querySelectorAll('[role=tab]')[2].textContent")
                context.close()

                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                page.add_init_script(
                    "window.__long = 0; new PerformanceObserver(l => { window.__long +="
                    " l.getEntries().length }).observe({type: 'longtask', buffered: true});"
                )
                live = httpx.post(f"{api}/workflows/wide_live/runs", json={}, timeout=30)
                live_id = live.json()["execution_id"]
                opening = time.perf_counter()
                page.goto(f"{url}/runs/{live_id}")
                page.wait_for_selector("[data-key]")
                all_completed(page, 180_000)
                live_total = time.perf_counter() - opening
                long_tasks = page.evaluate("window.__long")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(
        json.dumps(
            {
                "initial_load": {
                    "runs_list_bytes": first,
                    "run_view_bytes": run_view,
                    "budget_bytes": BUDGET_BYTES,
                    "within_budget": first["assets"] < BUDGET_BYTES,
                },
                "run_2000": {
                    "nodes": RANKS * WIDTH,
                    "layout_ms": round(layout_ms, 1),
                    "layout_budget_ms": 1000,
                    "open_until_all_completed_s": round(loaded, 2),
                    "events_tab": events,
                },
                "live_2000": {
                    "until_completed_s": round(live_total, 2),
                    "long_tasks": long_tasks,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
