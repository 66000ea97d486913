"""The ``openai`` clients of ``llm.chat`` nodes, and the typed errors their failures become.

A client holds a pool of keep-alive connections, so nodes that talk to one server share one
client (per event loop: an HTTP client belongs to the loop it first ran on). Its own retries
(``max_retries``) cover 429, 5xx and connection failures and honour ``Retry-After``.

The key never leaves this module except in the request's Authorization header: it is a
process secret (masked in logs and streams), and every error message is masked again here
because a server may quote the key back.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..._errors import (
    LlmAuthError,
    LlmBadRequestError,
    LlmError,
    LlmInvalidReplyError,
    LlmRateLimitedError,
    LlmUnavailableError,
    NodeParameterError,
)
from ...events._redaction import known, remember
from ...runtimes._context import NodeContext

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["Endpoint", "client_for", "endpoint", "llm_errors"]

_DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Servers that need no key (llama.cpp, vLLM, Ollama) still get a header: the client wants one.
_NO_KEY = "no-key"
_MAX_MESSAGE = 2000  # characters of a server's error message kept in the node's error

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str, int], Any]]
_clients = weakref.WeakKeyDictionary()


class Endpoint:
    """Where a node's requests go, and with which key."""

    __slots__ = ("base_url", "key", "max_retries")

    def __init__(self, base_url: str, key: str, max_retries: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.max_retries = max_retries

    def __repr__(self) -> str:  # never the key
        return f"Endpoint({self.base_url!r})"


def endpoint(params: dict[str, Any], ctx: NodeContext) -> Endpoint:
    """The server and key of a node: its ``with``, else ``$OPENAI_BASE_URL`` and
    ``$OPENAI_API_KEY`` as the ``openai`` client reads them.

    A key named by ``api_key_env`` must be one the host lets workflows read (``env_allow``, a
    manifest's ``[host] env``, ``--env``): a workflow must not be able to send any variable of
    the host's environment to a server of its choosing.
    """
    base_url = params.get("base_url") or os.environ.get("OPENAI_BASE_URL") or _DEFAULT_BASE_URL
    name = params.get("api_key_env")
    if name:
        key = ctx.env.get(name)
        if key is None:
            raise NodeParameterError(
                f"api_key_env: ${name} is not set, or not an environment variable this host "
                "lets workflows read (allow it with env_allow, a manifest's [host] env or --env)",
                node=ctx.node_id,
                field="with.api_key_env",
            )
    else:
        key = os.environ.get("OPENAI_API_KEY") or _NO_KEY
    if key != _NO_KEY:
        remember([key])
    return Endpoint(base_url, key, int(params.get("max_retries", 2)))


def client_for(target: Endpoint) -> AsyncOpenAI:
    """The shared client of ``target`` on the running loop."""
    from openai import AsyncOpenAI  # noqa: PLC0415 (imported by hosts that run LLM nodes only)

    loop = asyncio.get_running_loop()
    per_loop = _clients.get(loop)
    if per_loop is None:
        per_loop = _clients[loop] = {}
    key = (target.base_url, target.key, target.max_retries)
    client = per_loop.get(key)
    if client is None:
        if len(per_loop) >= 64:  # many servers or keys over a long life: start afresh
            per_loop.clear()
        client = per_loop[key] = AsyncOpenAI(
            api_key=target.key, base_url=target.base_url, max_retries=target.max_retries
        )
    return client


@contextmanager
def llm_errors(node: str, target: Endpoint) -> Iterator[None]:
    """Turn what the ``openai`` client raises into the typed ``Llm*`` errors."""
    import openai  # noqa: PLC0415

    try:
        yield
    except LlmError:
        raise
    except openai.APIStatusError as exc:
        raise _status_error(exc, node, target) from None
    except openai.APITimeoutError:
        raise LlmUnavailableError(
            f"{target.base_url} did not answer in time", node=node, field="with.base_url"
        ) from None
    except openai.APIConnectionError as exc:
        reason = _reason(exc)
        raise LlmUnavailableError(
            f"cannot reach {target.base_url}: {reason}", node=node, field="with.base_url"
        ) from None
    except (openai.APIResponseValidationError, ValueError) as exc:
        raise LlmInvalidReplyError(
            f"{target.base_url} sent a reply that breaks the chat-completions protocol: "
            f"{_mask(str(exc))}",
            node=node,
        ) from None
    except openai.OpenAIError as exc:
        raise LlmError(_mask(f"{type(exc).__name__}: {exc}"), node=node) from None
    except Exception as exc:
        # A stream cut short surfaces as the HTTP library's own error, which ``openai`` does not
        # wrap once the response has started: it is the server's failure, and retryable.
        if not _is_transport_error(exc):
            raise
        raise LlmUnavailableError(
            f"the reply stream from {target.base_url} was cut short: {type(exc).__name__}",
            node=node,
        ) from None


def _is_transport_error(exc: BaseException) -> bool:
    module = type(exc).__module__.split(".")[0]
    return module in ("httpx", "httpx2", "httpcore", "httpcore2")


def _status_error(exc: Any, node: str, target: Endpoint) -> LlmError:
    status = int(exc.status_code)
    message = f"{target.base_url} answered {status}: {_server_message(exc)}"
    if status == 429:
        error: LlmError = LlmRateLimitedError(message, node=node)
        error.retry_after = _retry_after(exc.response.headers)
        return error
    if status in (401, 403):
        return LlmAuthError(message, node=node, field="with.api_key_env")
    if status == 408 or status >= 500:
        unavailable = LlmUnavailableError(message, node=node)
        unavailable.retry_after = _retry_after(exc.response.headers)
        return unavailable
    field = "with.model" if status == 404 else None
    return LlmBadRequestError(message, node=node, field=field)


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    text: Any = None
    if isinstance(body, dict):
        error = body.get("error", body)
        text = error.get("message") if isinstance(error, dict) else error
    if not isinstance(text, str) or not text:
        text = getattr(exc, "message", None) or str(exc)
    return _mask(str(text))


def _retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds; HTTP dates are rare here)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if 0 <= seconds < 3600:
            return seconds
    return None


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
    return _mask(text)


def _mask(text: str) -> str:
    text = known().text(text)
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."
