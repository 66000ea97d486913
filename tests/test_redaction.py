"""The redactor, and what a host masks and captures in its own process: log records of any
logger (a sidecar's included), the standard streams, and what python handlers print or log."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from polyhost import Catalog, Event, EventType, Host, HostConfig
from polyhost.events._capture import install
from polyhost.events._redaction import MASK, Redactor, allowed_env, known, remember
from tests.helpers.workflows import workflow

SECRET = "redaction-test-secret-31d7"


def test_redactor_masks_keys_and_values_at_any_depth() -> None:
    redactor = Redactor(["abcd", "abcdef", "no"])  # "no" is too short to be masked
    data = {"abcdef": ["x abcd y", ("abcdef",)], "n": 1, "no": {"k": "nope"}}
    assert redactor.redact(data) == {
        MASK: ["x *** y", [MASK]],
        "n": 1,
        "no": {"k": "nope"},
    }
    assert redactor.text("abcdefabcd") == "******"  # the longest secret first


def test_a_redactor_without_secrets_returns_its_input() -> None:
    data: dict[str, Any] = {"a": ["b"]}
    assert Redactor([]).redact(data) is data
    assert not Redactor(["abc"])  # too short: nothing to mask


def test_log_records_of_every_logger_are_masked_for_every_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDACTION_TEST_TOKEN", SECRET)
    assert allowed_env(["REDACTION_TEST_TOKEN", "UNSET_REDACTION_VAR"]) == {
        "REDACTION_TEST_TOKEN": SECRET
    }
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        # A child logger's records propagate to the root: a filter on `polyhost` would miss them.
        logging.getLogger("polyhost.sidecar.geo").warning("stderr: %s", SECRET)
        logging.getLogger("elsewhere").error("args %r", {"key": SECRET})
        try:
            raise RuntimeError(SECRET)
        except RuntimeError:
            logging.getLogger("polyhost").exception("failed")
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert SECRET not in text
    assert "polyhost.sidecar.geo stderr: ***" in text
    assert "RuntimeError: ***" in text


def test_the_streams_mask_known_secrets_outside_nodes() -> None:
    remember([SECRET])
    target = io.StringIO()
    saved = sys.stdout
    sys.stdout = target
    try:
        install()
        print("the token is", SECRET)
    finally:
        sys.stdout = saved
    assert target.getvalue() == "the token is ***\n"
    assert known().text(SECRET) == MASK


async def _async_printer(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    for i in range(3):
        print(f"{params['name']} line {i}")
        await anyio.sleep(0.01)
    logging.getLogger("acme").warning("%s warns", params["name"])
    # A thread the handler starts is not the node's (it inherits the context all the same).
    await asyncio.to_thread(print, f"{params['name']} via a thread of its own")
    return {}


def _sync_printer(params: dict[str, Any]) -> dict[str, Any]:
    print(f"{params['name']} from a thread", file=sys.stderr)
    sys.stdout.write("unfinished")
    return {"thread": threading.current_thread() is not threading.main_thread()}


def _nodes(catalog: Catalog) -> None:
    catalog.node("t.aprint")(_async_printer)
    catalog.node("t.sprint")(_sync_printer)


@pytest.mark.anyio
async def test_what_handlers_print_or_log_is_their_own_log(
    catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _nodes(catalog)
    events: list[Event] = []
    wf = workflow(
        [
            {"id": "one", "type": "t.aprint", "with": {"name": "one"}},
            {"id": "two", "type": "t.aprint", "with": {"name": "two"}},
            {"id": "three", "type": "t.sprint", "with": {"name": "three"}},
        ]
    )
    before = sys.stdout
    async with Host(HostConfig(home=tmp_path / "h"), catalog=catalog, store=None) as host:
        result = await host.run(wf, on_event=events.append)
        assert sys.stdout is not before  # the proxy, while the host runs python nodes
    assert sys.stdout is before  # given back when it closes
    assert result.ok, result.error
    assert result.nodes["three"].output == {"thread": True}
    lines: dict[str, list[str]] = {}
    for event in events:
        if event.type is EventType.LOG:
            lines.setdefault(str(event.node), []).append(event.data["message"])
    # Concurrent nodes each keep their own lines, in order.
    assert lines["one"] == ["one line 0", "one line 1", "one line 2", "one warns"]
    assert lines["two"] == ["two line 0", "two line 1", "two line 2", "two warns"]
    assert lines["three"] == ["three from a thread", "unfinished"]
    captured = capsys.readouterr()
    assert "line" not in captured.out and "warns" not in captured.err
    assert "one via a thread of its own" in captured.out


@pytest.mark.anyio
async def test_a_masked_result_still_gave_nodes_the_real_value(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDACTION_TEST_TOKEN", SECRET)
    wf = workflow(
        [
            {"id": "a", "type": "core.transform", "with": {"value": "{{ env.REDACTION_TEST_TOKEN }}"}},
            {"id": "b", "type": "core.fail", "on_error": "continue",
             "with": {"message": "m", "code": "{{ a.value }}"}},
            {"id": "c", "type": "core.transform",
             "with": {"value": "{{ a.value == env.REDACTION_TEST_TOKEN }}"}},
        ],
        ["a->b", "a->c"],
    )  # fmt: skip
    config = HostConfig(home=tmp_path / "h", env_allow=["REDACTION_TEST_TOKEN"])
    async with Host(config, catalog=catalog) as host:
        result = await host.run(wf)
        assert host.store is not None
        stored = host.store.get_result(result.execution_id)
    assert result.nodes["c"].output == {"value": True}
    assert result.nodes["a"].output == {"value": MASK}
    error = result.nodes["b"].error
    assert error is not None and error["code"] == MASK
    assert stored.to_dict() == result.to_dict()
    db = b"".join(p.read_bytes() for p in (tmp_path / "h").rglob("polyhost.db*"))
    assert SECRET.encode() not in db
