"""Stage 2's run: load the cases, fill the Shapley cache, train through TRL, resume, log and plot.

:func:`run_grpo` is the entry point (``promed grpo``, ``promed run``): the training cases are loaded and checked,
every case's Shapley values are computed once into the cache *before* the trainer starts
(:func:`prepare_shapley`), then TRL's trainer (:mod:`promed.train.grpo.trainer`) runs from the latest checkpoint in
``out/checkpoints`` if there is one; the per-step log (``log.jsonl``) and the rollouts (``rollouts.jsonl``) are
trimmed to that checkpoint so that a resumed run ends with the records of an uninterrupted one. The result is a
:class:`GRPOResult`.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from promed.data.lineage import lineage_of_cases, model_lineage, write_lineage
from promed.data.sources import load_data
from promed.errors import InputError
from promed.train.grpo.config import GRPORunConfig
from promed.train.grpo.trainer import (ConsultationRollout, episode_reward_func, make_grpo_args, step_log_callback,
                                       trainer_class)
from promed.train.hf_training import (bf16_enabled, load_model, save_and_stop_callbacks, save_final, torch_threads,
                                      write_log)
from promed.types import Case

__all__ = ["CURVES", "LOG_FILE", "ROLLOUT_FILE", "GRPOResult", "load_cases", "make_patient", "plot_curves",
           "prepare_shapley", "read_log", "run_grpo"]

LOG_FILE = "log.jsonl"
ROLLOUT_FILE = "rollouts.jsonl"


@dataclass(frozen=True)
class GRPOResult:
    """What :func:`run_grpo` did: ``model_dir`` is ``out`` (final model) when ``completed``, else the last
    checkpoint; ``log`` the per-step records (also ``out/log.jsonl``)."""

    model_dir: Path
    completed: bool
    steps: int
    wall_s: float
    rollout_s: float
    episodes: int
    shapley_s: float
    shapley_cases: int
    peak_rss_mb: float
    resumed_from: Path | None
    log: tuple[dict, ...] = ()
    skipped: bool = False


def load_cases(cfg: GRPORunConfig, check_scorer: bool = True) -> list[Case]:
    """The training cases, checked against the scorer (the exact posterior scores only SynthClinic cases) unless
    ``check_scorer`` is false (a caller that brings its own SIG annotator)."""
    from promed.runtime import check_scorer_fits, is_synthetic

    cases = load_data(cfg.data).cases
    if not cases:
        raise InputError(f"{cfg.data.data}: no usable cases")
    if check_scorer and cfg.shapley is None:
        check_scorer_fits(cfg.scorer, is_synthetic(cfg.data.data, cases), cfg.data.data)
    return cases


def prepare_shapley(cases: Sequence[Case], cfg: GRPORunConfig, out: Path, progress: bool = True):
    """The SIG annotator, with every training case's Shapley values in its cache before training starts.

    Returns (annotator, seconds, cases computed now). Cases already in the cache (an earlier run, or a ``promed
    sig`` file given as ``cfg.shapley``) cost nothing; during training the rollouts only read it.
    """
    from promed.runtime import make_scorer
    from promed.sig.annotate import SigAnnotator
    from promed.sig.cache import check_estimator

    check_estimator("--estimator", cfg.estimator)
    path = cfg.shapley or out / "shapley.jsonl"
    annotator = SigAnnotator.for_eval(make_scorer(cfg.scorer), cfg.estimator, path, cfg.seed, cfg.sig)
    t0 = time.perf_counter()
    todo = [c for c in cases if c.n_facts and not annotator.cache.has(c)]
    if todo:
        from tqdm.auto import tqdm

        for case in tqdm(todo, desc="Shapley values", disable=not progress, unit="case"):
            annotator.cache.get(case)
    return annotator, time.perf_counter() - t0, len(todo)


def judging_scorer(cfg: GRPORunConfig, judge=None):
    """(scorer that answers, value function v(S)) for the modes that need a scorer during training: the scorer for
    ``--answerer scorer``, v(S) from it for ``--credit ig-mixed``; (None, None) otherwise, so no scorer stays
    loaded."""
    if cfg.answerer != "scorer" and cfg.credit != "ig-mixed":
        return None, None
    if judge is None:
        from promed.runtime import make_scorer

        judge = make_scorer(cfg.scorer)
    from promed.sig.value import ScorerValue

    value = ScorerValue(judge).v if cfg.credit == "ig-mixed" else None
    return (judge if cfg.answerer == "scorer" else None), value


def make_patient(cfg: GRPORunConfig):
    from promed.runtime import RunModels

    return RunModels(cfg.patient_model, None, cfg.patient, synthetic=False).patient()


def read_log(path: Path) -> list[dict]:
    """The step records of ``log.jsonl`` (a torn last line, from an interrupted run, is skipped)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def finished_steps(out: Path, checkpoint: str | None) -> int | None:
    """The steps of a finished run in ``out`` (final model saved, its last checkpoint's step), else None."""
    if checkpoint is None or not (out / "config.json").is_file():
        return None
    try:
        return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"])
    except (OSError, ValueError, KeyError):
        return None


def truncate_log(path: Path, step: int) -> None:
    """Keep the log's records up to ``step`` (a resumed run re-logs the steps after its checkpoint)."""
    keep = [r for r in read_log(path) if r.get("step", 0) <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")


def run_grpo(cfg: GRPORunConfig, out: Path, progress: bool = True, *, cases: Sequence[Case] | None = None,
             patient=None, annotator=None, judge=None) -> GRPOResult:
    """Train ``cfg.model`` by GRPO over consultations (module docs); writes ``out`` (final checkpoint),
    ``out/checkpoints/``, ``out/log.jsonl`` (one record per step), ``out/rollouts.jsonl`` (one per consultation),
    ``out/curves.png``, ``out/train_log.json``. ``cases`` (already loaded and checked), ``patient`` and
    ``annotator`` replace what ``cfg`` would build (callers with their own simulator or SIG weights); ``judge`` the
    scorer that answers for ``--answerer scorer`` and values the information gains of ``ig-mixed`` (default: the
    ``--scorer``; kept loaded during training only in those two modes)."""
    n = cfg.num_threads
    if n is None and not torch.cuda.is_available():
        n = min(2, torch.get_num_threads())
    with torch_threads(n):
        return _run(cfg, Path(out), progress, cases, patient, annotator, judge)


def _run(cfg: GRPORunConfig, out: Path, progress: bool, cases, patient, annotator, judge) -> GRPOResult:
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint

    from accelerate import PartialState

    if not cfg.model:
        raise InputError("missing --model (the doctor to train)")

    t0 = time.perf_counter()
    dist = PartialState(cpu=not torch.cuda.is_available())  # under torchrun / accelerate launch: rank and group
    ckpt_dir, log_path, rollout_path = out / "checkpoints", out / LOG_FILE, out / ROLLOUT_FILE
    with dist.main_process_first():  # the main process clears an old run before the others look for checkpoints
        if dist.is_main_process:
            out.mkdir(parents=True, exist_ok=True)
            if not cfg.resume and ckpt_dir.exists():
                shutil.rmtree(ckpt_dir)
        resume_from = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    done = finished_steps(out, resume_from)
    if done is not None and done >= cfg.steps:  # a finished run is not repeated
        return GRPOResult(model_dir=out, completed=True, steps=done, wall_s=round(time.perf_counter() - t0, 3),
                          rollout_s=0.0, episodes=0, shapley_s=0.0, shapley_cases=0,
                          peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                          resumed_from=Path(resume_from), log=tuple(read_log(log_path)), skipped=True)
    cases = list(cases) if cases is not None else load_cases(cfg, check_scorer=annotator is None)
    if dist.is_main_process:  # the cases this checkpoint learns from, and its base model's (promed.data.lineage)
        write_lineage(out, lineage_of_cases(cases, f"grpo: {cfg.data.data} ({cfg.data.split})")
                      .union(model_lineage(cfg.model)))
    dtype = torch.bfloat16 if (cfg.lora and bf16_enabled(cfg.bf16)) else torch.float32
    model, tokenizer = load_model(cfg.model, dtype)
    shapley_s, shapley_n = 0.0, 0
    own_annotator = annotator is None
    # The main process fills the Shapley cache and trims the logs to the checkpoint; the others then read the
    # finished cache (nothing left to compute, nothing written twice).
    with dist.main_process_first():
        if own_annotator:
            annotator, shapley_s, shapley_n = prepare_shapley(cases, cfg, out, progress and dist.is_main_process)
        if dist.is_main_process:
            for path in (log_path, rollout_path):
                if resume_from:
                    truncate_log(path, int(Path(resume_from).name.rsplit("-", 1)[-1]))
                else:
                    path.unlink(missing_ok=True)
    patient = patient or make_patient(cfg)
    args = make_grpo_args(cfg, ckpt_dir, dist.num_processes)
    judge, value = judging_scorer(cfg, judge)
    rollout = ConsultationRollout(cases, patient, annotator, tokenizer, cfg, judge=judge, value=value)
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                                 target_modules=list(cfg.lora_target_modules), task_type="CAUSAL_LM")
    trainer = trainer_class()(
        model=model,
        reward_funcs=[episode_reward_func(cfg.weights)],
        args=args,
        train_dataset=Dataset.from_dict({"prompt": [c.id for c in cases]}),
        processing_class=tokenizer,
        peft_config=peft_config,
        rollout_func=rollout,
        callbacks=[step_log_callback(log_path), *save_and_stop_callbacks(cfg.stop_after_steps)],
        credit=cfg.credit,
        weights=cfg.weights,
        mix_lambda=cfg.mix_lambda,
        mix_baseline=cfg.mix_baseline,
        mix_scope=cfg.mix_scope,
        rollout_log=rollout_path,
        train_diagnosis=cfg.answerer == "policy",
    )
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    finally:
        if own_annotator:
            annotator.close()
    state = trainer.state
    completed = state.global_step >= state.max_steps
    main = trainer.is_world_process_zero()
    if main and completed:
        save_final(trainer, tokenizer, out, merge=cfg.lora)
    log = read_log(log_path)
    result = GRPOResult(
        model_dir=out if completed else Path(get_last_checkpoint(str(ckpt_dir)) or ckpt_dir),
        completed=completed, steps=int(state.global_step), wall_s=round(time.perf_counter() - t0, 3),
        rollout_s=round(rollout.seconds, 3), episodes=rollout.episodes, shapley_s=round(shapley_s, 3),
        shapley_cases=shapley_n, peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        resumed_from=Path(resume_from) if resume_from else None, log=tuple(log),
    )
    if main:
        plot_curves({cfg.credit: log}, out / "curves.png")
        write_log(out / "train_log.json", cfg, result, list(state.log_history), skip=("log",))
    return result


CURVES = (("reward", "outcome reward"), ("promed/accuracy", "accuracy (own answer)"),
          ("promed/questions", "questions per consultation"), ("promed/sig_per_question", "SIG per question"))


def plot_curves(logs: dict[str, list[dict]], path: Path, smooth: int = 5) -> None:
    """Learning curves (reward, accuracy, questions, SIG per question against step), one line per run in ``logs``
    (e.g. both arms in one figure), smoothed by a running mean of ``smooth`` steps."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6), dpi=110)
    axes = fig.subplots(2, 2).ravel()
    for ax, (key, label) in zip(axes, CURVES):
        for name, recs in logs.items():
            pts = [(r["step"], r[key]) for r in recs if isinstance(r.get(key), (int, float))]
            if not pts:
                continue
            steps, vals = zip(*pts)
            k = max(1, min(smooth, len(vals)))
            run = np.convolve(vals, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1:], run, label=name)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"GRPO learning curves (running mean of {smooth} steps)")
    fig.tight_layout()
    fig.savefig(path)
