"""Every limit polyhost enforces, with its safe default and its setting.

One model, so that a limit has one name everywhere: in the error that reports it, in
``docs/limits.md`` and in the setting that raises it. A host takes its limits from
``HostConfig.limits``; a value can also be set for a whole process with an environment variable
named after the field, ``POLYHOST_LIMIT_<FIELD>`` (``POLYHOST_LIMIT_MAX_DOCUMENT_BYTES=1000000``).
Code that has no host at hand (the compiler called on its own) uses :func:`default_limits`.
"""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._errors import LimitExceededError, PolyhostError

__all__ = ["LimitExceededError", "Limits", "default_limits"]

_ENV_PREFIX = "POLYHOST_LIMIT_"
_KiB = 1024
_MiB = 1024 * _KiB


class Limits(BaseModel):
    """The limits of one host. Each field's description is its row in docs/limits.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- documents (loading and compiling) ------------------------------------------------
    max_document_bytes: int = Field(
        16 * _MiB, ge=1, description="size of a workflow or manifest file"
    )
    max_document_depth: int = Field(
        64, ge=4, description="nesting of lists and maps in a workflow document"
    )
    max_document_values: int = Field(
        2_000_000,
        ge=1,
        description="values (scalars, lists and maps) a document may hold once YAML aliases "
        "are expanded",
    )
    max_nodes: int = Field(
        200_000, ge=1, description="nodes in one workflow, loop and parallel bodies included"
    )
    max_body_depth: int = Field(
        16, ge=1, description="loop and parallel bodies nested inside one another"
    )

    # -- runs, loops and parallel branches ----------------------------------------------------
    max_value_depth: int = Field(
        128,
        ge=1,
        le=512,
        description="nesting of lists and maps in a value: a node's output, a value put in "
        "an expression's scope",
    )
    max_parallel_branches: int = Field(
        10_000, ge=1, description="branches of one core.parallel node (`count` or `over`)"
    )
    default_loop_iterations: int = Field(
        10_000,
        ge=1,
        description="iterations of a core.loop whose `max_iterations` is not given",
    )
    max_loop_iterations: int = Field(
        1_000_000,
        ge=1,
        description="the largest `max_iterations` (and `count` or `over` length) of a core.loop",
    )
    max_retry_delay: float = Field(
        3600.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds of any one wait between retries; a longer wait is shortened to it",
    )

    # -- inputs and JSON Schema ---------------------------------------------------------------
    max_schema_pattern_bytes: int = Field(
        1 * _MiB,
        ge=4 * _KiB,
        description="compiled size of one JSON Schema `pattern` or `patternProperties` key "
        "(the linear-time program and each of its match caches)",
    )
    max_schema_steps: int = Field(
        500_000,
        ge=1_000,
        description="keyword evaluations in one validation against a JSON Schema (run inputs, "
        "a node's parameters, an approval's resume input)",
    )

    # -- native nodes (CSV, text) -------------------------------------------------------------
    # Enforced in Rust; the native runtime passes these values in (see _native.py).
    max_csv_record_bytes: int = Field(
        16 * _MiB,
        ge=1 * _KiB,
        le=1024 * _MiB,
        description="bytes of one CSV record (a line, or several when a quoted field spans "
        "them), header included; a reader's memory is a small multiple of it",
    )
    max_csv_record_fields: int = Field(
        100_000, ge=1, le=10_000_000, description="fields of one CSV record, header included"
    )
    max_csv_where_depth: int = Field(
        100,
        ge=1,
        le=1_000,
        description="nesting of `not` and parentheses in a csv.query `where` (chains of "
        "`and` and `or` do not nest)",
    )
    max_text_vocabulary_bytes: int = Field(
        64 * _MiB,
        ge=1 * _KiB,
        description="memory for the distinct words text.stats keeps to list the most frequent "
        "(each word's bytes plus 64); `top: 0` keeps none",
    )

    # -- expressions and templates ------------------------------------------------------------
    max_expression_bytes: int = Field(
        64 * _KiB, ge=16, description="length of one CEL expression (one `{{ }}` template)"
    )
    max_expression_depth: int = Field(
        500,
        ge=8,
        le=2_000,
        description="depth of an expression's syntax tree: operators chained or nested, "
        "member, index and call chains, brackets (each level takes about 2 KiB of stack)",
    )
    max_expression_steps: int = Field(
        1_000_000,
        ge=1,
        description="comprehension steps (elements visited by `map`, `filter`, `all`, "
        "`exists`, `exists_one`) in one evaluation",
    )
    max_expression_memory: int = Field(
        64 * _MiB,
        ge=_KiB,
        description="bytes of values (lists, maps, strings) one evaluation builds",
    )

    # -- WebAssembly modules (read from the module's sections, before compiling) ----------
    max_wasm_module_bytes: int = Field(
        128 * _MiB, ge=1, description="size of a wasm node type's module file"
    )
    max_wasm_functions: int = Field(
        50_000, ge=1, description="functions a wasm module defines and imports"
    )
    max_wasm_imports: int = Field(10_000, ge=1, description="imports of a wasm module")
    max_wasm_exports: int = Field(10_000, ge=1, description="exports of a wasm module")

    # -- sidecars and the processes the host starts -----------------------------------------
    max_sidecar_line_bytes: int = Field(
        16 * _KiB,
        ge=256,
        description="a line of a managed sidecar's stdout or stderr (a longer one is cut there "
        "and marked)",
    )

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, overridden by ``POLYHOST_LIMIT_<FIELD>`` variables."""
        values: dict[str, str] = {}
        for name in cls.model_fields:
            raw = os.environ.get(_ENV_PREFIX + name.upper())
            if raw is not None and raw.strip():
                values[name] = raw.strip()
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{_ENV_PREFIX}{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors()
            )
            raise PolyhostError(
                f"invalid limit setting: {problems}", code="invalid_setting"
            ) from None


@cache
def default_limits() -> Limits:
    """The limits of this process: defaults and ``POLYHOST_LIMIT_*`` (read once)."""
    return Limits.from_env()
