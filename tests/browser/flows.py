"""The workflows the console's tests run: a loop, a node that fails into its error port, an
approval; a longer loop to drop the connection in the middle of."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REVIEW: dict[str, Any] = {
    "version": 1,
    "id": "review",
    "name": "Review",
    "description": "A loop, a failure routed to its error port, then an approval",
    "inputs": {
        "type": "object",
        "properties": {"rounds": {"type": "integer", "minimum": 1, "default": 3}},
    },
    "nodes": [
        # Long enough for the page to open while every later node is still pending.
        {"id": "gate", "type": "core.wait", "with": {"duration": "1.5s"}},
        {
            "id": "each",
            "type": "core.loop",
            "with": {"count": "{{ input.rounds }}", "max_iterations": 100},
            "body": {
                "nodes": [
                    {"id": "tick", "type": "core.wait", "with": {"duration": "0.4s"}},
                    {
                        "id": "say",
                        "type": "core.log",
                        "with": {"message": "round {{ loop.index }}"},
                    },
                ],
                "edges": [{"from": "tick", "to": "say"}],
                "outputs": {"round": "{{ loop.index }}"},
            },
        },
        {"id": "boom", "type": "core.fail", "with": {"message": "broken on purpose"}},
        {"id": "recover", "type": "core.wait", "with": {"duration": "0.5s"}},
        {
            "id": "approve",
            "type": "core.approval",
            "with": {
                "prompt": "Ship this release?",
                "schema": {
                    "type": "object",
                    "properties": {
                        "approved": {"type": "boolean"},
                        "note": {"type": "string", "minLength": 2},
                    },
                    "required": ["approved", "note"],
                },
            },
        },
        {"id": "done", "type": "core.transform", "with": {"value": "{{ approve.note }}"}},
    ],
    "edges": [
        {"from": "gate", "to": "each"},
        {"from": "each", "to": "boom"},
        {"from": "boom", "port": "error", "to": "recover"},
        {"from": "recover", "to": "approve"},
        {"from": "approve", "to": "done"},
    ],
    "outputs": {"note": "{{ done.value }}", "rounds": "{{ each.results }}"},
}

TICKS: dict[str, Any] = {
    "version": 1,
    "id": "ticks",
    "nodes": [
        {
            "id": "each",
            "type": "core.loop",
            "with": {"count": 16, "max_iterations": 16},
            "body": {"nodes": [{"id": "tick", "type": "core.wait", "with": {"duration": "0.3s"}}]},
        },
        {"id": "after", "type": "core.transform", "with": {"value": "{{ each.results }}"}},
    ],
    "edges": [{"from": "each", "to": "after"}],
}


def write_flows(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for flow in (REVIEW, TICKS):
        (folder / f"{flow['id']}.json").write_text(json.dumps(flow))
