"""Imports flow one way (ARCHITECTURE.md section 2): no cycle between modules, none between packages.

Every module under ``src/promed`` is parsed with :mod:`ast`; every import counts, at module level or inside a
function (a deferred import still couples the two modules). Packages are the first component under ``promed``
(``promed.sig.reward`` -> ``sig``; top-level modules such as ``promed.cli`` are their own package). There is no
allow-list: a cycle fails the test and the message names its members.
"""

from __future__ import annotations

import ast
from pathlib import Path

import promed

SRC = Path(promed.__file__).resolve().parent

# packages that only the command line (and the runners themselves, and `python -m promed`) may import
TOP = {"runs", "cli", "cliopts", "__main__"}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The promed modules ``name`` imports anywhere in its body (``from a import b`` -> ``a.b`` if a module)."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # ``import promed.sig.reward.x`` style: keep the longest known prefix
                t = t.rpartition(".")[0]
            if t and t != "promed" and t != name:
                out.add(t)
    return out


def package_of(module: str) -> str:
    return module.split(".")[1]


def module_graph() -> dict[str, set[str]]:
    mods = all_modules()
    known = set(mods)
    return {name: imported_modules(name, path, known) for name, path in mods.items() if name != "promed"}


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    pkgs: dict[str, set[str]] = {}
    for src, dsts in graph.items():
        pkgs.setdefault(package_of(src), set()).update(package_of(d) for d in dsts)
    return {p: d - {p} for p, d in pkgs.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), each sorted; sorted overall."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_cycle_finder_finds_cycles():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": set()}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"x": {"y"}, "y": {"x"}, "z": {"z"}}) == [["x", "y"]]


def test_graph_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "promed" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("def f():\n    from . import b\n    from promed.sub.b import g\n")
    known = {"promed.sub", "promed.sub.a", "promed.sub.b"}
    assert imported_modules("promed.sub.a", pkg / "a.py", known) == {"promed.sub.b"}


def test_no_module_cycles():
    found = cycles(module_graph())
    assert not found, "module import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_package_cycles():
    found = cycles(package_graph(module_graph()))
    assert not found, "package import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_runners_sit_above_the_algorithm_packages():
    """Only the command line and the runners import the runners (and the CLI helpers)."""
    wrong = sorted(f"{src} -> {dst}" for src, dsts in module_graph().items() for dst in dsts
                   if package_of(dst) in TOP and package_of(src) not in TOP)
    assert not wrong, "imports of runners/CLI from below them:\n" + "\n".join(wrong)
