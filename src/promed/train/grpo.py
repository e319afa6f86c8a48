"""Stage 2: group-relative policy optimisation over consultations, with SIG credit (ARCHITECTURE.md section 4b).

The engine is TRL's ``GRPOTrainer``; this module is the only place that touches it (pinned versions: the
``trl``/``transformers``/``accelerate`` ranges in ``pyproject.toml``, tested with TRL 1.16.0, transformers 5.24,
accelerate 1.16). Three seams, all TRL's own:

* ``rollout_func`` (:class:`ConsultationRollout`): TRL hands each process its slice of the generation batch, every
  case repeated ``G`` times in a row (TRL's ``RepeatSampler``). The rollout plays those consultations with the
  current policy (batched, :func:`promed.env.rollout.run_consultations`; FactPatient or LLMPatient replies), gives
  every question its SIG from the case's Shapley values (read from the cache filled *before* training,
  :func:`prepare_shapley`; never recomputed per rollout), and renders each consultation token-exactly
  (:func:`promed.train.render.render_consultation`). It returns ``prompt_ids`` (system prompt + case, what the
  doctor saw first), ``completion_ids`` (every doctor output and the patient's replies between them),
  ``logprobs`` and ``env_mask`` (1 on the doctor's sampled tokens, 0 on the environment's, so patient tokens carry
  no loss), plus one ``promed_episode`` record per consultation for the credit assignment.
* The reward function (:func:`episode_reward_func`) gives TRL the outcome reward per episode (``gamma * correct +
  f * format``), which TRL logs; TRL's reward channel is one scalar per completion.
* A subclass (:func:`trainer_class`) replaces TRL's scalar advantages by per-token ones of shape (B, T), which
  TRL's ``_compute_loss`` accepts. Group means need every member of a group, and a group may straddle two
  processes, so the per-episode credit records are gathered from all processes first (``gather_object``), the
  advantages computed on the whole batch by the pure functions of :mod:`promed.train.advantages`, then sliced to
  this process's rows, as TRL does with its own advantages.

The loss is TRL's: clipped ratio (``epsilon``, two-sided), k3 KL to the initial policy (``beta``; a copy of the
model, or the adapter switched off under LoRA), token-level normalisation (``loss_type="dapo"``: the sum over all
doctor tokens of the batch divided by their number). Checkpoints, exact resume, progress bar, ``report_to``,
DDP/FSDP/DeepSpeed through accelerate are the Trainer's.

Determinism: the consultations of step ``s`` are seeded by (seed, s, case id, sample index within the group)
(:func:`promed.env.rollout.episode_seed`), so the two arms (``--reward sig`` / ``outcome``) sample the same
first-step rollouts from the same checkpoint, and a resumed run samples what the uninterrupted one did.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from promed.data.sources import DataConfig, load_data
from promed.doctor.actions import ANSWER_KEYWORD
from promed.doctor.policy import LLMDoctor
from promed.env.consultation import EnvConfig
from promed.env.rollout import Episode, run_consultations
from promed.llm.hf import HFBackend, HFOptions
from promed.sig.reward import SigConfig
from promed.train.advantages import (
    CREDITS, TURN_BASELINES, TURN_SCOPES, Credit, EpisodeCredit, RewardWeights, TurnBaseline, TurnKind, TurnScope,
    credit_advantages, episode_reward, turn_rewards,
)
from promed.train.render import render_consultation
from promed.types import Answer, Ask, Case, Sampling, Transcript

LOG_FILE = "log.jsonl"
ROLLOUT_FILE = "rollouts.jsonl"


@dataclass(frozen=True)
class GRPORunConfig:
    """Stage 2 settings. Defaults: the reference's GRPO settings (G=4, epsilon 0.1, KL 0.04, temperature 0.7,
    reward coefficients 2/1/3/1) on the CPU SynthClinic doctor; ``configs/gpu-7b.toml`` holds a 7B preset."""

    model: str | None = field(default=None, metadata={"help": "The doctor to train: hf:<dir> (a promed sft or "
                                                              "pretrain checkpoint, or a hub id), gguf:<file> or "
                                                              "gemma-270m. Required."})
    data: DataConfig = field(default_factory=lambda: DataConfig(split="train", limit=1000),
                             metadata={"help": "Training cases (SynthClinic train split by default; the default run, "
                                               "100 steps x 8 cases, draws 800 of them)."})
    reward: Credit = field(default="sig", metadata={"help": "Credit: sig (SIG on each question's tokens, correctness "
                                                            "on the answer's, minus the group mean: the reference's "
                                                            "scheme; on SynthClinic it stops the small doctor asking, "
                                                            "BENCHMARKS.md), sig-mixed (outcome advantage + mix_lambda "
                                                            "x the turn's group-normalised SIG) or outcome (one "
                                                            "group-normalised episode reward on every doctor token)."})
    weights: RewardWeights = field(default_factory=RewardWeights,
                                   metadata={"help": "Reward coefficients alpha, beta, gamma, format."})
    mix_lambda: float = field(default=1.0, metadata={"help": "sig-mixed: weight of the turn (SIG) advantage."})
    mix_baseline: TurnBaseline = field(default="turns",
                                       metadata={"help": "sig-mixed: normalise each question's SIG over the group's "
                                                         "questions, over all its turns with answers counting "
                                                         "SIG 0 (turns: questions also compete with answering), or "
                                                         "over the group's questions at the same turn (position: "
                                                         "which question to ask there; asking at all is left to "
                                                         "the outcome)."})
    mix_scope: TurnScope = field(default="turn",
                                 metadata={"help": "sig-mixed: an answer turn's SIG advantage on all its tokens "
                                                   "(turn), or only on the tokens that choose to answer (decision: "
                                                   "the diagnosis it names gets the outcome advantage alone)."})
    sig: SigConfig = field(default_factory=SigConfig, metadata={"help": "Shapley values -> SIG (lam, weighting)."})
    scorer: str = field(default="bayes", metadata={"help": "Scorer of the value function v(S) behind the Shapley "
                                                           "values: bayes (SynthClinic's exact posterior) or a model "
                                                           "spec (llm:/doctor:/hf:...)."})
    estimator: str = field(default="auto", metadata={"help": "Shapley estimator (promed sig --help)."})
    shapley: Path | None = field(default=None, metadata={"help": "Shapley cache to read and extend (a promed sig "
                                                                 "shapley.jsonl); default OUT/shapley.jsonl."})
    patient: str = field(default="fact", metadata={"help": "Patient simulator: fact (retrieval, default) or llm "
                                                           "(the model given by --patient-model)."})
    patient_model: str | None = field(default=None, metadata={"help": "Model spec of the llm patient."})
    env: EnvConfig = field(default_factory=EnvConfig, metadata={"help": "Consultation rules (question budget)."})
    group_size: int = field(default=4, metadata={"help": "G: sampled consultations per case."})
    cases_per_step: int = field(default=8, metadata={"help": "Cases per optimizer step (x G consultations)."})
    steps: int = field(default=100, metadata={"help": "Optimizer steps."})
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature of the rollouts (and of the "
                                                              "log-probabilities in the loss)."})
    max_new_tokens: int = field(default=48, metadata={"help": "Most tokens per doctor turn."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate (constant after warmup)."})
    warmup: float = field(default=0.0, metadata={"help": "Warmup: fraction of steps if < 1, else steps."})
    epsilon: float = field(default=0.1, metadata={"help": "PPO clip range of the probability ratio."})
    kl: float = field(default=0.04, metadata={"help": "beta of the k3 KL penalty to the initial policy (0: no "
                                                      "reference model)."})
    lora: bool = field(default=False, metadata={"help": "Train LoRA adapters (merged into the saved checkpoint)."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (the reference: 8)."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_target_modules: tuple[str, ...] = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj"), metadata={"help": "Modules that get adapters."})
    grad_accum: int = field(default=1, metadata={"help": "Micro-batches per optimizer step (the step's "
                                                         "consultations are generated once and split)."})
    rollout_batch: int = field(default=64, metadata={"help": "Consultations stepped together during rollouts (one "
                                                           "generate() call for all of them)."})
    seed: int = field(default=0, metadata={"help": "Seed of the data order, the rollouts and initialisation."})
    save_steps: int = field(default=10, metadata={"help": "Checkpoint every N steps (and at the last)."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept."})
    resume: bool = field(default=True, metadata={"help": "Continue from the latest checkpoint in OUT/checkpoints "
                                                         "(false: start over)."})
    stop_after_steps: int | None = field(default=None, metadata={"help": "Checkpoint and stop after this many steps, "
                                                                        "as if interrupted (time-boxed runs, tests)."})
    report_to: str = field(default="none", metadata={"help": "Trainer loggers: none, tensorboard, wandb, ..."})
    bf16: bool | None = field(default=None, metadata={"help": "bf16; None: on when CUDA supports it."})
    use_vllm: bool = field(default=False, metadata={"help": "Generate with vLLM (GPU; TRL's colocate mode). Only "
                                                            "for models vLLM serves; the rollouts here use the HF "
                                                            "backend otherwise."})
    num_threads: int | None = field(default=None, metadata={"help": "torch CPU threads (None: 2 without CUDA)."})
    progress_bar: bool = field(default=True, metadata={"help": "Show the Trainer's progress bar."})

    def __post_init__(self) -> None:
        if self.reward not in CREDITS:
            raise ValueError(f"--reward must be one of {', '.join(CREDITS)}, got {self.reward!r}")
        if self.mix_baseline not in TURN_BASELINES:
            raise ValueError(f"--mix-baseline must be one of {', '.join(TURN_BASELINES)}, got {self.mix_baseline!r}")
        if self.mix_scope not in TURN_SCOPES:
            raise ValueError(f"--mix-scope must be one of {', '.join(TURN_SCOPES)}, got {self.mix_scope!r}")
        if self.group_size < 2:
            raise ValueError(f"--group-size must be >= 2 (group-relative advantages), got {self.group_size}")
        for name in ("cases_per_step", "steps", "max_new_tokens", "grad_accum", "rollout_batch", "save_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.temperature > 0:
            raise ValueError(f"--temperature must be > 0 (GRPO samples), got {self.temperature}")
        if self.patient not in ("fact", "llm"):
            raise ValueError(f"--patient must be fact or llm, got {self.patient!r}")
        if self.patient == "llm" and not self.patient_model:
            raise ValueError("--patient llm needs --patient-model SPEC")
        if (self.cases_per_step * self.group_size) % self.grad_accum:
            raise ValueError(f"cases_per_step x group_size ({self.cases_per_step * self.group_size}) must be "
                             f"divisible by --grad-accum {self.grad_accum}")


# ---- one consultation -> what TRL and the credit assignment need ------------------------------------------------


def turn_kinds(tr: Transcript) -> tuple[tuple[TurnKind, ...], tuple[float, ...]]:
    """Each policy output's kind and SIG: a question within budget is ``ask`` with its turn's SIG (a repeated
    question reveals nothing new: SIG 0); an answer ``answer``; an unreadable output, or a question asked with no
    questions left (the environment then forces the answer), ``invalid``."""
    kinds: list[TurnKind] = []
    sig: list[float] = []
    for step in (s for s in tr.steps if s.policy):
        if isinstance(step.action, Ask) and step.turn is not None:
            kinds.append("ask")
            sig.append(float(tr.turns[step.turn].sig or 0.0))
        elif isinstance(step.action, Answer):
            kinds.append("answer")
            sig.append(0.0)
        else:
            kinds.append("invalid")
            sig.append(0.0)
    return tuple(kinds), tuple(sig)


def answer_content(tr: Transcript, turn_index: np.ndarray, decode) -> np.ndarray:
    """(T,) bool: the tokens of each policy answer after its keyword, i.e. the diagnosis it names.

    The keyword's tokens are the shortest prefix of the answer's sampled tokens whose text (``decode``) reaches
    ``ANSWER:`` as the parser reads it (:data:`promed.doctor.actions.ANSWER_KEYWORD`); an answer whose keyword is never
    reached counts as all keyword."""
    content = np.zeros(len(turn_index), dtype=bool)
    for k, step in enumerate(s for s in tr.steps if s.policy):
        if not isinstance(step.action, Answer):
            continue
        ids = list(step.token_ids)
        cut = next((j for j in range(1, len(ids) + 1) if ANSWER_KEYWORD.match(decode(ids[:j]))), len(ids))
        where = np.flatnonzero(np.asarray(turn_index) == k)
        content[where[cut:]] = True
    return content


def policy_correct(tr: Transcript) -> bool:
    """The policy answered itself (no forced answer) and was right."""
    return tr.end == "answer" and bool(tr.correct)


def rollout_row(case: Case, tr: Transcript, backend, max_questions: int) -> dict:
    """One consultation as TRL's rollout fields plus its :class:`EpisodeCredit` (``tr`` annotated with SIG).

    The prompt is everything before the doctor's first token; the completion the rest, so the environment's
    tokens inside it are masked by ``env_mask``.
    """
    r = render_consultation(case, tr, backend, max_questions)
    p = int(np.argmax(r.doctor_mask > 0))
    kinds, sig = turn_kinds(tr)
    turn_index = r.turn_index[p:].copy()
    decode = lambda ids: backend.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    credit = EpisodeCredit(turn_index=turn_index, kinds=kinds, sig=sig, correct=policy_correct(tr),
                           format_ok=tr.end == "answer" and tr.invalid == 0,
                           content=answer_content(tr, turn_index, decode))
    return {
        "prompt_ids": r.input_ids[:p].tolist(),
        "completion_ids": r.input_ids[p:].tolist(),
        "logprobs": [float(x) for x in r.logprobs[p:]],
        "env_mask": r.doctor_mask[p:].astype(int).tolist(),
        "promed_episode": {"credit": credit, "case_id": tr.case_id, "sample": tr.sample, "answer": tr.answer,
                           "questions": len(tr.turns), "sig_total": float(sum(sig)), "invalid": tr.invalid,
                           "forced": tr.end != "answer",
                           "ids_sha1": hashlib.sha1(r.input_ids.tobytes()).hexdigest()},
    }


def step_seed(seed: int, step: int) -> int:
    """The rollout seed of optimizer step ``step`` (episodes add their case id and sample index to it)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(step)]).generate_state(1)[0])


class ConsultationRollout:
    """TRL's ``rollout_func``: plays this process's consultations with the current policy (module docs).

    ``prompts`` are case ids, each repeated ``G`` times in a row across the whole generation batch; the sample
    index of a consultation is its global position modulo ``G`` (this process's slice starts at
    ``process_index * len(prompts)``, as TRL slices it).
    """

    def __init__(self, cases: Sequence[Case], patient, annotator, tokenizer, cfg: GRPORunConfig):
        self.cases = {c.id: c for c in cases}
        self.patient, self.annotator, self.tokenizer, self.cfg = patient, annotator, tokenizer, cfg
        self.seconds = 0.0  # rollout wall time, for the throughput log
        self.episodes = 0

    def __call__(self, prompts: list[str], trainer) -> dict:
        t0 = time.perf_counter()
        cfg = self.cfg
        g = trainer.num_generations
        start = trainer.accelerator.process_index * len(prompts)
        model = trainer.accelerator.unwrap_model(trainer.model)
        backend = HFBackend(model, self.tokenizer, name="policy", options=HFOptions(gen_batch_size=cfg.rollout_batch))
        doctor = LLMDoctor(backend, "policy", Sampling(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature))
        episodes = [Episode(self.cases[p], sample=(start + i) % g) for i, p in enumerate(prompts)]
        transcripts = run_consultations(episodes, doctor, self.patient, cfg.env,
                                        seed=step_seed(cfg.seed, trainer.state.global_step),
                                        batch_size=cfg.rollout_batch)
        rows = [rollout_row(ep.case, self.annotator(ep.case, tr), backend, cfg.env.max_questions)
                for ep, tr in zip(episodes, transcripts)]
        self.seconds += time.perf_counter() - t0
        self.episodes += len(rows)
        return {key: [row[key] for row in rows] for key in rows[0]}


def episode_reward_func(weights: RewardWeights):
    """TRL reward function: the outcome reward of each episode (logged by TRL; the outcome arm's credit)."""

    def outcome(prompts, completions, promed_episode, **_):
        return [episode_reward(ep["credit"], weights) for ep in promed_episode]

    return outcome


@functools.cache
def trainer_class():
    """``GRPOTrainer`` with per-token advantages from :func:`promed.train.advantages.credit_advantages` (built on
    first use so that importing this module does not import TRL)."""
    import os

    from accelerate.utils import gather_object
    from trl import GRPOTrainer
    from trl.trainer.utils import RepeatSampler

    from promed.train.branches import epoch_seed

    class EpochRepeatSampler(RepeatSampler):
        """TRL's sampler with an order that depends on (seed, epoch) only: TRL's draws each epoch's permutation
        from one generator, so a run resumed in a later epoch would replay the first epoch's order."""

        def set_epoch(self, epoch: int) -> None:
            if self.shuffle:
                self.generator.manual_seed(epoch_seed(self.seed or 0, epoch))

    class ConsultationGRPOTrainer(GRPOTrainer):
        def __init__(self, *args, credit: Credit, weights: RewardWeights, mix_lambda: float,
                     mix_baseline: TurnBaseline, mix_scope: TurnScope, rollout_log: Path | None = None, **kwargs):
            os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is experimental: versions pinned
            super().__init__(*args, **kwargs)
            self.credit, self.weights, self.mix_lambda, self.mix_baseline = credit, weights, mix_lambda, mix_baseline
            self.mix_scope = mix_scope
            self.rollout_log = rollout_log

        def _get_train_sampler(self, dataset=None):
            s = super()._get_train_sampler(dataset)
            return EpochRepeatSampler(s.data_source, s.mini_repeat_count, s.batch_size, s.repeat_count, s.shuffle,
                                      s.seed)

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            local = [inp["promed_episode"] for inp in inputs]
            everyone = gather_object(local)  # every process's episodes, in global order
            g = self.num_generations
            groups = [i // g for i in range(len(everyone))]
            adv = credit_advantages(self.credit, [e["credit"] for e in everyone], groups, self.weights,
                                    self.mix_lambda, self.mix_baseline, self.mix_scope)
            start = self.accelerator.process_index * len(inputs)
            mine = adv[start:start + len(inputs)]
            width = out["completion_ids"].shape[1]
            table = torch.zeros((len(mine), width), dtype=torch.float32, device=out["completion_ids"].device)
            for i, a in enumerate(mine):
                table[i, :len(a)] = torch.as_tensor(a, dtype=torch.float32)
            out["advantages"] = table  # (B, T): TRL's loss broadcasts per-token advantages as they are
            mode = "train" if self.model.training else "eval"
            if self.rollout_log is not None and self.is_world_process_zero():
                _append_rollouts(self.rollout_log, self.state.global_step + 1, everyone, adv)
            n = len(everyone)
            returns = [float(turn_rewards(e["credit"].kinds, e["credit"].sig, e["credit"].correct, self.weights).sum())
                       for e in everyone]
            questions = sum(e["questions"] for e in everyone)
            for name, value in (("promed/accuracy", sum(e["credit"].correct for e in everyone) / n),
                                ("promed/return", sum(returns) / n),
                                ("promed/questions", questions / n),
                                ("promed/sig_per_question", sum(e["sig_total"] for e in everyone) / max(questions, 1)),
                                ("promed/invalid", sum(e["invalid"] for e in everyone) / n),
                                ("promed/forced", sum(e["forced"] for e in everyone) / n)):
                self._metrics[mode][name].append(float(value))
            return out

    return ConsultationGRPOTrainer


def _append_rollouts(path: Path, step: int, episodes: list[dict], advantages: list[np.ndarray]) -> None:
    """One line per consultation of the step: what was asked and earned, and a hash of its token ids (the record
    of what the policy did; two arms or a resumed run can be compared on it)."""
    lines = []
    for e, a in zip(episodes, advantages):
        c = e["credit"]
        lines.append(json.dumps({
            "step": step, "case_id": e["case_id"], "sample": e["sample"], "kinds": list(c.kinds),
            "sig": [round(x, 6) for x in c.sig], "answer": e["answer"], "correct": c.correct,
            "forced": e["forced"], "invalid": e["invalid"], "ids_sha1": e["ids_sha1"],
            "mean_advantage": round(float(a[c.mask > 0].mean()) if c.mask.any() else 0.0, 6)}))
    with path.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


# ---- the run ---------------------------------------------------------------------------------------------------


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
        raise ValueError(f"{cfg.data.data}: no usable cases")
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


def make_patient(cfg: GRPORunConfig):
    from promed.runtime import RunModels

    return RunModels(cfg.patient_model, None, cfg.patient, synthetic=False).patient()


def make_grpo_args(cfg: GRPORunConfig, ckpt_dir: Path, world: int):
    """TRL ``GRPOConfig`` for ``cfg`` on ``world`` processes: one generation of ``cases_per_step x G``
    consultations per optimizer step, split into ``grad_accum`` micro-batches."""
    from trl import GRPOConfig

    from promed.train.sft import _checkpointing_kwargs

    episodes = cfg.cases_per_step * cfg.group_size
    if episodes % (world * cfg.grad_accum):
        raise ValueError(f"{episodes} consultations per step cannot be split over {world} processes x "
                         f"{cfg.grad_accum} micro-batches")
    bf16 = cfg.bf16 if cfg.bf16 is not None else (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return GRPOConfig(
        output_dir=str(ckpt_dir),
        max_steps=cfg.steps,
        per_device_train_batch_size=episodes // (world * cfg.grad_accum),
        gradient_accumulation_steps=cfg.grad_accum,
        steps_per_generation=cfg.grad_accum,
        num_generations=cfg.group_size,
        num_iterations=1,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=cfg.warmup,
        temperature=cfg.temperature,
        epsilon=cfg.epsilon,
        beta=cfg.kl,
        loss_type="dapo",
        scale_rewards="group",
        mask_truncated_completions=False,
        max_completion_length=cfg.max_new_tokens * (cfg.env.max_questions + 2),
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        bf16=bf16,
        fp16=False,
        use_cpu=not torch.cuda.is_available(),
        use_vllm=cfg.use_vllm,
        vllm_mode="colocate",
        report_to=cfg.report_to,
        disable_tqdm=not cfg.progress_bar,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        **_checkpointing_kwargs(GRPOConfig, False),
    )


def step_log_callback(path: Path):
    """Trainer callback: each logged step as one JSONL line (``out/log.jsonl``, main process); built on first use so
    that importing this module does not import transformers."""
    from transformers import TrainerCallback

    class StepLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs and "reward" in logs:
                rec = {"step": int(state.global_step), **{k: _num(v) for k, v in logs.items()}}
                with path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")

    return StepLog()


def _num(v):
    return round(float(v), 6) if isinstance(v, (int, float)) and math.isfinite(float(v)) else v


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


def _finished_steps(out: Path, checkpoint: str | None) -> int | None:
    """The steps of a finished run in ``out`` (final model saved, its last checkpoint's step), else None."""
    if checkpoint is None or not (out / "config.json").is_file():
        return None
    try:
        return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"])
    except (OSError, ValueError, KeyError):
        return None


def _truncate_log(path: Path, step: int) -> None:
    """Keep the log's records up to ``step`` (a resumed run re-logs the steps after its checkpoint)."""
    keep = [r for r in read_log(path) if r.get("step", 0) <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")


def run_grpo(cfg: GRPORunConfig, out: Path, progress: bool = True, *, cases: Sequence[Case] | None = None,
             patient=None, annotator=None) -> GRPOResult:
    """Train ``cfg.model`` by GRPO over consultations (module docs); writes ``out`` (final checkpoint),
    ``out/checkpoints/``, ``out/log.jsonl`` (one record per step), ``out/rollouts.jsonl`` (one per consultation),
    ``out/curves.png``, ``out/train_log.json``. ``cases`` (already loaded and checked), ``patient`` and
    ``annotator`` replace what ``cfg`` would build (callers with their own simulator or SIG weights)."""
    threads = torch.get_num_threads()
    n = cfg.num_threads if cfg.num_threads is not None else (None if torch.cuda.is_available() else min(2, threads))
    if n is not None:
        torch.set_num_threads(n)
    try:
        return _run(cfg, Path(out), progress, cases, patient, annotator)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: GRPORunConfig, out: Path, progress: bool, cases, patient, annotator) -> GRPOResult:
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint

    from promed.train.sft import load_model, save_and_stop_callbacks, save_final, write_log

    if not cfg.model:
        raise ValueError("missing --model (the doctor to train)")
    from accelerate import PartialState

    t0 = time.perf_counter()
    dist = PartialState(cpu=not torch.cuda.is_available())  # under torchrun / accelerate launch: rank and group
    ckpt_dir, log_path, rollout_path = out / "checkpoints", out / LOG_FILE, out / ROLLOUT_FILE
    with dist.main_process_first():  # the main process clears an old run before the others look for checkpoints
        if dist.is_main_process:
            out.mkdir(parents=True, exist_ok=True)
            if not cfg.resume and ckpt_dir.exists():
                shutil.rmtree(ckpt_dir)
        resume_from = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    done = _finished_steps(out, resume_from)
    if done is not None and done >= cfg.steps:  # a finished run is not repeated
        return GRPOResult(model_dir=out, completed=True, steps=done, wall_s=round(time.perf_counter() - t0, 3),
                          rollout_s=0.0, episodes=0, shapley_s=0.0, shapley_cases=0,
                          peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                          resumed_from=Path(resume_from), log=tuple(read_log(log_path)), skipped=True)
    cases = list(cases) if cases is not None else load_cases(cfg, check_scorer=annotator is None)
    bf16 = cfg.bf16 if cfg.bf16 is not None else (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    model, tokenizer = load_model(cfg.model, torch.bfloat16 if (cfg.lora and bf16) else torch.float32)
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
                    _truncate_log(path, int(Path(resume_from).name.rsplit("-", 1)[-1]))
                else:
                    path.unlink(missing_ok=True)
    patient = patient or make_patient(cfg)
    args = make_grpo_args(cfg, ckpt_dir, dist.num_processes)
    rollout = ConsultationRollout(cases, patient, annotator, tokenizer, cfg)
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
        callbacks=[step_log_callback(log_path), *save_and_stop_callbacks(cfg)],
        credit=cfg.reward,
        weights=cfg.weights,
        mix_lambda=cfg.mix_lambda,
        mix_baseline=cfg.mix_baseline,
        mix_scope=cfg.mix_scope,
        rollout_log=rollout_path,
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
        plot_curves({cfg.reward: log}, out / "curves.png")
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
