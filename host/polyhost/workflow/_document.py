"""Workflow documents as plain values, checked against the document limits.

Nothing here recurses over a document, so a hostile one meets a limit, never the interpreter's
stack: YAML is built from libyaml's event stream with an explicit stack (aliases counted as
what they expand to), JSON's nesting is measured on the text before the (recursive) parser runs,
and values handed in directly are walked with an explicit stack.

What a document may hold is JSON's data model: maps with string keys (each key once), lists,
strings of Unicode scalar values, integers in the signed 64-bit range, finite numbers of at most
that magnitude, booleans and null.
"""

from __future__ import annotations

import gc
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml import events as ev

from .._errors import WorkflowLoadError
from .._limits import Limits
from ._diagnostics import Diagnostic
from ._diagnostics import DiagnosticCode as C

__all__ = [
    "DocumentLimit",
    "Problem",
    "Unreadable",
    "check_value",
    "gc_paused",
    "limit_diagnostic",
    "locate",
    "measure_json",
    "parse_json",
    "parse_yaml",
    "problem_diagnostics",
    "read_limited",
]

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
# Floats are bounded like integers: a number no 64-bit integer holds is a mistake in a workflow
# (a count, a size, a timeout) far more often than a measurement; write such values as strings.
FLOAT_MAX = 2.0**63

Loc = tuple[str | int, ...]

# libyaml when PyYAML was built with it (the wheels are); the pure-Python parser otherwise.
_Loader: Any = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
_SAFE: Any = yaml.constructor.SafeConstructor()
_IMPLICIT: dict[str | None, list[tuple[str, re.Pattern[str]]]] = (
    yaml.resolver.Resolver.yaml_implicit_resolvers
)
_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null"))
_TIMESTAMP, _MERGE_TAG, _VALUE_TAG = f"{_TAG}timestamp", f"{_TAG}merge", f"{_TAG}value"
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP})
_SEQ_TAGS = frozenset({None, "!", f"{_TAG}seq"})
_MAP_TAGS = frozenset({None, "!", f"{_TAG}map"})
_CACHE_SIZE = 65_536


class _Merge:
    """The YAML merge key ``<<``."""

    def __repr__(self) -> str:
        return "<<"


MERGE = _Merge()


@dataclass(frozen=True, slots=True)
class Problem:
    """Something a document holds that the format does not allow, and where (a key path)."""

    code: str
    message: str
    loc: Loc


class DocumentLimit(Exception):
    """A document went past one of the document limits; loading stops at once."""

    def __init__(
        self, limit: str, value: int, message: str, loc: Loc = (), root: Any = None
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.message = message
        self.loc = loc
        self.root = root  # the document as far as it was read, to name the node


class Unreadable(Exception):
    """A file that cannot be read (the message says why), or one larger than allowed."""

    def __init__(self, message: str, *, limit: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a document's many new objects are built.

    Each full collection walks the whole heap, and allocating a large document triggers them
    again and again: reading and compiling would grow quadratically with the document.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_limited(path: str | Path, limit: int) -> bytes:
    """The bytes of ``path``, refusing a path with a NUL and a file larger than ``limit``.

    The size is checked before reading (``fstat``) and again by a read of at most
    ``limit + 1`` bytes, so a growing file or a pipe cannot make it read more.
    """
    if "\0" in str(path):
        raise Unreadable(f"{str(path)!r}: a path cannot contain a NUL byte")
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise Unreadable(f"{path}: is a directory")
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise Unreadable(_too_large(path, info.st_size, limit), limit=limit)
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise Unreadable(f"{path}: no such file") from None
    except IsADirectoryError:
        raise Unreadable(f"{path}: is a directory") from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise Unreadable(f"{path}: cannot read the file: {reason}") from None
    if len(data) > limit:
        raise Unreadable(_too_large(path, None, limit), limit=limit)
    return data


def _too_large(path: str | Path, size: int | None, limit: int) -> str:
    found = f" ({size:,} bytes)" if size is not None else ""
    return (
        f"{path}: the file is larger{found} than max_document_bytes = {limit:,} bytes "
        "(see docs/limits.md)"
    )


# YAML ---------------------------------------------------------------------------------------


class YamlSyntaxError(WorkflowLoadError):
    """Not YAML, or not one document; ``where`` is ``:line:column`` when known."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where


def parse_yaml(text: str, limits: Limits) -> tuple[Any, list[Problem]]:
    """The value of a YAML document and what it holds that is not allowed.

    Raises ``DocumentLimit`` past a limit and ``YamlSyntaxError`` for text that is not YAML.
    """
    loader = _Loader(text)
    builder = _YamlBuilder(limits)
    try:
        return builder.build(loader.get_event), builder.problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        if "maximum nesting depth" in str(exc.problem):
            # libyaml's own bound (far above ours), met while it reads ahead.
            raise DocumentLimit(
                "max_document_depth",
                limits.max_document_depth,
                f"lists and maps are nested deeper than max_document_depth = "
                f"{limits.max_document_depth} (line {where[1:].split(':', maxsplit=1)[0]})",
                builder._loc(),
                builder._partial(),
            ) from None
        raise YamlSyntaxError(exc.problem or str(exc), where) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc)) from None
    finally:
        loader.dispose()


@dataclass(slots=True)
class _Frame:
    value: list[Any] | dict[Any, Any]
    anchor: str | None
    start: int  # values counted before this container
    key: Any = None  # a map's key awaiting its value
    has_key: bool = False
    merges: list[Any] = field(default_factory=list)


class _YamlBuilder:
    """Builds plain values from parser events: one pass, an explicit stack, no recursion."""

    def __init__(self, limits: Limits) -> None:
        self.max_depth = limits.max_document_depth
        self.max_values = limits.max_document_values
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.count = 0
        self.problems: list[Problem] = []
        self.root: Any = None
        self.cache: dict[str, Any] = {}
        self.line = 0

    def build(self, next_event: Callable[[], Any]) -> Any:
        documents = 0
        while True:
            event = next_event()
            kind = type(event)
            if kind is ev.ScalarEvent:
                self.line = event.start_mark.line + 1
                self._count(1)
                value = self._scalar(event)
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, 1)
                self._add(value)
            elif kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
                self.line = event.start_mark.line + 1
                self._open(event, {} if kind is ev.MappingStartEvent else [])
            elif kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
                self._close()
            elif kind is ev.AliasEvent:
                self.line = event.start_mark.line + 1
                self._alias(event.anchor)
            elif kind is ev.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise YamlSyntaxError(
                        "expected a single document in the stream",
                        f":{event.start_mark.line + 1}:{event.start_mark.column + 1}",
                    )
            elif kind is ev.StreamEndEvent:
                return self.root

    # counting and places -----------------------------------------------------------------

    def _count(self, values: int) -> None:
        self.count += values
        if self.count > self.max_values:
            raise DocumentLimit(
                "max_document_values",
                self.max_values,
                f"the document holds more than max_document_values = {self.max_values:,} "
                f"values, YAML aliases expanded (line {self.line})",
                self._loc(),
                self._partial(),
            )

    def _loc(self) -> Loc:
        """Where the value being read goes."""
        loc: list[str | int] = []
        for frame in self.stack:
            if isinstance(frame.value, list):
                loc.append(len(frame.value))
            elif frame.has_key:
                loc.append(frame.key if isinstance(frame.key, str) else repr(frame.key))
            else:
                break
        return tuple(loc)

    def _partial(self) -> Any:
        """The document as read so far, open lists and maps linked into their parents (they
        are only added when closed), so that a place in it can be named."""
        for parent, child in zip(self.stack, self.stack[1:], strict=False):
            if isinstance(parent.value, list):
                parent.value.append(child.value)
            elif parent.has_key and isinstance(parent.key, str):
                parent.value[parent.key] = child.value
        return self.stack[0].value if self.stack else self.root

    def _problem(self, code: str, message: str, loc: Loc | None = None) -> None:
        self.problems.append(
            Problem(code, f"{message} (line {self.line})", self._loc() if loc is None else loc)
        )

    # events ------------------------------------------------------------------------------

    def _open(self, event: Any, value: list[Any] | dict[Any, Any]) -> None:
        if len(self.stack) >= self.max_depth:
            raise DocumentLimit(
                "max_document_depth",
                self.max_depth,
                f"lists and maps are nested deeper than max_document_depth = "
                f"{self.max_depth} (line {self.line})",
                self._loc(),
                self._partial(),
            )
        self._count(1)
        allowed = _MAP_TAGS if isinstance(value, dict) else _SEQ_TAGS
        if event.tag not in allowed:
            self._problem(C.INVALID_VALUE, f"the YAML tag {event.tag!r} is not supported here")
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame(value, event.anchor, self.count))

    def _close(self) -> None:
        frame = self.stack.pop()
        value = frame.value
        if frame.merges and isinstance(value, dict):
            self._merge(value, frame.merges)
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, self.count - frame.start + 1)
        self._add(value)

    def _alias(self, anchor: str) -> None:
        found = self.anchors.get(anchor)
        if found is None:
            if anchor in self.open_anchors:
                self._problem(
                    C.INVALID_VALUE,
                    f"the alias *{anchor} is inside its own anchor (a structure that never ends)",
                )
                self._add(None)
                return
            raise YamlSyntaxError(f"found undefined alias {anchor!r}", f":{self.line}")
        value, size = found
        self._count(size)
        self._add(value)

    def _add(self, value: Any) -> None:
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        target = frame.value
        if isinstance(target, list):
            target.append(value)
        elif not frame.has_key:
            self._key(frame, value)
        else:
            key, frame.key, frame.has_key = frame.key, None, False
            if key is MERGE:
                frame.merges.append(value)
            elif key is not None:
                target[key] = value

    def _key(self, frame: _Frame, key: Any) -> None:
        base = self._loc()  # the map's own place: its key is not set yet
        frame.has_key = True
        frame.key = None  # a key not kept: its value is read and dropped
        if key is MERGE:
            frame.key = MERGE
            return
        if not isinstance(key, str):
            if isinstance(key, list | dict):
                self._problem(C.INVALID_VALUE, "a key must be a string, found a list or map", base)
            else:
                self._problem(
                    C.INVALID_VALUE,
                    f"a key must be a string, found {_describe(key)}: quote it",
                    (*base, _key_text(key)),
                )
            return
        assert isinstance(frame.value, dict)
        if key in frame.value:
            self._problem(
                C.DUPLICATE_KEY,
                f"the key '{key}' appears more than once in this map",
                (*base, key),
            )
            return
        frame.key = key

    def _merge(self, target: dict[Any, Any], merges: list[Any]) -> None:
        # `<<: *base` or `<<: [*a, *b]`: keys written in the map win, then earlier merges.
        sources: list[Any] = []
        for merge in merges:
            sources.extend(merge if isinstance(merge, list) else [merge])
        for source in sources:
            if not isinstance(source, dict):
                self._problem(C.INVALID_VALUE, "a merge key (<<) takes a map or a list of maps")
                continue
            self._count(len(source))
            for key, value in source.items():
                target.setdefault(key, value)

    # scalars -----------------------------------------------------------------------------

    def _scalar(self, event: Any) -> Any:
        text: str = event.value
        tag = event.tag
        if tag is None or tag == "!":
            if not event.implicit[0]:
                return self._string(text)  # quoted, literal or folded
            cached = self.cache.get(text, _MISSING)
            if cached is not _MISSING:
                return cached
            value = self._typed(_resolve_plain(text), text)
            if len(self.cache) >= _CACHE_SIZE:
                self.cache.clear()
            if value is not None or text in ("", "~", "null", "Null", "NULL"):
                self.cache[text] = value
            return value
        if tag in _SCALAR_TAGS:
            return self._typed(tag, text)
        self._problem(C.INVALID_VALUE, f"the YAML tag {tag!r} is not supported")
        return None

    def _typed(self, tag: str, text: str) -> Any:
        try:
            if tag == _INT:
                return self._integer(_SAFE.construct_yaml_int(yaml.ScalarNode(tag, text)), text)
            if tag == _FLOAT:
                return self._float(_SAFE.construct_yaml_float(yaml.ScalarNode(tag, text)), text)
            if tag == _BOOL:
                return _SAFE.bool_values[text.lower()]
            if tag == _NULL:
                return None
        except (ValueError, KeyError):
            self._problem(C.INVALID_VALUE, f"{text[:40]!r} is not a valid {tag[len(_TAG) :]}")
            return None
        if tag == _MERGE_TAG:
            return MERGE
        # Timestamps stay text: JSON has no date type, and a run stores its document as JSON.
        return self._string(text)

    def _string(self, text: str) -> str | None:
        problem = string_problem(text)
        if problem is not None:
            self._problem(C.INVALID_VALUE, problem)
            return None
        return text

    def _integer(self, value: int, text: str) -> int | None:
        if INT_MIN <= value <= INT_MAX:
            return value
        self._problem(C.INVALID_VALUE, number_problem(value, text))
        return None

    def _float(self, value: float, text: str) -> float | None:
        if math.isfinite(value) and abs(value) <= FLOAT_MAX:
            return value
        self._problem(C.INVALID_VALUE, number_problem(value, text))
        return None


_MISSING: Any = object()


def _resolve_plain(text: str) -> str:
    candidates = _IMPLICIT.get(text[0] if text else "", [])
    for tag, pattern in (*candidates, *_IMPLICIT.get(None, [])):
        if pattern.match(text):
            return tag
    return _STR


def _key_text(value: Any) -> str:
    return json.dumps(value) if value is None or isinstance(value, bool) else repr(value)


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return f"the number {value!r}"


def string_problem(text: str) -> str | None:
    """Why ``text`` cannot be in a document (a lone surrogate), or None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return (
            f"the string holds a lone surrogate U+{code:04X} at character {exc.start}, "
            "which is not a Unicode character"
        )
    return None


def number_problem(value: float, text: str | None = None) -> str:
    """The message for a number a document cannot hold."""
    shown = (text if text is not None else repr(value))[:40]
    if isinstance(value, float) and not math.isfinite(value):
        return f"{shown} is not a finite number"
    return (
        f"{shown} is out of range: numbers must lie within ±{INT_MAX:,} "
        "(a 64-bit integer); write larger values as strings"
    )


# JSON ---------------------------------------------------------------------------------------

# A JSON string, unrolled so that `re` does not backtrack character by character.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b"[]{},")
_SQUARE = bytes.maketrans(b"{}", b"[]")


def measure_json(data: bytes, limits: Limits) -> None:
    """Refuse JSON text nested deeper, or holding more values, than the limits allow.

    Done on the text, without recursion, because the JSON parser recurses per level.
    """
    structure = _JSON_STRING.sub(b"", data).translate(None, _NOT_STRUCTURE)
    commas = structure.count(b",")
    shape = structure.translate(_SQUARE).replace(b",", b"")
    values = commas + len(shape) // 2 + 1
    if values > limits.max_document_values:
        raise DocumentLimit(
            "max_document_values",
            limits.max_document_values,
            f"the document holds more than max_document_values = "
            f"{limits.max_document_values:,} values",
        )
    # Each pass removes the innermost empty pairs, so the passes needed are the depth.
    depth = 0
    while shape:
        reduced = shape.replace(b"[]", b"")
        if len(reduced) == len(shape):
            break  # unbalanced: the parser reports where; only its opening brackets count
        depth += 1
        if depth > limits.max_document_depth:
            break
        shape = reduced
    if depth + shape.count(b"[") > limits.max_document_depth:
        raise DocumentLimit(
            "max_document_depth",
            limits.max_document_depth,
            f"lists and maps are nested deeper than max_document_depth = "
            f"{limits.max_document_depth}",
        )


# A \uD800-\uDFFF escape: the only way JSON text holds a surrogate (a valid pair is two).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json(data: bytes, text: str, limits: Limits) -> tuple[Any, list[Problem]]:
    """The value of a JSON document and what it holds that is not allowed.

    Raises ``DocumentLimit`` past a limit and ``json.JSONDecodeError`` for text that is not
    JSON. Nesting and size are measured on the text; the parser's hooks note a repeated key
    or a number out of range, and only then (or for a surrogate escape) is the value walked
    to say where.
    """
    measure_json(data, limits)
    duplicates: dict[int, list[str]] = {}
    flagged = bool(_SURROGATE_ESCAPE.search(data))

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(items)
        if len(value) != len(items):
            seen: set[str] = set()
            repeated: list[str] = []
            for key, _ in items:
                if key in seen:
                    repeated.append(key)
                seen.add(key)
            duplicates[id(value)] = repeated
        return value

    def number(text: str) -> int | float:
        nonlocal flagged
        if "." in text or "e" in text or "E" in text:
            value: int | float = float(text)
            if not abs(value) <= FLOAT_MAX:  # also NaN
                flagged = True
            return value
        # Past 20 digits no 64-bit integer is possible; int() of thousands of digits raises.
        if len(text) > 20 or not INT_MIN <= (value := int(text)) <= INT_MAX:
            flagged = True
            return INT_MAX + 1
        return value

    def constant(name: str) -> float:
        nonlocal flagged
        flagged = True
        return float(name)

    try:
        value = json.loads(
            text,
            object_pairs_hook=pairs,
            parse_int=number,
            parse_float=number,
            parse_constant=constant,
        )
    except RecursionError:  # measured above; kept so that no path ends in a traceback
        raise DocumentLimit(
            "max_document_depth",
            limits.max_document_depth,
            "lists and maps are nested too deeply",
        ) from None
    if not flagged and not duplicates:
        return value, []
    return value, check_value(value, limits, duplicates)


# values -------------------------------------------------------------------------------------


def check_value(
    root: Any, limits: Limits, duplicates: dict[int, list[str]] | None = None
) -> list[Problem]:
    """What ``root`` holds that a document may not; raises ``DocumentLimit`` past a limit.

    Walks with an explicit stack; a structure that contains itself is reported by the depth
    limit, one shared many times by the values limit.
    """
    max_depth = limits.max_document_depth
    max_values = limits.max_document_values
    problems: list[Problem] = []
    count = 1
    # (container, depth, link to its place): places are rebuilt only for a problem.
    Link = tuple[Any, str | int] | None
    stack: list[tuple[Any, int, Link]] = [(root, 1, None)]

    def loc_of(link: Link, last: str | int | None = None) -> Loc:
        parts: list[str | int] = [] if last is None else [last]
        while link is not None:
            link, part = link
            parts.append(part)
        return tuple(reversed(parts))

    while stack:
        value, depth, link = stack.pop()
        if type(value) is dict:
            items: Any = value.items()
            if duplicates:
                for key in duplicates.get(id(value), ()):
                    problems.append(
                        Problem(
                            C.DUPLICATE_KEY,
                            f"the key '{key}' appears more than once in this map",
                            loc_of(link, key),
                        )
                    )
        elif isinstance(value, list | tuple):
            items = enumerate(value)
        else:
            problem = _scalar_problem(value)
            if problem is not None:
                problems.append(Problem(C.INVALID_VALUE, problem, loc_of(link)))
            continue
        if depth > max_depth:
            raise DocumentLimit(
                "max_document_depth",
                max_depth,
                f"lists and maps are nested deeper than max_document_depth = {max_depth}",
                loc_of(link),
                root,
            )
        count += len(value)
        if count > max_values:
            raise DocumentLimit(
                "max_document_values",
                max_values,
                f"the document holds more than max_document_values = {max_values:,} values",
                loc_of(link),
                root,
            )
        for key, item in items:
            kind = type(item)
            if type(key) is not str:
                if not isinstance(key, int) or isinstance(value, dict):
                    problems.append(
                        Problem(
                            C.INVALID_VALUE,
                            f"a key must be a string, found {_describe(key)}",
                            loc_of(link, _key_text(key)),
                        )
                    )
                    continue
            elif not key.isascii() and string_problem(key) is not None:
                problems.append(
                    Problem(C.INVALID_VALUE, f"key: {string_problem(key)}", loc_of(link, "?"))
                )
                continue
            if kind is dict or kind is list or kind is tuple:
                stack.append((item, depth + 1, (link, key)))
            elif kind is str:
                if not item.isascii():
                    problem = string_problem(item)
                    if problem is not None:
                        problems.append(Problem(C.INVALID_VALUE, problem, loc_of((link, key))))
            elif kind is not bool and item is not None:
                problem = _scalar_problem(item)
                if problem is not None:
                    problems.append(Problem(C.INVALID_VALUE, problem, loc_of((link, key))))
    return problems


def _scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return string_problem(value)
    if isinstance(value, int):
        return None if INT_MIN <= value <= INT_MAX else number_problem(value)
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) <= FLOAT_MAX:
            return None
        return number_problem(value)
    return f"a {type(value).__name__} cannot be in a document (only JSON values can)"


# places -------------------------------------------------------------------------------------


def locate(loc: Loc | list[Any], raw: Any) -> tuple[str | None, str | None]:
    """The node and field a key path points at, naming nodes by their id in ``raw``.

    A node inside a body is named ``outer.inner``, as the compiler names it.
    """
    parts = list(loc)
    node: str | None = None
    where = raw
    position = 0
    while (
        len(parts) - position >= 2
        and parts[position] == "nodes"
        and isinstance(parts[position + 1], int)
        and isinstance(where, dict)
    ):
        nodes = where.get("nodes")
        index = parts[position + 1]
        if not isinstance(nodes, list) or not 0 <= index < len(nodes):
            break
        entry = nodes[index]
        found = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(found, str):
            break
        node = found if node is None else f"{node}.{found}"
        position += 2
        where = entry
        if len(parts) - position >= 1 and parts[position] == "body":
            body = where.get("body")
            if not isinstance(body, dict):
                break
            position += 1
            where = body
            continue
        break
    rest = parts[position:]
    text = _field_text(rest)
    return node, text or None


def _field_text(parts: list[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problem_diagnostics(problems: list[Problem], raw: Any) -> list[Diagnostic]:
    """Problems as diagnostics, each naming its node and field."""
    out = []
    for problem in problems:
        node, where = locate(problem.loc, raw)
        out.append(Diagnostic("error", problem.code, problem.message, node, where))
    return out


def limit_diagnostic(exc: DocumentLimit) -> Diagnostic:
    """A document limit as a diagnostic (code ``limit_exceeded``)."""
    node, where = locate(exc.loc, exc.root)
    return Diagnostic("error", C.LIMIT_EXCEEDED, exc.message, node, where)
