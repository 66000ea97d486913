"""The endpoints of the HTTP API v1 as :class:`Call` objects, one function each.

Request bodies are built with the API's own request models, so a call the server would refuse
for its shape fails here first, naming the argument. They are dumped in Python mode and encoded
by ``json_body``: a value that is not JSON (NaN, a datetime) is an error at the call, never
turned into something else on the way.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel

from ..api import (
    AdhocRunRequest,
    CompileRequest,
    CompileResponse,
    Deployed,
    EventList,
    EventModel,
    Health,
    NodeTypeModel,
    ResumeRequest,
    RunAccepted,
    RunList,
    RunSummaryModel,
    StartRunRequest,
    WebhookAccepted,
    WorkflowDetail,
    WorkflowList,
    WorkflowSummary,
)
from ..events._result import RunResult
from ._wire import (
    JSON,
    Call,
    as_model,
    as_models,
    as_none,
    as_result,
    checked,
    json_body,
    segment,
)

__all__ = [
    "SIGNATURE_HEADER",
    "Document",
    "Wait",
    "adhoc_run",
    "cancel",
    "compile_workflow",
    "deploy",
    "events",
    "health",
    "hook",
    "nodes",
    "rerun",
    "resume",
    "retry",
    "run_result",
    "runs",
    "start",
    "undeploy",
    "workflow",
    "workflows",
]

T = TypeVar("T")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)

Document = dict[str, Any] | str  # a workflow document: an object, or YAML/JSON text
Wait = float | Literal[False]  # seconds to wait for the run to end or pause, or not at all
SIGNATURE_HEADER = "X-Polyhost-Signature"
YAML = "application/yaml"


def health() -> Call[Health]:
    """``GET /health``."""
    return Call("GET", "health", as_model(Health))


def nodes() -> Call[list[NodeTypeModel]]:
    """``GET /nodes``."""
    return Call("GET", "nodes", as_models(NodeTypeModel))


def compile_workflow(document: Document) -> Call[CompileResponse]:
    """``POST /compile``."""
    body = CompileRequest(workflow=document).model_dump()
    return _post("compile", body, as_model(CompileResponse))


def deploy(workflow_id: str, document: Document) -> Call[Deployed]:
    """``PUT /workflows/{id}``: YAML text goes as ``application/yaml``, an object as JSON."""
    if isinstance(document, str):
        content, kind = document.encode("utf-8"), YAML
    else:
        content, kind = json_body(document), JSON
    path = f"workflows/{segment(workflow_id)}"
    return Call("PUT", path, as_model(Deployed), body=content, headers={"Content-Type": kind})


def workflows() -> Call[list[WorkflowSummary]]:
    """``GET /workflows``."""
    return Call("GET", "workflows", _unwrap(WorkflowList, lambda page: page.workflows))


def workflow(workflow_id: str) -> Call[WorkflowDetail]:
    """``GET /workflows/{id}``."""
    return Call("GET", f"workflows/{segment(workflow_id)}", as_model(WorkflowDetail))


def undeploy(workflow_id: str) -> Call[None]:
    """``DELETE /workflows/{id}``."""
    return Call("DELETE", f"workflows/{segment(workflow_id)}", as_none)


def start(
    workflow_id: str, inputs: dict[str, Any] | None, wait: Wait, version: int | None
) -> Call[RunAccepted | RunResult]:
    """``POST /workflows/{id}/runs``."""
    body = StartRunRequest(inputs=inputs or {}, wait=wait).model_dump()
    params: dict[str, str | int] | None = {"version": version} if version is not None else None
    path = f"workflows/{segment(workflow_id)}/runs"
    return _post(path, body, _accepted_or_result, params=params, hold=_held(wait))


def adhoc_run(
    document: Document, inputs: dict[str, Any] | None, wait: Wait
) -> Call[RunAccepted | RunResult]:
    """``POST /runs``."""
    request = AdhocRunRequest(workflow=document, inputs=inputs or {}, wait=wait)
    return _post("runs", request.model_dump(), _accepted_or_result, hold=_held(wait))


def runs(
    workflow_id: str | None, status: str | None, limit: int | None, cursor: str | None
) -> Call[RunList]:
    """``GET /runs``."""
    given = {"workflow": workflow_id, "status": status, "limit": limit, "cursor": cursor}
    params = {key: value for key, value in given.items() if value is not None}
    return Call("GET", "runs", as_model(RunList), params=params)


def run_result(run_id: str) -> Call[RunResult]:
    """``GET /runs/{id}``."""
    return Call("GET", f"runs/{segment(run_id)}", as_result)


def events(run_id: str, after: int, limit: int | None) -> Call[list[EventModel]]:
    """``GET /runs/{id}/events``."""
    params: dict[str, str | int] = {"after": after}
    if limit is not None:
        params["limit"] = limit
    decode = _unwrap(EventList, lambda page: page.events)
    return Call("GET", f"runs/{segment(run_id)}/events", decode, params=params)


def resume(run_id: str, inputs: dict[str, Any] | None) -> Call[RunSummaryModel]:
    """``POST /runs/{id}/resume``; no inputs is not empty inputs (a timer takes none)."""
    body = ResumeRequest(inputs=inputs).model_dump(exclude_none=True)
    return _post(f"runs/{segment(run_id)}/resume", body, as_model(RunSummaryModel))


def cancel(run_id: str) -> Call[RunSummaryModel]:
    """``POST /runs/{id}/cancel``."""
    return _post(f"runs/{segment(run_id)}/cancel", {}, as_model(RunSummaryModel))


def retry(run_id: str) -> Call[RunSummaryModel]:
    """``POST /runs/{id}/retry``."""
    return _post(f"runs/{segment(run_id)}/retry", {}, as_model(RunSummaryModel))


def rerun(run_id: str) -> Call[RunSummaryModel]:
    """``POST /runs/{id}/rerun``: the summary of the new run."""
    return _post(f"runs/{segment(run_id)}/rerun", {}, as_model(RunSummaryModel))


def hook(name: str, body: Any, secret: str | bytes | None) -> Call[WebhookAccepted]:
    """``POST /hooks/{name}``: ``body`` as JSON, or bytes sent as they are; with a
    ``secret``, signed as the trigger's ``secret_env`` requires (HMAC-SHA256 of the raw body)."""
    content = body if isinstance(body, bytes) else json_body(body)
    headers = {"Content-Type": JSON}
    if secret is not None:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        digest = hmac.new(key, content, hashlib.sha256).hexdigest()
        headers[SIGNATURE_HEADER] = f"sha256={digest}"
    path = f"hooks/{segment(name)}"
    return Call("POST", path, as_model(WebhookAccepted), body=content, headers=headers)


def _post(
    path: str,
    body: Any,
    decode: Callable[[httpx.Response], T],
    *,
    params: dict[str, str | int] | None = None,
    hold: float = 0.0,
) -> Call[T]:
    headers = {"Content-Type": JSON}
    return Call(
        "POST", path, decode, params=params, body=json_body(body), headers=headers, hold=hold
    )


def _accepted_or_result(response: httpx.Response) -> RunAccepted | RunResult:
    # 200: the run ended or paused within `wait`, and this is its result; 202: it goes on.
    if checked(response).status_code == 200:
        return as_result(response)
    return as_model(RunAccepted)(response)


def _held(wait: Wait) -> float:
    return 0.0 if wait is False else float(wait)


def _unwrap(model: type[M], member: Callable[[M], R]) -> Callable[[httpx.Response], R]:
    reader = as_model(model)
    return lambda response: member(reader(response))
