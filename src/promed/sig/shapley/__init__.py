"""Shapley value estimators for set functions over a few dozen players at most (the hidden facts of a case).

One interface (:class:`~promed.sig.shapley.base.ShapleyEstimator`): an estimator takes ``f`` - a batched set
function mapping a boolean mask matrix ``(m, n)`` to values ``(m,)`` (see :func:`promed.sig.value.set_function`) -
the number of players, an evaluation budget and a ``np.random.Generator``, and returns a :class:`ShapleyResult`.
Costs are counted in the one unit that matters when v is an LLM call: the number of *distinct* coalitions evaluated
(``n_evals``, v(empty) and v(all) included). Every estimator memoises what it asked for, so a coalition seen twice
is paid once.

Layout: :mod:`~promed.sig.shapley.base` (result, protocol, counting set function, shared helpers) and one module
per estimator, each importing only ``base`` (the kernel estimator also its surrogate control variate, which uses
``permutation``); this module is the registry and imports them all, never the reverse.

Estimators (``get_estimator(name)``):

* ``exact`` - :class:`ExactShapley` (:mod:`.exact`): all 2^n coalitions, vectorised Shapley weights.
* ``reference`` - :class:`ReferenceShapley` (:mod:`.reference`): the ProMed reference algorithm, reproduced for
  comparison.
* ``permutation`` - :class:`PermutationShapley` (:mod:`.permutation`): antithetic permutation sampling under a
  budget.
* ``kernel`` - :class:`KernelShapley` (:mod:`.kernel`): KernelSHAP regression with paired, stratified coalition
  sampling, exact enumeration of the heaviest coalition sizes and a fitted surrogate (:mod:`.surrogate`) as control
  variate; the default for SIG.
"""

from __future__ import annotations

from types import MappingProxyType

from promed.errors import InputError
from promed.sig.shapley.base import (
    CountingSetFunction,
    SetFn,
    ShapleyEstimator,
    ShapleyResult,
    default_budget,
    exact_from_table,
)
from promed.sig.shapley.exact import ExactShapley
from promed.sig.shapley.kernel import KernelShapley
from promed.sig.shapley.permutation import PermutationShapley
from promed.sig.shapley.reference import ReferenceShapley

__all__ = [
    "SetFn",
    "ShapleyResult",
    "ShapleyEstimator",
    "CountingSetFunction",
    "ExactShapley",
    "ReferenceShapley",
    "PermutationShapley",
    "KernelShapley",
    "ESTIMATORS",
    "get_estimator",
    "default_budget",
    "exact_from_table",
]

ESTIMATORS = MappingProxyType({
    "exact": ExactShapley,
    "reference": ReferenceShapley,
    "permutation": PermutationShapley,
    "kernel": KernelShapley,
})
"""The registry (read-only): estimator name -> class (each a frozen dataclass whose fields are its settings)."""


def get_estimator(name: str, **kw) -> ShapleyEstimator:
    """The estimator called ``name`` ("exact", "reference", "permutation", "kernel"), built with ``kw``."""
    if name not in ESTIMATORS:
        raise InputError(f"unknown Shapley estimator {name!r}; choose from {sorted(ESTIMATORS)}")
    return ESTIMATORS[name](**kw)
