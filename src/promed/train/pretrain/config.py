"""Stage 0 settings: :class:`PretrainConfig`, one field per setting with its help (``promed pretrain``'s options)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from promed.doctor.actions import ANSWER_FORMATS
from promed.errors import InputError
from promed.train.small_model import SmallModelConfig

__all__ = ["DEFAULT_ANSWER_FORMAT", "PretrainConfig"]

DEFAULT_ANSWER_FORMAT = "name"


@dataclass(frozen=True)
class PretrainConfig:
    """``promed pretrain``: Stage 0 on SynthClinic (defaults: the measured CPU setting, BENCHMARKS.md)."""

    cases: int = field(default=20000, metadata={"help": "Train-split SynthClinic cases to generate (never val or "
                                                        "test)."})
    subsets_per_case: int = field(default=2, metadata={"help": "Fact subsets rendered per case (examples = cases x "
                                                               "this); sizes uniform over 0..all facts (the dialogue "
                                                               "layout: 0..dialogue_max_turns)."})
    data_seed: int = field(default=1, metadata={"help": "Seed of the train-split case stream (any seed gives train "
                                                        "cases only; 0 is the stream Stage 1 searches)."})
    known_share: float = field(default=0.5, metadata={"help": "Share of examples that list the facts up front (as "
                                                              "full-info shows them); the rest reveal them as "
                                                              "question/reply turns."})
    known_min_fraction: float = field(default=0.0, metadata={"help": "Known-facts layout: subset sizes uniform over "
                                                                      "ceil(this x all facts)..all (0: every size, "
                                                                      "the default; 0.5 learned less, BENCHMARKS.md)."})
    refusal_share: float = field(default=0.1, metadata={"help": "Dialogue layout: extra turns asking about an "
                                                                "undocumented finding (the patient refuses), per "
                                                                "revealed fact."})
    answer_every_turn: bool = field(default=True, metadata={"help": "Dialogue layout: train the answer after the "
                                                                    "initial statement and after every reply too, "
                                                                    "each as a branch of the same sequence "
                                                                    "(promed.train.branches; exact by attention "
                                                                    "mask), not only at the end."})
    known_prefixes: bool = field(default=True, metadata={"help": "Known-facts layout (with answer_every_turn): "
                                                                 "train the answer after every "
                                                                 "prefix of the listed facts too (random order), each "
                                                                 "a branch of the same sequence."})
    dialogue_max_turns: int = field(default=5, metadata={"help": "Dialogue layout: at most this many question/reply "
                                                                 "turns (a consultation's question budget; the "
                                                                 "known-facts layout shows subsets of every size)."})
    budgets: tuple[int, ...] = field(default=(0, 5), metadata={"help": "Question budgets shown in the prompt, drawn "
                                                                       "uniformly (at least the turns taken)."})
    answer_format: str = field(default=DEFAULT_ANSWER_FORMAT,
                               metadata={"help": "Answer turn: name ('ANSWER: <option text>'), text ('ANSWER: <option "
                                                 "text> (<letter>)') or letter ('ANSWER: <letter>')."})
    labels: str = field(default="soft", metadata={"help": "Answer-turn targets: soft (the exact SynthClinic "
                                                       "posterior of what each answer point sees, spread over the "
                                                       "answer's tokens: promed.train.distill) or hard (the "
                                                       "generator's gold option)."})
    small: SmallModelConfig = field(default_factory=SmallModelConfig,
                                    metadata={"help": "Tokenizer/model size of synthclinic-small."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the generated examples."})
    max_steps: int = field(default=-1, metadata={"help": "If > 0, total optimizer steps (overrides epochs)."})
    batch_size: int = field(default=32, metadata={"help": "Examples per optimizer step."})
    learning_rate: float = field(default=3e-3, metadata={"help": "Peak AdamW learning rate."})
    lr_scheduler: str = field(default="cosine", metadata={"help": "transformers scheduler name."})
    warmup: float = field(default=0.02, metadata={"help": "Warmup: fraction of total steps if < 1, else steps."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    group_by_length: bool = field(default=True, metadata={"help": "Batch examples of similar length together (the "
                                                                   "Trainer's group_by_length sampler): less padding, "
                                                                   "same examples."})
    max_len: int = field(default=1024, metadata={"help": "Max tokens per example (longer ones are cut; the answer "
                                                         "is at the end, so a cut example is dropped)."})
    seed: int = field(default=0, metadata={"help": "Seed of the subsets, layouts, initialisation and data order."})
    bf16: bool | None = field(default=None, metadata={"help": "bf16 autocast (weights and optimizer stay float32); "
                                                             "None: on when CUDA supports bf16 (SFT's rule; on a "
                                                             "CPU with native bf16 a full run was slower and took "
                                                             "twice the memory, BENCHMARKS.md)."})
    data_workers: int | None = field(default=None, metadata={"help": "Processes that tokenize the examples before "
                                                                     "training, forked on Linux (the same rows as "
                                                                     "one; None: as many as the torch threads "
                                                                     "training will use)."})
    save_steps: int = field(default=200, metadata={"help": "Checkpoint every this many optimizer steps."})
    save_total_limit: int = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    logging_steps: int = field(default=10, metadata={"help": "Log the training loss every N steps."})
    resume: bool = field(default=True, metadata={"help": "Continue from the latest checkpoint in out; False starts "
                                                         "over."})
    stop_after_steps: int | None = field(default=None, metadata={"help": "Checkpoint and stop after this many steps, "
                                                                         "as if interrupted (time-boxed runs)."})
    num_threads: int | None = field(default=None, metadata={"help": "torch CPU threads (None: at most 2 without "
                                                                    "CUDA, as SFT)."})
    progress_bar: bool = field(default=True, metadata={"help": "Show the progress bar."})
    out: Path = field(default=Path("runs/pretrain"), metadata={"help": "Output directory: the checkpoint (hf:OUT, "
                                                                       "llm:OUT); re-running resumes."})
    overwrite: bool = field(default=False, metadata={"help": "Start afresh when --out holds a run made with other "
                                                             "settings."})

    def __post_init__(self) -> None:
        if self.labels not in ("soft", "hard"):
            raise InputError(f"--labels must be soft or hard, got {self.labels!r}")
        if self.answer_format not in ANSWER_FORMATS:
            raise InputError(f"--answer-format must be one of {', '.join(ANSWER_FORMATS)}, got {self.answer_format!r}")
        for opt, value, low in (("--cases", self.cases, 1), ("dialogue_max_turns", self.dialogue_max_turns, 0),
                                ("--subsets-per-case", self.subsets_per_case, 1),
                                ("--batch-size", self.batch_size, 1), ("--data-seed", self.data_seed, 0),
                                ("--seed", self.seed, 0)):
            if value < low:
                raise InputError(f"{opt} must be >= {low}, got {value}")
        if not 0.0 <= self.known_min_fraction <= 1.0:
            raise InputError(f"known_min_fraction must lie in [0, 1], got {self.known_min_fraction}")
        if not 0.0 <= self.known_share <= 1.0:
            raise InputError(f"--known-share must lie in [0, 1], got {self.known_share}")
        if self.data_workers is not None and self.data_workers < 1:
            raise InputError(f"--data-workers must be >= 1, got {self.data_workers}")
        if not self.refusal_share >= 0.0:
            raise InputError(f"refusal_share must be >= 0, got {self.refusal_share}")
        if not self.budgets or min(self.budgets) < 0:
            raise InputError(f"budgets must be a non-empty list of numbers >= 0, got {self.budgets}")
        if not self.learning_rate > 0:
            raise InputError(f"--learning-rate must be > 0, got {self.learning_rate}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise InputError("give --epochs > 0 or --max-steps > 0")
