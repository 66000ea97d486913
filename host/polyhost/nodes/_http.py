"""The ``core.http`` handler: one HTTP request with httpx."""

from __future__ import annotations

import functools
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from .._errors import NodeError, NodeOutputError, NodeParameterError, NodeTimeoutError
from ..runtimes._context import NodeContext
from ..workflow._units import parse_duration

__all__ = ["MAX_BODY_BYTES", "http"]

MAX_BODY_BYTES = 16 * 1024 * 1024


async def http(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """``core.http``: send the request and return ``{status, headers, json, text}``.

    Statuses outside 2xx and ``allow_status`` fail the node (``http_status``; retried only for
    5xx and 429). Messages show the URL without its query string and credentials, which often
    carry keys, and header values are never logged.
    """
    node = ctx.node_id
    method = str(params.get("method", "GET")).upper()
    url = params.get("url")
    if not isinstance(url, str) or not url:
        raise NodeParameterError("`url` is required", node=node, field="with.url")
    shown = f"{method} {_redacted(url)}"
    if "json" in params and "body" in params:
        raise NodeParameterError("give `json` or `body`, not both", node=node, field="with")
    try:
        timeout = parse_duration(params.get("timeout", "30s"))
    except (TypeError, ValueError) as exc:
        raise NodeParameterError(str(exc), node=node, field="with.timeout") from None
    request: dict[str, Any] = {
        "headers": {name: _text(value) for name, value in params.get("headers", {}).items()},
        "params": params.get("params"),
    }
    if "json" in params:
        request["json"] = params["json"]
    elif "body" in params:
        request["content"] = str(params["body"]).encode()
    started = anyio.current_time()
    try:
        async with (
            httpx.AsyncClient(
                verify=_ssl_context(),
                timeout=timeout,
                follow_redirects=bool(params.get("follow_redirects", True)),
            ) as client,
            client.stream(method, url, **request) as response,
        ):
            content = await _read(response, node, shown)
    except httpx.TimeoutException as exc:
        raise NodeTimeoutError(
            f"{shown}: no response within {timeout:g}s", node=node, field="with.timeout"
        ) from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise NodeParameterError(f"{shown}: {exc}", node=node, field="with.url") from exc
    except httpx.TooManyRedirects as exc:
        raise NodeError(
            f"{shown}: too many redirects", node=node, code="http_error", retryable=False
        ) from exc
    except httpx.HTTPError as exc:
        raise NodeError(
            f"{shown}: {type(exc).__name__}: {exc}", node=node, code="http_error"
        ) from exc
    status = response.status_code
    ctx.log(
        f"{shown} -> {status}",
        "debug",
        status=status,
        bytes=len(content),
        seconds=round(anyio.current_time() - started, 3),
    )
    if not 200 <= status < 300 and status not in params.get("allow_status", ()):
        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
        raise NodeError(
            f"HTTP {status}{reason} from {shown}",
            node=node,
            code="http_status",
            retryable=status >= 500 or status == 429,
        )
    text = content.decode(response.encoding or "utf-8", errors="replace")
    return {
        "status": status,
        "headers": dict(response.headers.items()),  # lowercase names; repeats joined by ", "
        "json": _json_or_none(response, text),
        "text": text,
    }


async def _read(response: httpx.Response, node: str, shown: str) -> bytes:
    declared = response.headers.get("content-length", "")
    too_large = f"{shown}: the response body is over the limit of {MAX_BODY_BYTES} bytes"
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise NodeOutputError(too_large, node=node)
    chunks: list[bytes] = []
    size = 0
    # Counting decoded bytes as they arrive also stops a small compressed body that inflates.
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise NodeOutputError(too_large, node=node)
        chunks.append(chunk)
    return b"".join(chunks)


def _json_or_none(response: httpx.Response, text: str) -> Any:
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        return None
    try:
        return json.loads(text)
    except ValueError:  # a body that claims JSON but is not: the text still carries it
        return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _redacted(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid url)"
    if not parts.scheme:
        return url.partition("?")[0]
    host = parts.netloc.rpartition("@")[2]  # without user:password
    return f"{parts.scheme}://{host}{parts.path}"


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds; every request can share one context.
    return httpx.create_ssl_context()
