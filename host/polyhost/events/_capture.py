"""What a node writes besides its output, and what reaches the process's streams and logs.

While a python handler runs, ``print()``, any write to ``sys.stdout`` or ``sys.stderr`` and every
``logging`` record made in its context (its task, its worker thread, a process-pool worker) become
``log`` events of that node: they show in the live view and the history, pass the run's redactor
like every event, and never reach the process's own output (``run --json`` prints one object).
The context is a :class:`contextvars.ContextVar`, so concurrent nodes, async or in threads, each
keep their own lines.

Outside a node, writes to ``sys.stdout`` and ``sys.stderr`` (while the proxies are in place) and
every log record pass through with the process's known secrets masked (:func:`._redaction.known`).

The streams are replaced by proxies (from a host's first python node until it closes, and by the
CLI for its whole life). Log records are caught by a log-record factory chained to the one in
place: a filter on the ``polyhost`` logger would miss records of its children
(``polyhost.sidecar.NAME``), since logger filters do not apply to records that propagate from
below.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from ._redaction import known

__all__ = [
    "NodeOutput",
    "acquire",
    "capture_node_output",
    "install",
    "install_logging",
    "outside_nodes",
    "release",
    "release_node_output",
]

LogSink = Callable[[str, str, dict[str, Any]], None]

_MAX_LINE = 64 * 1024  # a longer line without a newline is sent in pieces of this size
_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning", "ERROR": "error"}
_CAPTURED = "polyhost_node_output"  # set on log records that became a node's log events

_current: contextvars.ContextVar[NodeOutput | None] = contextvars.ContextVar(
    "polyhost_node_output", default=None
)
# Guards the partial lines of every NodeOutput: a node may print from several threads, and
# printing is rare enough that one lock for all costs nothing.
_partial_lock = threading.Lock()


class NodeOutput:
    """The lines one attempt of a node writes to the standard streams or logs, as log events.

    One per attempt: kept cheap to create and close (no lock of its own, nothing allocated until
    something is written), as most handlers print nothing. It takes lines only in the thread it
    was made in, the one its sink may be called from: a thread that inherited the context some
    other way (``asyncio.to_thread``) writes to the process's streams, as any thread of its own.
    """

    __slots__ = ("_partial", "_sink", "thread")

    def __init__(self, sink: LogSink | None) -> None:
        self._sink = sink
        self._partial: dict[str, str] | None = None
        self.thread = threading.get_ident()

    def write(self, stream: str, text: str) -> None:
        """Take text written to ``stream`` (stdout or stderr); each whole line is one event."""
        with _partial_lock:
            if self._partial is None:
                self._partial = {}
            pending = self._partial.pop(stream, "") + text
            *lines, rest = pending.split("\n")
            while len(rest) > _MAX_LINE:
                lines.append(rest[:_MAX_LINE])
                rest = rest[_MAX_LINE:]
            if rest:
                self._partial[stream] = rest
        level = "info" if stream == "stdout" else "warning"
        for line in lines:
            self._emit(level, line.rstrip("\r"), {"stream": stream})

    def record(self, record: logging.LogRecord) -> None:
        """Take a log record made while the node ran."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep what it holds rather than fail the node
            message = str(record.msg)
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        elif record.exc_info and record.exc_info[0] is not None:
            message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
        level = _LEVELS.get(record.levelname, "error" if record.levelno > 40 else "info")
        self._emit(level, message, {"logger": record.name})

    def close(self) -> None:
        """Send what was written after the last newline (the attempt is over)."""
        if not self._partial:
            return
        with _partial_lock:
            partial, self._partial = self._partial, None
        for stream, text in (partial or {}).items():
            self._emit("info" if stream == "stdout" else "warning", text, {"stream": stream})

    def _emit(self, level: str, message: str, fields: dict[str, Any]) -> None:
        if self._sink is None:
            return
        # Delivering the line must not be captured again (the sink's subscribers may print).
        token = _current.set(None)
        try:
            self._sink(level, message, fields)
        except Exception:  # noqa: S110 (the run is gone, or its loop: the line has no place)
            pass
        finally:
            _current.reset(token)


def capture_node_output(output: NodeOutput | None) -> contextvars.Token[NodeOutput | None]:
    """Make ``output`` take what this context writes; undo with :func:`release_node_output`."""
    return _current.set(output)


def release_node_output(token: contextvars.Token[NodeOutput | None] | None) -> None:
    """Undo :func:`capture_node_output` or :func:`outside_nodes`."""
    if token is not None:
        _current.reset(token)


def outside_nodes() -> contextvars.Token[NodeOutput | None] | None:
    """Stop capturing in this context until :func:`release_node_output` (event subscribers are
    the host's: what they print belongs to no node); None when nothing was being captured."""
    return None if _current.get() is None else _current.set(None)


class _Stream:
    """``sys.stdout`` or ``sys.stderr``: to the running node's log, else masked to the target."""

    def __init__(self, target: IO[str], name: str) -> None:
        self.target = target
        self._name = name

    def write(self, text: str) -> int:
        output = _current.get()
        if output is not None and isinstance(text, str) and output.thread == threading.get_ident():
            output.write(self._name, text)
            return len(text)
        masker = known()
        if masker and isinstance(text, str):
            text = masker.text(text)
        return self.target.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.target.flush()

    def __getattr__(self, name: str) -> Any:
        # Everything else (isatty, fileno, encoding, buffer, ...) is the target's.
        return getattr(self.target, name)


def install() -> None:
    """Put the proxies in place of ``sys.stdout`` and ``sys.stderr`` (again if someone replaced
    them since), and the log-record hook. Cheap when already done: called per python node."""
    if sys.stdout is not None and type(sys.stdout) is not _Stream:
        sys.stdout = _Stream(sys.stdout, "stdout")
    if sys.stderr is not None and type(sys.stderr) is not _Stream:
        sys.stderr = _Stream(sys.stderr, "stderr")
    if not _logging_installed:
        install_logging()


def uninstall() -> None:
    """Put back the streams the proxies wrap (when the proxies are still in place)."""
    if type(sys.stdout) is _Stream:
        sys.stdout = sys.stdout.target
    if type(sys.stderr) is _Stream:
        sys.stderr = sys.stderr.target


_holders = 0
_holders_lock = threading.Lock()


def acquire() -> None:
    """:func:`install`, held until a matching :func:`release` (a host runs python nodes)."""
    global _holders  # noqa: PLW0603 (one count per process)
    with _holders_lock:
        _holders += 1
        install()


def release() -> None:
    """The last holder gone, the standard streams are the process's own again. The log-record
    hook stays: it only masks, and other hooks may have been chained to it since."""
    global _holders  # noqa: PLW0603
    with _holders_lock:
        _holders = max(0, _holders - 1)
        if _holders == 0:
            uninstall()


_logging_installed = False
_logging_lock = threading.Lock()


def install_logging() -> None:
    """Chain the log-record hook to the factory in place, once per process."""
    global _logging_installed  # noqa: PLW0603 (one hook per process)
    with _logging_lock:
        if _logging_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _on_record(record)
            return record

        logging.setLogRecordFactory(factory)
        if logging.lastResort is not None:
            logging.lastResort = _SkipCaptured(logging.lastResort)
        _logging_installed = True


def _on_record(record: logging.LogRecord) -> None:
    masker = known()
    if masker:
        _mask_record(record, masker.text)
    output = _current.get()
    if output is not None and output.thread == threading.get_ident():
        setattr(record, _CAPTURED, True)
        output.record(record)


def _mask_record(record: logging.LogRecord, mask: Callable[[str], str]) -> None:
    # Formatted now, while the arguments are at hand: handlers only see the masked text.
    try:
        message = record.getMessage()
    except Exception:  # left for the handler to report, as logging does
        return
    record.msg = mask(message)
    record.args = None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask(record.exc_text)
    if record.stack_info:
        record.stack_info = mask(record.stack_info)


class _SkipCaptured(logging.Handler):
    """``logging.lastResort`` without the records a node's log already holds."""

    def __init__(self, inner: logging.Handler) -> None:
        super().__init__(inner.level)
        self.inner = inner

    def handle(self, record: logging.LogRecord) -> bool:
        if getattr(record, _CAPTURED, False):
            return False
        return bool(self.inner.handle(record))

    def emit(self, record: logging.LogRecord) -> None:
        self.inner.emit(record)
