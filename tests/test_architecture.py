"""The architecture as tests: no import cycle between files, no placeholder package docstrings,
every exception in the one tree, no function over 100 lines.

The layer order itself is import-linter's `layers` contract in pyproject.toml (run by CI); this module
checks what import-linter does not: that no two files import each other, directly or through others.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import grimp
import pytest

PACKAGES = ("dgdr", "events", "projections", "sim", "k8s")
MAX_FUNCTION_LINES = 100
ROOT = Path(__file__).resolve().parents[1]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_between_files() -> None:
    graph = grimp.build_graph(*PACKAGES)
    assert len(graph.modules) > 60  # the graph really holds the project
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "b", "c", "d"):
        graph.add_module(name)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    graph.add_import(importer="c", imported="d")
    assert _cycles(graph) == [["a", "b", "c"]]


def test_every_package_says_what_it_owns() -> None:
    undocumented = []
    for top in PACKAGES:
        package = importlib.import_module(top)
        packages = [package] + [
            importlib.import_module(info.name)
            for info in pkgutil.walk_packages(package.__path__, f"{top}.")
            if info.ispkg
        ]
        for pkg in packages:
            doc = (pkg.__doc__ or "").strip()
            if len(doc) < 80 or "placeholder" in doc.lower():
                undocumented.append(pkg.__name__)
    assert undocumented == []


def _project_modules() -> list[str]:
    names = []
    for top in PACKAGES:
        package = importlib.import_module(top)
        names.append(top)
        names += [
            info.name
            for info in pkgutil.walk_packages(package.__path__, f"{top}.")
            if not info.name.endswith("__main__")
        ]
    return names


def test_every_exception_class_is_in_the_one_tree() -> None:
    import dgdr
    from dgdr.domain import errors

    outside, undrawn = [], []
    for name in _project_modules():
        if name.startswith("k8s.emulator"):  # stands alone: answers with Kubernetes Status objects
            continue
        module = importlib.import_module(name)
        for attr in vars(module).values():
            if (
                isinstance(attr, type)
                and issubclass(attr, BaseException)
                and attr.__module__ == name
            ):
                if not issubclass(attr, errors.DgdrError):
                    outside.append(f"{name}.{attr.__name__}")
                if f" {attr.__name__} " not in errors.__doc__.replace("\n", " "):
                    undrawn.append(attr.__name__)
                if attr.__name__ not in dgdr.__all__:
                    undrawn.append(f"dgdr.{attr.__name__}")
    assert outside == [] and undrawn == []


def test_the_public_names_resolve() -> None:
    import dgdr

    aliases = {"DgdrObject"}  # a type alias of dict[str, Any]
    for name in dgdr.__all__:
        value = getattr(dgdr, name)
        assert name in aliases or value.__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'Nonexistent'"):
        _ = dgdr.Nonexistent


def test_no_function_is_over_100_lines() -> None:
    long = []
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        long.append(f"{path}:{node.lineno} {node.name} ({length} lines)")
    assert long == []
