"""``polyhost serve``'s server: uvicorn on the host's event loop, shut down gracefully.

SIGTERM or SIGINT stops accepting connections, ends every event stream with a comment (clients
reconnect with ``Last-Event-ID``), hands the host's runs on and waits for requests in flight; a
second SIGINT forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Generator

import uvicorn

from ..events._result import RunResult
from ..host._durable import OnRunError
from ..host._host import Host
from ._app import begin_shutdown, create_app
from ._settings import ServerSettings
from ._state import ServerState

__all__ = ["bind", "serve"]


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: ours also end the streams and hand runs on."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(settings: ServerSettings) -> socket.socket:
    """The listening socket (port 0: a free one), bound before the server starts so that the
    address printed is the one that answers."""
    settings.check()
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host.strip("[]"), settings.port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def serve(
    host: Host,
    settings: ServerSettings,
    sock: socket.socket,
    *,
    on_ready: Callable[[], None] | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    on_error: OnRunError | None = None,
) -> None:
    """Serve ``host`` on ``sock`` until a signal stops it (see :func:`create_app`)."""
    app = create_app(host, settings, on_result=on_result, on_error=on_error)
    state: ServerState = app.state.polyhost
    config = uvicorn.Config(
        app,
        lifespan="on",
        access_log=False,
        log_config=None,
        http="httptools",
        timeout_graceful_shutdown=30,
        timeout_keep_alive=30,
        server_header=False,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if server.should_exit:
            server.force_exit = True
        begin_shutdown(state)
        server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    try:
        if on_ready is not None:
            loop.call_soon(on_ready)
        await server.serve(sockets=[sock])
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
