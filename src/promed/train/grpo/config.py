"""Stage 2 settings: :class:`GRPORunConfig`, one field per setting with its help (the CLI's options come from it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from promed.data.sources import DataConfig
from promed.env.consultation import EnvConfig
from promed.errors import InputError
from promed.sig.reward import SigConfig
from promed.train.advantages import (CREDITS, TURN_BASELINES, TURN_SCOPES, Credit, RewardWeights, TurnBaseline,
                                     TurnScope)

__all__ = ["ANSWERERS", "GRPORunConfig"]

ANSWERERS = ("policy", "scorer")


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
    credit: Credit = field(default="sig", metadata={"help": "Credit assignment (--credit; --reward is its old "
                                                            "name): sig (SIG on each question's tokens, correctness "
                                                            "on the answer's, minus the group mean: the reference's "
                                                            "scheme; on SynthClinic it stops the small doctor asking, "
                                                            "BENCHMARKS.md), sig-mixed (outcome advantage + mix_lambda "
                                                            "x the turn's group-normalised SIG), ig-mixed (the same "
                                                            "with each question's information gain, v(after) - "
                                                            "v(before), in place of its SIG: no Shapley values) or "
                                                            "outcome (one group-normalised episode reward on every "
                                                            "doctor token)."})
    answerer: str = field(default="policy", metadata={"help": "Who gives the answer the outcome rewards: policy "
                                                              "(its own answer, today's behaviour) or scorer (the "
                                                              "scorer's answer on the facts the consultation "
                                                              "revealed: the policy is trained as a questioner only, "
                                                              "as ask: evaluates it; its diagnosis tokens get no "
                                                              "advantage). The rollouts are the same."})
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
                                                   "(turn), only on the tokens that choose to answer (decision: "
                                                   "the diagnosis it names gets the outcome advantage alone), or "
                                                   "on question turns only (questions: an answer gets the outcome "
                                                   "advantage alone)."})
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
        if self.credit not in CREDITS:
            raise InputError(f"--credit must be one of {', '.join(CREDITS)}, got {self.credit!r}")
        if self.answerer not in ANSWERERS:
            raise InputError(f"--answerer must be one of {', '.join(ANSWERERS)}, got {self.answerer!r}")
        if self.mix_baseline not in TURN_BASELINES:
            raise InputError(f"--mix-baseline must be one of {', '.join(TURN_BASELINES)}, got {self.mix_baseline!r}")
        if self.mix_scope not in TURN_SCOPES:
            raise InputError(f"--mix-scope must be one of {', '.join(TURN_SCOPES)}, got {self.mix_scope!r}")
        if self.group_size < 2:
            raise InputError(f"--group-size must be >= 2 (group-relative advantages), got {self.group_size}")
        for name in ("cases_per_step", "steps", "max_new_tokens", "grad_accum", "rollout_batch", "save_steps"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.temperature > 0:
            raise InputError(f"--temperature must be > 0 (GRPO samples), got {self.temperature}")
        if self.patient not in ("fact", "llm"):
            raise InputError(f"--patient must be fact or llm, got {self.patient!r}")
        if self.patient == "llm" and not self.patient_model:
            raise InputError("--patient llm needs --patient-model SPEC")
        if (self.cases_per_step * self.group_size) % self.grad_accum:
            raise InputError(f"cases_per_step x group_size ({self.cases_per_step * self.group_size}) must be "
                             f"divisible by --grad-accum {self.grad_accum}")
