"""A scripted OpenAI-compatible chat-completions server on a real loopback socket.

Tests queue the replies it gives to ``POST /v1/chat/completions``, one per request: a streamed
reply (``Stream``), a JSON body (``Completion``), an HTTP error in OpenAI's shape (``Error``), and the
ways a stream goes wrong: cut after some chunks (``CutStream``), ended properly after some
chunks but without the reply's end (``EndedStream``), a chunk that is not JSON
(``MalformedChunk``), or silence after some chunks until the client gives up
(``HangingStream``). With the queue empty it answers 500 saying so. Other paths answer as OpenAI
does: ``GET /v1/models`` lists one model, anything else is a 404 (so a client probing for, say,
a tokenizer endpoint takes no scripted reply). Every request is recorded (method, path, headers,
JSON body), and so is every client that closed its connection before a stream ended.

The server runs its own event loop in a thread, so sync tests and anyio tests use it alike.
Each response closes its connection (``Connection: close``): a reply's faults never leak into
the next request, and a client closing its end mid-stream is seen as the end of its input.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import anyio

FAKE_MODEL = "fake-model"
_CREATED = 1_700_000_000


# The replies a test can queue.


@dataclass(frozen=True)
class Stream:
    """A streamed chat completion, chunk by chunk as OpenAI sends it: the role (a chunk of its
    own, with empty content), each text delta, each tool-call piece, the finish reason, then
    the usage chunk when given, and ``data: [DONE]``. ``delay`` is waited before each chunk.

    The faulty streams below count chunks in that order, the role's included: ``after=2``
    sends the role and the first text delta."""

    content: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # see tool_call_delta()
    finish_reason: str = "stop"
    usage: dict[str, int] | None = None  # see usage()
    delay: float = 0.0


@dataclass(frozen=True)
class Completion:
    """A non-streamed reply: this JSON body (see chat_completion()) with this status."""

    body: dict[str, Any]
    status: int = 200


@dataclass(frozen=True)
class Error:
    """An HTTP error with OpenAI's body ``{"error": {"message", "type", "param", "code"}}``."""

    status: int
    message: str
    type: str = "server_error"
    code: str | None = None
    retry_after: str | None = None  # the Retry-After header, when given


@dataclass(frozen=True)
class CutStream:
    """The first ``after`` chunks of ``stream``, then the connection closes mid-body, as when a
    server fails after it has started answering."""

    stream: Stream
    after: int


@dataclass(frozen=True)
class EndedStream:
    """The first ``after`` chunks of ``stream``, then a properly ended body without a finish
    reason or ``[DONE]``: what llama.cpp's server sends when it fails after accepting a streamed
    request (a prompt longer than the model's context, with ``after=0``)."""

    stream: Stream
    after: int


@dataclass(frozen=True)
class MalformedChunk:
    """The first ``after`` chunks of ``stream``, then ``data: <data>`` that is not JSON, then a
    properly ended body."""

    stream: Stream
    after: int
    data: str = "{not json"


@dataclass(frozen=True)
class HangingStream:
    """The first ``after`` chunks of ``stream``, then nothing until the client closes the
    connection (counted in ``disconnects``)."""

    stream: Stream
    after: int


Reply = Stream | Completion | Error | CutStream | EndedStream | MalformedChunk | HangingStream


def tool_call_delta(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str | None = None
) -> dict[str, Any]:
    """One piece of a streamed tool call in OpenAI's delta shape: the first piece of a call
    carries its id and function name, later pieces carry slices of the arguments."""
    piece: dict[str, Any] = {"index": index}
    function: dict[str, str] = {}
    if id is not None:
        piece["id"] = id
        piece["type"] = "function"
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    piece["function"] = function
    return piece


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    content: str | None,
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
    usage: dict[str, int] | None = None,
    model: str = FAKE_MODEL,
) -> dict[str, Any]:
    """A ``chat.completion`` body; ``tool_calls`` as in a message:
    ``{"id", "type": "function", "function": {"name", "arguments"}}``."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": _CREATED,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def stream_chunks(stream: Stream, model: str = FAKE_MODEL) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed reply, in order (no ``[DONE]``)."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": model,
            "choices": [choice],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks.extend(chunk({"content": text}) for text in stream.content)
    chunks.extend(chunk({"tool_calls": [piece]}) for piece in stream.tool_calls)
    chunks.append(chunk({}, stream.finish_reason))
    if stream.usage is not None:
        # OpenAI's usage chunk (stream_options.include_usage) has no choices.
        chunks.append({**chunk({}), "choices": [], "usage": stream.usage})
    return chunks


# What the server saw.


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the parsed JSON body; None when there was none or it was not JSON
    raw: bytes


class _ClientGone(Exception):
    """The client closed its connection before the reply ended."""


class FakeOpenAI:
    """The server: ``script()`` queues replies; ``requests`` and ``disconnects`` tell what
    happened. Use it as a context manager (or ``start()``/``close()``)."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        """Queue replies; each request takes the next one."""
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        """How many queued replies no request has taken yet."""
        with self._lock:
            return len(self._replies)

    def wait_disconnects(self, count: int, timeout: float = 10) -> None:
        """Block until at least ``count`` clients have closed a stream early."""
        deadline = time.monotonic() + timeout
        while self.disconnects < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.disconnects} disconnects seen, expected {count}")
            time.sleep(0.01)

    async def await_disconnects(self, count: int, timeout: float = 10) -> None:
        """As wait_disconnects(), without blocking the caller's event loop."""
        with anyio.fail_after(timeout):
            while self.disconnects < count:
                await anyio.sleep(0.01)

    # Life cycle.

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self._run, name="fake-openai", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._failure is not None or not self.port:
            raise RuntimeError("the fake OpenAI server did not start") from self._failure
        return self

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:
            self._failure = error
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        handlers: set[asyncio.Task[None]] = set()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                await self._connection(reader, writer)
            finally:
                handlers.discard(task)

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            # Hanging streams wait for their client: they end with the server.
            for task in list(handlers):
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

    # One connection, one request, one reply.

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            model = request.body.get("model") if isinstance(request.body, dict) else None
            await self._answer(self._reply_to(request), reader, writer, model or FAKE_MODEL)
        except (_ClientGone, ConnectionError):
            self.disconnects += 1
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def _reply_to(self, request: RecordedRequest) -> Reply:
        where = f"{request.method} {request.path}"
        if where == "POST /v1/chat/completions":
            with self._lock:
                if self._replies:
                    return self._replies.popleft()
            return Error(500, f"fake OpenAI server: no scripted reply left for {where}")
        if where == "GET /v1/models":
            model = {"id": FAKE_MODEL, "object": "model", "created": _CREATED, "owned_by": "fake"}
            return Completion({"object": "list", "data": [model]})
        return Error(404, f"Invalid URL ({where})", type="invalid_request_error")

    async def _read_request(self, reader: asyncio.StreamReader) -> RecordedRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return None  # gone before it asked anything
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return RecordedRequest(method, path, headers, body, raw)

    async def _answer(
        self,
        reply: Reply,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        model: str,
    ) -> None:
        if isinstance(reply, Error):
            await self._error(writer, reply)
        elif isinstance(reply, Completion):
            await self._json(writer, reply.status, reply.body)
        elif isinstance(reply, Stream):
            await self._until_client_leaves(reader, self._stream(writer, reply, model, None))
        elif isinstance(reply, CutStream):
            await self._until_client_leaves(
                reader, self._stream(writer, reply.stream, model, reply.after, cut=True)
            )
        elif isinstance(reply, EndedStream):
            await self._until_client_leaves(
                reader, self._stream(writer, reply.stream, model, reply.after, ended=True)
            )
        elif isinstance(reply, MalformedChunk):
            await self._until_client_leaves(
                reader,
                self._stream(writer, reply.stream, model, reply.after, malformed=reply.data),
            )
        else:
            await self._until_client_leaves(
                reader, self._stream(writer, reply.stream, model, reply.after, hang=True)
            )

    async def _until_client_leaves(
        self, reader: asyncio.StreamReader, sending: Awaitable[None]
    ) -> None:
        """Send a stream while watching the client's side: a client that sends nothing more
        and then closes its end has gone before the stream ended."""
        sender = asyncio.ensure_future(sending)
        watcher = asyncio.ensure_future(reader.read())
        try:
            await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sender.done():
                sender.cancel()
            watcher.cancel()
            await asyncio.gather(sender, watcher, return_exceptions=True)
        if not sender.done() or sender.cancelled():
            raise _ClientGone
        sender.result()

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        stream: Stream,
        model: str,
        after: int | None,
        *,
        cut: bool = False,
        ended: bool = False,
        malformed: str | None = None,
        hang: bool = False,
    ) -> None:
        request_id = f"req_fake_{next(self._ids)}"
        writer.write(
            b"HTTP/1.1 200 OK\r\n"
            b"content-type: text/event-stream; charset=utf-8\r\n"
            b"transfer-encoding: chunked\r\n"
            b"cache-control: no-cache\r\n"
            b"connection: close\r\n"
            b"x-request-id: " + request_id.encode() + b"\r\n\r\n"
        )
        await writer.drain()
        chunks = stream_chunks(stream, model)
        for chunk in chunks if after is None else chunks[:after]:
            if stream.delay:
                await asyncio.sleep(stream.delay)
            await _send_event(writer, json.dumps(chunk))
        if cut:
            # No end of the chunked body: the connection just closes.
            return
        if hang:
            await asyncio.Event().wait()
        if malformed is not None:
            await _send_event(writer, malformed)
        elif not ended:
            await _send_event(writer, "[DONE]")
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _error(self, writer: asyncio.StreamWriter, error: Error) -> None:
        body = {
            "error": {
                "message": error.message,
                "type": error.type,
                "param": None,
                "code": error.code,
            }
        }
        extra = {"retry-after": error.retry_after} if error.retry_after is not None else {}
        await self._json(writer, error.status, body, extra)

    async def _json(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: Any,
        extra: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        headers = {
            "content-type": "application/json",
            "content-length": str(len(data)),
            "connection": "close",
            "x-request-id": f"req_fake_{next(self._ids)}",
            **(extra or {}),
        }
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(head.encode("latin-1") + b"\r\n" + data)
        await writer.drain()


async def _send_event(writer: asyncio.StreamWriter, data: str) -> None:
    # One SSE event, `data: ...` and a blank line, in one HTTP chunk.
    event = f"data: {data}\n\n".encode()
    writer.write(b"%x\r\n%s\r\n" % (len(event), event))
    await writer.drain()


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
