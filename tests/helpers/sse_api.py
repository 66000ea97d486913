"""A scripted stand-in for a polyhost server's event stream, on a real loopback socket.

It serves one run's events at ``/api/v1/runs/{id}/stream`` the way the server does (``id:``,
``event:``, ``data:``, resuming after ``Last-Event-ID``), and misbehaves on cue the way
networks do: it cuts a connection after a given number of events (mid-chunk, without the end
of the chunked body, or, with ``chunked=False``, by just closing a body that has no length),
answers 503 to the first attempts, or replays events the client already has. Every attempt
is recorded, with the headers that matter, so tests can check what the client sent.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

RUN_ID = "run-0123456789"


def run_events(count: int, *, end: str = "run.completed") -> list[dict[str, Any]]:
    """A run's events 1..count: started, node events, and ``end`` last."""
    events = [{"type": "run.started", "node": None, "data": {}}]
    for index in range(count - 2):
        kind = "node.started" if index % 2 == 0 else "node.completed"
        events.append({"type": kind, "node": f"n{index // 2}", "data": {"i": index}})
    events.append({"type": end, "node": None, "data": {}})
    return [
        {"run_id": RUN_ID, "seq": seq, "ts": 1000.0 + seq, **event}
        for seq, event in enumerate(events[:count], start=1)
    ]


@dataclass
class Script:
    """How the stand-in behaves; the n-th attempt to stream uses the n-th entry of each list
    (and the last entry after that)."""

    events: list[dict[str, Any]]
    cut_after: list[int | None] = field(default_factory=lambda: [None])  # None: send all
    refuse: list[int | None] = field(default_factory=lambda: [None])  # an error status
    overlap: int = 0  # resend this many events before the one asked for
    chunked: bool = True
    status: str = "completed"  # of the run, at GET /runs/{id}
    heartbeat: bool = True  # a comment line first, as the server's heartbeat


@dataclass
class Attempt:
    last_event_id: str | None
    after: str | None
    authorization: str | None


class FakeApi:
    """The stand-in's address and what it saw."""

    def __init__(self, script: Script, port: int) -> None:
        self.script = script
        self.url = f"http://127.0.0.1:{port}"
        self.attempts: list[Attempt] = []
        self.status_reads = 0


def _pick(values: list[Any], index: int) -> Any:
    return values[min(index, len(values) - 1)]


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            prefix = f"/api/v1/runs/{RUN_ID}"
            if path == prefix + "/stream":
                self._stream(parse_qs(parts.query))
            elif path == prefix:
                api.status_reads += 1
                self._json(
                    200,
                    {
                        "execution_id": RUN_ID,
                        "workflow_id": "w",
                        "status": api.script.status,
                        "outputs": None,
                        "error": None,
                        "duration_ms": 1.0,
                        "nodes": {},
                        "pause": None,
                    },
                )
            else:
                self._json(
                    404,
                    {
                        "type": "about:blank",
                        "title": "Not Found",
                        "status": 404,
                        "detail": f"no run {path.rsplit('/', 2)[-2]!r}",
                        "code": "run_not_found",
                    },
                    problem=True,
                )

        def _json(self, status: int, body: Any, *, problem: bool = False) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            kind = "application/problem+json" if problem else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, query: dict[str, list[str]]) -> None:
            index = len(api.attempts)
            last = self.headers.get("Last-Event-ID")
            api.attempts.append(
                Attempt(last, (query.get("after") or [None])[0], self.headers.get("Authorization"))
            )
            script = api.script
            refusal = _pick(script.refuse, index)
            if refusal is not None:
                self._json(
                    refusal,
                    {
                        "type": "about:blank",
                        "title": "Unavailable",
                        "status": refusal,
                        "detail": "busy",
                        "code": "unavailable",
                    },
                    problem=True,
                )
                return
            after = int(last) if last is not None else int((query.get("after") or ["0"])[0])
            start = max(0, after - script.overlap)
            due = [event for event in script.events if event["seq"] > start]
            cut = _pick(script.cut_after, index)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            if script.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            # Each stream's connection ends with it (said, so that no client reuses it).
            self.send_header("Connection", "close")
            self.end_headers()
            if script.heartbeat:
                self._send(b": heartbeat\n\n")
            for sent, event in enumerate(due):
                if cut is not None and sent >= cut:
                    self._cut()
                    return
                message = (
                    f"id: {event['seq']}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"
                )
                self._send(message.encode())
            if cut is not None and len(due) >= cut:
                self._cut()
                return
            if script.chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True

        def _send(self, data: bytes) -> None:
            if api.script.chunked:
                data = b"%x\r\n%s\r\n" % (len(data), data)
            self.wfile.write(data)
            self.wfile.flush()

        def _cut(self) -> None:
            # Gone mid-body: no end of the chunked body, just a closed socket.
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

    return Handler


@contextmanager
def fake_api(script: Script) -> Iterator[FakeApi]:
    """Serve ``script`` on a free loopback port while inside."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(None))  # type: ignore[arg-type]
    api = FakeApi(script, server.server_address[1])
    server.RequestHandlerClass = _handler(api)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
