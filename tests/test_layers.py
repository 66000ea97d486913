"""The import rules the import graph cannot check (`make lint` runs this next to lint-imports).

``polyhost._native`` is an extension module, which lint-imports does not see: the bridge's
``from . import _native`` shows as an import of the root package, which the contracts in
pyproject.toml ignore for the bridge. These tests hold the rule that the bridge alone reaches
the extension, and that no other module imports the root package (which imports everything).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "host" / "polyhost"
# The one module that imports the extension and turns its types and errors into the host's.
NATIVE_IMPORTERS = {"polyhost.plan._bridge"}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        if "_proto" in relative.parts:
            continue  # generated code
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), ast.parse(path.read_text(encoding="utf-8"), str(path))


def imported(module: str, tree: ast.Module) -> Iterator[tuple[str, list[str], int]]:
    """(the module imported from, the names imported, line) for every import, made absolute."""
    is_package = module == "polyhost" or (PACKAGE.parent / module.replace(".", "/")).is_dir()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            yield base, [alias.name for alias in node.names], node.lineno


def test_only_the_bridge_imports_the_extension() -> None:
    found: set[str] = set()
    for module, tree in modules():
        for target, names, _ in imported(module, tree):
            if target == "polyhost._native" or (target == "polyhost" and "_native" in names):
                found.add(module)
    assert found == NATIVE_IMPORTERS


def is_submodule(name: str) -> bool:
    return (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name).is_dir()


def test_no_module_imports_the_root_package_except_for_the_extension() -> None:
    # `from polyhost import _errors` imports a module, which the import graph sees; a name
    # defined by polyhost/__init__.py would be an import of everything, which it would not.
    offending = [
        f"{module}:{line} imports {name}"
        for module, tree in modules()
        if module != "polyhost"
        for target, names, line in imported(module, tree)
        if target == "polyhost"
        for name in names
        if name != "_native" and not is_submodule(name)
    ]
    assert offending == []
