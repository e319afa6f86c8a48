"""The shape of the package (issue 27, ARCHITECTURE.md): modules that say their one job, no oversized module without
a reason, and runners that return typed results rather than string-keyed dicts."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import typing
from pathlib import Path

import promed
import promed.runs
from promed.io import JsonRecord

SRC = Path(promed.__file__).resolve().parent
MAX_LINES = 450


def test_every_module_says_its_job_in_a_docstring():
    missing = [str(p.relative_to(SRC)) for p in sorted(SRC.rglob("*.py"))
               if p.stat().st_size and not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))]
    assert missing == []


def test_a_module_over_450_lines_says_why():
    """A module longer than MAX_LINES carries a ``Length:`` line in its docstring with the reason."""
    long = []
    for p in sorted(SRC.rglob("*.py")):
        text = p.read_text(encoding="utf-8")
        if text.count("\n") > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if not any(line.startswith("Length:") for line in doc.splitlines()):
                long.append(f"{p.relative_to(SRC)} ({text.count(chr(10))} lines)")
    assert long == []


def test_no_runner_returns_a_dict():
    """Every public ``run_*`` of :mod:`promed.runs` returns a typed result (a :class:`JsonRecord` or another typed
    object), never a string-keyed dict."""
    seen = 0
    for info in pkgutil.iter_modules(promed.runs.__path__):
        module = importlib.import_module(f"promed.runs.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("run_") or fn.__module__ != module.__name__:
                continue
            ret = typing.get_type_hints(fn).get("return")
            assert ret is not None, f"{module.__name__}.{name} has no return annotation"
            origin = typing.get_origin(ret) or ret
            assert origin is not dict, f"{module.__name__}.{name} returns a dict"
            seen += 1
    assert seen >= 7
    from promed.runs.mcts import MctsSummary
    from promed.runs.pipeline import RunSummary

    assert issubclass(MctsSummary, JsonRecord) and issubclass(RunSummary, JsonRecord)
