"""A managed sidecar: the process the host starts, watches, restarts and stops.

Each sidecar has one supervisor thread that spawns the process and waits for it. On Linux the
sidecar runs under a small reaper (``_reaper``): a child subreaper that adopts every process
the sidecar starts (a `setsid` daemon too) and, when the sidecar ends, the host stops it, or the
host dies (its parent-death signal, or the end of its stdin pipe), kills them all. The host
never runs code between fork and exec (no ``preexec_fn``), so ``subprocess`` uses ``vfork``: no
fork handlers run in a host full of threads (gRPC's among them), and a command that cannot be
started is always reported as such. The SDKs also exit when their stdin reaches EOF.

The sidecar listens where the host says (``POLYHOST_LISTEN``): a Unix socket in a folder only
this user can enter, or a free loopback port. Its environment is the manifest's ``env``, the
variables named in ``env_inherit``, and a few basics (``PATH``, ``HOME``, locale, ``TMPDIR``):
never the whole of the host's, which may hold secrets. It is ready when its health service says
SERVING.
A running sidecar's health is checked every ``health_interval``; one that fails three checks in
a row (hung, or stuck NOT_SERVING) is killed, and so restarted. A sidecar that dies after it was
ready is restarted in the background, with a backoff that
doubles on each quick death (0.1 s up to 10 s) and resets once it has stayed up for 30 s; one
that fails to start is started again on the next call that needs it, after the same backoff.
Its stdout and stderr go to the ``polyhost.sidecar.NAME`` logger, read in bounded chunks: a
line longer than ``Limits.max_sidecar_line_bytes`` is cut there and marked; the last lines of
stderr (a bounded tail) go into the errors that explain a failed start or a crash.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO

from ..._errors import RuntimeUnavailableError
from ..._limits import Limits, default_limits
from ...workflow._catalog import SidecarSpec
from ._reaper import CHILD_PREFIX, ERROR_PREFIX
from ._wire import Endpoint, check_serving, wait_serving

__all__ = ["ManagedSidecar", "SidecarStartError"]

# How long an endpoint that refused a call may take to be seen dead before it is used again.
_DEATH_NOTICE = 1.0
_READY_PREFIX = "POLYHOST_SIDECAR_READY"
_REAPER = Path(__file__).with_name("_reaper.py")
_TAIL_LINES = 40  # stderr lines kept for crash reports (each at most max_sidecar_line_bytes)
_TAIL_SHOWN = 8  # of which an error message shows the last ...
_TAIL_LINE_CHARS = 300  # ... each cut to this many characters
_READ_CHUNK = 65536
_REAPER_SLACK = 2.0  # seconds the reaper gets past the grace to kill and reap everything
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 10.0
_STABLE_AFTER = 30.0  # seconds up after which a death is not counted as a quick one
_HEALTH_FAILURES = 3  # failed checks in a row after which a running sidecar is killed
# What a sidecar gets of the host's environment unless its manifest names more (`env_inherit`):
# enough to find programs and run, none of the host's secrets.
_BASE_ENV = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")


class SidecarStartError(RuntimeUnavailableError):
    """A managed sidecar could not be started or became unavailable."""

    code = "sidecar_unavailable"


class ManagedSidecar:
    """One ``command`` sidecar of a manifest; thread-safe."""

    def __init__(self, name: str, spec: SidecarSpec, limits: Limits | None = None) -> None:
        assert spec.command is not None
        self.limits = limits or default_limits()
        self.name = name
        self.spec = spec
        self.token = secrets.token_urlsafe(32)
        self.log = logging.getLogger(f"polyhost.sidecar.{name}")
        self.restarts = 0  # times it was started again after it had been ready
        self._cond = threading.Condition()
        self._folder = tempfile.mkdtemp(prefix=f"polyhost-{name[:20]}-")  # mode 0700
        self._process: subprocess.Popen[bytes] | None = None
        self._endpoint: Endpoint | None = None
        self._state = "stopped"  # stopped | starting | ready | failed | closed
        self._wanted = False  # a start was asked for
        self._failure = ""
        self._quick_deaths = 0
        self._next_start = 0.0
        self._tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._thread: threading.Thread | None = None
        self._readers: list[threading.Thread] = []
        self._spawn_error = ""  # why the reaper could not start the command
        self._child: _Child | None = None  # the sidecar under its reaper

    # public ------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The running sidecar's process id, if one runs."""
        process = self._process
        if process is None or not self._alive():
            return None
        child = self._child
        return child.pid if child is not None else process.pid

    def ready_endpoint(self) -> Endpoint | None:
        """The endpoint if the sidecar is ready and its process alive now; never blocks."""
        if self._state == "ready" and self._alive():
            return self._endpoint
        return None

    def ensure(self, failed: Endpoint | None = None) -> Endpoint:
        """Start the sidecar if needed and wait until it is SERVING; ``SidecarStartError``.

        ``failed`` is an endpoint a call could not reach: a sidecar closes its sockets as it
        dies, a moment before its exit can be seen, so that endpoint is handed out again only
        if its process still looks alive after ``_DEATH_NOTICE``."""
        deadline = time.monotonic() + self.spec.start_timeout + _BACKOFF_MAX
        suspect_until = time.monotonic() + _DEATH_NOTICE if failed is not None else 0.0
        waited = False  # on a start attempt: if it fails, so does this call
        with self._cond:
            while True:
                if self._state == "closed":
                    raise SidecarStartError(f"sidecar {self.name} is stopped (the host is closing)")
                if self._state == "ready" and self._endpoint is not None:
                    if self._alive() and (
                        self._endpoint is not failed or time.monotonic() >= suspect_until
                    ):
                        return self._endpoint
                    # It died a moment ago: the supervisor is about to notice and restart it.
                elif self._state == "starting":
                    waited = True
                elif self._state == "failed" and waited:
                    raise SidecarStartError(self._failure or f"sidecar {self.name} is not running")
                else:  # stopped, or failed before this call: start it (after any backoff)
                    self._state = "starting"
                    self._wanted = True
                    waited = True
                    self._start_thread()
                    self._cond.notify_all()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SidecarStartError(
                        f"sidecar {self.name} did not become ready within "
                        f"{self.spec.start_timeout:g}s" + self._tail_text()
                    )
                self._cond.wait(min(left, 0.05))

    def _alive(self) -> bool:
        process = self._process
        child = self._child
        # The sidecar itself, not only its reaper: the reaper outlives it by the moment it
        # takes to kill and reap what the sidecar left, and no call may go out meanwhile.
        return process is not None and process.poll() is None and not (child and child.ended())

    def describe_failure(self) -> str:
        """What went wrong last (with the last lines of its stderr), for error messages."""
        return self._failure

    def close(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``stop_timeout``); idempotent."""
        with self._cond:
            if self._state == "closed":
                return
            self._state = "closed"
            self._endpoint = None
            process = self._process
            self._cond.notify_all()
        if process is not None:
            _stop(process, self.spec.stop_timeout)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.spec.stop_timeout + 2)
        shutil.rmtree(self._folder, ignore_errors=True)

    # the supervisor thread ---------------------------------------------------------------

    def _start_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._supervise, name=f"polyhost-sidecar-{self.name}", daemon=True
            )
            self._thread.start()

    def _supervise(self) -> None:
        while True:
            with self._cond:
                while not self._wanted and self._state != "closed":
                    self._cond.wait()
                if self._state == "closed":
                    return
                self._wanted = False
                self._state = "starting"
                self._cond.notify_all()
                while (left := self._next_start - time.monotonic()) > 0:
                    self._cond.wait(left)
                    if self._state == "closed":
                        return
            self._run_once()

    def _run_once(self) -> None:
        endpoint = self._new_endpoint()
        try:
            process = self._spawn(endpoint)
        except OSError as exc:
            self._failed(f"sidecar {self.name} could not be started: {exc.strerror or exc}")
            return
        started = time.monotonic()
        problem = wait_serving(
            endpoint, self.spec.start_timeout, alive=lambda: process.poll() is None
        )
        with self._cond:
            if self._state == "closed":
                problem = "closed"
            elif problem is None:
                self._endpoint = endpoint
                self._state = "ready"
                self._cond.notify_all()
        if problem is not None:
            _kill_now(process)
            status = self._ended(process)
            if problem != "closed":
                self._failed(self._start_problem(problem, status))
            return
        self.log.info("sidecar %s is ready (pid %d, %s)", self.name, process.pid, endpoint.target)
        unhealthy = self._watch(process, endpoint)
        status = self._ended(process)
        with self._cond:
            self._endpoint = None
            if self._state == "closed":
                return
            up = time.monotonic() - started
            self._quick_deaths = 0 if up >= _STABLE_AFTER else self._quick_deaths + 1
            delay = _backoff(self._quick_deaths)
            self._next_start = time.monotonic() + delay
            self._failure = (
                unhealthy or f"sidecar {self.name} exited with {_status(status)}"
            ) + self._tail_text()
            self.log.warning("%s; restarting it in %.1fs", self._failure, delay)
            self.restarts += 1
            self._state = "starting"
            self._wanted = True
            self._cond.notify_all()

    def _watch(self, process: subprocess.Popen[bytes], endpoint: Endpoint) -> str:
        """Wait for the process to end, checking its health every ``health_interval``; a
        sidecar that fails three checks in a row (hung, or stuck NOT_SERVING) is killed so that
        it is restarted. Returns why it was killed ("" when it ended by itself)."""
        interval = self.spec.health_interval
        failures = 0
        while True:
            try:
                process.wait(timeout=interval)
            except subprocess.TimeoutExpired:
                if self._state == "closed":
                    continue  # close() is stopping it
                problem = check_serving(endpoint, timeout=min(2.0, interval))
                failures = 0 if problem is None else failures + 1
                if failures < _HEALTH_FAILURES:
                    continue
                why = (
                    f"sidecar {self.name} failed {failures} health checks in a row "
                    f"({problem}), so it was killed"
                )
                self.log.warning("%s", why)
                _kill_now(process)
                return why
            return ""

    def _failed(self, message: str) -> None:
        with self._cond:
            if self._state == "closed":
                return
            self._quick_deaths += 1
            self._next_start = time.monotonic() + _backoff(self._quick_deaths)
            self._failure = message
            self._state = "failed"
            self._cond.notify_all()
        self.log.error("%s", message)

    def _start_problem(self, problem: str, status: int) -> str:
        if self._spawn_error:
            return f"sidecar {self.name} could not be started: {self._spawn_error}"
        if problem == "exited":
            return (
                f"sidecar {self.name} exited with {_status(status)} before it was ready"
                + self._tail_text()
            )
        return f"sidecar {self.name} did not become ready: {problem}" + self._tail_text()

    def _new_endpoint(self) -> Endpoint:
        if self.spec.transport == "tcp":
            target = f"127.0.0.1:{free_port()}"
            listen = target
        else:
            path = Path(self._folder) / "sidecar.sock"
            target = f"unix:{path}"
            listen = target
        return Endpoint(
            name=self.name,
            target=target,
            listen=listen,
            token=self.token,
            max_message_bytes=self.spec.max_message_bytes,
        )

    def _spawn(self, endpoint: Endpoint) -> subprocess.Popen[bytes]:
        base = Path(self.spec.base_dir) if self.spec.base_dir else Path.cwd()
        command = list(self.spec.command or [])
        if os.sep in command[0] and not Path(command[0]).is_absolute():
            command[0] = str(base / command[0])
        passed = (*_BASE_ENV, *self.spec.env_inherit)
        env = {
            **{name: os.environ[name] for name in passed if name in os.environ},
            **self.spec.env,
            "POLYHOST_LISTEN": endpoint.listen,
            "POLYHOST_SIDECAR_TOKEN": self.token,
            "POLYHOST_PARENT_WATCH": "stdin",
        }
        self._tail.clear()
        self._spawn_error = ""
        self._set_child(None)
        if sys.platform == "linux":
            grace = f"{self.spec.stop_timeout:g}"
            reaper = [sys.executable, "-I", "-S", str(_REAPER), str(os.getpid()), grace, "--"]
            command = [*reaper, *command]
        process = subprocess.Popen(  # noqa: S603 (the manifest's own command, no shell)
            command,
            cwd=base,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C in the host's terminal is the host's to handle
        )
        with self._cond:
            self._process = process
        self._readers = [
            threading.Thread(
                target=self._read, args=(stream, keep), name=f"{self.name}-output", daemon=True
            )
            for stream, keep in ((process.stderr, True), (process.stdout, False))
        ]
        for reader in self._readers:
            reader.start()
        return process

    def _ended(self, process: subprocess.Popen[bytes]) -> int:
        """Wait for the process, then for the last of its output (which explains its end)."""
        status = process.wait()
        for reader in self._readers:
            reader.join(timeout=1.0)
        self._set_child(None)
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        return status

    def _read(self, stream: IO[bytes] | None, keep: bool) -> None:
        """Read one output stream in chunks, line by line; a line is never held past the limit
        (the rest of it is dropped up to its newline), so memory stays bounded whatever the
        sidecar writes. Lines of stderr (``keep``) also go into the tail for crash reports."""
        if stream is None:
            return
        limit = self.limits.max_sidecar_line_bytes
        line = bytearray()
        cut = False  # the current line was cut: drop the rest of it
        with contextlib.suppress(OSError, ValueError), stream:
            fd = stream.fileno()
            while data := os.read(fd, _READ_CHUNK):
                start = 0
                while start <= len(data):
                    end = data.find(b"\n", start)
                    piece = memoryview(data)[start : len(data) if end < 0 else end]
                    if not cut:
                        room = limit - len(line)
                        line += piece[:room]
                        if len(piece) > room:
                            cut = True
                            self._line(line, keep, cut=True)
                    if end < 0:
                        break
                    if not cut:
                        self._line(line, keep)
                    line.clear()
                    cut = False
                    start = end + 1
            if line and not cut:
                self._line(line, keep)

    def _line(self, raw: bytearray, keep: bool, *, cut: bool = False) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip()
        if cut:
            line += f" [cut: longer than {self.limits.max_sidecar_line_bytes} bytes]"
        if not line or line.startswith(_READY_PREFIX):
            return
        if line.startswith(ERROR_PREFIX):
            self._spawn_error = line.removeprefix(ERROR_PREFIX)
            return
        if line.startswith(CHILD_PREFIX):
            with contextlib.suppress(ValueError):
                self._set_child(_Child.watch(int(line.removeprefix(CHILD_PREFIX))))
            return
        if keep:
            self._tail.append(line)
        self._forward(line)

    def _set_child(self, child: _Child | None) -> None:
        old, self._child = self._child, child
        if old is not None:
            old.close()

    def _forward(self, line: str) -> None:
        """Every line of the sidecar's output goes to its logger here (at DEBUG: sidecars are
        chatty)."""
        self.log.debug("[%s] %s", self.name, line)

    def _tail_text(self) -> str:
        lines = [_cut(line, _TAIL_LINE_CHARS) for line in list(self._tail)[-_TAIL_SHOWN:]]
        return (": " + " | ".join(lines)) if lines else ""


class _Child:
    """The sidecar under its reaper: its pid and a pidfd, readable from the moment it exits."""

    def __init__(self, pid: int, fd: int | None) -> None:
        self.pid = pid
        self._fd = fd
        self._poll = select.poll()
        if fd is not None:
            self._poll.register(fd, select.POLLIN)

    @classmethod
    def watch(cls, pid: int) -> _Child:
        try:
            return cls(pid, os.pidfd_open(pid))
        except ProcessLookupError:
            return cls(pid, None)  # gone already
        except (OSError, AttributeError):  # no pidfd here: only the reaper is watched
            return _Unwatched(pid, None)

    def ended(self) -> bool:
        return self._fd is None or bool(self._poll.poll(0))

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd is not None and fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


class _Unwatched(_Child):
    def ended(self) -> bool:
        return False


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def free_port() -> int:
    """A loopback port nothing listens on right now (another process may take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _backoff(quick_deaths: int) -> float:
    if quick_deaths <= 0:
        return 0.0
    return float(min(_BACKOFF_FIRST * 2 ** (quick_deaths - 1), _BACKOFF_MAX))


def _status(status: int) -> str:
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-status).name}"
        return f"signal {-status}"
    return f"status {status}"


def _stop(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace``: on Linux the reaper does both to the sidecar and
    kills the rest of its processes; it is killed itself only if it does not end in time."""
    if process.poll() is not None:
        return
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace + _REAPER_SLACK)
    except subprocess.TimeoutExpired:
        _kill_group(process)


def _kill_now(process: subprocess.Popen[bytes]) -> None:
    """Kill the sidecar and everything it started, without a grace period."""
    if process.poll() is not None:
        return
    if sys.platform != "linux":
        _kill_group(process)
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGUSR1)  # the reaper's "kill everything now"
    try:
        process.wait(timeout=_REAPER_SLACK)
    except subprocess.TimeoutExpired:
        _kill_group(process)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # The last resort: the process group the host started (the sidecar's own, unless it left it).
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.wait()
