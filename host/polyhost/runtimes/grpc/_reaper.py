"""The reaper a managed sidecar runs under, so that none of its processes outlive the host.

Run as a script by its path (``python -I -S _reaper.py HOST_PID GRACE -- COMMAND...``), with
nothing but the standard library, so that it starts in some 20 ms. It makes itself a child
subreaper (``PR_SET_CHILD_SUBREAPER``: every process the sidecar starts, even a ``setsid``
daemon whose parent exited, is re-parented to it rather than to init), asks for SIGTERM when the
host thread that started it dies (``PR_SET_PDEATHSIG``, checked against the host's pid so a host
that died first is noticed), and runs the sidecar. Its stdin is the host's pipe, shared with the
sidecar; it reads nothing from it but notices its end.

It stops on any of: the sidecar exiting, SIGTERM (the host's stop, or the host's death), SIGHUP,
the end of stdin (the host is gone), or SIGUSR1 (kill at once: an unhealthy sidecar). A stop sends
SIGTERM to the sidecar and waits up to GRACE seconds for it. Then every process it adopted or
spawned is killed with SIGKILL and reaped, found by walking the process tree under it. Its exit
mirrors the sidecar's: the same status, or the same signal.

A command that cannot be started is reported on stderr as one ``POLYHOST_REAPER_ERROR`` line,
with exit status 127; a started one as a ``POLYHOST_REAPER_CHILD`` line with its pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ERROR_PREFIX = "POLYHOST_REAPER_ERROR "
CHILD_PREFIX = "POLYHOST_REAPER_CHILD "  # the sidecar's pid, so the host can watch it too
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_KILL_ROUNDS_FOR = 5.0  # seconds to keep killing descendants (a fork bomb, an unkillable one)


class _Flags:
    stop = False  # stop gracefully: SIGTERM the sidecar, wait GRACE
    now = False  # stop at once


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option})")


def _children_of(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc/PID/task/*/children."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.extend(int(c) for c in (task / "children").read_text().split())
    except OSError:
        pass  # it ended meanwhile
    return found


def _parents() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # it ended meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def descendants(root: int) -> list[int]:
    """Every process under ``root``, parents before their children: from
    /proc/PID/task/*/children where the kernel has it (CONFIG_PROC_CHILDREN), else from one scan
    of every /proc/*/stat for the parents' ids."""
    children_of: Callable[[int], list[int]] = _children_of
    if not Path(f"/proc/{root}/task/{root}/children").exists():
        tree = _parents()
        children_of = lambda pid: tree.get(pid, [])  # noqa: E731
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children_of(todo.pop()):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def _kill_all(statuses: dict[int, int]) -> None:
    """SIGKILL every descendant and reap them all, until none is left (or time is up)."""
    me = os.getpid()
    end = time.monotonic() + _KILL_ROUNDS_FOR
    while time.monotonic() < end:
        for pid in descendants(me):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not _reap(statuses, block=True):
            return


def _reap(statuses: dict[int, int], *, block: bool = False) -> bool:
    """Reap ended children (waiting a moment for one if ``block``); False once none is left."""
    deadline = time.monotonic() + 0.05
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            if not block or time.monotonic() >= deadline:
                return True
            time.sleep(0.002)
            continue
        statuses[pid] = status
        block = False  # one reaped: the caller looks again


def _mirror(status: int | None) -> None:
    if status is None:
        os._exit(1)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        # Die of the same signal, without a core dump of the reaper itself.
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if number not in (signal.SIGKILL, signal.SIGSTOP):  # these two cannot be handled
            signal.signal(number, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [number])
        os.kill(os.getpid(), number)
        time.sleep(1)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def _die_with_reaper() -> None:  # pragma: no cover (in the sidecar, before exec)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: list[str]) -> None:
    host_pid, grace = int(argv[1]), float(argv[2])
    command = argv[4:]
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != host_pid:  # the host died before the line above
        os._exit(1)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)

    flags = _Flags()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    os.set_blocking(wake_read, False)
    signal.set_wakeup_fd(wake_write)

    def stop(number: int, _frame: object) -> None:
        flags.stop = True
        if number == signal.SIGUSR1:
            flags.now = True

    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(number, stop)
    signal.signal(signal.SIGCHLD, lambda _n, _f: None)  # only to wake the poll below
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    try:
        # The reaper is single-threaded, so running code between fork and exec is safe here.
        sidecar = subprocess.Popen(command, preexec_fn=_die_with_reaper)  # noqa: S603, PLW1509
    except OSError as exc:
        sys.stderr.write(f"{ERROR_PREFIX}{exc.strerror or exc}: {command[0]}\n")
        sys.stderr.flush()
        os._exit(127)
    sys.stderr.write(f"{CHILD_PREFIX}{sidecar.pid}\n")
    sys.stderr.flush()

    statuses: dict[int, int] = {}
    poller = select.poll()
    poller.register(0, select.POLLIN)
    poller.register(wake_read, select.POLLIN)
    deadline: float | None = None
    while sidecar.pid not in statuses and not flags.now:
        if flags.stop and deadline is None:
            deadline = time.monotonic() + grace
            with contextlib.suppress(ProcessLookupError):
                os.kill(sidecar.pid, signal.SIGTERM)
        wait_ms = 1000 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        if deadline is not None and wait_ms == 0:
            break
        for fd, events in poller.poll(wait_ms):
            if fd == wake_read:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 512)
            elif events & (select.POLLHUP | select.POLLERR | select.POLLNVAL) or not _drain():
                flags.stop = True  # the host closed the pipe, or is gone
                poller.unregister(0)
        _reap(statuses)
    _kill_all(statuses)
    _mirror(statuses.get(sidecar.pid))


def _drain() -> bool:
    """Read and drop what the host wrote; False at the end of the pipe."""
    try:
        return bool(os.read(0, 65536))
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EINTR)


if __name__ == "__main__":
    main(sys.argv)
