"""``promed sig``: compute and cache the Shapley values of every case, resumably, with a summary.

Outputs under ``out/``: ``shapley.jsonl`` (:mod:`promed.sig.cache`), ``summary.json`` and ``manifest.json``.

Every input problem is found before ``out/`` is created or written: option values when the config is built
(:meth:`SigRunConfig.__post_init__`), then in :func:`run_sig` the data, the scorer against the data (``bayes`` needs
SynthClinic cases), the budget against every case's facts (:func:`check_estimator_budget`) and ``--out`` itself
(:func:`check_out_dir`). The checks are shared with ``promed mcts``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from promed.data.sources import DataConfig
from promed.errors import InputError
from promed.io import (
    OVERWRITE_HELP, JsonRecord, atomic_write_json, check_out_dir, data_fingerprint, prepare_run, start_run,
)
from promed.llm.base import check_spec
from promed.runtime import ServerConfig
from promed.sig.cache import EstimatorChoice, ShapleyCache, check_estimator, check_estimator_budget


@dataclass(frozen=True)
class SigRunConfig:
    """``promed sig`` settings."""

    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "Cases."})
    scorer: str = field(default="bayes", metadata={"help": "'bayes' (SynthClinic exact posterior), a model spec "
                                                           "(scores the option letters) or doctor:<model spec> (a "
                                                           "doctor scoring its own answer turns, e.g. "
                                                           "doctor:hf:runs/pretrain)."})
    server: ServerConfig = field(default_factory=ServerConfig,
                                 metadata={"help": "Model servers (openai: specs): timeout, retries, concurrency."})
    log: bool = field(default=False, metadata={"help": "v(S) = log-probability of the gold option (default: "
                                                       "probability)."})
    estimator: str = field(default="auto", metadata={"help": "exact, reference, permutation, kernel, or auto (exact "
                                                            "when 2^n is small, else kernel)."})
    budget: int | None = field(default=None, metadata={"help": "Distinct v(S) evaluations per case (default 10 x "
                                                               "facts)."})
    seed: int = field(default=0, metadata={"help": "Seed of the sampling estimators (per case, order-free)."})
    out: Path = field(default=Path("runs/sig"), metadata={"help": "Output directory; re-running with it resumes."})
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})

    def __post_init__(self) -> None:
        check_estimator("--estimator", self.estimator)
        if self.budget is not None and self.budget < 1:
            raise InputError(f"--budget must be >= 1, got {self.budget} (leave it out for 10 evaluations per fact)")
        if self.seed < 0:
            raise InputError(f"--seed must be >= 0, got {self.seed}")
        check_spec("--scorer", self.scorer, bayes=True)


# ---- checks shared with promed mcts and promed eval: they live below the runners (nothing loads or writes) --------
# check_spec: promed.llm.base; check_estimator, check_estimator_budget: promed.sig.cache; check_out_dir: promed.io;
# check_scorer_fits: promed.runtime.


@dataclass(frozen=True)
class SigSummary(JsonRecord):
    """What ``promed sig`` did (``summary.json``): cases, the data and its split, unusable cases skipped by reason, cases computed by this
    call, the scorer and estimator, and means over the cases (facts, value evaluations, seconds, v(empty), v(all)),
    with the largest efficiency gap |sum(phi) - (v(all) - v(empty))|."""

    n_cases: int
    data: str
    split: str
    skipped: dict[str, int]
    computed_now: int
    scorer: str
    estimator: str
    mean_facts: float
    mean_n_evals: float
    mean_seconds_per_case: float
    wall_seconds_this_run: float
    mean_v_empty: float
    mean_v_full: float
    max_efficiency_gap: float


def run_sig(cfg: SigRunConfig, progress: bool = True) -> SigSummary:
    from promed.data.sources import load_data
    from promed.runtime import check_scorer_fits, is_synthetic, make_scorer
    from promed.sig.value import ScorerValue

    # every check before the first byte is written (the option values were checked when cfg was built)
    loaded = load_data(cfg.data)
    cases = loaded.cases
    check_scorer_fits(cfg.scorer, is_synthetic(cfg.data.data, cases), cfg.data.data)
    check_estimator_budget(EstimatorChoice(cfg.estimator, cfg.budget), cases, cheap=cfg.scorer == "bayes")
    out = Path(cfg.out)
    check_out_dir(out)
    value = ScorerValue(make_scorer(cfg.scorer, cfg.server), log=cfg.log)  # a model that fails to load: still no file
    run_manifest = prepare_run(out, cfg, "sig", data_fingerprint(cases, cfg.data.data), cfg.overwrite)
    start_run(out, run_manifest, cfg.overwrite)  # the first bytes this run writes
    cache = ShapleyCache(value, EstimatorChoice(cfg.estimator, cfg.budget), out / "shapley.jsonl", cfg.seed)
    todo = [c for c in cases if not cache.has(c)]
    t0 = time.perf_counter()
    from tqdm import tqdm

    with cache:
        for case in tqdm(todo, desc="shapley", disable=not progress, initial=len(cases) - len(todo),
                         total=len(cases)):
            cache.get(case)
        recs = [cache.get(c) for c in cases]
    gaps = [abs(r.efficiency_gap) for r in recs]
    def mean(xs) -> float:
        return statistics.fmean(xs) if recs else 0.0

    summary = SigSummary(
        n_cases=len(recs), data=cfg.data.data, split=cfg.data.split, skipped=dict(loaded.skipped), computed_now=len(todo), scorer=value.id,
        estimator=cfg.estimator, mean_facts=mean(r.n_facts for r in recs), mean_n_evals=mean(r.n_evals for r in recs),
        mean_seconds_per_case=mean(r.seconds for r in recs), wall_seconds_this_run=round(time.perf_counter() - t0, 3),
        mean_v_empty=mean(r.v_empty for r in recs), mean_v_full=mean(r.v_full for r in recs),
        max_efficiency_gap=max(gaps) if gaps else 0.0,
    )
    atomic_write_json(out / "summary.json", summary)
    return summary
