"""``promed sig``: compute and cache the Shapley values of every case, resumably, with a summary.

Outputs under ``out/``: ``shapley.jsonl`` (:mod:`promed.sig.cache`), ``summary.json`` and ``manifest.json``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from promed.data.sources import DataConfig
from promed.io import atomic_write_json, manifest
from promed.sig.cache import EstimatorChoice, ShapleyCache


@dataclass(frozen=True)
class SigRunConfig:
    """``promed sig`` settings."""

    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "Cases."})
    scorer: str = field(default="bayes", metadata={"help": "'bayes' (SynthClinic exact posterior) or a model spec "
                                                           "(the value function's scorer)."})
    log: bool = field(default=False, metadata={"help": "v(S) = log-probability of the gold option (default: "
                                                       "probability)."})
    estimator: str = field(default="auto", metadata={"help": "exact, reference, permutation, kernel, or auto (exact "
                                                            "when 2^n is small, else kernel)."})
    budget: int | None = field(default=None, metadata={"help": "Distinct v(S) evaluations per case (default 10 x "
                                                               "facts)."})
    seed: int = field(default=0, metadata={"help": "Seed of the sampling estimators (per case, order-free)."})
    out: Path = field(default=Path("runs/sig"), metadata={"help": "Output directory; re-running with it resumes."})


def run_sig(cfg: SigRunConfig, progress: bool = True) -> dict:
    from promed.data.sources import load_data
    from promed.runtime import make_scorer
    from promed.sig.value import ScorerValue

    cases = load_data(cfg.data).cases
    if cfg.estimator not in ("auto", "exact", "reference", "permutation", "kernel"):
        raise ValueError(f"unknown estimator {cfg.estimator!r}; choose auto, exact, reference, permutation, kernel")
    too_big = [c.id for c in cases if cfg.estimator == "exact" and c.n_facts > 20]
    if too_big:
        raise ValueError(f"exact enumeration needs <= 20 facts; {len(too_big)} cases have more (e.g. {too_big[0]}): "
                         "use --estimator kernel")
    value = ScorerValue(make_scorer(cfg.scorer), log=cfg.log)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "manifest.json", manifest(cfg, "sig"))
    cache = ShapleyCache(value, EstimatorChoice(cfg.estimator, cfg.budget), out / "shapley.jsonl", cfg.seed)
    todo = [c for c in cases if not cache.has(c)]
    t0 = time.perf_counter()
    from tqdm import tqdm

    for case in tqdm(todo, desc="shapley", disable=not progress, initial=len(cases) - len(todo), total=len(cases)):
        cache.get(case)
    recs = [cache.get(c) for c in cases]
    gaps = [abs(r.efficiency_gap) for r in recs]
    summary = {
        "n_cases": len(recs), "computed_now": len(todo), "scorer": value.id, "estimator": cfg.estimator,
        "mean_facts": statistics.fmean(r.n_facts for r in recs) if recs else 0.0,
        "mean_n_evals": statistics.fmean(r.n_evals for r in recs) if recs else 0.0,
        "mean_seconds_per_case": statistics.fmean(r.seconds for r in recs) if recs else 0.0,
        "wall_seconds_this_run": round(time.perf_counter() - t0, 3),
        "mean_v_empty": statistics.fmean(r.v_empty for r in recs) if recs else 0.0,
        "mean_v_full": statistics.fmean(r.v_full for r in recs) if recs else 0.0,
        "max_efficiency_gap": max(gaps) if gaps else 0.0,
    }
    atomic_write_json(out / "summary.json", summary)
    return summary
