"""A client of a polyhost server's HTTP API (v1), blocking or asynchronous.

``Client`` and ``AsyncClient`` have one method per endpoint and answer with the API's wire
models (``polyhost.api``) or, for a run's result, the :class:`polyhost.RunResult` a local run
gives. ``stream`` follows a run's events across dropped connections. See docs/client.md.
"""

from ._async import AsyncClient, AsyncEventStream
from ._errors import (
    ClientSettingError,
    ConnectionFailedError,
    InvalidResponseError,
    ServerError,
    WaitTimeoutError,
)
from ._sync import Client, EventStream
from ._wire import TOKEN_ENV

__all__ = [
    "TOKEN_ENV",
    "AsyncClient",
    "AsyncEventStream",
    "Client",
    "ClientSettingError",
    "ConnectionFailedError",
    "EventStream",
    "InvalidResponseError",
    "ServerError",
    "WaitTimeoutError",
]
