"""The import graph of the project's packages: no cycle between modules and no forbidden direction.

Rules (CONTRIBUTING.md): ``kernels`` and ``metrics`` import neither ``scgan``, ``baselines`` nor ``bench``, nor each
other; ``scgan`` imports neither ``baselines`` nor ``bench``; ``baselines`` does not import ``bench``; nothing imports
``bench`` but ``bench``. Every import counts, at module level or inside a function (a deferred import is still a
dependency), except those under ``if TYPE_CHECKING:`` (annotations only: never executed, no dependency at run time,
and the usual way for an interface module to name the class that calls it). Read with ``ast`` from the source files:
nothing is imported to check.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = ("scgan", "kernels", "metrics", "baselines", "bench")
ROOT = Path(__file__).resolve().parent.parent

# package -> the project packages it must not import
FORBIDDEN = {
    "kernels": {"scgan", "baselines", "bench", "metrics"},
    "metrics": {"scgan", "baselines", "bench", "kernels"},
    "scgan": {"baselines", "bench"},
    "baselines": {"bench"},
}

# Cycles tolerated for now: each entry is the set of modules of one strongly connected component. Empty since issue 13
# removed the last two (bench.leaderboard <-> bench.report, scgan.model <-> scgan.checkpoint); a cycle not listed here
# fails the test, and so does an entry that no longer matches a cycle.
KNOWN_CYCLES: list[frozenset[str]] = []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported name refers to (``a.b.c`` -> ``a.b.c`` or its package), or None."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks (their ``else`` branches do run)."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if _is_type_checking_block(node):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # "from pkg import sub" may name a submodule: count it when it is one, else the module itself.
            names = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix
                     for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {module: _imports(module, path, modules) for module, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.append(frozenset(component))
    return result


def test_type_checking_imports_are_not_run_time_dependencies():
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\nimport c\n"
    tree = ast.parse(source)
    names = {alias.name for node in _runtime_nodes(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert names == {"b", "c"}


def test_the_walk_sees_the_project():
    graph = _graph()
    assert {"metrics.engine", "scgan.cli", "bench.leaderboard", "baselines.registry"} <= set(graph)
    assert "metrics.engine" in graph["metrics.registry"]  # module-level import found
    assert "metrics.classifier" in graph["metrics.registry"]  # import inside a function found


def test_no_forbidden_import_direction():
    bad = []
    for module, targets in _graph().items():
        package = module.split(".")[0]
        for target in sorted(targets):
            if target.split(".")[0] in FORBIDDEN.get(package, ()):
                bad.append(f"{module} imports {target}")
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_no_import_cycle_beyond_the_known_ones():
    cycles = _cycles(_graph())
    new = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert not new, f"import cycle(s) between modules: {new}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in cycles]
    assert not gone, f"known cycle(s) no longer present: delete them from KNOWN_CYCLES: {gone}"


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [frozenset({"a", "b", "c"})]
