"""Stage 0's examples: SynthClinic train-split cases rendered as the consultations a reactive doctor answers.

For each case, ``subsets_per_case`` fact subsets (size uniform over 0..n, then the subset uniform among those of
that size), each rendered exactly as the doctor sees a consultation (:func:`promed.doctor.policy.view_to_chat` on
:func:`promed.env.consultation.dialogue_view`) in one of two layouts: the facts listed up front (share
``known_share``, as ``full-info`` shows them), or revealed as question/reply turns (the template question writer's
question, the patient's reply, plus refused questions about undocumented findings). The question budget shown is
drawn from ``budgets``. Each answer point carries the exact posterior of what it sees (the soft labels). Why
these layouts, formats and labels: :mod:`promed.train.pretrain` and BENCHMARKS.md ("Pretraining").
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import numpy as np

from promed.data.synthclinic import candidate_questions, generate_cases, question_for_fact
from promed.doctor.actions import answer_turn
from promed.doctor.policy import view_to_chat
from promed.env.consultation import DialogueState, dialogue_view, transition
from promed.errors import InputError
from promed.patient.guard import REFUSAL, safe_fact_ids
from promed.train.data import ChatExample
from promed.train.pretrain.config import DEFAULT_ANSWER_FORMAT, PretrainConfig
from promed.types import Ask, Case

__all__ = ["PretrainExample", "answer_text", "case_examples", "dialogue_state", "pretraining_cases",
           "pretraining_examples", "prompt_chat", "render_example", "revealed_at_answer_points", "sample_subset"]


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
