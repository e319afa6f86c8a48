"""The one module that touches TRL: the rollout adapter, the reward function, the trainer subclass and its config.

Stage 2 (ARCHITECTURE.md section 4b) runs on TRL's ``GRPOTrainer`` (pinned versions: the ``trl`` /
``transformers`` / ``accelerate`` ranges in ``pyproject.toml``, tested with TRL 1.16.0, transformers 5.24,
accelerate 1.16). Three seams, all TRL's own:

* ``rollout_func`` (:class:`ConsultationRollout`): TRL hands each process its slice of the generation batch, every
  case repeated ``G`` times in a row (TRL's ``RepeatSampler``). The rollout plays those consultations with the
  current policy (batched, :func:`promed.env.rollout.run_consultations`; FactPatient or LLMPatient replies), gives
  every question its SIG from the case's Shapley values (read from the cache filled *before* training,
  :func:`promed.train.grpo.run.prepare_shapley`; never recomputed per rollout), and renders each consultation
  token-exactly (:func:`promed.train.grpo.episode.rollout_row`): ``prompt_ids`` (system prompt + case, what the
  doctor saw first), ``completion_ids`` (every doctor output and the patient's replies between them),
  ``logprobs`` and ``env_mask`` (1 on the doctor's sampled tokens, 0 on the environment's, so patient tokens carry
  no loss), plus one :class:`promed.train.grpo.episode.EpisodeRecord` per consultation for the credit assignment.
* The reward function (:func:`episode_reward_func`) gives TRL the outcome reward per episode (``gamma * correct +
  f * format``), which TRL logs; TRL's reward channel is one scalar per completion.
* A subclass (:func:`trainer_class`) replaces TRL's scalar advantages by per-token ones of shape (B, T), which
  TRL's ``_compute_loss`` accepts, and logs :func:`promed.train.grpo.episode.step_metrics`. Group means need every
  member of a group, and a group may straddle two processes, so the episode records are gathered from all
  processes first (``gather_object``), the advantages computed on the whole batch by the pure functions of
  :mod:`promed.train.advantages`, then sliced to this process's rows, as TRL does with its own advantages.

The loss is TRL's: clipped ratio (``epsilon``, two-sided), k3 KL to the initial policy (``beta``; a copy of the
model, or the adapter switched off under LoRA), token-level normalisation (``loss_type="dapo"``: the sum over all
doctor tokens of the batch divided by their number). Checkpoints, exact resume, progress bar, ``report_to``,
DDP/FSDP/DeepSpeed through accelerate are the Trainer's.

Determinism: the consultations of step ``s`` are seeded by (seed, s, case id, sample index within the group)
(:func:`promed.env.rollout.episode_seed` under :func:`promed.train.hf_training.derived_seed`), so the two arms
(``--credit sig`` / ``outcome``) sample the same first-step rollouts from the same checkpoint, and a resumed run
samples what the uninterrupted one did.
"""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path
from typing import Sequence

import torch

from promed.doctor.policy import LLMDoctor
from promed.env.rollout import Episode, run_consultations
from promed.errors import InputError
from promed.llm.hf import HFBackend, HFOptions
from promed.train.advantages import Credit, RewardWeights, TurnBaseline, TurnScope, credit_advantages, episode_reward
from promed.train.grpo.config import GRPORunConfig
from promed.train.grpo.episode import EPISODE_FIELD, append_rollouts, rollout_row, step_metrics
from promed.train.hf_training import bf16_enabled, checkpointing_kwargs, derived_seed
from promed.types import Case, Sampling

__all__ = ["ConsultationRollout", "episode_reward_func", "make_grpo_args", "step_log_callback", "trainer_class"]


class ConsultationRollout:
    """TRL's ``rollout_func``: plays this process's consultations with the current policy (module docs).

    ``prompts`` are case ids, each repeated ``G`` times in a row across the whole generation batch; the sample
    index of a consultation is its global position modulo ``G`` (this process's slice starts at
    ``process_index * len(prompts)``, as TRL slices it).
    """

    def __init__(self, cases: Sequence[Case], patient, annotator, tokenizer, cfg: GRPORunConfig, *,
                 judge=None, value=None):
        self.cases = {c.id: c for c in cases}
        self.patient, self.annotator, self.tokenizer, self.cfg = patient, annotator, tokenizer, cfg
        self.judge, self.value = judge, value  # the scorer that answers (--answerer scorer); v(S) for ig-mixed
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
                                        seed=derived_seed(cfg.seed, trainer.state.global_step),
                                        batch_size=cfg.rollout_batch)
        rows = [rollout_row(ep.case, self.annotator(ep.case, tr), backend, cfg.env.max_questions, judge=self.judge,
                            value=self.value) for ep, tr in zip(episodes, transcripts)]
        self.seconds += time.perf_counter() - t0
        self.episodes += len(rows)
        return {key: [row[key] for row in rows] for key in rows[0]}


def episode_reward_func(weights: RewardWeights):
    """TRL reward function: the outcome reward of each episode (logged by TRL; the outcome arm's credit)."""

    def outcome(prompts, completions, promed_episode, **_):
        return [episode_reward(ep.credit, weights) for ep in promed_episode]

    return outcome


@functools.cache
def trainer_class():
    """``GRPOTrainer`` with per-token advantages from :func:`promed.train.advantages.credit_advantages` (built on
    first use so that importing this module does not import TRL)."""
    import os

    from accelerate.utils import gather_object
    from trl import GRPOTrainer
    from trl.trainer.utils import RepeatSampler

    class EpochRepeatSampler(RepeatSampler):
        """TRL's sampler with an order that depends on (seed, epoch) only: TRL's draws each epoch's permutation
        from one generator, so a run resumed in a later epoch would replay the first epoch's order."""

        def set_epoch(self, epoch: int) -> None:
            if self.shuffle:
                self.generator.manual_seed(derived_seed(self.seed or 0, epoch))

    class ConsultationGRPOTrainer(GRPOTrainer):
        def __init__(self, *args, credit: Credit, weights: RewardWeights, mix_lambda: float,
                     mix_baseline: TurnBaseline, mix_scope: TurnScope, rollout_log: Path | None = None,
                     train_diagnosis: bool = True, **kwargs):
            os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is experimental: versions pinned
            super().__init__(*args, **kwargs)
            self.credit, self.weights, self.mix_lambda, self.mix_baseline = credit, weights, mix_lambda, mix_baseline
            self.mix_scope, self.train_diagnosis = mix_scope, train_diagnosis
            self.rollout_log = rollout_log

        def _get_train_sampler(self, dataset=None):
            s = super()._get_train_sampler(dataset)
            return EpochRepeatSampler(s.data_source, s.mini_repeat_count, s.batch_size, s.repeat_count, s.shuffle,
                                      s.seed)

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            local = [inp[EPISODE_FIELD] for inp in inputs]
            everyone = gather_object(local)  # every process's episodes, in global order
            g = self.num_generations
            groups = [i // g for i in range(len(everyone))]
            adv = credit_advantages(self.credit, [e.credit for e in everyone], groups, self.weights,
                                    self.mix_lambda, self.mix_baseline, self.mix_scope, self.train_diagnosis)
            start = self.accelerator.process_index * len(inputs)
            mine = adv[start:start + len(inputs)]
            width = out["completion_ids"].shape[1]
            table = torch.zeros((len(mine), width), dtype=torch.float32, device=out["completion_ids"].device)
            for i, a in enumerate(mine):
                table[i, :len(a)] = torch.as_tensor(a, dtype=torch.float32)
            out["advantages"] = table  # (B, T): TRL's loss broadcasts per-token advantages as they are
            mode = "train" if self.model.training else "eval"
            if self.rollout_log is not None and self.is_world_process_zero():
                append_rollouts(self.rollout_log, self.state.global_step + 1, everyone, adv)
            for name, value in step_metrics(everyone, self.weights).items():
                self._metrics[mode][name].append(float(value))
            return out

    return ConsultationGRPOTrainer


def make_grpo_args(cfg: GRPORunConfig, ckpt_dir: Path, world: int):
    """TRL ``GRPOConfig`` for ``cfg`` on ``world`` processes: one generation of ``cases_per_step x G``
    consultations per optimizer step, split into ``grad_accum`` micro-batches."""
    from trl import GRPOConfig

    episodes = cfg.cases_per_step * cfg.group_size
    if episodes % (world * cfg.grad_accum):
        raise InputError(f"{episodes} consultations per step cannot be split over {world} processes x "
                         f"{cfg.grad_accum} micro-batches")
    bf16 = bf16_enabled(cfg.bf16)
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
        **checkpointing_kwargs(GRPOConfig, False),
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
