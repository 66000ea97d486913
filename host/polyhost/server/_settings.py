"""How a server listens and what it allows: address, tokens, body limit, stream timings."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .._errors import PolyhostError

__all__ = ["ServerConfigError", "ServerSettings", "is_loopback", "read_tokens"]

TOKENS_ENV: Final = "POLYHOST_API_TOKENS"


class ServerConfigError(PolyhostError):
    """The server cannot start as configured (no tokens for a public address, say)."""

    code = "invalid_server_config"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What ``polyhost serve`` was told. ``tokens`` empty: no authentication, loopback only."""

    host: str = "127.0.0.1"
    port: int = 8700
    tokens: tuple[str, ...] = field(default=(), repr=False)
    max_body_bytes: int = 16 * 1024 * 1024
    # A comment line on an idle stream, so proxies and clients see it alive.
    heartbeat_seconds: float = 15.0
    # How often a stream reads the store for a run that executes on another host when nothing
    # woke it (backing off to half a second), and how often the store's change mark is looked
    # at (a stat of its files) to wake those streams at once.
    poll_seconds: float = 0.1
    watch_seconds: float = 0.02
    # Events a stream holds for a client that reads slower than the run emits; past it the
    # stream drops them and reads them back from the store when the client catches up.
    stream_buffer_events: int = 1024
    workflows_dir: Path | None = None
    # How often the store is looked at for due timers and runs whose host died.
    poll_every: float = 1.0
    # How often schedules are looked at.
    schedule_every: float = 1.0

    def check(self) -> None:
        """Refuse a public address without tokens."""
        if not self.tokens and not is_loopback(self.host):
            raise ServerConfigError(
                f"refusing to listen on {self.host} without authentication: set "
                f"${TOKENS_ENV} or --token-file, or listen on 127.0.0.1"
            )


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_tokens(token_file: Path | None = None) -> tuple[str, ...]:
    """Tokens from ``$POLYHOST_API_TOKENS`` (comma-separated) and ``token_file`` (one a line;
    blank lines and ``#`` comments skipped)."""
    tokens = [t.strip() for t in os.environ.get(TOKENS_ENV, "").split(",")]
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ServerConfigError(
                f"cannot read the token file {token_file}: {exc.strerror}"
            ) from None
        tokens += [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    return tuple(dict.fromkeys(t for t in tokens if t))
