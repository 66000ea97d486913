"""The event-stream decoder, fed the bytes a server sends, however the network splits them."""

from __future__ import annotations

import pytest

from polyhost.client import InvalidResponseError
from polyhost.client._sse import MAX_MESSAGE_CHARS, SseDecoder, SseMessage

STREAM = (
    b": heartbeat\n\n"
    b'id: 1\nevent: run.started\ndata: {"seq": 1}\n\n'
    b": heartbeat\r\n\r\n"
    b'id: 2\r\nevent: node.completed\r\ndata: {"seq": 2,\r\ndata:  "node": "\xc3\xa9t\xc3\xa9"}\r\n\r\n'
    b'id: 3\revent: run.completed\rdata: {"seq": 3}\r\r'
)
EXPECTED = [
    SseMessage("run.started", '{"seq": 1}', "1"),
    SseMessage("node.completed", '{"seq": 2,\n "node": "été"}', "2"),
    SseMessage("run.completed", '{"seq": 3}', "3"),
]


def decode(chunks: list[bytes]) -> tuple[list[SseMessage], SseDecoder]:
    decoder = SseDecoder()
    messages: list[SseMessage] = []
    for chunk in chunks:
        messages += decoder.feed(chunk)
    return messages, decoder


def test_messages_of_a_stream_in_one_chunk() -> None:
    messages, decoder = decode([STREAM])
    assert messages == EXPECTED
    assert decoder.comments == 2


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_any_split_gives_the_same_messages(size: int) -> None:
    # Splits inside CRLF pairs, inside UTF-8 sequences and inside field names.
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    messages, decoder = decode(chunks)
    assert messages == EXPECTED
    assert decoder.comments == 2


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    # Were the LF a line end of its own, the blank line would dispatch "a" alone.
    messages, _ = decode([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
    assert messages == [SseMessage("message", "a\nb")]


def test_a_cr_ending_a_chunk_ends_its_line_at_once() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: a\r\r") == [SseMessage("message", "a")]


def test_a_message_cut_off_by_the_end_of_the_stream_is_dropped() -> None:
    messages, _ = decode([b"id: 1\ndata: {}\n\n", b'id: 2\ndata: {"half'])
    assert messages == [SseMessage("message", "{}", "1")]


def test_the_id_stays_until_the_next_and_fields_follow_the_format() -> None:
    stream = (
        b"\xef\xbb\xbfid: 7\ndata\n\n"  # a BOM; a field without a colon has an empty value
        b"data:no space\nunknown: x\n\n"  # the id carries over; unknown fields are ignored
        b"id: 8\0\ndata: nul id ignored\n\n"
        b"retry: 250\nevent: only-event\n\n"  # no data: nothing dispatched
        b"data: after\n\n"  # the event name does not carry over
    )
    messages, decoder = decode([stream])
    assert messages == [
        SseMessage("message", "", "7"),
        SseMessage("message", "no space", "7"),
        SseMessage("message", "nul id ignored", "7"),
        SseMessage("message", "after", "7"),
    ]
    assert decoder.retry_ms == 250


def test_a_line_that_never_ends_is_refused_before_it_takes_all_memory() -> None:
    decoder = SseDecoder()
    chunk = b"x" * (1024 * 1024)
    decoder.feed(b"data: ")
    with pytest.raises(InvalidResponseError, match="over"):
        for _ in range(MAX_MESSAGE_CHARS // len(chunk) + 2):
            decoder.feed(chunk)


def test_a_message_of_many_data_lines_is_bounded_too() -> None:
    decoder = SseDecoder()
    lines = b"data: " + b"x" * (1024 * 1024 - 7) + b"\n"
    with pytest.raises(InvalidResponseError, match="over"):
        for _ in range(MAX_MESSAGE_CHARS // len(lines) + 2):
            decoder.feed(lines)


def test_a_large_message_in_small_chunks_arrives_whole() -> None:
    data = "é" * 300_000
    raw = f"id: 1\ndata: {data}\n\n".encode()
    messages, _ = decode([raw[i : i + 4096] for i in range(0, len(raw), 4096)])
    assert messages == [SseMessage("message", data, "1")]
