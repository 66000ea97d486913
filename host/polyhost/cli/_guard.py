"""Exit statuses, the event loop, and the one place where errors become messages."""

from __future__ import annotations

import asyncio
import os
import signal
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import anyio
import typer
from rich.text import Text

from .._errors import CompileError, InputError, PolyhostError, WorkflowError
from ..events._result import RunStatus
from ..host._host import Host
from ..workflow._imports import backend_options
from ._render import diagnostic_dicts, error_dict, error_text, print_json, stderr_console

__all__ = [
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_OK",
    "exit_status",
    "guarded",
    "interrupt_cancels",
    "run_async",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2

T = TypeVar("T")


def exit_status(status: RunStatus) -> int:
    """0 for a run that completed or paused, 1 for one that failed or was cancelled."""
    return EXIT_OK if status in (RunStatus.COMPLETED, RunStatus.PAUSED) else EXIT_FAILED


def guarded(body: Callable[[], int], *, json_errors: bool = False) -> NoReturn:
    """Run a command's body and exit with its status; errors become one line on stderr.

    With ``json_errors`` (``run --json``), stdout still gets exactly one object when the run
    could not start: ``status`` is ``invalid`` (exit 2) or ``failed`` (exit 1).
    """
    debug = os.environ.get("POLYHOST_DEBUG", "") not in ("", "0")
    try:
        code = body()
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        _say("error: interrupted")
        code = EXIT_FAILED
    except PolyhostError as exc:
        if debug:
            traceback.print_exc()
        code = _report(exc, json_errors)
    except OSError as exc:
        if debug:
            traceback.print_exc()
        message = _os_error(exc)
        _say(f"error: {message}")
        if json_errors:
            print_json(_failed_object("os_error", message))
        code = EXIT_FAILED
    except Exception as exc:
        if debug:
            raise
        message = f"internal error: {type(exc).__name__}: {exc}"
        _say(f"error: {message} (run with POLYHOST_DEBUG=1 for the traceback)")
        if json_errors:
            print_json(_failed_object("internal_error", message))
        code = EXIT_FAILED
    raise typer.Exit(code)


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main`` on asyncio, with uvloop when it is installed."""
    return anyio.run(main, backend="asyncio", backend_options=backend_options())


@contextmanager
def interrupt_cancels(host: Host) -> Iterator[None]:
    """While inside, Ctrl-C cancels the host's runs cleanly; a second Ctrl-C stops at once.

    The run then ends as ``cancelled`` (recorded so by the engine) instead of unwinding the
    event loop with ``KeyboardInterrupt``.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None

    def on_interrupt() -> None:
        if loop is not None:
            # Restores Python's own handler: the next Ctrl-C raises KeyboardInterrupt.
            loop.remove_signal_handler(signal.SIGINT)
        for run_id in host.active_runs:
            host.cancel(run_id)

    installed = False
    if loop is not None:
        try:
            loop.add_signal_handler(signal.SIGINT, on_interrupt)
            installed = True
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # no signal handlers here (Windows, or not the main thread)
    try:
        yield
    finally:
        if installed and loop is not None:
            loop.remove_signal_handler(signal.SIGINT)


def _report(exc: PolyhostError, json_errors: bool) -> int:
    invalid = isinstance(exc, WorkflowError | InputError)
    if isinstance(exc, CompileError):
        for diagnostic in exc.diagnostics:
            _say(f"{diagnostic.severity}: {diagnostic.render()}")
    else:
        _say(f"error: {error_text(exc)}")
    if json_errors:
        if invalid:
            print_json(
                {
                    "execution_id": None,
                    "status": "invalid",
                    "error": error_dict(exc),
                    "diagnostics": diagnostic_dicts(exc),
                }
            )
        else:
            print_json(_failed_object(exc.code, exc.message, getattr(exc, "node", None)))
    return EXIT_INVALID if invalid else EXIT_FAILED


def _failed_object(code: str, message: str, node: str | None = None) -> dict[str, Any]:
    return {
        "execution_id": None,
        "status": "failed",
        "error": {"node": node, "code": code, "message": message},
    }


def _os_error(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


def _say(line: str) -> None:
    # A Text, not a markup string: messages hold brackets ("[code]") that are not styles.
    prefix, sep, rest = line.partition(": ")
    styled = Text()
    if sep and prefix in ("error", "warning"):
        styled.append(prefix + sep, style="bold red" if prefix == "error" else "bold yellow")
        styled.append(rest)
    else:
        styled.append(line)
    stderr_console().print(styled)
