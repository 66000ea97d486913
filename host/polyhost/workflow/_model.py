"""The workflow document (spec section 1) as pydantic models: the single source of truth.

Unknown keys are rejected everywhere so that typos never pass silently. ``polyhost schema``
prints :func:`workflow_json_schema`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
)

from ._triggers import MAX_TRIGGERS, Trigger
from ._units import parse_duration

__all__ = [
    "Body",
    "Duration",
    "Edge",
    "Node",
    "RetryPolicy",
    "Workflow",
    "workflow_json_schema",
]

NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_NODE_ID = re.compile(NODE_ID_PATTERN)

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda v: v, return_type=float),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
            ],
            "description": "seconds, or a string such as 250ms, 10s, 5m, 1h",
        }
    ),
]


class _Strict(BaseModel):
    # strict: no coercion, so `attempts: true` is not 1 nor `version: "1"` the version.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


class RetryPolicy(_Strict):
    """How often and how patiently a failed node is tried again."""

    attempts: int = Field(1, ge=1, le=1000, description="tries in all, counting the first")
    backoff: Literal["fixed", "exponential"] = "fixed"
    delay: Duration = Field(1.0, description="wait before the second try")
    max_delay: Duration = Field(60.0, description="cap on any one wait")
    jitter: bool = Field(
        True, description="randomise exponential waits (full jitter) so retries do not align"
    )

    def delay_before(self, attempt: int, rand: float) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry); ``rand`` in [0, 1)."""
        if self.backoff == "fixed":
            return min(self.delay, self.max_delay)
        base: float = min(self.delay * 2.0 ** (attempt - 2), self.max_delay)
        # Full jitter (spread over [base/2, base]) keeps retries of many nodes from aligning.
        return base * (0.5 + rand / 2) if self.jitter else base


class Edge(_Strict):
    """A dependency: ``to`` runs after ``from`` settles on ``port``."""

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    port: str = "out"


class Body(_Strict):
    """The workflow inside a loop or parallel node."""

    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    outputs: dict[str, Any] | None = None


class Node(_Strict):
    """One step of a workflow."""

    id: str = Field(description="unique id, [A-Za-z_][A-Za-z0-9_]*", pattern=NODE_ID_PATTERN)
    type: str = Field(description="a node type from the catalog")
    name: str | None = None
    description: str | None = None
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    when: str | None = Field(None, description="CEL condition; false skips the node")
    retry: RetryPolicy | None = None
    timeout: Duration | None = None
    on_error: Literal["fail", "continue"] = "fail"
    body: Body | None = None


class Workflow(_Strict):
    """A workflow document, version 1."""

    version: Literal[1]
    id: str | None = Field(None, min_length=1, description="defaults to the file name")
    name: str | None = None
    description: str | None = None
    inputs: dict[str, Any] | None = Field(None, description="JSON Schema (type: object)")
    variables: dict[str, Any] = Field(default_factory=dict)
    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    outputs: dict[str, Any] | None = None
    triggers: list[Trigger] = Field(
        default_factory=list,
        max_length=MAX_TRIGGERS,
        description="what starts the workflow once deployed: schedules and webhooks",
    )
    # Not part of the document: the manifests ``Host.load`` read with it, which travel with
    # the workflow into its compiled plan and the record of each of its runs.
    _manifests: tuple[str, ...] = PrivateAttr(default=())

    @property
    def manifests(self) -> tuple[str, ...]:
        """The manifests (``polyhost.toml``) loaded with this workflow, if any."""
        return self._manifests

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_the_integer_1(cls, value: Any) -> Any:
        # A Literal matches by equality, and true == 1.0 == 1 in Python.
        if type(value) is not int:
            raise ValueError(f"the version is the integer 1, found {value!r}")
        return value

    @field_validator("inputs")
    @classmethod
    def _inputs_is_object_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type", "object") != "object":
            raise ValueError("the inputs schema must have type: object")
        return value


Body.model_rebuild()


def workflow_json_schema() -> dict[str, Any]:
    """The JSON Schema of the workflow document, for editors and ``polyhost schema``."""
    schema = Workflow.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "polyhost workflow"
    return schema


def is_valid_id(value: str) -> bool:
    """True when ``value`` can name a node."""
    return _NODE_ID.match(value) is not None
