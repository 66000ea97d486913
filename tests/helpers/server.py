"""A real `polyhost serve` process on a free port, for tests that talk to it over HTTP."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.helpers.cli import POLYHOST

_LISTENING = re.compile(r"serving (http://\S+?:\d+)")


@dataclass
class ServerProcess:
    """One `polyhost serve`: its URL, token (None without), home, database and output."""

    proc: subprocess.Popen[str]
    url: str
    home: Path
    env: dict[str, str]
    token: str | None = None
    _lines: queue.Queue[str] = field(default_factory=queue.Queue)
    _seen: list[str] = field(default_factory=list)
    _stderr: list[str] = field(default_factory=list)
    _pumps: list[threading.Thread] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.home / "polyhost.db"

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers=self.headers(), timeout=30, **kwargs)  # type: ignore[arg-type]

    def output(self) -> str:
        """Everything the server printed to stdout so far."""
        while True:
            try:
                self._seen.append(self._lines.get_nowait())
            except queue.Empty:
                return "".join(self._seen)

    def stderr(self) -> str:
        return "".join(self._stderr)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the server and wait for it; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._close()

    def _close(self) -> None:
        # The pumps end at the pipes' end of file; then the pipes are closed.
        for pump in self._pumps:
            pump.join(timeout=10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def start_server(
    home: Path,
    *args: str,
    token: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30,
) -> ServerProcess:
    """Start `polyhost serve --port 0` with ``home`` as POLYHOST_HOME and wait until it answers."""
    environment = {
        **os.environ,
        "POLYHOST_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    environment.pop("POLYHOST_API_TOKENS", None)
    if token is not None:
        environment["POLYHOST_API_TOKENS"] = token
    proc = subprocess.Popen(
        [str(POLYHOST), "serve", "--port", "0", "--poll", "0.2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    lines: queue.Queue[str] = queue.Queue()
    stderr: list[str] = []

    def pump_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    def pump_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr.append(line)

    pumps = [
        threading.Thread(target=pump_out, daemon=True),
        threading.Thread(target=pump_err, daemon=True),
    ]
    for pump in pumps:
        pump.start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    url = None
    while url is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            for pump in pumps:
                pump.join(timeout=10)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            raise AssertionError(f"serve did not start: {''.join(seen)}{''.join(stderr)}")
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        seen.append(line)
        match = _LISTENING.search(line)
        if match:
            url = match.group(1)
    server = ServerProcess(proc, url, home, environment, token, lines, seen, stderr, pumps)
    while True:
        try:
            if httpx.get(f"{server.api}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise AssertionError("serve never answered /health")
        time.sleep(0.05)


@contextmanager
def running_server(home: Path, *args: str, **kwargs: object) -> Iterator[ServerProcess]:
    server = start_server(home, *args, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
