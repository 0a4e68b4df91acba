"""The tree is the architecture (STYLE.md): no import cycles between the modules of
`settlement`, no I/O in the pure layers, no loose modules at the top.

The import graph is read from the source files with `ast`, not by importing
them: every `import` and `from … import` anywhere in a module counts (inside
functions too: a lazy import is still a dependency), except those under
`if TYPE_CHECKING:`, which never run. `from pkg import name` is an import of
`pkg.name` when that is a module, else of `pkg`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from importlib.machinery import PathFinder
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "settlement"

PURE_LAYERS = ("settlement.core", "settlement.ledger", "settlement.escrow",
               "settlement.projections.model", "settlement.banking", "settlement.parties")
IO_MODULES = ("psycopg", "aiokafka", "fastapi", "starlette", "uvicorn", "httpx",
              "eventsourcing.postgres", "settlement.infra", "settlement.store",
              "settlement.api", "settlement.cli")

Graph = Mapping[str, set[str]]


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package at `root`, by dotted name (a package by its own)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _is_module(name: str, modules: Iterable[str]) -> bool:
    if name.split(".")[0] == PACKAGE.name:
        return name in modules  # ours: `modules` has them all
    # Another package's: looked for on sys.path without importing anything.
    search: list[str] | None = None
    parts = name.split(".")
    for n in range(1, len(parts) + 1):
        spec = PathFinder.find_spec(".".join(parts[:n]), search)
        if spec is None:
            return False
        search = spec.submodule_search_locations
        if search is None and n < len(parts):
            return False  # a module, not a package: `name` is an attribute of it
    return True


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, modules: Iterable[str]) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.modules = modules
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[:len(base) - (node.level - 1)]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        for alias in node.names:
            name = f"{source}.{alias.name}"
            self.found.add(name if alias.name != "*" and _is_module(name, self.modules)
                           else source)


def imports_of(source: str, module: str, *, is_package: bool = False,
               modules: Iterable[str] = ()) -> set[str]:
    """The absolute names of the modules `source` (the text of `module`) imports."""
    visitor = _Imports(module, is_package, modules)
    visitor.visit(ast.parse(source))
    return visitor.found


def _internal(name: str, modules: Iterable[str]) -> str | None:
    """The module of ours that `name` is, or lies in (`import a.b.c` of a name)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path = PACKAGE) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(each module's imports of our modules, each module's imports of any name)."""
    modules = module_names(root)
    everything = {name: imports_of(path.read_text(), name,
                                   is_package=path.name == "__init__.py", modules=modules)
                  for name, path in modules.items()}
    ours: dict[str, set[str]] = {}
    for name, found in everything.items():
        targets = (_internal(target, modules) for target in found)
        ours[name] = {t for t in targets if t is not None and t != name}
    return ours, everything


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle, as a path `[a, b, …, a]`, per strongly connected group of
    modules that import each other (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(group)
    return [_cycle_in(group, graph) for group in groups]


def _cycle_in(group: set[str], graph: Graph) -> list[str]:
    """A shortest cycle through the group's first module (breadth first)."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(group)}")


def _within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# The graph reader and the cycle finder themselves -------------------------------

def test_imports_are_read_everywhere_but_under_type_checking() -> None:
    source = """
from typing import TYPE_CHECKING
import json, os.path
from . import sibling
from .. import elsewhere
from ..core.money import Money
from settlement.infra import broker, config

if TYPE_CHECKING:
    import psycopg
else:
    import decimal

def lazy():
    import aiokafka
"""
    modules = {"settlement", "settlement.cli", "settlement.cli.main", "settlement.cli.sibling",
               "settlement.core", "settlement.core.money", "settlement.infra",
               "settlement.infra.broker"}
    found = imports_of(source, "settlement.cli.main", modules=modules)
    assert found == {"typing", "json", "os.path", "settlement.cli.sibling", "settlement",
                     "settlement.core.money", "settlement.infra.broker", "settlement.infra",
                     "decimal", "aiokafka"}


def test_relative_imports_of_a_package_resolve_from_the_package_itself() -> None:
    modules = {"settlement.escrow", "settlement.escrow.aggregate"}
    found = imports_of("from .aggregate import Escrow\n", "settlement.escrow",
                       is_package=True, modules=modules)
    assert found == {"settlement.escrow.aggregate"}


def test_an_external_submodule_imported_by_name_counts_as_that_module() -> None:
    assert imports_of("from eventsourcing import postgres\n", "settlement.core.x") == \
        {"eventsourcing.postgres"}
    assert imports_of("from eventsourcing import utils as u\n", "settlement.core.x") == \
        {"eventsourcing.utils"}
    assert imports_of("from datetime import datetime\n", "settlement.core.x") == {"datetime"}


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c", "a"]]),
    ({"a": {"b", "d"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["c", "d", "c"], ["a", "b", "a"]]),
])
def test_cycles_are_found_and_shown_as_paths(graph: dict[str, set[str]],
                                            expected: list[list[str]]) -> None:
    assert sorted(cycles(graph)) == sorted(expected)


# The settlement package -------------------------------------------------------

def test_the_graph_covers_the_whole_package() -> None:
    ours, _ = import_graph()
    assert "settlement.cli.main" in ours and "settlement.core.money" in ours
    assert "settlement.infra.config" in ours["settlement.cli.main"]


def test_no_import_cycles_between_modules() -> None:
    ours, _ = import_graph()
    found = cycles(ours)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize("layer", PURE_LAYERS)
def test_the_pure_layers_import_no_io(layer: str) -> None:
    _, everything = import_graph()
    bad = {f"{module} imports {name}"
           for module, names in everything.items() if _within(module, [layer])
           for name in names if _within(name, IO_MODULES)}
    assert not bad, "\n".join(sorted(bad))


def test_the_package_root_holds_only_its_init() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules outside any role package: {loose}"
