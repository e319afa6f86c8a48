"""The Shapley cache: each case's Shapley values are computed once and reused by every rollout, eval and search.

Stored as JSONL (one line per case, appended as soon as it is computed, so an interrupted run resumes without
losing or redoing work). The key is (case content hash, scorer id, estimator id): a changed case, another scorer
or another estimator setting never reuses stale values. Line format (the ``promed sig`` contract)::

    {"id", "facts", "phi", "v_empty", "v_full", "stderr", "n_evals", "hash", "scorer", "estimator", "seconds"}
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from promed.io import JsonlAppender, read_jsonl, repair_jsonl
from promed.sig.shapley import ShapleyResult, get_estimator
from promed.sig.value import ValueFunction, set_function
from promed.types import Case

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


class ShapleyCache:
    """Shapley values per case, backed by a JSONL file (``path=None`` keeps them in memory only)."""

    def __init__(self, value: ValueFunction, choice: EstimatorChoice = EstimatorChoice(), path: Path | None = None,
                 seed: int = 0):
        self.value, self.choice, self.path, self.seed = value, choice, path, seed
        self.cheap = value.id.startswith("bayes")
        self._mem: dict[tuple[str, str, str], dict] = {}
        if path is not None:
            repair_jsonl(path)
            for rec in read_jsonl(path):
                self._mem[(rec["hash"], rec["scorer"], rec["estimator"])] = rec

    def key(self, case: Case) -> tuple[str, str, str]:
        return case.content_hash(), self.value.id, self.choice.id(case.n_facts, self.cheap)

    def has(self, case: Case) -> bool:
        return self.key(case) in self._mem

    def get(self, case: Case) -> dict:
        """The cached record for ``case``, computing (and persisting) it first if needed."""
        key = self.key(case)
        if key not in self._mem:
            rec = self.compute(case)
            self._mem[key] = rec
            if self.path is not None:
                with JsonlAppender(self.path) as sink:
                    sink.write(rec)
        return self._mem[key]

    def phi(self, case: Case) -> np.ndarray:
        return np.asarray(self.get(case)["phi"], dtype=float)

    def compute(self, case: Case) -> dict:
        name, budget = self.choice.resolve(case.n_facts, self.cheap)
        t0 = time.perf_counter()
        # the kernel estimator's surrogate models the gold option against the other options
        kw = {"surrogate_classes": max(1, len(case.options) - 1)} if name == "kernel" else {}
        res: ShapleyResult = get_estimator(name, **kw).estimate(
            set_function(self.value, case), case.n_facts, budget, case_rng(self.seed, case))
        h, scorer, est = self.key(case)
        return {
            "id": case.id, "facts": [f.text for f in case.facts], "phi": res.values.tolist(),
            "v_empty": float(res.base), "v_full": float(res.full),
            "stderr": [None if not np.isfinite(s) else float(s) for s in res.stderr], "n_evals": int(res.n_evals),
            "hash": h, "scorer": scorer, "estimator": est, "seconds": round(time.perf_counter() - t0, 4),
        }
