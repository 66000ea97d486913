"""Reading a server-sent event stream the plain way, for tests of the server itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Message:
    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads("\n".join(self.data))
        return value


class Parser:
    """Feeds SSE lines; returns each message when its blank line arrives."""

    def __init__(self) -> None:
        self.current = Message()

    def feed(self, line: str) -> Message | None:
        current = self.current
        if line == "":
            self.current = Message()
            if current.data or current.comments or current.id is not None:
                return current
        elif line.startswith(":"):
            current.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                current.id = value
            elif name == "event":
                current.event = value
            elif name == "data":
                current.data.append(value)
        return None


def parse(lines: Iterator[str]) -> Iterator[Message]:
    """Messages (comment-only blocks too, as messages with comments) from SSE lines."""
    parser = Parser()
    for line in lines:
        message = parser.feed(line)
        if message is not None:
            yield message


async def aparse(lines: AsyncIterator[str]) -> AsyncIterator[Message]:
    parser = Parser()
    async for line in lines:
        message = parser.feed(line)
        if message is not None:
            yield message
