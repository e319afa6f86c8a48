"""Training-free baseline doctors.

All of them answer through a :class:`promed.types.Scorer` (the exact Bayes posterior on SynthClinic, or an LLM
scoring the options) applied to what the doctor has been told, so they differ only in how they ask:

* :class:`ReactiveDoctor` - answers at once from the initial statement (the usual medical LLM). Run with
  ``EnvConfig(reveal_all=True)`` it is the **full-information** upper bound.
* :class:`RandomQuestionDoctor` - asks ``k`` questions drawn at random from the case's question pool, then answers.
* :class:`AbstainDoctor` - MediQ-style abstention: answers once confident, otherwise asks. ``mode="numeric"`` uses
  the scorer's top probability against a cut-off; ``mode="scale"`` a 1-5 confidence rating against a cut-off
  (rated by the LLM itself when one is given, as in MediQ; otherwise the scorer's top probability mapped linearly
  from chance to certainty onto 1-5). Questions come from an LLM when one is given, else from the question pool.

:class:`ScorerAnswers` wraps any doctor (e.g. a trained policy) so that it asks as it likes but answers through
the scorer. The greedy expected-information-gain planner lives in :mod:`promed.doctor.eig`; the LLM doctor in
:mod:`promed.doctor.policy`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from promed.doctor.actions import parse_action
from promed.doctor.questions import candidate_questions
from promed.errors import InputError
from promed.types import Ask, DoctorView, Generation, Sampling, Scorer, per_view


def answer_texts(scorer: Scorer, views: Sequence[DoctorView]) -> list[str]:
    """``ANSWER: <argmax letter>`` for each view, from one batched scorer call."""
    if not views:
        return []
    probs = scorer.probs([v.query() for v in views])
    return [f"ANSWER: {v.letters[int(np.argmax(p))]}" for v, p in zip(views, probs)]


class ReactiveDoctor:
    """Answers immediately with the scorer's most probable option."""

    def __init__(self, scorer: Scorer, name: str = "reactive"):
        self.scorer, self.name = scorer, name

    def act(self, views: Sequence[DoctorView], rngs) -> list[str]:
        return answer_texts(self.scorer, views)


class RandomQuestionDoctor:
    """Asks ``k`` random not-yet-asked questions from the case's pool, then answers through the scorer."""

    def __init__(self, scorer: Scorer, k: int, name: str | None = None):
        self.scorer, self.k = scorer, k
        self.name = name or f"random-{k}"

    def act(self, views: Sequence[DoctorView], rngs) -> list[str]:
        out: list[str | None] = []
        for v, rng in zip(views, per_view(rngs, len(views))):
            pool = candidate_questions(v)
            if len(v.turns) < self.k and v.questions_left > 0 and pool:
                out.append(f"ASK: {pool[int(rng.integers(len(pool)))]}")
            else:
                out.append(None)
        return _fill_answers(self.scorer, views, out)


def _fill_answers(scorer: Scorer, views: Sequence[DoctorView],
                  out: list[str | Generation | None]) -> list[str | Generation]:
    idx = [i for i, t in enumerate(out) if t is None]
    for i, text in zip(idx, answer_texts(scorer, [views[i] for i in idx])):
        out[i] = text
    return out  # type: ignore[return-value]


class ScorerAnswers:
    """Wraps a doctor: it asks as it likes, but its final answer comes from the scorer.

    Used to compare a trained policy's *questions* on equal terms with the baselines, which all answer through the
    scorer: ``ask:<spec>`` on the command line. Whenever the inner doctor answers (or has no questions left), the
    output is replaced by the scorer's most probable option given the facts revealed so far.
    """

    def __init__(self, inner, scorer: Scorer, name: str):
        self.inner, self.scorer, self.name = inner, scorer, name

    def with_sampling(self, sampling: Sampling) -> "ScorerAnswers":
        return ScorerAnswers(self.inner.with_sampling(sampling), self.scorer, self.name)

    def act(self, views: Sequence[DoctorView], rngs) -> list[str | Generation]:
        outputs = self.inner.act(views, rngs)
        out: list[str | Generation | None] = [
            o if v.questions_left > 0 and isinstance(parse_action(Generation.of(o).text, v.options), Ask) else None
            for v, o in zip(views, outputs)
        ]
        return _fill_answers(self.scorer, views, out)


CONFIDENCE_PROMPT = (
    "{case}\n\nHow confident are you that you can answer correctly with the information so far? "
    "Rate from 1 (not at all) to 5 (certain).\nRating:"
)


class AbstainDoctor:
    """MediQ-style abstention doctor (see the module docstring for the two confidence modes)."""

    def __init__(self, scorer: Scorer, mode: str = "numeric", threshold: float | None = None, llm=None,
                 name: str | None = None):
        if mode not in ("numeric", "scale"):
            raise InputError(f"abstention mode must be numeric or scale, not {mode!r}")
        self.scorer, self.mode, self.llm = scorer, mode, llm
        self.threshold = threshold if threshold is not None else (0.8 if mode == "numeric" else 4.0)
        self.name = name or f"abstain-{mode}"

    def confidence(self, views: Sequence[DoctorView]) -> np.ndarray:
        top = np.array([float(np.max(p)) for p in self.scorer.probs([v.query() for v in views])])
        if self.mode == "numeric":
            return top
        if self.llm is not None:
            prompts = [CONFIDENCE_PROMPT.format(case=_dialogue_text(v)) for v in views]
            probs = self.llm.score_options(prompts, [[f" {r}" for r in range(1, 6)]] * len(views))
            return np.array([float(np.dot(p, np.arange(1, 6))) for p in probs])
        k = np.array([len(v.options) for v in views])
        return 1.0 + 4.0 * np.clip((top - 1.0 / k) / (1.0 - 1.0 / k), 0.0, 1.0)

    def act(self, views: Sequence[DoctorView], rngs) -> list[str]:
        if not views:
            return []
        rngs = per_view(rngs, len(views))
        conf = self.confidence(views)
        out: list[str | None] = [None] * len(views)
        ask = [i for i, v in enumerate(views) if v.questions_left > 0 and conf[i] < self.threshold]
        if ask and self.llm is not None:
            from promed.doctor.policy import view_to_chat

            chats = []
            for i in ask:
                chat = view_to_chat(views[i])
                chat[-1] = {"role": "user", "content": chat[-1]["content"] + "\nAsk your next question."}
                chats.append(chat)
            seeds = tuple(int(rngs[i].integers(2**63 - 1)) for i in ask)
            gens = self.llm.generate(chats, Sampling(max_new_tokens=40, seeds=seeds))
            for i, g in zip(ask, gens):
                out[i] = _as_question(g.text)
        else:
            for i in ask:
                pool = candidate_questions(views[i])
                if pool:
                    out[i] = f"ASK: {pool[int(rngs[i].integers(len(pool)))]}"
        return _fill_answers(self.scorer, views, out)


def _as_question(text: str) -> str:
    """An LLM-written question as an ``ASK:`` turn (the generated line is used even without the keyword)."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if line.upper().startswith("ASK"):
        return line
    return f"ASK: {line or 'Can you tell me more about your symptoms?'}"


def _dialogue_text(view: DoctorView) -> str:
    from promed.doctor.policy import case_message

    lines = [case_message(view)]
    for t in view.turns:
        lines += [f"Doctor: {t.question}", f"Patient: {t.reply}"]
    return "\n".join(lines)
