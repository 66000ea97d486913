"""Deployed workflows (``host.deployments``): versions, undeploy, redeploy, compiled plans,
folders, and the runs they start recording where they came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from polyhost import (
    CompileError,
    Host,
    HostConfig,
    InputError,
    RunStateError,
    RunStatus,
    Workflow,
    WorkflowLoadError,
)
from polyhost._errors import WorkflowNotFoundError
from polyhost.compile._parsing import parse_workflow
from polyhost.workflow._triggers import ScheduleTrigger, WebhookTrigger


def greeting(greeting: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "name": "Greeting",
        "inputs": {
            "type": "object",
            "properties": {"name": {"type": "string", "default": "world"}},
        },
        "nodes": [
            {
                "id": "say",
                "type": "core.transform",
                "with": {"value": f"{greeting} {{{{ input.name }}}}"},
                "retry": {"attempts": 2, "delay": "1m"},
                "timeout": "10s",
            }
        ],
        "outputs": {"text": "{{ say.value }}"},
        **extra,
    }


def make_host(tmp_path: Path) -> Host:
    return Host(HostConfig(home=tmp_path / "home", db=str(tmp_path / "runs.db")))


def test_deploying_the_same_document_keeps_its_version(tmp_path: Path) -> None:
    with make_host(tmp_path) as host:
        first = host.deployments.deploy(greeting(), "greet")
        assert (first.id, first.version, first.created) == ("greet", 1, True)
        assert len(first.hash) == 64
        # The same document written differently: keys reordered, the duration as seconds,
        # a default spelled out, the id given in the document.
        same = greeting()
        same = dict(reversed(list(same.items())))
        same["nodes"][0]["retry"] = {"delay": 60, "attempts": 2, "backoff": "fixed"}
        same["id"] = "greet"
        again = host.deployments.deploy(same)
        assert (again.version, again.hash, again.created) == (1, first.hash, False)
        changed = host.deployments.deploy(greeting("hi"), "greet")
        assert (changed.version, changed.created) == (2, True)
        assert changed.hash != first.hash


def test_a_deployment_reads_back_with_document_versions_and_triggers(tmp_path: Path) -> None:
    triggers = [
        {"schedule": "0 6 * * MON", "tz": "Europe/Paris", "inputs": {"name": "team"}},
        {"webhook": "greet-hook", "secret_env": "GREET_SECRET"},
    ]
    with make_host(tmp_path) as host:
        host.deployments.deploy(greeting(), "greet")
        host.deployments.deploy(greeting("hi", triggers=triggers), "greet")
        latest = host.deployments.get("greet")
        assert (latest.id, latest.version, latest.latest_version) == ("greet", 2, 2)
        assert [v.version for v in latest.versions] == [1, 2]
        assert latest.name == "Greeting" and latest.active
        assert latest.inputs is not None and "name" in latest.inputs["properties"]
        assert latest.document is not None
        # What is kept runs as what was deployed.
        assert parse_workflow(latest.document) == parse_workflow(
            {**greeting("hi", triggers=triggers), "id": "greet"}
        )
        assert isinstance(latest.triggers[0], ScheduleTrigger)
        assert isinstance(latest.triggers[1], WebhookTrigger)
        shown = latest.to_dict()
        assert shown["triggers"] == triggers
        assert [v["version"] for v in shown["versions"]] == [1, 2]
        json.dumps(shown)  # the server sends it as it is
        older = host.deployments.get("greet", 1)
        assert (older.version, older.latest_version, older.triggers) == (1, 2, ())
        assert [d.id for d in host.deployments.list()] == ["greet"]
        assert "document" not in host.deployments.list()[0].to_dict()


def test_an_invalid_document_is_not_deployed(tmp_path: Path) -> None:
    bad = greeting(triggers=[{"schedule": "every day"}])
    bad["nodes"][0]["typo"] = 1
    with make_host(tmp_path) as host:
        with pytest.raises(CompileError) as info:
            host.deployments.deploy(bad, "greet")
        fields = {(d.node, d.field) for d in info.value.diagnostics}
        assert ("say", "typo") in fields
        assert (None, "triggers[0].schedule") in fields
        with pytest.raises(WorkflowNotFoundError):
            host.deployments.get("greet")


@pytest.mark.parametrize(
    ("document_id", "deploy_as", "message"),
    [
        ("greet", "other", "the document's id is 'greet', not 'other'"),
        (None, None, "a deployed workflow needs an id"),
        ("has space", None, "found 'has space'"),
        (None, "../up", "found '../up'"),
    ],
)
def test_the_id_must_be_one_and_fit_a_url(
    tmp_path: Path, document_id: str | None, deploy_as: str | None, message: str
) -> None:
    document = greeting() if document_id is None else {**greeting(), "id": document_id}
    with make_host(tmp_path) as host, pytest.raises(CompileError) as info:
        host.deployments.deploy(document, deploy_as)
    [diagnostic] = info.value.diagnostics
    assert diagnostic.field == "id" and message in diagnostic.message


def test_undeploy_keeps_the_history_and_a_redeploy_brings_it_back(tmp_path: Path) -> None:
    with make_host(tmp_path) as host:
        host.deployments.deploy(greeting(), "greet")
        host.deployments.deploy(greeting("hi"), "greet")
        assert host.deployments.undeploy("greet") is True
        assert host.deployments.undeploy("greet") is False
        assert host.deployments.list() == []
        with pytest.raises(WorkflowNotFoundError, match="undeployed"):
            host.deployments.get("greet")
        with pytest.raises(WorkflowNotFoundError):
            host.deployments.compiled("greet")
        kept = host.deployments.get("greet", include_undeployed=True)
        assert (kept.active, [v.version for v in kept.versions]) == (False, [1, 2])
        back = host.deployments.deploy(greeting("hi"), "greet")
        assert (back.version, back.created) == (2, False)
        assert [d.id for d in host.deployments.list()] == ["greet"]
        assert host.deployments.get("greet").active


def test_a_deployed_version_runs_and_its_runs_say_where_they_came_from(tmp_path: Path) -> None:
    with make_host(tmp_path) as host:
        host.deployments.deploy(greeting(), "greet")
        host.deployments.deploy(greeting("hi"), "greet")
        latest = host.deployments.compiled("greet")
        assert latest is host.deployments.compiled("greet")  # cached by (id, version)
        deployed, first = host.deployments.resolve("greet", 1)
        assert deployed.version == 1
        result = host.run_sync(first, {"name": "ann"}, trigger="api", workflow_version=1)
        assert result.outputs == {"text": "hello ann"}
        assert host.run_sync(latest).outputs == {"text": "hi world"}
        [newest, oldest] = host.history.list().runs
        assert (oldest.trigger, oldest.workflow_version) == ("api", 1)
        assert (newest.trigger, newest.workflow_version) == ("manual", None)
        assert host.history.details(result.execution_id).to_dict()["trigger"] == "api"


@pytest.mark.anyio
async def test_a_rerun_is_recorded_as_a_rerun_of_the_same_version(tmp_path: Path) -> None:
    async with make_host(tmp_path) as host:
        host.deployments.deploy(greeting(), "greet")
        deployed, plan = host.deployments.resolve("greet")
        first = await host.run(plan, trigger="webhook", workflow_version=deployed.version)
        again = await host.rerun(first.execution_id)
        assert again.status is RunStatus.COMPLETED
        row = host.history.list(limit=1).runs[0]
        assert (row.execution_id, row.trigger, row.workflow_version) == (
            again.execution_id,
            "rerun",
            1,
        )


def test_an_unknown_trigger_is_refused(tmp_path: Path) -> None:
    with make_host(tmp_path) as host:
        plan = host.compile(parse_workflow({**greeting(), "id": "greet"}))
        with pytest.raises(InputError, match="no run trigger 'cron'") as info:
            host.run_sync(plan, trigger="cron")
        assert info.value.field == "trigger"


def test_a_webhook_name_belongs_to_one_deployed_workflow(tmp_path: Path) -> None:
    hook = {"webhook": "orders"}
    with make_host(tmp_path) as host:
        host.deployments.deploy(greeting(triggers=[hook]), "first")
        found = host.deployments.find_webhook("orders")
        assert found is not None
        deployed, trigger = found
        assert (deployed.id, trigger.webhook) == ("first", "orders")
        assert host.deployments.find_webhook("nope") is None
        with pytest.raises(CompileError) as info:
            host.deployments.deploy(greeting(triggers=[{"schedule": "@daily"}, hook]), "second")
        [diagnostic] = info.value.diagnostics
        assert diagnostic.field == "triggers[1].webhook"
        assert "taken by the deployed workflow 'first'" in diagnostic.message
        # The same workflow may keep its own name in a new version; once it is undeployed the
        # name is free.
        assert host.deployments.deploy(greeting("hi", triggers=[hook]), "first").version == 2
        host.deployments.undeploy("first")
        assert host.deployments.find_webhook("orders") is None
        assert host.deployments.deploy(greeting(triggers=[hook]), "second").created


def test_a_workflow_model_deploys_too(tmp_path: Path) -> None:
    with make_host(tmp_path) as host:
        model = parse_workflow(greeting())
        assert isinstance(model, Workflow)
        deployed = host.deployments.deploy(model, "greet")
        assert deployed.version == 1
        assert host.deployments.deploy(greeting(), "greet").created is False


def test_a_folder_deploys_file_by_file_and_reports_the_broken_ones(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "hello.yaml").write_text(
        "version: 1\nnodes: [{id: a, type: core.transform, with: {value: 1}}]\n"
    )
    (folder / "named.json").write_text(
        json.dumps(
            {
                "version": 1,
                "id": "custom",
                "nodes": [{"id": "a", "type": "core.log", "with": {"message": "hi"}}],
            }
        )
    )
    (folder / "broken.yml").write_text(
        "version: 1\nnodes: [{id: a, type: core.nothing}]\ntriggers: [{schedule: '99 * * * *'}]\n"
    )
    (folder / "unreadable.yaml").write_text("version: 1\nnodes: [\n")
    (folder / "notes.txt").write_text("not a workflow")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.yaml").write_text("version: 1\nnodes: []\n")
    with make_host(tmp_path) as host:
        report = host.deployments.deploy_folder(folder)
        assert [(Path(p).name, d.id, d.version) for p, d in report.deployed] == [
            ("hello.yaml", "hello", 1),
            ("named.json", "custom", 1),
        ]
        failed = {Path(f.path).name: f for f in report.failed}
        assert set(failed) == {"broken.yml", "unreadable.yaml"}
        broken = {d.field for d in failed["broken.yml"].diagnostics}
        assert {"type", "triggers[0].schedule"} <= broken
        assert "not valid YAML" in failed["unreadable.yaml"].message
        assert not report.ok
        lines = report.lines()
        assert any("hello deployed as version 1" in line for line in lines)
        assert any("broken.yml: not deployed" in line for line in lines)
        assert sorted(d.id for d in host.deployments.list()) == ["custom", "hello"]
        # Deploying the folder again changes nothing that did not change.
        again = host.deployments.deploy_folder(folder)
        assert [d.created for _, d in again.deployed] == [False, False]


def test_a_folder_manifest_travels_with_its_versions(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "deployed_upper_nodes.py").write_text(
        "def upper(params):\n    return {'text': params['text'].upper()}\n"
    )
    (folder / "polyhost.toml").write_text(
        '[[nodes]]\ntype = "acme.deployed_upper"\nruntime = "python"\n'
        'handler = "deployed_upper_nodes:upper"\n'
    )
    (folder / "upper.yaml").write_text(
        "version: 1\nnodes:\n"
        "  - {id: up, type: acme.deployed_upper, with: {text: '{{ input.word }}'}}\n"
    )
    with make_host(tmp_path) as first:
        assert first.deployments.deploy_folder(folder).ok
    # Another host on the same store, as a second server would be, has never seen the manifest.
    with make_host(tmp_path) as second:
        assert second.catalog.get("acme.deployed_upper") is None
        plan = second.deployments.compiled("upper")
        assert plan.manifests == (str((folder / "polyhost.toml").resolve()),)
        result = second.run_sync(plan, {"word": "loud"})
        assert result.outputs == {"up": {"text": "LOUD"}}


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with make_host(tmp_path) as host, pytest.raises(WorkflowLoadError, match="not a folder"):
        host.deployments.deploy_folder(tmp_path / "missing")


def test_a_host_without_a_store_keeps_no_deployments(tmp_path: Path) -> None:
    with (
        Host(HostConfig(home=tmp_path), store=None) as host,
        pytest.raises(RunStateError, match="without a store"),
    ):
        host.deployments.deploy(greeting(), "greet")


def test_a_resolved_deployment_is_reused_until_this_host_deploys_again(tmp_path: Path) -> None:
    with make_host(tmp_path) as host:
        deployments = host.deployments
        deployments.deploy(greeting(), "greet")
        assert deployments.recently_resolved("greet") is None
        found, plan = deployments.resolve("greet")
        assert deployments.recently_resolved("greet") == (found, plan)
        deployments.deploy(greeting("hi"), "greet")
        assert deployments.recently_resolved("greet") is None
        newer, _ = deployments.resolve("greet")
        assert newer.version == 2
        assert deployments.undeploy("greet")
        assert deployments.recently_resolved("greet") is None
