"""The hub's import graph has no loops and hides no imports (issue 11, item 3).

A loop between modules only "works" while some of its imports are moved into functions, so a
reader cannot see what a module depends on from its top, and the order modules happen to be
imported in decides whether the hub starts. So: no cycles among the modules of hub.sync nor
among those of hub.notify (read with grimp, TYPE_CHECKING imports included), and every import
in hub/ at module level, except a heavy optional one listed below with the reason.

Both finders are tried on made-up input first, so a finder that finds nothing cannot pass
for a clean graph.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import grimp
import pytest

import hub

HUB_DIR = Path(hub.__file__).parent

# Function-level imports allowed, as (file under hub/, function, imported module).
HEAVY_OPTIONAL = {
    # great-expectations costs seconds to import and pandas ~0.5 s; only a check with rows pays
    ("quality/expectations.py", "validate", "great_expectations"),
    ("quality/expectations.py", "validate", "great_expectations.data_context.types.base"),
    ("quality/expectations.py", "to_frame", "pandas"),
    ("quality/expectations.py", "warm", "great_expectations"),  # the web app's background warm-up
    # the embedded PostgreSQL server, needed only when no database server is configured
    ("embedded_pg.py", "start", "pgserver"),
    ("embedded_pg.py", "is_running", "pgserver.utils"),
    ("embedded_pg.py", "stop", "pgserver.postgres_server"),
    # the openai SDK (~0.5 s): only a process calling a company's external model pays (hub/ai/external_model.py)
    ("ai/external_model.py", "_sdk", "openai"),
    # scikit-learn, scipy and numpy (~2.5 s): of the CLI, only `hub demo ai` trains a model
    ("cli.py", "demo_ai", "hub.demo_ai"),
}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import loops of `graph` (module -> modules it imports): each strongly connected
    group of more than one module, or a module importing itself, sorted (Tarjan's algorithm,
    iterative so a deep graph cannot hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in graph.get(node, ()):
                    cycles.append(sorted(group))
    return sorted(cycles)


def function_level_imports(source: str) -> list[tuple[str, str, int]]:
    """(function, imported module, line) of every import inside a function body of `source`;
    a relative import's module is given with its leading dots."""
    found: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            if function is not None and isinstance(child, ast.Import):
                found.extend((function, alias.name, child.lineno) for alias in child.names)
            elif function is not None and isinstance(child, ast.ImportFrom):
                found.append((function, "." * child.level + (child.module or ""), child.lineno))
            visit(child, function)

    visit(ast.parse(source), None)
    return found


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("hub", include_external_packages=False, exclude_type_checking_imports=False, cache_dir=None)


def package_graph(graph: grimp.ImportGraph, package: str) -> dict[str, set[str]]:
    """The imports among the modules of `package` (itself included)."""
    modules = {package} | graph.find_descendants(package)
    return {m: {t for t in graph.find_modules_directly_imported_by(m) if t in modules}
            for m in modules}


def test_the_cycle_finder_finds_loops_and_only_loops():
    made_up = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": set(), "f": {"f"}, "g": {"a"}}
    assert find_cycles(made_up) == [["a", "b", "c"], ["f"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) == []


def test_the_package_graph_sees_an_added_loop(graph):
    """The real graph plus one made-up import back from ledger.py to a module that imports it."""
    looped = copy.deepcopy(graph)
    looped.add_import(importer="hub.sync.write_ledger", imported="hub.sync.export_invoices")
    assert any({"hub.sync.export_invoices", "hub.sync.write_ledger"} <= set(cycle) for cycle in find_cycles(package_graph(looped, "hub.sync")))


@pytest.mark.parametrize("package", ["hub.sync", "hub.notify"])
def test_no_import_loops(graph, package):
    assert find_cycles(package_graph(graph, package)) == []


def test_the_function_level_finder_finds_nested_imports():
    source = ("import os\n"
              "def f():\n    from hub.sync import engine\n"
              "class C:\n    def m(self):\n        import hub.notify\n"
              "        def inner():\n            from . import x\n"
              "if True:\n    import json\n")
    assert function_level_imports(source) == [("f", "hub.sync", 3), ("m", "hub.notify", 6), ("inner", ".", 8)]


def test_imports_are_at_module_level():
    allowed = HEAVY_OPTIONAL
    hidden = [f"hub/{path}:{line} in {function}(): {module}"
              for path in sorted(p.relative_to(HUB_DIR).as_posix() for p in HUB_DIR.rglob("*.py"))
              for function, module, line in function_level_imports((HUB_DIR / path).read_text(encoding="utf-8"))
              if (path, function, module) not in allowed]
    assert hidden == []
