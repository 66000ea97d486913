"""How `polyhost serve` serves the built console: caching headers, gzip, the single-page
app's fallback, and the 404s that must stay 404s; and `GET /runs/{id}/record`, the run's
document that the console draws."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import anyio
import httpx
from fastapi import FastAPI

from polyhost.server._console import install_console
from tests.helpers.server import ServerProcess


def _asset(server: ServerProcess) -> str:
    index = httpx.get(f"{server.url}/").text
    match = re.search(r'src="(/assets/[^"]+\.js)"', index)
    assert match, index
    return match.group(1)


def test_index_is_revalidated_and_locked_down(server: ServerProcess) -> None:
    answer = httpx.get(f"{server.url}/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    again = httpx.get(f"{server.url}/", headers={"if-none-match": answer.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_hashed_assets_are_cached_for_a_year_and_gzipped(server: ServerProcess) -> None:
    asset = _asset(server)
    answer = httpx.get(f"{server.url}{asset}", headers={"accept-encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.headers["content-type"].startswith("text/javascript")
    plain = httpx.get(f"{server.url}{asset}", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == answer.content  # httpx decoded the gzipped one
    head = httpx.head(f"{server.url}{asset}", headers={"accept-encoding": "identity"})
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(plain.content)


def test_page_paths_get_the_app_and_unknown_files_do_not(server: ServerProcess) -> None:
    for path in ("/runs", "/runs/0123abcd", "/workflows/review", "/nodes"):
        answer = httpx.get(f"{server.url}{path}")
        assert answer.status_code == 200, path
        assert '<div id="root">' in answer.text
        assert answer.headers["cache-control"] == "no-cache"
    for path in ("/assets/gone-1234.js", "/favicon.png", "/%2e%2e/pyproject.toml", "/.env"):
        answer = httpx.get(f"{server.url}{path}")
        assert answer.status_code == 404, path
        assert '<div id="root">' not in answer.text


def test_api_paths_keep_their_problems(server: ServerProcess) -> None:
    unknown = httpx.get(f"{server.api}/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["code"] == "not_found"
    wrong_method = httpx.get(f"{server.api}/runs/abc/cancel")
    assert wrong_method.status_code == 405
    assert httpx.get(f"{server.url}/openapi.json").json()["info"]["title"] == "polyhost"


def test_a_missing_build_says_how_to_make_it(tmp_path: Path) -> None:
    app = FastAPI()
    install_console(app, tmp_path / "console_dist")

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            return await client.get("/runs")

    # In a thread of its own: the browser tests' Playwright keeps an event loop on this one.
    answers: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: answers.append(anyio.run(fetch)))
    worker.start()
    worker.join(timeout=30)
    answer = answers[0]
    assert answer.status_code == 404
    assert "make console" in answer.text


def test_record_holds_the_document_inputs_and_trigger(server: ServerProcess) -> None:
    with server.client() as client:
        started = client.post("/workflows/ticks/runs", json={"inputs": {}})
        assert started.status_code == 202, started.text
        run_id = started.json()["execution_id"]
        record = client.get(f"/runs/{run_id[:12]}/record")
        missing = client.get("/runs/ffffffffffffffff/record")
    assert record.status_code == 200, record.text
    body = record.json()
    assert body["execution_id"] == run_id
    assert body["workflow_id"] == "ticks"
    assert body["workflow_version"] == 1
    assert body["trigger"] == "api"
    assert body["inputs"] == {}
    assert [node["id"] for node in body["document"]["nodes"]] == ["each", "after"]
    assert missing.status_code == 404
    assert missing.json()["code"] == "run_not_found"
