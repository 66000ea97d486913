"""The core node types: their schemas, and their handlers called directly."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest

from polyhost._errors import NodeError, NodeOutputError, NodeParameterError, NodeTimeoutError
from polyhost.nodes import builtin_node_types, core
from polyhost.nodes._http import MAX_BODY_BYTES, http
from polyhost.runtimes._context import NodeContext

LogLines = list[tuple[str, str, dict[str, Any]]]


def make_ctx(node_type: str = "core.test", logs: LogLines | None = None) -> NodeContext:
    sink = (
        None
        if logs is None
        else (lambda level, message, fields: logs.append((level, message, fields)))
    )
    return NodeContext(
        run_id="run1",
        workflow_id="wf",
        node_id="step",
        node_type=node_type,
        attempt=1,
        idempotency_key="run1:step",
        _log_sink=sink,
    )


TYPES = {node_type.type: node_type for node_type in builtin_node_types()}


def validate(type_name: str, params: dict[str, Any]) -> None:
    schema = TYPES[type_name].input_schema
    assert schema is not None
    jsonschema.Draft202012Validator(schema).validate(params)


# schemas -------------------------------------------------------------------------------------


def test_builtin_types_are_python_and_strict() -> None:
    assert set(TYPES) == {
        "core.transform",
        "core.condition",
        "core.switch",
        "core.http",
        "core.wait",
        "core.log",
        "core.fail",
        "core.approval",
        "core.loop",
        "core.parallel",
        "llm.chat",
    }
    for node_type in TYPES.values():
        assert node_type.runtime == "python"
        assert node_type.description
        assert node_type.input_schema is not None
        assert node_type.input_schema["additionalProperties"] is False
        jsonschema.Draft202012Validator.check_schema(node_type.input_schema)
        assert node_type.output_schema is not None
        jsonschema.Draft202012Validator.check_schema(node_type.output_schema)


def test_handlers_resolve() -> None:
    import importlib

    for node_type in TYPES.values():
        if node_type.control is not None:
            continue  # loops and parallels are run by the engine itself
        assert node_type.handler is not None
        module, _, name = node_type.handler.partition(":")
        assert callable(getattr(importlib.import_module(module), name))


@pytest.mark.parametrize(
    ("type_name", "params"),
    [
        ("core.transform", {}),
        ("core.transform", {"value": 1, "extra": 2}),
        ("core.switch", {"value": "a"}),
        ("core.switch", {"value": "a", "cases": ["error"]}),
        ("core.http", {"url": "http://x", "json": {}, "body": "x"}),
        ("core.http", {"url": "http://x", "method": "FETCH"}),
        ("core.http", {}),
        ("core.wait", {"duration": "1s", "until": "2030-01-01T00:00:00Z"}),
        ("core.wait", {"duration": "soon"}),
        ("core.log", {"message": "hi", "level": "loud"}),
        ("core.fail", {"code": ""}),
        ("core.fail", {"code": "bad\ncode"}),
        ("core.fail", {"code": "x" * 129}),
    ],
)
def test_schemas_reject(type_name: str, params: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate(type_name, params)


@pytest.mark.parametrize(
    ("type_name", "params"),
    [
        ("core.transform", {"value": None}),
        ("core.condition", {"if": "a > 1"}),
        ("core.switch", {"value": 3, "cases": ["1", "3"]}),
        ("core.http", {"url": "http://x", "headers": {"A": "b"}, "allow_status": [404]}),
        ("core.wait", {"duration": "250ms"}),
        ("core.wait", {"until": "2030-01-01T00:00:00Z"}),
        ("core.log", {"message": {"any": "value"}, "level": "debug"}),
        ("core.fail", {}),
        ("core.fail", {"code": "E_FIRE"}),
        ("core.fail", {"code": "Not Snake"}),
    ],
)
def test_schemas_accept(type_name: str, params: dict[str, Any]) -> None:
    validate(type_name, params)


# transform, condition, switch, log, fail ------------------------------------------------------


def test_transform() -> None:
    assert core.transform({"value": {"a": [1]}}, make_ctx()) == {"value": {"a": [1]}}


def test_condition() -> None:
    assert core.condition({"if": True}, make_ctx()) == {"result": True}
    assert core.condition({"if": False}, make_ctx()) == {"result": False}
    with pytest.raises(NodeError, match="`if` must evaluate to a bool, got a number") as caught:
        core.condition({"if": 1}, make_ctx())
    assert (caught.value.code, caught.value.retryable) == ("invalid_condition", False)
    assert caught.value.field == "with.if"


@pytest.mark.parametrize(
    ("value", "case"),
    [("b", "b"), (2, "2"), (True, "true"), (None, "null"), (2.5, "2.5"), ("z", "default")],
)
def test_switch(value: Any, case: str) -> None:
    cases = ["a", "b", "2", "true", "null", "2.5"]
    assert core.switch({"value": value, "cases": cases}, make_ctx()) == {
        "value": value,
        "case": case,
    }


def test_log() -> None:
    logs: LogLines = []
    assert core.log({"message": "hello", "level": "warning"}, make_ctx(logs=logs)) == {
        "message": "hello"
    }
    assert core.log({"message": {"n": 1}}, make_ctx(logs=logs)) == {"message": '{"n":1}'}
    assert logs == [("warning", "hello", {}), ("info", '{"n":1}', {})]


def test_fail() -> None:
    with pytest.raises(NodeError, match=r"failed by core\.fail") as caught:
        core.fail({}, make_ctx())
    assert (caught.value.code, caught.value.retryable) == ("fail", False)
    with pytest.raises(NodeError, match="quota gone") as caught:
        core.fail({"message": "quota gone", "code": "quota"}, make_ctx())
    assert caught.value.code == "quota"


@pytest.mark.parametrize("code", ["E_FIRE", "quota.exceeded", "débit refusé"])
def test_fail_takes_any_printable_code(code: str) -> None:
    with pytest.raises(NodeError) as caught:
        core.fail({"message": "no", "code": code}, make_ctx())
    assert (caught.value.code, caught.value.message) == (code, "no")


def test_fail_replaces_a_code_that_breaks_the_rule_and_shows_it() -> None:
    # Reached only when the schema was not checked (an expression's value at run time).
    with pytest.raises(NodeError) as caught:
        core.fail({"message": "no", "code": "bad\x00code"}, make_ctx())
    assert caught.value.code == "fail"
    assert "'bad\\x00code'" in caught.value.message


# wait ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_wait_duration() -> None:
    started = time.monotonic()
    assert await core.wait({"duration": "50ms"}, make_ctx()) == {"waited": 0.05}
    assert time.monotonic() - started >= 0.04


@pytest.mark.anyio
async def test_wait_until() -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert await core.wait({"until": past}, make_ctx()) == {"waited": 0.0}
    soon = (datetime.now(UTC) + timedelta(milliseconds=100)).replace(tzinfo=None).isoformat()
    waited = (await core.wait({"until": soon}, make_ctx()))["waited"]
    assert 0 < waited <= 0.1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "params",
    [{}, {"duration": 1, "until": "2030-01-01T00:00:00Z"}, {"duration": "soon"}, {"until": "x"}],
)
async def test_wait_rejects(params: dict[str, Any]) -> None:
    with pytest.raises(NodeParameterError):
        await core.wait(params, make_ctx())


# http against a real server -----------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", "test")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        try:
            if path == "/json":
                self._send(200, b'{"hello": "world"}', "application/json; charset=utf-8")
            elif path == "/text":
                self._send(200, "héllo".encode(), "text/plain; charset=utf-8")
            elif path.startswith("/status/"):
                self._send(int(path.rsplit("/", 1)[1]), b"nope", "text/plain")
            elif path == "/slow":
                self.server.stopping.wait(2)
                self._send(200, b"{}")
            elif path == "/big":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()  # no Content-Length: the client must count
                chunk = b"x" * (1024 * 1024)
                for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
                    self.wfile.write(chunk)
            else:
                self._send(404, b"{}")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first, which some tests want

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        echo = {
            "body": body.decode(),
            "content_type": self.headers.get("Content-Type"),
            "token": self.headers.get("X-Token"),
            "query": parse_qs(urlsplit(self.path).query),
        }
        self._send(201, json.dumps(echo).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stopping: threading.Event


@pytest.fixture
def base_url() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.stopping = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.anyio
async def test_http_get_json(base_url: str) -> None:
    logs: LogLines = []
    output = await http({"url": f"{base_url}/json"}, make_ctx("core.http", logs))
    assert output["status"] == 200
    assert output["json"] == {"hello": "world"}
    assert output["text"] == '{"hello": "world"}'
    assert output["headers"]["x-served-by"] == "test"
    assert all(name == name.lower() for name in output["headers"])
    assert logs[0][1] == f"GET {base_url}/json -> 200"


@pytest.mark.anyio
async def test_http_text_is_not_json(base_url: str) -> None:
    output = await http({"url": f"{base_url}/text"}, make_ctx())
    assert (output["json"], output["text"]) == (None, "héllo")


@pytest.mark.anyio
async def test_http_post_json_echo(base_url: str) -> None:
    logs: LogLines = []
    output = await http(
        {
            "method": "post",
            "url": f"{base_url}/echo",
            "json": {"n": [1, 2]},
            "headers": {"X-Token": "secret-value"},
            "params": {"q": "a", "many": [1, 2]},
        },
        make_ctx("core.http", logs),
    )
    assert output["status"] == 201
    echo = output["json"]
    assert json.loads(echo["body"]) == {"n": [1, 2]}
    assert echo["content_type"] == "application/json"
    assert echo["token"] == "secret-value"
    assert echo["query"] == {"q": ["a"], "many": ["1", "2"]}
    assert "secret-value" not in repr(logs)


@pytest.mark.anyio
async def test_http_post_body(base_url: str) -> None:
    output = await http({"method": "POST", "url": f"{base_url}/echo", "body": "raw"}, make_ctx())
    assert output["json"]["body"] == "raw"


@pytest.mark.anyio
async def test_http_json_and_body_together(base_url: str) -> None:
    with pytest.raises(NodeParameterError, match="not both"):
        await http({"url": f"{base_url}/echo", "json": {}, "body": "x"}, make_ctx())


@pytest.mark.anyio
async def test_http_404_fails_without_showing_the_query(base_url: str) -> None:
    with pytest.raises(NodeError) as caught:
        await http({"url": f"{base_url}/status/404?token=secret"}, make_ctx())
    error = caught.value
    assert (error.code, error.retryable, error.node) == ("http_status", False, "step")
    assert error.message == f"HTTP 404 Not Found from GET {base_url}/status/404"


@pytest.mark.anyio
async def test_http_5xx_is_retryable(base_url: str) -> None:
    with pytest.raises(NodeError) as caught:
        await http({"url": f"{base_url}/status/503"}, make_ctx())
    assert (caught.value.code, caught.value.retryable) == ("http_status", True)


@pytest.mark.anyio
async def test_http_allow_status(base_url: str) -> None:
    output = await http({"url": f"{base_url}/status/404", "allow_status": [404]}, make_ctx())
    assert (output["status"], output["text"]) == (404, "nope")


@pytest.mark.anyio
async def test_http_timeout(base_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(NodeTimeoutError, match=r"no response within 0\.2s"):
        await http({"url": f"{base_url}/slow", "timeout": "200ms"}, make_ctx())
    assert time.monotonic() - started < 1.5


@pytest.mark.anyio
async def test_http_oversized_body(base_url: str) -> None:
    with pytest.raises(NodeOutputError, match="over the limit"):
        await http({"url": f"{base_url}/big"}, make_ctx())


@pytest.mark.anyio
async def test_http_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(NodeError) as caught:
        await http({"url": f"http://127.0.0.1:{port}/"}, make_ctx())
    assert (caught.value.code, caught.value.retryable) == ("http_error", True)


@pytest.mark.anyio
async def test_http_bad_url() -> None:
    with pytest.raises(NodeParameterError) as caught:
        await http({"url": "ftp://example.invalid/file"}, make_ctx())
    assert caught.value.field == "with.url"
