"""Reading workflow files (YAML or JSON) into the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ._compiler import parse_workflow
from ._errors import WorkflowLoadError
from ._model import Workflow

__all__ = ["load_document", "load_workflow"]

MANIFEST_NAME = "polyhost.toml"


def load_document(path: str | Path) -> Any:
    """The parsed YAML or JSON value of a workflow file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowLoadError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowLoadError(f"{path}: cannot read the file: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkflowLoadError(
                f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise WorkflowLoadError(f"{path}{where}: not valid YAML: {problem}") from None


def load_workflow(path: str | Path) -> Workflow:
    """Read and validate a workflow file; its id defaults to the file name."""
    path = Path(path)
    return parse_workflow(load_document(path), default_id=path.stem)
