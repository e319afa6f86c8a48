"""Stage 0 (SynthClinic only): pretrain the small doctor on generated vignettes, so that it knows medicine.

The ``synthclinic-small`` doctor is trained from scratch; without this stage everything it knows comes from ~2,000
Stage 1 trajectories and its own answers sit at chance. SynthClinic can generate any number of cases with exact
posteriors: the analogue of the medical pre-training every real model has had. :func:`run_pretrain` trains a
*reactive* doctor that knows medicine: shown a consultation, it answers at once, with the diagnosis the visible
facts support.

Data (:func:`pretraining_examples`)
    Cases from the SynthClinic **train** split only (:func:`promed.data.synthclinic.generate_cases` with
    ``data_seed``: every seed is an endless, prefix-stable stream of train cases, and the generator assigns a case to
    a split by the hash of its clinical signature, so no seed ever yields a val or test case; the test checks it by
    ``Case.content_hash``). For each case, ``subsets_per_case`` fact subsets: the size is uniform over 0..n (every
    size from none to all), then the subset uniform among those of that size. Each subset is rendered exactly as
    the doctor sees a consultation (:func:`promed.doctor.policy.view_to_chat` on
    :func:`promed.env.consultation.dialogue_view`), in one of two layouts:

    * **known facts** (share ``known_share``): the facts listed up front, as ``EnvConfig(reveal_all=True)``
      (``full-info``) shows them, here in random order; with ``known_prefixes`` (and ``answer_every_turn``) the
      example also trains the answer after every prefix of that list (the first 0, 1, ... facts), each
      as a branch of the same sequence (the known facts come last in the doctor's first message, so a branch is
      the budget line and the answer, ~12 tokens: :func:`known_prefix_points`);
    * **dialogue**: at most ``dialogue_max_turns`` facts (the question budget of a consultation), each as a
      question/reply turn: the question from the SynthClinic template question writer
      (:func:`promed.data.synthclinic.question_for_fact`), the reply the fact's text, as ``FactPatient`` answers it
      (facts the no-leak guard keeps from patients are not revealed in this layout), in random order; with
      ``refusal_share`` extra turns ask about an undocumented finding of the options and get the patient's refusal
      (documentation is independent of the diagnosis in SynthClinic, so they carry no evidence).

    The question budget shown is drawn from ``budgets`` (0: "no questions left", as ``--max-questions 0`` runs the
    reactive doctor; 5: the default consultation), at least the turns taken. Then the doctor's answer turn; the
    loss is on that turn only (:func:`answer_only_labels`). With ``answer_every_turn`` (the default) a dialogue
    example also trains the answer at each earlier point where the doctor could have answered (after the initial
    statement, after each reply): each is a short branch after the one shared prompt (:mod:`promed.train.branches`,
    exact by attention mask and position ids), so one ~150-token sequence carries 1 + turns answers instead of one.
    Soft labels give each point the posterior of what it sees; the hard label is the same at every point: in SynthClinic the gold is a draw from the posterior given *all*
    facts, whose expectation over the unseen facts is the posterior given the facts seen so far, so each point's
    cross-entropy still has its own posterior as minimiser. Measured (BENCHMARKS.md "Pretraining, session 7"): at
    700 steps 0.390 / 0.537 reactive / all facts against 0.360 / 0.407 with the final answer only, and each step is
    faster (0.59 s against 0.64-0.8 s: logits on the answer tokens only). The known-facts prefixes (session 8):
    0.673 with all facts at 700 steps against 0.537, in less time (8.1 against 9.8 minutes).

Answer format (``answer_format``; measured, BENCHMARKS.md "Pretraining"): ``name``, ``ANSWER: <option text>``,
    the default; ``text``, ``ANSWER: <option text> (<letter>)``; ``letter``, ``ANSWER: <letter>``. All three are
    turns of the strict grammar (:mod:`promed.doctor.actions` maps an option's text alone to its letter). With the
    letter alone the model must bind a diagnosis to a shuffled letter before it can show any medicine: its letter
    cross-entropy sat at ln 4 (chance) after 300 steps here and for 8 minutes in the issue's probe. Naming the
    diagnosis learns the medicine, but with ``text`` the letter after the name is a second lookup (find the option
    line of that name, copy its letter) that comes late: after 300 SynthClinic steps both name formats rank the
    options above chance, yet only 18-21% of the ``text`` doctor's own answers were valid (the letter contradicted
    the name), against 75% of the ``name`` doctor's (100% after 1,500 steps); on the toy rule of the tests the same
    (``(D)`` after every name). ``name`` has no letter to get wrong; a disease name outside the options is an invalid turn, as any other.

Labels (``labels``; measured, BENCHMARKS.md "Pretraining"): ``soft``, the default, distils the exact posterior of
    what each answer point shows (:mod:`promed.train.distill`: along the gold answer's tokens, the posterior's
    next-token distribution from a trie over the options' answer turns, so any tokenizer works); ``hard`` is the
    generator's gold option. In SynthClinic the gold diagnosis *is* a draw from that posterior (the generator
    samples the disease first, and the documentation of findings and our choice of subset are independent of it),
    so both have the posterior as minimiser; the hard label only adds noise where the facts leave the answer open,
    and soft targets train calibration directly. Measured at 700 steps with every answer branch (session 8): soft
    0.353 / **0.857** reactive / all facts and calibration error 0.067 / 0.118, against hard 0.343 / 0.673 and
    0.092 / 0.236. (Earlier, soft labels needed one token per diagnosis, ``pretokenize="lines"``, which learned
    less per example than words; word-split text with each diagnosis added as one token learned least: 0.240 /
    0.240 at 700 steps, we read this as the diagnosis sharing words with the facts, e.g. "Hepatitis A IgM", being
    how the model links them.)

Tokenizer: ``synthclinic-small``'s byte-level BPE on words (2,048 tokens; ~140 tokens per example). With
    ``pretokenize="lines"`` merges may cross spaces inside a line (~59 tokens per example, a fact or a diagnosis
    one token); merging across line breaks too (~35 tokens) learned worst of all (0.278
    / 0.414 after 88,000 examples). Numbers: BENCHMARKS.md.

Training is Stage 1's SFT machinery (:mod:`promed.train.sft`: the ``synthclinic-small`` builder whose BPE
tokenizer is trained on the examples' texts, TRL's ``SFTTrainer`` with SFT's trainer settings, checkpoints, exact
resume, the final save, ``loss.png``), composed rather than re-written. Two things differ from ``run_sft`` and are
done here: (1) the labels (:func:`answer_only_labels`: the loss on the answer turns only, since the dialogue
layout's question turns are random template questions that a reactive doctor must not learn to ask; SFT's
:func:`promed.train.data.tokenize_with_mask` puts every assistant turn in the loss; the rows are packed answer
branches, :mod:`promed.train.branches`, whose trainer computes the logits of the answer tokens only),
and (2) the examples are
generated in memory from the config (deterministic, so a resumed run sees the same data) instead of read from a
JSONL file, and batched by length (``group_by_length``: about half the padding, 1.9x faster on CPU); the rows
are tokenized in ``data_workers`` processes (the same rows as one) and handed to the trainer as they are (TRL's
dataset preparation is skipped: it would only copy ``input_ids`` into a ``labels`` column the loss never reads).
The result in ``out`` is a normal Hugging Face checkpoint (``hf:<out>``, ``llm:<out>``).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import multiprocessing
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from promed.data.synthclinic import candidate_questions, generate_cases, question_for_fact
from promed.doctor.actions import ANSWER_FORMATS, answer_turn
from promed.doctor.policy import view_to_chat
from promed.env.consultation import DialogueState, dialogue_view, transition
from promed.errors import InputError
from promed.patient.guard import REFUSAL, safe_fact_ids
from promed.train.data import IGNORE_INDEX, ChatExample
from promed.train.sft import SMALL_SPEC, SFTResult, SFTRunConfig
from promed.train.small_model import SmallModelConfig
from promed.types import Ask, Case

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


# ---- rendering --------------------------------------------------------------------------------------------------


def answer_text(case: Case, letter: str, answer_format: str = DEFAULT_ANSWER_FORMAT) -> str:
    """The doctor's answer turn for option ``letter`` (:func:`promed.doctor.actions.answer_turn`)."""
    return answer_turn(case.options, letter, answer_format)


def dialogue_state(case: Case, fact_ids: Sequence[int], refusals: Sequence[str] = (),
                   rng: np.random.Generator | None = None) -> DialogueState:
    """The consultation state in which ``fact_ids`` were revealed one per question/reply turn, in the given order.

    Each question is the template question of its fact and the reply the fact's text (what ``FactPatient``
    answers); the ``refusals`` (questions about undocumented findings) are inserted at positions drawn from
    ``rng``, each answered with the patient's refusal.
    """
    turns: list[tuple[str, str, tuple[int, ...]]] = [
        (question_for_fact(case.facts[i]), case.facts[i].text, (int(i),)) for i in fact_ids]
    for q in refusals:
        pos = int(rng.integers(len(turns) + 1)) if rng is not None else len(turns)
        turns.insert(pos, (q, REFUSAL, ()))
    state = DialogueState()
    for question, reply, ids in turns:
        state, _ = transition(state, Ask(question), (reply, ids))
    return state


def render_example(case: Case, fact_ids: Sequence[int], *, known: bool, budget: int,
                   answer_format: str = DEFAULT_ANSWER_FORMAT, letter: str | None = None, refusals: Sequence[str] = (),
                   rng: np.random.Generator | None = None) -> list[dict]:
    """Chat messages for one pretraining example: the consultation prompt the doctor would see with ``fact_ids``
    known (listed up front if ``known``, else revealed by question/reply turns in the given order), then the answer
    turn for ``letter`` (default: the gold one)."""
    if known:  # listed in the given order (a consultation lists them by id; prefixes of a random order here)
        state = DialogueState(known=frozenset(int(i) for i in fact_ids))
        view = replace(dialogue_view(case, state, budget), known_facts=tuple(case.facts[int(i)] for i in fact_ids))
    else:
        state = dialogue_state(case, fact_ids, refusals, rng)
        view = dialogue_view(case, state, max(budget, state.n_questions))
    msgs = [dict(m) for m in view_to_chat(view)]
    msgs.append({"role": "assistant", "content": answer_text(case, letter or case.answer, answer_format)})
    return msgs


def prompt_chat(case: Case, fact_ids: Sequence[int] = (), *, known: bool = True, budget: int = 5) -> list[dict]:
    """The prompt (no answer turn) for ``case`` with ``fact_ids`` known: what :func:`render_example` trains on,
    for scoring the options (benchmarks, tests)."""
    return render_example(case, fact_ids, known=known, budget=budget)[:-1]


def sample_subset(ids: Sequence[int], rng: np.random.Generator, max_size: int | None = None,
                  min_size: int = 0) -> np.ndarray:
    """A random subset of ``ids``: size uniform over min(min_size, n)..n with n = min(len, max_size), then uniform
    among the subsets of that size, in random order."""
    n = len(ids) if max_size is None else min(len(ids), max_size)
    k = int(rng.integers(min(min_size, n), n + 1))
    return np.asarray(ids, dtype=np.int64)[rng.permutation(len(ids))[:k]]


@dataclass(frozen=True)
class PretrainExample:
    """One rendered example and its answer targets: ``answers`` (each option's answer turn, option order),
    ``gold`` (index of the generator's gold option) and ``probs`` (the exact posterior given what the prompt shows;
    None for cases without one, e.g. toy cases in tests)."""

    chat: ChatExample
    answers: tuple[str, ...]
    gold: int
    point_probs: tuple[tuple[float, ...], ...] | None = None
    """With soft labels, the exact posterior at each answer point, in packing order (the last: the whole prompt)."""
    points: tuple[tuple[dict, ...], ...] = ()
    """Earlier answer points given explicitly (the known-facts layout's prefixes), each a whole conversation ending
    in the answer turn; a dialogue's are found from its turns (:func:`promed.train.branches.answer_points`)."""

    @property
    def id(self) -> str:
        return self.chat.id

    @property
    def messages(self) -> tuple:
        return self.chat.messages


def case_examples(case: Case, cfg: PretrainConfig, rng: np.random.Generator) -> Iterator[PretrainExample]:
    """``cfg.subsets_per_case`` rendered examples of one case (see the module docstring)."""
    for j in range(cfg.subsets_per_case):
        known = bool(rng.random() < cfg.known_share)
        budget = int(cfg.budgets[int(rng.integers(len(cfg.budgets)))])
        refusals: list[str] = []
        if known:
            subset = sample_subset(range(case.n_facts), rng, min_size=math.ceil(cfg.known_min_fraction * case.n_facts))
        else:  # only facts a patient may reveal, at most dialogue_max_turns turns in all
            subset = sample_subset(safe_fact_ids(case), rng, cfg.dialogue_max_turns)
            n_ref = int(rng.poisson(cfg.refusal_share * max(len(subset), 1))) if cfg.refusal_share > 0 else 0
            n_ref = min(n_ref, cfg.dialogue_max_turns - len(subset))
            if n_ref:
                documented = {f.finding.code for f in case.facts if f.finding is not None}
                pool = [q for _, q in candidate_questions(case.options, documented,
                                                          initial_findings=case.initial_findings)]
                if pool:
                    refusals = [pool[int(i)] for i in rng.permutation(len(pool))[:n_ref]]
        ids = [int(i) for i in subset]
        msgs = render_example(case, ids, known=known, budget=budget, answer_format=cfg.answer_format,
                              refusals=refusals, rng=rng)
        points: tuple = ()
        if known and cfg.known_prefixes and cfg.answer_every_turn:
            points = tuple(tuple(render_example(case, ids[:k], known=True, budget=budget,
                                                answer_format=cfg.answer_format)) for k in range(len(ids)))
        probs = None
        if cfg.labels == "soft":
            shown = ([ids[:k] for k in range(len(ids) + 1)] if points
                     else [ids] if known else revealed_at_answer_points(case, msgs))
            probs = _posteriors(case, shown)
        yield PretrainExample(ChatExample(id=f"{case.id}/{j}", messages=tuple(msgs)),
                              answers=tuple(answer_text(case, o.letter, cfg.answer_format) for o in case.options),
                              gold=case.gold_index, point_probs=probs, points=points)


def revealed_at_answer_points(case: Case, messages: Sequence[dict]) -> list[list[int]]:
    """The facts revealed so far at each answer point of a dialogue example (after each user turn): the facts whose
    text opens the patient's replies up to there (a refusal reveals none)."""
    by_text = {f.text: f.id for f in case.facts}
    users = [m["content"] for m in messages if m["role"] == "user"]
    out, seen = [[]], []
    for reply in users[1:]:
        fid = by_text.get(reply.split("\n", 1)[0])
        if fid is not None:
            seen = [*seen, int(fid)]
        out.append(seen)
    return out


def _posteriors(case: Case, fact_sets) -> tuple[tuple[float, ...], ...]:
    """The exact SynthClinic posteriors over ``case``'s options given its initial statement and each fact set."""
    if not case.initial_findings:
        raise InputError(f"case {case.id!r} is not a SynthClinic case: soft labels need its exact posterior "
                         "(use --labels hard)")
    probs = _bayes().probs([case.query([int(i) for i in ids]) for ids in fact_sets])
    return tuple(tuple(float(p) for p in row) for row in probs)


@functools.lru_cache(maxsize=1)
def _bayes():
    from promed.data.synthclinic import BayesScorer

    return BayesScorer()


def pretraining_cases(cfg: PretrainConfig) -> list[Case]:
    """The train-split cases of ``cfg`` (ids ``sc-train-<k>`` of the ``data_seed`` stream)."""
    return generate_cases("train", cfg.cases, seed=cfg.data_seed)


def pretraining_examples(cfg: PretrainConfig, cases: Sequence[Case] | None = None) -> list[PretrainExample]:
    """Every rendered example of ``cfg`` (deterministic in the config: one RNG per case from (seed, case index))."""
    cases = pretraining_cases(cfg) if cases is None else cases
    out: list[PretrainExample] = []
    for k, case in enumerate(cases):
        rng = np.random.default_rng([cfg.seed, cfg.data_seed, k])
        out.extend(case_examples(case, cfg, rng))
    return out


# ---- training -----------------------------------------------------------------------------------------------------


def sft_config(cfg: PretrainConfig) -> SFTRunConfig:
    """Stage 1's SFT settings that run this pretraining (``synthclinic-small`` built from the examples)."""
    return SFTRunConfig(
        model=SMALL_SPEC, small=cfg.small, learning_rate=cfg.learning_rate, lr_scheduler=cfg.lr_scheduler,
        warmup=cfg.warmup, weight_decay=cfg.weight_decay, epochs=cfg.epochs, max_steps=cfg.max_steps,
        batch_size=cfg.batch_size, max_len=cfg.max_len, seed=cfg.seed, save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, logging_steps=cfg.logging_steps, resume=cfg.resume,
        stop_after_steps=cfg.stop_after_steps, progress_bar=cfg.progress_bar, num_threads=cfg.num_threads,
        bf16=cfg.bf16,
    )


def answer_only_labels(messages: Sequence[dict], tokenizer, max_len: int | None = None) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` of a conversation with the loss on its **last** turn only (the answer).

    Every assistant turn in the loss (:func:`promed.train.data.tokenize_with_mask`'s default) would train the
    randomly ordered template questions of the dialogue layout too (a reactive doctor must not learn to ask at
    random), so only the last turn's span is kept; it must be an assistant turn.
    """
    from promed.train.data import DataError, tokenize_with_mask

    if not messages or messages[-1]["role"] != "assistant":
        raise DataError("the last message must be an assistant turn that the chat template renders after the prompt")
    return tokenize_with_mask(messages, tokenizer, max_len=max_len, last_only=True)


def known_prefix_points(messages: Sequence[dict], n_facts: int, tokenizer) -> list[tuple[list[int], list[int]]]:
    """The tokenized answer points of a known-facts example listing ``n_facts`` facts: with the first ``k`` facts
    listed (``k = 0..n_facts``; the last is ``messages`` itself), as ``(input_ids, labels)``.

    Tokenizes once: the prompt with ``k`` facts is the full prompt up to the line break that ends fact ``k`` (for
    ``k = 0``, the one before ``Known facts:``), then the same budget line, answer header and answer. That holds
    when a line break is one token that no merge crosses (``synthclinic-small`` either way); :func:`build_dataset`
    checks it against rendering each prefix on the first examples. Returns [] if the prompt does not have that
    shape."""
    from promed.train.data import tokenize_with_mask

    ids, labels = tokenize_with_mask(messages, tokenizer, last_only=True)
    nl = tokenizer.encode("\n", add_special_tokens=False)
    first = next((i for i, lab in enumerate(labels) if lab != IGNORE_INDEX), 0)
    if len(nl) != 1 or n_facts < 1:
        return []
    breaks = [i for i in range(first) if ids[i] == nl[0]]
    if len(breaks) < n_facts + 2:
        return []
    q = breaks[-1] + 1
    cuts = [breaks[-(n_facts + 2)], *breaks[-n_facts:-1]]
    return [(ids[:c + 1] + ids[q:], [IGNORE_INDEX] * (c + 1) + labels[q:]) for c in cuts] + [(ids, labels)]


PREFIX_CHECKS = 16  # known-facts examples whose one-pass prefixes are checked against rendering each prefix


PARALLEL_MIN_EXAMPLES = 4000  # fewer are tokenized in-process (the workers' start and the rows' transfer cost more)
FORK = "fork"  # the start method of the workers, used on Linux only (macOS forks unsafely); else in-process


def build_dataset(examples: Sequence[PretrainExample], tokenizer, max_len: int, soft: bool = False,
                  every_turn: bool = False, workers: int = 1):
    """Pre-tokenized ``datasets.Dataset`` of packed rows (:mod:`promed.train.branches`: ``input_ids``, next-token
    ``targets``, position ids and the branch columns); examples cut by ``max_len`` (their answer is at the end) are
    dropped. Returns (dataset, n_dropped).

    With ``every_turn`` one answer branch per answer point (each reply of a dialogue, each prefix of the known facts
    given as ``points``), else the final answer only. With ``soft`` the rows also hold the soft-target columns of
    :mod:`promed.train.distill`: at each branch, the exact posterior of what that branch sees, spread over the
    answer's tokens. ``workers`` > 1 tokenizes contiguous chunks in that many processes (the stdlib's process pool:
    the rows, and so the dataset, are the same as in one process; ``tests/test_pretrain.py`` checks it)."""
    from datasets import Dataset

    chunks = [list(examples)]
    if workers > 1 and len(examples) >= PARALLEL_MIN_EXAMPLES and sys.platform.startswith("linux"):
        size = math.ceil(len(examples) / workers)
        chunks = [list(examples[i:i + size]) for i in range(0, len(examples), size)]
    if len(chunks) == 1:
        parts = [_build_rows(chunks[0], tokenizer, max_len, soft, every_turn)]
    else:
        from concurrent.futures import ProcessPoolExecutor

        # fork (as torch's DataLoader workers on Linux): spawn would re-run an unguarded main script; the tokenizers
        # library turns its own thread pool off in a forked child
        with ProcessPoolExecutor(len(chunks), mp_context=multiprocessing.get_context(FORK)) as pool:
            build = functools.partial(_build_rows, tokenizer=tokenizer, max_len=max_len, soft=soft,
                                      every_turn=every_turn)
            parts = list(pool.map(build, chunks))
    rows = [r for part, _ in parts for r in part]
    dropped = sum(d for _, d in parts)
    if not rows:
        raise InputError(f"no pretraining example fits in max_len={max_len} tokens")
    return Dataset.from_dict({k: [r[k] for r in rows] for k in rows[0]}), dropped


def _build_rows(examples: Sequence[PretrainExample], tokenizer, max_len: int, soft: bool,
                every_turn: bool) -> tuple[list[dict], int]:
    """The packed rows of :func:`build_dataset` for ``examples`` and how many were dropped (one process)."""
    from promed.train.branches import branched_example, pack_branches
    from promed.train.data import tokenize_with_mask

    rows: list[dict] = []
    dropped = 0
    checks, one_pass = PREFIX_CHECKS, True
    encode = functools.lru_cache(maxsize=None)(lambda text: tuple(tokenizer(text, add_special_tokens=False)
                                                                  ["input_ids"]))
    for ex in examples:
        if ex.points and every_turn:
            encodings = known_prefix_points(ex.messages, len(ex.points), tokenizer) if one_pass else []
            if not encodings or checks > 0:  # render each prefix: the fallback, and the check of the one pass
                each = [tokenize_with_mask(p, tokenizer, last_only=True) for p in (*ex.points, ex.messages)]
                if encodings:
                    checks -= 1
                    one_pass = encodings == each
                encodings = each
            packed = pack_branches(encodings)
        else:
            packed = branched_example(ex.messages, tokenizer, every_turn=every_turn)
        if max(packed.position_ids) + 1 > max_len:  # the final answer point, the longest, is cut
            dropped += 1
            continue
        row = packed.as_row()
        if soft:
            row.update(soft_columns(ex, packed, tokenizer, encode))
        rows.append(row)
    return rows, dropped


def soft_columns(ex: PretrainExample, packed, tokenizer, encode=None) -> dict:
    """The soft-target columns of one packed example: per branch, :func:`promed.train.distill.answer_soft_targets`
    of that answer point's posterior, placed at the row positions that predict the answer's tokens."""
    from promed.train.distill import answer_sequences, answer_soft_targets

    if not ex.point_probs:
        raise ValueError(f"example {ex.id!r} has no posterior: soft labels need SynthClinic cases")
    probs = ex.point_probs[-packed.n_answers:]  # the final answer only: the last point
    if len(probs) != packed.n_answers:
        raise ValueError(f"example {ex.id!r}: {packed.n_answers} answer points but {len(ex.point_probs)} posteriors")
    gold_span = list(itertools.takewhile(lambda t: t != IGNORE_INDEX, packed.targets[packed.answer_pos[-1]:]))
    seqs = answer_sequences(ex.answers, ex.gold, gold_span, tokenizer, encode)
    pos, ids, ps = [], [], []
    for at, q in zip(packed.answer_pos, probs):
        for t, tok_ids, tok_probs in answer_soft_targets(seqs, q, ex.gold):
            pos.append(at + t)
            ids.append(list(tok_ids))
            ps.append(list(tok_probs))
    return {"soft_pos": pos, "soft_ids": ids, "soft_probs": ps}


@dataclass(frozen=True)
class PretrainResult:
    """What :func:`run_pretrain` did: SFT's result fields (``model_dir`` is ``out`` once completed, else the last
    checkpoint), the data time (generation + rendering + tokenization) and the model's size."""

    sft: SFTResult
    data_s: float
    n_params: int


TOKENIZER_EXAMPLES = 4000  # examples whose texts train the BPE vocabulary (more change nothing but the time)


def run_pretrain(cfg: PretrainConfig, out: str | Path | None = None,
                 cases: Sequence[Case] | None = None) -> PretrainResult:
    """Generate the examples, build (or reuse, on resume) ``synthclinic-small`` under ``out/base`` and train it with
    TRL's SFTTrainer; resumes from the latest checkpoint in ``out/checkpoints``. See the module docstring.

    ``cases`` replaces the generated train-split cases (toy rules in tests; ``cfg.cases`` is then ignored)."""
    import torch

    threads = torch.get_num_threads()
    n = cfg.num_threads
    if n is None and not torch.cuda.is_available():
        n = min(2, threads)
    if n is not None:
        torch.set_num_threads(n)
    try:
        return _run(cfg, Path(cfg.out if out is None else out), cases)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: PretrainConfig, out: Path, cases: Sequence[Case] | None) -> PretrainResult:
    import shutil

    import torch

    from transformers.trainer_utils import get_last_checkpoint

    from promed.train.sft import load_base, make_trainer_args, plot_losses, save_and_stop_callbacks, save_final
    from promed.train.small_model import n_params

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    scfg = sft_config(cfg)
    resume_from = get_last_checkpoint(str(ckpt_dir)) if (cfg.resume and ckpt_dir.is_dir()) else None
    if not cfg.resume and ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)

    examples = pretraining_examples(cfg, cases)
    model, tokenizer = load_base(scfg, out, [e.chat for e in examples[:TOKENIZER_EXAMPLES]])  # reused on resume
    soft = cfg.labels == "soft"
    train_ds, n_drop = build_dataset(examples, tokenizer, cfg.max_len, soft=soft, every_turn=cfg.answer_every_turn,
                                     workers=cfg.data_workers or torch.get_num_threads())
    data_s = time.perf_counter() - t0
    args = make_trainer_args(scfg, ckpt_dir, has_eval=False)
    # A packed row's branches make it longer than the positions it spans (build_dataset bounds those by max_len);
    # TRL's truncation at max_length would cut its input_ids and leave the branch columns whole.
    args.max_length = None
    # The rows are tokenized and bounded already: TRL's preparation would only add a "labels" copy of input_ids
    # that the branch loss never reads (~10 s and the memory of a second token column for the default run).
    args.dataset_kwargs = {**(args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    if cfg.group_by_length:
        args.train_sampling_strategy = "group_by_length"  # lengths from the dataset's "length" column
    from promed.train.branches import BranchCollator, branch_trainer_class

    trainer = branch_trainer_class()(model=model, args=args, train_dataset=train_ds, processing_class=tokenizer,
                                     callbacks=save_and_stop_callbacks(scfg),
                                     data_collator=BranchCollator(tokenizer.pad_token_id))
    if trainer.train_dataset[0]["targets"] != train_ds[0]["targets"]:  # our masks must reach the loss untouched
        raise RuntimeError("this TRL version rebuilt the labels of the pre-tokenized dataset; use trl>=1.0")
    trainer.train(resume_from_checkpoint=resume_from)
    state = trainer.state
    completed = state.global_step >= state.max_steps
    history = list(state.log_history)
    loss_pts = [(int(h["step"]), float(h["loss"])) for h in history if "loss" in h]
    if completed:
        save_final(trainer, tokenizer, out, merge=False)
    plot_losses(loss_pts, [], out / "loss.png")
    res = SFTResult(
        model_dir=out if completed else Path(get_last_checkpoint(str(ckpt_dir)) or ckpt_dir), completed=completed,
        steps=int(state.global_step), loss_steps=tuple(s for s, _ in loss_pts), losses=tuple(v for _, v in loss_pts),
        eval_loss=None, wall_s=round(time.perf_counter() - t0, 3), n_examples=len(train_ds), n_truncated=n_drop,
        n_dropped=n_drop, resumed_from=Path(resume_from) if resume_from else None,
    )
    result = PretrainResult(sft=res, data_s=round(data_s, 3), n_params=n_params(model))
    _write_log(out / "train_log.json", cfg, result, history)
    return result


def _write_log(path: Path, cfg: PretrainConfig, result: PretrainResult, history: list[dict]) -> None:
    """``train_log.json``: config, result, the Trainer's log history, library versions (atomic)."""
    import torch
    import transformers
    import trl

    rec = {"config": asdict(cfg), "result": asdict(result), "log_history": history,
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "trl": trl.__version__}}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rec, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
