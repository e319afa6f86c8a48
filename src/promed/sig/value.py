"""Value functions v(S): how well a scorer answers a case when it is told the hidden facts in S.

The players of the SIG game are the hidden facts of one :class:`~promed.types.Case`; the initial information is
always part of the prompt (it is known at turn 0). A value function maps a coalition S (a set of fact ids) to

    v(S) = P_scorer(gold option | initial info + question + options + facts S)       (``log=False``), or
    v(S) = log max(P_scorer(gold option | ...), floor)                                  (``log=True``).

The probability is normalised over the options (that is the :class:`~promed.types.Scorer` contract), so v lies in
[0, 1]. The log variant is closer to the reference code, which scores the mean token log-probability of the gold
answer text; we clip at ``floor`` (default 1e-6, i.e. v >= -13.8) so that a scorer that is certain of a wrong
option cannot produce -inf and dominate the Shapley values.

Two pieces live here:

* :class:`ScorerValue` - the batched, memoised v over any Scorer (``BayesScorer`` for SynthClinic, ``LLMScorer``
  for real models). One ``scorer.probs`` call per batch, for the subsets not already cached; a scorer with
  ``subset_probs`` is also asked by mask matrix, unmemoised (:meth:`ScorerValue.v_masks`).
* :func:`set_function` - binds a value function to one case and exposes it in the form every Shapley estimator
  consumes: a boolean mask matrix ``(m, n_facts)`` -> values ``(m,)``. It deduplicates coalitions and counts the
  distinct ones it evaluated (``n_evals``) and the rows it was asked for (``n_calls``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from promed.types import Case, Scorer

__all__ = ["ValueFunction", "ScorerValue", "SetFunction", "set_function", "masks_to_keys", "keys_to_masks"]


class ValueFunction(Protocol):
    """v(case, subsets) -> values, batched over subsets of ``range(case.n_facts)``.

    ``id`` names the value function (scorer id and variant) in caches and reports.
    """

    id: str

    def v(self, case: Case, subsets: Sequence[frozenset[int]]) -> np.ndarray: ...


class ScorerValue:
    """v(S) from a :class:`~promed.types.Scorer`: (log-)probability of the gold option given the facts in S.

    Args:
        scorer: any Scorer (``probs(queries) -> list of option-probability rows``).
        log: use ``log(max(p, floor))`` instead of ``p``.
        floor: lower clip for the log variant (ignored when ``log`` is False).
        max_cases: how many cases' memo tables to keep (least recently used are dropped). Estimators work one
            case at a time, so a handful is plenty; the bound keeps memory flat over a long run.

    Memoisation is keyed by (``case.content_hash()``, subset): the same subset of the same case is never sent to
    the scorer twice while its table is kept. ``n_scored`` counts the subsets actually sent to the scorer.

    Fast path (duck-typed): a scorer with ``subset_probs(case, masks) -> (S, n_options)`` - ``BayesScorer`` has
    one, a single matrix product - is asked through it instead of building one ``Query`` per subset; it must
    return what ``probs([case.query(subset), ...])`` would.
    """

    def __init__(self, scorer: Scorer, log: bool = False, floor: float = 1e-6, max_cases: int = 8):
        if not 0.0 < floor < 1.0:
            raise ValueError(f"floor must be in (0, 1), got {floor}")
        if max_cases < 1:
            raise ValueError("max_cases must be >= 1")
        self.scorer = scorer
        self.log = log
        self.floor = floor
        self.max_cases = max_cases
        self.id = f"{getattr(scorer, 'id', type(scorer).__name__)}:{'logp' if log else 'p'}"
        self.n_scored = 0
        self._memo: OrderedDict[str, dict[frozenset[int], float]] = OrderedDict()

    def _table(self, case: Case) -> dict[frozenset[int], float]:
        key = case.content_hash()
        table = self._memo.get(key)
        if table is None:
            table = {}
            self._memo[key] = table
            while len(self._memo) > self.max_cases:
                self._memo.popitem(last=False)
        else:
            self._memo.move_to_end(key)
        return table

    def v_masks(self, case: Case, masks: np.ndarray) -> np.ndarray | None:
        """Values of the coalitions in the boolean ``(m, n_facts)`` ``masks`` through the scorer's ``subset_probs``
        fast path, not memoised; None if the scorer has none (then :meth:`v` is the way).

        The memo's keys (one frozenset per coalition) cost more than the fast path itself: exact Shapley over
        SynthClinic train cases (12 facts on average) takes 11.6 ms per case this way against 74 ms through the memo
        (``benchmarks/shapley_speed.py``). :class:`SetFunction` keeps its own memo, by integer key."""
        fast = getattr(self.scorer, "subset_probs", None)
        if fast is None:
            return None
        gold_p = np.asarray(fast(case, np.asarray(masks, dtype=bool)), dtype=float)[:, case.gold_index]
        return self._values(gold_p)

    def _values(self, gold_p: np.ndarray) -> np.ndarray:
        """v from the gold option's probabilities (the log variant clipped at ``floor``); counts them as scored."""
        self.n_scored += len(gold_p)
        if not self.log:
            return gold_p
        return np.array([math.log(max(p, self.floor)) for p in gold_p.tolist()], dtype=float)

    def v(self, case: Case, subsets: Sequence[frozenset[int]]) -> np.ndarray:
        """Values of ``subsets`` for ``case`` (shape ``(len(subsets),)``); one scorer call for the uncached ones."""
        subsets = [frozenset(s) for s in subsets]
        n = case.n_facts
        for s in subsets:
            if s and (min(s) < 0 or max(s) >= n):
                raise ValueError(f"subset {sorted(s)} has fact ids outside range({n}) for case {case.id!r}")
        table = self._table(case)
        todo = list(dict.fromkeys(s for s in subsets if s not in table))
        if todo:
            masks = np.zeros((len(todo), n), dtype=bool)
            for r, s in enumerate(todo):
                masks[r, list(s)] = True
            vals = self.v_masks(case, masks)
            if vals is None:
                rows = self.scorer.probs([case.query(sorted(s)) for s in todo])
                if len(rows) != len(todo):
                    raise RuntimeError(f"scorer {self.id} returned {len(rows)} rows for {len(todo)} queries")
                vals = self._values(np.array([float(np.asarray(row, dtype=float)[case.gold_index]) for row in rows]))
            table.update(zip(todo, vals.tolist()))
        return np.array([table[s] for s in subsets], dtype=float)


# ---- masks <-> integer keys --------------------------------------------------------------------------------------


def masks_to_keys(masks: np.ndarray) -> np.ndarray:
    """Pack a boolean ``(m, n)`` mask matrix into ``(m,)`` integer keys (bit i = player i); n <= 62."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 2:
        raise ValueError(f"masks must be 2-D (m, n), got shape {masks.shape}")
    n = masks.shape[1]
    if n > 62:
        raise ValueError(f"at most 62 players are supported, got {n}")
    return masks.astype(np.int64) @ (np.int64(1) << np.arange(n, dtype=np.int64))


def keys_to_masks(keys: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`masks_to_keys`: ``(m,)`` integer keys -> boolean ``(m, n)`` masks."""
    keys = np.asarray(keys, dtype=np.int64)
    return ((keys[:, None] >> np.arange(n, dtype=np.int64)) & 1).astype(bool)


@dataclass
class SetFunction:
    """A value function bound to one case: ``f(masks (m, n) bool) -> values (m,)``, memoised and counted.

    ``n_evals`` is the number of distinct coalitions evaluated through this object, ``n_calls`` the number of mask
    rows it was asked for (repeats included). Build it with :func:`set_function`.
    """

    value: ValueFunction
    case: Case
    n_evals: int = 0
    n_calls: int = 0
    _memo: dict[int, float] = field(default_factory=dict, repr=False)

    @property
    def n_players(self) -> int:
        return self.case.n_facts

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim == 1:
            masks = masks[None, :]
        if masks.shape[1] != self.n_players:
            raise ValueError(f"masks have {masks.shape[1]} columns, case {self.case.id!r} has {self.n_players} facts")
        keys = masks_to_keys(masks)
        self.n_calls += len(keys)
        uniq = np.unique(keys)
        todo = [int(k) for k in uniq if int(k) not in self._memo]
        if todo:
            todo_masks = keys_to_masks(np.array(todo, dtype=np.int64), self.n_players)
            fast = getattr(self.value, "v_masks", None)
            vals = fast(self.case, todo_masks) if fast is not None else None
            if vals is None:
                subsets = [frozenset(np.flatnonzero(row).tolist()) for row in todo_masks]
                vals = self.value.v(self.case, subsets)
            vals = np.asarray(vals, dtype=float)
            self._memo.update(zip(todo, vals.tolist()))
            self.n_evals += len(todo)
        return np.array([self._memo[int(k)] for k in keys], dtype=float)


def set_function(value: ValueFunction, case: Case) -> SetFunction:
    """Bind ``value`` to ``case`` as the mask-matrix set function Shapley estimators consume."""
    return SetFunction(value=value, case=case)
