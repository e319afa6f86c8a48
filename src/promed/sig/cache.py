"""The Shapley cache: each case's Shapley values are computed once and reused by every rollout, eval and search.

Stored as JSONL (one line per case, appended as soon as it is computed, so an interrupted run resumes without
losing or redoing work). The key is (case content hash, scorer id, estimator id): a changed case, another scorer
or another estimator setting never reuses stale values. Line format (the ``promed sig`` contract), one
:class:`ShapleyRecord` per line::

    {"id", "facts", "phi", "v_empty", "v_full", "stderr", "n_evals", "hash", "scorer", "estimator", "seconds"}

A run reads the file once (when the :class:`ShapleyCache` is made) and appends through one open handle; read a
finished file with :func:`read_shapley`.
"""

from __future__ import annotations

import json
import time
import weakref
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from promed.errors import InputError
from promed.io import JsonlAppender, load_jsonl
from promed.sig.shapley import ShapleyResult, get_estimator
from promed.sig.value import ValueFunction, set_function
from promed.types import Case

__all__ = ["EstimatorChoice", "ShapleyRecord", "ShapleyCache", "read_shapley", "case_rng"]

AUTO_EXACT_MAX_COALITIONS_CHEAP = 2**14
AUTO_EXACT_MAX_COALITIONS_LLM = 2**6


@dataclass(frozen=True)
class EstimatorChoice:
    """An estimator name and budget; ``auto`` picks exact enumeration when 2^n is small, else ``kernel``."""

    name: str = "auto"
    budget: int | None = None

    def resolve(self, n_facts: int, cheap: bool) -> tuple[str, int | None]:
        if self.name != "auto":
            return self.name, self.budget
        limit = AUTO_EXACT_MAX_COALITIONS_CHEAP if cheap else AUTO_EXACT_MAX_COALITIONS_LLM
        return ("exact", None) if 2**n_facts <= limit else ("kernel", self.budget)

    def id(self, n_facts: int, cheap: bool) -> str:
        name, budget = self.resolve(n_facts, cheap)
        return name if name == "exact" else f"{name}@{budget if budget is not None else 'default'}"


def case_rng(seed: int, case: Case) -> np.random.Generator:
    """A per-case RNG: the same case gets the same draws whatever the order or resumption of a run."""
    return np.random.default_rng([seed, int(case.content_hash()[:12], 16)])


# ---- one cached record -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapleyRecord:
    """One case's Shapley values as cached: one line of ``shapley.jsonl``.

    Attributes:
        id: the case id.
        facts: the case's hidden facts (text), in player order.
        phi: the Shapley value of each fact, same order.
        v_empty: v(no hidden fact).
        v_full: v(all hidden facts).
        stderr: per-fact standard error of ``phi`` (0 when exact; None where the estimator cannot say).
        n_evals: distinct coalitions the estimator evaluated, v(empty) and v(all) included.
        hash: the case's content hash, scorer: the value function's id, estimator: the estimator id - the cache key.
        seconds: time spent computing the record.
    """

    id: str
    facts: tuple[str, ...]
    phi: tuple[float, ...]
    v_empty: float
    v_full: float
    stderr: tuple[float | None, ...]
    n_evals: int
    hash: str
    scorer: str
    estimator: str
    seconds: float

    def __post_init__(self) -> None:
        for name in ("facts", "phi", "stderr"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("phi", "stderr"):
            if len(getattr(self, name)) != len(self.facts):
                raise InputError(f"Shapley record {self.id!r}: field {name!r} has {len(getattr(self, name))} "
                                 f"values for {len(self.facts)} facts")

    @property
    def key(self) -> tuple[str, str, str]:
        """The cache key: (case content hash, scorer id, estimator id)."""
        return self.hash, self.scorer, self.estimator

    @property
    def n_facts(self) -> int:
        return len(self.facts)

    @property
    def phi_array(self) -> np.ndarray:
        return np.asarray(self.phi, dtype=float)

    @property
    def efficiency_gap(self) -> float:
        """sum(phi) - (v(all) - v(empty)); zero up to estimator error."""
        return float(sum(self.phi) - (self.v_full - self.v_empty))

    @classmethod
    def from_result(cls, case: Case, res: ShapleyResult, key: tuple[str, str, str], seconds: float) -> "ShapleyRecord":
        h, scorer, estimator = key
        return cls(
            id=case.id, facts=tuple(f.text for f in case.facts), phi=tuple(res.values.tolist()),
            v_empty=float(res.base), v_full=float(res.full),
            stderr=tuple(float(s) if np.isfinite(s) else None for s in res.stderr), n_evals=int(res.n_evals),
            hash=h, scorer=scorer, estimator=estimator, seconds=round(float(seconds), 4),
        )

    def to_json(self) -> dict:
        """The JSONL line (field order as in the module docstring)."""
        return {
            "id": self.id, "facts": list(self.facts), "phi": list(self.phi), "v_empty": self.v_empty,
            "v_full": self.v_full, "stderr": list(self.stderr), "n_evals": self.n_evals, "hash": self.hash,
            "scorer": self.scorer, "estimator": self.estimator, "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, rec: object) -> "ShapleyRecord":
        """Parse and validate one line; a ValueError names the field at fault. Unknown fields are ignored."""
        if not isinstance(rec, dict):
            raise InputError(f"Shapley record must be a JSON object, got {type(rec).__name__}")
        where = f"Shapley record {rec.get('id')!r}"
        for f in fields(cls):
            if f.name not in rec:
                raise InputError(f"{where}: missing field {f.name!r}")

        def bad(name: str, what: str) -> ValueError:
            return ValueError(f"{where}: field {name!r} must be {what}, got {rec[name]!r:.80}")

        def text(name: str) -> str:
            if not isinstance(rec[name], str):
                raise bad(name, "a string")
            return rec[name]

        def number(x: object) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool)

        def num(name: str) -> float:
            if not number(rec[name]):
                raise bad(name, "a number")
            return float(rec[name])

        def seq(name: str, ok, what: str) -> list:
            val = rec[name]
            if not isinstance(val, list) or not all(ok(x) for x in val):
                raise bad(name, what)
            return val

        n_evals = rec["n_evals"]
        if isinstance(n_evals, bool) or not isinstance(n_evals, int) or n_evals < 0:
            raise bad("n_evals", "a non-negative integer")
        return cls(
            id=text("id"),
            facts=tuple(seq("facts", lambda x: isinstance(x, str), "a list of strings")),
            phi=tuple(float(x) for x in seq("phi", number, "a list of numbers")),
            v_empty=num("v_empty"),
            v_full=num("v_full"),
            stderr=tuple(None if x is None else float(x)
                         for x in seq("stderr", lambda x: x is None or number(x), "a list of numbers or nulls")),
            n_evals=n_evals,
            hash=text("hash"),
            scorer=text("scorer"),
            estimator=text("estimator"),
            seconds=num("seconds"),
        )


def read_shapley(path: Path) -> list[ShapleyRecord]:
    """The records of a ``shapley.jsonl`` file, in file order (none if it does not exist).

    A later line with the same key supersedes an earlier one in :class:`ShapleyCache`; here every line is kept.
    Raises ValueError naming the file, line and field of a malformed record.
    """
    path = Path(path)
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return _records(path, ((lineno, line) for lineno, line in enumerate(fh, 1) if line.strip()))


def _records(path: Path, lines) -> list[ShapleyRecord]:
    """Parse ``(line number, JSON text or already parsed object)`` pairs, naming the file and line of a bad one."""
    out = []
    for lineno, line in lines:
        try:
            out.append(ShapleyRecord.from_json(json.loads(line) if isinstance(line, str) else line))
        except ValueError as e:  # json.JSONDecodeError is a ValueError too
            raise InputError(f"{path}:{lineno}: {e}") from e
    return out


# ---- the cache --------------------------------------------------------------------------------------------------


class ShapleyCache:
    """Shapley values per case, backed by a JSONL file (``path=None`` keeps them in memory only).

    The file is repaired (a partial last line from a crash is dropped) and read in one pass, here; new records are
    appended through one handle, opened on the first write and flushed after every line, so an interruption loses
    nothing already computed. Close it with :meth:`close` or use the cache as a context manager; a cache
    that is never closed has its handle closed when it is garbage-collected. Using a closed cache is allowed: the
    next write reopens the file (without reading it again).
    """

    def __init__(self, value: ValueFunction, choice: EstimatorChoice = EstimatorChoice(), path: Path | None = None,
                 seed: int = 0):
        self.value, self.choice, self.path, self.seed = value, choice, path, seed
        self.cheap = value.id.startswith("bayes")
        self._mem: dict[tuple[str, str, str], ShapleyRecord] = {}
        self._sink: JsonlAppender | None = None
        self._closer: weakref.finalize | None = None
        if path is not None:  # one pass: drop a partial last line, parse and validate the rest
            for rec in _records(path, enumerate(load_jsonl(path), 1)):
                self._mem[rec.key] = rec

    def key(self, case: Case) -> tuple[str, str, str]:
        return case.content_hash(), self.value.id, self.choice.id(case.n_facts, self.cheap)

    def __len__(self) -> int:
        return len(self._mem)

    def has(self, case: Case) -> bool:
        return self.key(case) in self._mem

    def get(self, case: Case) -> ShapleyRecord:
        """The cached record for ``case``, computing (and persisting) it first if needed."""
        key = self.key(case)
        rec = self._mem.get(key)
        if rec is None:
            rec = self._mem[key] = self.compute(case)
            self._append(rec)
        return rec

    def phi(self, case: Case) -> np.ndarray:
        return self.get(case).phi_array

    def compute(self, case: Case) -> ShapleyRecord:
        """Estimate ``case``'s Shapley values (not cached: :meth:`get` caches)."""
        name, budget = self.choice.resolve(case.n_facts, self.cheap)
        t0 = time.perf_counter()
        # the kernel estimator's surrogate models the gold option against the other options
        kw = {"surrogate_classes": max(1, len(case.options) - 1)} if name == "kernel" else {}
        res = get_estimator(name, **kw).estimate(set_function(self.value, case), case.n_facts, budget,
                                                 case_rng(self.seed, case))
        return ShapleyRecord.from_result(case, res, self.key(case), time.perf_counter() - t0)

    def _append(self, rec: ShapleyRecord) -> None:
        if self.path is None:
            return
        if self._sink is None:  # repaired and read in __init__: no second pass over the file
            self._sink = JsonlAppender(self.path, repair=False)
            self._closer = weakref.finalize(self, self._sink.close)
        self._sink.write(rec.to_json())

    def close(self) -> None:
        """Close the file handle (if a record was written); idempotent."""
        if self._closer is not None:
            self._closer()
        self._sink = self._closer = None

    def __enter__(self) -> "ShapleyCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_estimator(option: str, name: str) -> None:
    """Raise ValueError naming ``option`` unless ``name`` is ``auto`` or a registered Shapley estimator."""
    from promed.sig.shapley import ESTIMATORS

    if name != "auto" and name not in ESTIMATORS:
        raise InputError(f"{option} must be auto, {', '.join(ESTIMATORS)}; got {name!r}")


def check_estimator_budget(choice: EstimatorChoice, cases: list[Case], cheap: bool,
                           options: tuple[str, str] = ("--estimator", "--budget")) -> None:
    """Raise ValueError (naming the options and a case) if the estimator cannot run on some case within budget.

    The rules the estimators apply when they run (exact: at most ``max_players`` facts and 2^n evaluations;
    kernel and permutation: at least n + 1 evaluations for n >= 2 facts), applied to every case up front so that a
    run does not stop at the first such case after writing its manifest. ``cheap``: the scorer is ``bayes``
    (``auto`` then enumerates exactly up to more facts).
    """
    from promed.sig.shapley import ExactShapley

    est_opt, budget_opt = options
    max_exact = ExactShapley().max_players
    for case in cases:
        n = case.n_facts
        name, budget = choice.resolve(n, cheap)
        if name == "exact":
            if n > max_exact:
                raise InputError(f"{est_opt} exact: case {case.id!r} has {n} facts; exact enumeration takes at most "
                                 f"{max_exact} (2^n evaluations): use {est_opt} kernel")
            if budget is not None and budget < 2**n:
                raise InputError(f"{budget_opt} {budget} is too small: exact enumeration of case {case.id!r} ({n} "
                                 f"facts) needs 2^{n} = {2**n} evaluations")
        elif name in ("kernel", "permutation") and n >= 2 and budget is not None and budget < n + 1:
            raise InputError(f"{budget_opt} {budget} is too small: {name} over case {case.id!r} ({n} facts) needs at "
                             f"least {n + 1} evaluations")
