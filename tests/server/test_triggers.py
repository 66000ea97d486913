"""Triggers of deployed workflows: the document's ``triggers`` (read and diagnosed through the
real ``polyhost compile``), schedules across daylight-saving changes, the scheduler's fires
(once per due time across two hosts on one store; missed fires not replayed), webhook
signatures and the mapping of a request to run inputs."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import os
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import anyio.to_thread
import pytest

from polyhost import Host, HostConfig, InputError
from polyhost.host._host import new_run_id
from polyhost.host._triggers import Scheduler, verify_signature, webhook_inputs
from polyhost.workflow._model import Workflow
from polyhost.workflow._triggers import ScheduleTrigger, WebhookTrigger
from tests.cli.conftest import polyhost_command

PARIS = ZoneInfo("Europe/Paris")


def compile_json(tmp_path: Path, document: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """``polyhost compile FILE --json`` on ``document``: its exit status and its object."""
    path = tmp_path / "flow.yaml"
    path.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML
    env = {**os.environ, "POLYHOST_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
    done = subprocess.run(
        [*polyhost_command(), "compile", str(path), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)


def flow(triggers: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "id": "flow",
        "nodes": [{"id": "a", "type": "core.transform", "with": {"value": "{{ input }}"}}],
        "triggers": triggers,
        **extra,
    }


def at(text: str, zone: Any = PARIS) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def local(ts: float) -> str:
    return datetime.fromtimestamp(ts, PARIS).isoformat()


# the document -----------------------------------------------------------------------------------


def test_valid_triggers_compile(tmp_path: Path) -> None:
    code, out = compile_json(
        tmp_path,
        flow(
            [
                {"schedule": "*/15 * * * *", "tz": "Europe/Paris", "inputs": {"region": "EU"}},
                {"schedule": "@hourly"},
                {"schedule": "*/5 * * * * *"},
                {
                    "webhook": "orders",
                    "secret_env": "ORDERS_HOOK_SECRET",
                    "inputs": {"order": "{{ request.json }}", "q": "{{ request.query.q }}"},
                },
                {"webhook": "plain.name-1_x"},
            ]
        ),
    )
    assert (code, out["ok"]) == (0, True)


def test_each_problem_of_a_trigger_is_a_diagnostic_naming_its_field(tmp_path: Path) -> None:
    code, out = compile_json(
        tmp_path,
        flow(
            [
                {"schedule": "61 * * * *"},
                {"schedule": "* * * *"},
                {"schedule": "0 0 * * *", "tz": "Mars/Olympus_Mons"},
                {"webhook": "has space"},
                {"webhook": "x" * 101},
                {"webhook": "ok", "tz": "UTC"},
                {"schedule": "* * * * *", "webhook": "both"},
                {"cron": "* * * * *"},
                {"webhook": "env", "secret_env": "NOT-A-NAME"},
            ]
        ),
    )
    assert code == 2 and out["ok"] is False
    found = {(d["field"], d["code"]) for d in out["diagnostics"]}
    assert found == {
        ("triggers[0].schedule", "invalid_value"),
        ("triggers[1].schedule", "invalid_value"),
        ("triggers[2].tz", "invalid_value"),
        ("triggers[3].webhook", "invalid_value"),
        ("triggers[4].webhook", "invalid_value"),
        ("triggers[5].tz", "unknown_key"),
        ("triggers[6]", "invalid_value"),
        ("triggers[7]", "invalid_value"),
        ("triggers[8].secret_env", "invalid_value"),
    }
    messages = {d["field"]: d["message"] for d in out["diagnostics"]}
    assert "bad minute" in messages["triggers[0].schedule"]
    assert "'Mars/Olympus_Mons'" in messages["triggers[2].tz"]


def test_trigger_names_and_input_templates_are_checked(tmp_path: Path) -> None:
    code, out = compile_json(
        tmp_path,
        flow(
            [
                {"webhook": "dup"},
                {"webhook": "dup"},
                {"webhook": "reads", "inputs": {"a": "{{ input.x }}", "b": "{{ request. }}"}},
                {"schedule": "@daily", "inputs": {"a": "{{ request.json }}"}},
            ]
        ),
    )
    assert code == 2
    found = {(d["field"], d["code"]) for d in out["diagnostics"]}
    assert found == {
        ("triggers[1].webhook", "duplicate_id"),
        ("triggers[2].inputs.a", "unknown_reference"),
        ("triggers[2].inputs.b", "expression_syntax"),
        ("triggers[3].inputs", "invalid_value"),
    }
    messages = {d["field"]: d["message"] for d in out["diagnostics"]}
    assert "taken by triggers[0]" in messages["triggers[1].webhook"]


def test_a_schedule_whose_runs_would_all_be_refused_is_an_error(tmp_path: Path) -> None:
    inputs = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    code, out = compile_json(
        tmp_path,
        flow([{"schedule": "@daily"}, {"schedule": "@hourly", "inputs": {"n": 2}}], inputs=inputs),
    )
    assert code == 2
    [diagnostic] = out["diagnostics"]
    assert diagnostic["field"] == "triggers[0].inputs"
    assert "'n' is a required property" in diagnostic["message"]


def test_the_json_schema_describes_triggers() -> None:
    schema = Workflow.model_json_schema(by_alias=True)
    kinds = schema["properties"]["triggers"]["items"]["oneOf"]
    names = {schema["$defs"][k["$ref"].rsplit("/", 1)[1]]["required"][0] for k in kinds}
    assert names == {"schedule", "webhook"}


# schedules --------------------------------------------------------------------------------------


def test_a_schedule_in_a_zone_follows_its_clocks_across_daylight_saving_changes() -> None:
    daily = ScheduleTrigger(schedule="30 2 * * *", tz="Europe/Paris")
    # 2025-03-30: clocks jump from 02:00 to 03:00, so 02:30 does not exist that night; the run
    # happens as the clocks jump (Debian cron's rule), and at 02:30 on the other days.
    spring = daily.due_times(at("2025-03-29T00:00"), at("2025-04-01T00:00"))
    assert [local(t) for t in spring] == [
        "2025-03-29T02:30:00+01:00",
        "2025-03-30T03:00:00+02:00",
        "2025-03-31T02:30:00+02:00",
    ]
    # 2025-10-26: clocks go back from 03:00 to 02:00, so 02:30 happens twice; it runs once.
    autumn = daily.due_times(at("2025-10-25T00:00"), at("2025-10-28T00:00"))
    assert [local(t) for t in autumn] == [
        "2025-10-25T02:30:00+02:00",
        "2025-10-26T02:30:00+02:00",
        "2025-10-27T02:30:00+01:00",
    ]
    # An hourly schedule runs every real hour: that day has 25 of them.
    hourly = ScheduleTrigger(schedule="0 * * * *", tz="Europe/Paris")
    day = hourly.due_times(at("2025-10-26T00:00") - 1, at("2025-10-27T00:00") - 1)
    assert len(day) == 25
    assert all(b - a == 3600 for a, b in itertools.pairwise(day))


def test_a_schedule_is_utc_by_default_and_may_have_seconds() -> None:
    utc = ScheduleTrigger(schedule="0 6 * * *")
    [six] = utc.due_times(
        at("2025-06-01T00:00", ZoneInfo("UTC")), at("2025-06-02T00:00", ZoneInfo("UTC"))
    )
    assert datetime.fromtimestamp(six, ZoneInfo("UTC")).hour == 6
    seconds = ScheduleTrigger(schedule="*/20 * * * * *")
    assert seconds.due_times(1_000.5, 1_060.0) == [1_020.0, 1_040.0, 1_060.0]
    # (after, until]: a due time equal to the start is not in the window.
    assert seconds.due_times(1_020.0, 1_020.0) == []
    assert seconds.due_times(1_020.0, 1_040.0) == [1_040.0]


def _tick_flow(schedule: str, **extra: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "id": "tick",
        "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "nodes": [{"id": "a", "type": "core.transform", "with": {"value": "{{ input.n }}"}}],
        "triggers": [{"schedule": schedule, "inputs": {"n": 7}}],
        **extra,
    }


def _host(db: Path) -> Host:
    return Host(HostConfig(home=db.parent / "home", db=str(db)))


def _fires(db: Path) -> dict[int, str | None]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT due_at, run_id FROM trigger_fires WHERE workflow_id = 'tick'"
        ).fetchall()
    return {int(due): run_id for due, run_id in rows}


def _runner(host: Host, started: list[str]) -> Any:
    """A start callback as a server gives one: runs the deployed version, returns its id."""

    async def start(
        workflow_id: str, version: int, inputs: dict[str, Any], *, trigger: str = "schedule"
    ) -> str:
        deployed, plan = await anyio.to_thread.run_sync(
            host.deployments.resolve, workflow_id, version
        )
        run_id = new_run_id()
        await host.run(
            plan, inputs, run_id=run_id, trigger=trigger, workflow_version=deployed.version
        )
        started.append(run_id)
        return run_id

    return start


@pytest.mark.anyio
async def test_two_hosts_on_one_store_start_each_due_time_once(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    started: list[str] = []
    async with _host(db) as one, _host(db) as two:
        one.deployments.deploy(_tick_flow("* * * * * *"))
        schedulers = [
            Scheduler(one.deployments, _runner(one, started)),
            Scheduler(two.deployments, _runner(two, started)),
        ]
        async with anyio.create_task_group() as tasks:
            for scheduler in schedulers:
                tasks.start_soon(scheduler.run)
            await anyio.sleep(5.5)
            for scheduler in schedulers:
                scheduler.stop()
        runs = one.history.list(limit=0).runs
    fires = _fires(db)
    due = sorted(fires)
    assert len(due) >= 4
    # Every second from the first fire to the last, each once (one row per due time).
    assert due == list(range(due[0], due[0] + len(due)))
    # Each fire started one run, recorded with it; no run started twice.
    assert sorted(started) == sorted(run_id for run_id in fires.values() if run_id)
    assert len(set(started)) == len(started) == len(due)
    assert {(r.trigger, r.workflow_version, r.status.value) for r in runs} == {
        ("schedule", 1, "completed")
    }
    assert len(runs) == len(due)


@pytest.mark.anyio
async def test_missed_fires_are_not_replayed(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    async with _host(db) as one, _host(db) as two:
        deployed = one.deployments.deploy(_tick_flow("* * * * *"))
        created = one.deployments.get("tick").created_at
        assert deployed.version == 1
        now = [(created // 60 + 10) * 60 + 30.0]  # ten minutes on, mid-minute

        def clock() -> float:
            return now[0]

        async def start(*_: Any, **__: Any) -> None:
            return None

        first = Scheduler(one.deployments, start, clock=clock)
        # The first look after ten minutes with no scheduler: one fire, the latest due time.
        [fire] = await first.tick()
        assert fire.due_at == now[0] - 30 and fire.inputs == {"n": 7}
        assert (fire.workflow_id, fire.version) == ("tick", 1)
        now[0] += 1
        assert await first.tick() == []
        # A second host starting now finds that due time taken.
        assert await Scheduler(two.deployments, start, clock=clock).tick() == []
        # Held up for an hour: again one fire, not sixty.
        now[0] += 3600
        assert len(await first.tick()) == 1
        # Past the grace window nothing fires.
        late = Scheduler(one.deployments, start, clock=clock, grace=10)
        now[0] += 3600 + 20 - (now[0] % 60)  # 20 s after a minute's due time
        assert await late.tick() == []


@pytest.mark.anyio
async def test_due_times_between_two_looks_all_fire(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    async with _host(db) as one:
        one.deployments.deploy(_tick_flow("* * * * * *"))
        created = one.deployments.get("tick").created_at
        now = [float(int(created) + 100)]

        async def start(*_: Any, **__: Any) -> None:
            return None

        scheduler = Scheduler(one.deployments, start, clock=lambda: now[0])
        assert len(await scheduler.tick()) == 1
        now[0] += 3  # a look three seconds late: the three due times since the last look
        assert [f.due_at for f in await scheduler.tick()] == [now[0] - 2, now[0] - 1, now[0]]


@pytest.mark.anyio
async def test_a_new_version_takes_over_its_schedule_without_a_gap_or_a_second_fire(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    async with _host(db) as one:
        one.deployments.deploy(_tick_flow("* * * * * *"))
        now = [float(int(one.deployments.get("tick").created_at) + 100)]

        async def start(*_: Any, **__: Any) -> None:
            return None

        scheduler = Scheduler(one.deployments, start, clock=lambda: now[0])
        [first] = await scheduler.tick()
        changed = _tick_flow("* * * * * *")
        changed["nodes"][0]["with"]["value"] = "{{ input.n + 1 }}"
        assert one.deployments.deploy(changed).version == 2
        now[0] += 2
        fired = await scheduler.tick()
        assert [(f.version, f.due_at) for f in fired] == [
            (2, first.due_at + 1),
            (2, first.due_at + 2),
        ]
        # The schedule is the same one in both versions: a due time fires once.
        assert fired[0].trigger_key == first.trigger_key
        assert await Scheduler(one.deployments, start, clock=lambda: now[0]).tick() == []


@pytest.mark.anyio
async def test_nothing_fires_before_a_deployment_or_after_an_undeploy(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    async with _host(db) as one:

        async def start(*_: Any, **__: Any) -> None:
            return None

        now = [time.time()]
        # Looks ten seconds apart are not a hold-up for a scheduler that looks every ten.
        scheduler = Scheduler(one.deployments, start, every=10, clock=lambda: now[0])
        assert await scheduler.tick() == []  # nothing deployed yet
        one.deployments.deploy(_tick_flow("* * * * * *"))
        deployed_at = one.deployments.get("tick").deployed_at
        now[0] = deployed_at + 10
        fired = [f.due_at for f in await scheduler.tick()]
        assert len(fired) == 10 and min(fired) > deployed_at
        # A first look long after: only the latest due time, never one before the deployment.
        assert len(await Scheduler(one.deployments, start, clock=lambda: now[0] + 1).tick()) == 1
        one.deployments.undeploy("tick")
        now[0] += 2
        assert await scheduler.tick() == []


@pytest.mark.anyio
async def test_a_failing_start_is_logged_and_the_loop_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "runs.db"
    async with _host(db) as one:
        one.deployments.deploy(_tick_flow("* * * * * *"))
        now = [float(int(one.deployments.get("tick").created_at) + 100)]

        def clock() -> float:
            now[0] += 1  # each look one second on
            return now[0]

        calls: list[dict[str, Any]] = []
        enough = anyio.Event()

        async def start(
            workflow_id: str, version: int, inputs: dict[str, Any], *, trigger: str = "schedule"
        ) -> str:
            calls.append(inputs)
            if len(calls) == 1:
                raise RuntimeError("no room for it")
            if len(calls) >= 3:
                enough.set()
            return f"run-{len(calls)}"

        scheduler = Scheduler(one.deployments, start, every=0.01, clock=clock)
        with caplog.at_level(logging.ERROR, logger="polyhost.triggers"):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(scheduler.run)
                with anyio.fail_after(30):
                    await enough.wait()
                scheduler.stop()
    assert len(calls) >= 3
    assert "the run did not start: RuntimeError('no room for it')" in caplog.text
    assert sorted(r for r in _fires(db).values() if r)[:2] == ["run-2", "run-3"]


# webhooks ---------------------------------------------------------------------------------------


def _signed(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_a_signature_is_the_hmac_of_the_body_under_the_secret() -> None:
    secret, body = b"It's a Secret to Everybody", b"Hello, World!"
    # GitHub's documented example pair.
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert _signed(secret, body) == expected
    assert verify_signature(secret, body, expected)
    assert verify_signature(secret, body, expected.upper().replace("SHA256=", "sha256="))
    assert not verify_signature(secret, body + b" ", expected)  # another body
    assert not verify_signature(b"another secret", body, expected)
    assert not verify_signature(secret, body, None)
    assert not verify_signature(secret, body, "")
    assert not verify_signature(secret, body, expected.removeprefix("sha256="))
    assert not verify_signature(secret, body, "sha1=" + expected.removeprefix("sha256="))
    assert not verify_signature(secret, body, "sha256=zz")
    assert not verify_signature(secret, body, "sha256=é")


def test_without_inputs_the_json_body_is_the_inputs() -> None:
    hook = WebhookTrigger(webhook="orders")
    assert webhook_inputs(hook, {"id": 7}, {}, {}) == {"id": 7}
    assert webhook_inputs(hook, None, {}, {}) == {}
    with pytest.raises(InputError, match="must be a JSON object, not an array"):
        webhook_inputs(hook, [1, 2], {}, {})


def test_input_templates_read_the_request() -> None:
    hook = WebhookTrigger(
        webhook="orders",
        inputs={
            "order": "{{ request.json }}",
            "total": "{{ request.json.lines.map(l, l.price).exists(p, p > 10) }}",
            "agent": "{{ request.headers['user-agent'] }}",
            "page": "{{ request.query.page }}",
            "note": "order {{ request.json.id }} from {{ request.headers['x-shop'] }}",
            "fixed": {"source": "webhook", "n": 1},
            "can_see_auth": "{{ 'authorization' in request.headers }}",
        },
    )
    body = {"id": 42, "lines": [{"price": 5}, {"price": 12.5}]}
    headers = {
        "User-Agent": "shop/1.0",
        "X-Shop": "north",
        "Authorization": "Bearer t0ken",
        "Cookie": "s=1",
    }
    inputs = webhook_inputs(hook, body, headers, {"page": "3"})
    assert inputs == {
        "order": body,  # a whole-string template keeps the value's type
        "total": True,
        "agent": "shop/1.0",  # header names are lower-cased
        "page": "3",
        "note": "order 42 from north",
        "fixed": {"source": "webhook", "n": 1},
        "can_see_auth": False,  # credentials never reach a run's inputs
    }


def test_an_input_the_request_cannot_give_names_the_input() -> None:
    hook = WebhookTrigger(webhook="orders", inputs={"shop": "{{ request.headers['x-shop'] }}"})
    with pytest.raises(InputError, match="input 'shop'") as info:
        webhook_inputs(hook, {}, {}, {})
    assert info.value.field == "inputs.shop"


# the history ------------------------------------------------------------------------------------


def test_runs_list_shows_where_runs_came_from(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(json.dumps(_tick_flow("@daily")), encoding="utf-8")
    env = {**os.environ, "POLYHOST_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}

    def polyhost(*args: str) -> Any:
        done = subprocess.run(
            [*polyhost_command(), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        )
        return json.loads(done.stdout)

    ran = polyhost("run", str(path), "--input", "n=1", "--json")
    [row] = polyhost("runs", "list", "--json")
    assert row["execution_id"] == ran["execution_id"]
    assert (row["trigger"], row["workflow_version"]) == ("manual", None)
    assert row["ended_at"] == row["finished_at"] is not None
