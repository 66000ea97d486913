"""OpenAPI for bodies the server parses itself.

Request bodies are read by :mod:`._body` (within the document limits) rather than by FastAPI, so
their schemas are declared here, from the same pydantic models that validate them, and merged
into the document's components by :func:`request_schemas`.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from ..api import Problem

__all__ = ["REF", "answers", "body_of", "request_schemas"]

REF: Final = "#/components/schemas/{model}"
_REQUEST_MODELS: dict[str, type[BaseModel]] = {}
_PROBLEM: Final = {"model": Problem, "description": "an error (application/problem+json)"}


def body_of(model: type[BaseModel], *, yaml: bool = False) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON body validated by ``model``."""
    _REQUEST_MODELS[model.__name__] = model
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}
    }
    if yaml:
        content["application/yaml"] = {"schema": {"type": "string"}}
    return {"requestBody": {"required": False, "content": content}}


def answers(
    model: type[BaseModel] | None, *, more: dict[int, type[BaseModel]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of an endpoint: its model (200), other successes, and the problems
    it may answer."""
    responses: dict[int | str, dict[str, Any]] = {}
    if model is not None:
        responses[200] = {"model": model}
    for status, other in (more or {}).items():
        responses[status] = {"model": other}
    for status in (400, 401, 404, 409, 413, 422):
        responses[status] = _PROBLEM
    return responses


def request_schemas() -> dict[str, Any]:
    """The JSON Schemas of every request model declared with :func:`body_of`."""
    schemas: dict[str, Any] = {}
    for name, model in _REQUEST_MODELS.items():
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    return schemas
