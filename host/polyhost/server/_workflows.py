"""Health, the node catalog, compile, deployed workflows and their runs, webhooks."""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response

from .._errors import CompileError, PolyhostError, WorkflowNotFoundError
from .._version import __version__
from ..api import (
    CompileRequest,
    CompileResponse,
    Deployed,
    DiagnosticModel,
    Health,
    NodeTypeModel,
    RunAccepted,
    RunResultModel,
    StartRunRequest,
    WebhookAccepted,
    WorkflowDetail,
    WorkflowList,
)
from ..host._triggers import verify_signature, webhook_inputs
from ..workflow._diagnostics import Diagnostic
from ..workflow._model import Workflow
from ._body import is_yaml, read_json, read_model
from ._docs import answers, body_of
from ._problems import ApiError
from ._runs import answer_started, start_run
from ._state import ServerState, state_of

__all__ = ["hooks", "router", "service"]

service = APIRouter(tags=["service"])
router = APIRouter(prefix="/workflows", tags=["workflows"])
hooks = APIRouter(prefix="/hooks", tags=["triggers"])


@service.get("/health", response_model=Health)
async def health() -> Response:
    """Liveness and version; needs no token."""
    return JSONResponse({"status": "ok", "version": __version__})


@service.get("/nodes", response_model=list[NodeTypeModel])
async def nodes(request: Request) -> Response:
    """The node-type catalog (``polyhost nodes --json``)."""
    catalog = state_of(request).host.catalog
    return JSONResponse([node_type.summary() for node_type in catalog])


@service.post("/compile", openapi_extra=body_of(CompileRequest), response_model=CompileResponse)
async def compile_document(request: Request) -> Response:
    """Check a workflow document; invalid documents answer 200 with ``ok: false``."""
    state = state_of(request)
    body = await read_model(request, state.host, CompileRequest)
    try:
        workflow = _parse(state, body.workflow)
        diagnostics = await state.read(state.host.check, workflow)
    except CompileError as exc:
        diagnostics = list(exc.diagnostics)
    except PolyhostError as exc:
        diagnostics = [Diagnostic("error", exc.code, exc.message)]
    ok = not any(d.severity == "error" for d in diagnostics)
    found = [DiagnosticModel(**d.to_dict()).model_dump() for d in diagnostics]
    return JSONResponse({"ok": ok, "diagnostics": found})


def _parse(
    state: ServerState, document: dict[str, Any] | str, workflow_id: str | None = None
) -> Workflow:
    return state.host.parse(document, default_id=workflow_id, source="workflow")


# deployed workflows ---------------------------------------------------------------------------


@router.put(
    "/{workflow_id}",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
    responses=answers(Deployed, more={201: Deployed}),
)
async def deploy(request: Request, workflow_id: str) -> Response:
    """Deploy a document as the next version of ``workflow_id``; an unchanged document keeps
    its version (200), a new one gets the next (201)."""
    state = state_of(request)
    host = state.host
    if is_yaml(request):
        document: dict[str, Any] | bytes = await request.body()
        workflow = host.parse(document, default_id=workflow_id, source="workflow")
    else:
        value = await read_json(request, host)
        if not isinstance(value, dict):
            raise ApiError(
                400,
                "the body is a workflow document (a JSON object, or YAML with "
                "content-type application/yaml)",
                code="malformed_request",
                field="body",
            )
        workflow = host.parse(value, default_id=workflow_id, source="workflow")
    deployed = await state.read(host.deployments.deploy, workflow, workflow_id)
    answer = Deployed(
        id=deployed.id, version=deployed.version, hash=deployed.hash, created=deployed.created
    )
    return JSONResponse(answer.model_dump(), status_code=201 if deployed.created else 200)


@router.get("", response_model=WorkflowList)
async def list_workflows(request: Request) -> Response:
    """Every deployed workflow, with its latest version and triggers."""
    state = state_of(request)
    found = await state.read(state.host.deployments.list)
    return JSONResponse({"workflows": [d.summary() for d in found]})


@router.get("/{workflow_id}", response_model=WorkflowDetail)
async def get_workflow(
    request: Request, workflow_id: str, version: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    """One deployed workflow: its document (the latest, or ``?version=``), versions, triggers."""
    state = state_of(request)
    found = await state.read(state.host.deployments.get, workflow_id, version)
    return JSONResponse(found.detail())


@router.delete("/{workflow_id}", status_code=204, responses=answers(None))
async def undeploy(request: Request, workflow_id: str) -> Response:
    """Undeploy: its triggers stop, its history and versions are kept."""
    state = state_of(request)
    if not await state.read(state.host.deployments.undeploy, workflow_id):
        raise _unknown(workflow_id)
    return Response(status_code=204)


@router.post(
    "/{workflow_id}/runs",
    status_code=202,
    openapi_extra=body_of(StartRunRequest),
    responses=answers(RunResultModel, more={202: RunAccepted}),
)
async def run_workflow(
    request: Request, workflow_id: str, version: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    """Start a run of the latest version (or ``?version=``)."""
    state = state_of(request)
    body = await read_model(request, state.host, StartRunRequest)
    deployments = state.host.deployments
    found = deployments.recently_resolved(workflow_id, version)
    if found is None:
        found = await state.read(deployments.resolve, workflow_id, version)
    deployment, compiled = found
    started = await start_run(
        state, compiled, body.inputs, trigger="api", workflow_version=deployment.version
    )
    return await answer_started(state, started, body.wait)


def _unknown(workflow_id: str) -> PolyhostError:
    return WorkflowNotFoundError(f"no workflow {workflow_id!r} is deployed")


# webhooks -------------------------------------------------------------------------------------


@hooks.post("/{name}", status_code=202, responses=answers(WebhookAccepted))
async def webhook(request: Request, name: str) -> Response:
    """Start the run of the deployed workflow whose webhook trigger is ``name``."""
    state = state_of(request)
    host = state.host
    found = await state.read(host.deployments.find_webhook, name)
    if found is None:
        raise ApiError(404, f"no webhook named {name!r}", code="webhook_not_found")
    deployment, trigger = found
    body = await request.body()
    if trigger.secret_env:
        secret = _secret(trigger.secret_env)
        if not verify_signature(secret, body, request.headers.get("x-polyhost-signature")):
            raise ApiError(
                401, "the X-Polyhost-Signature header is missing or wrong", code="bad_signature"
            )
    elif not state.authorized(request):
        raise ApiError(401, "a bearer token is required", code="unauthorized")
    payload = await read_json(request, host) if body else None
    headers = {key.lower(): value for key, value in request.headers.items()}
    inputs = webhook_inputs(trigger, payload, headers, dict(request.query_params))
    compiled = await state.read(host.deployments.compiled, deployment.id, deployment.version)
    started = await start_run(
        state, compiled, inputs, trigger="webhook", workflow_version=deployment.version
    )
    await state.require_launcher().recorded()
    return JSONResponse({"execution_id": started.run_id}, status_code=202)


def _secret(env: str) -> bytes:
    value = os.environ.get(env)
    if not value:
        # Configured but unset: refuse every request rather than accept unsigned ones.
        raise ApiError(
            503,
            f"the webhook's secret ${env} is not set on the server",
            code="webhook_secret_missing",
        )
    return value.encode()
