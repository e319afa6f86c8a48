"""Greedy expected-information-gain doctor: the strong training-free anchor on SynthClinic.

A UoT-style one-step planner that *knows the knowledge base*. For each consultation it computes the exact posterior
over the options (``BayesScorer``) from the initial findings and the facts revealed so far, then scores every
finding that is relevant to the options and neither known nor already asked by

    gain(f) = P(f documented) * [ H(post) - E_{answer ~ post} H(post | answer) ],

the expected reduction of the entropy of the posterior over the options. An undocumented finding makes the patient
say it cannot answer, which carries no information (documentation never depends on the disease), hence the factor
``P(f documented)`` taken from the generator's documentation model (``documentation_probs``; it ignores the count
truncation and what earlier unanswered questions imply, a small approximation).

It asks the question with the largest gain (``ASK: <question>``) and answers with the posterior's argmax
(``ANSWER: <letter>``) when the question budget is spent, when the top posterior reaches ``stop_threshold``, or
when no question has a gain above ``min_gain``. Exact ties are broken with the supplied RNG.

It needs SynthClinic views (options keyed by KB disease codes, structured initial findings); other views raise
ValueError. Greedy one-step look-ahead is not Bayes-optimal over several questions, but on this bench it is a strong,
cheap anchor: an RL-trained doctor should approach it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from promed.data.synthclinic.generator import GeneratorConfig, documentation_probs, relevant_findings
from promed.data.synthclinic.posterior import (
    BayesScorer,
    finding_information,
    model,
    option_indices,
    parse_initial,
)
from promed.data.synthclinic.questions import finding_of_question
from promed.data.synthclinic import kb
from promed.types import DoctorView, per_view


@dataclass(frozen=True)
class EIGConfig:
    """Settings of the greedy expected-information-gain doctor."""

    stop_threshold: float = field(default=0.95, metadata={"help": "answer once the top posterior reaches this"})
    min_gain: float = field(default=1e-6, metadata={"help": "answer when no question's expected gain (nats) exceeds this"})
    account_documentation: bool = field(
        default=True, metadata={"help": "weight each question's gain by the chance its finding is documented"})
    generator: GeneratorConfig = field(
        default_factory=GeneratorConfig, metadata={"help": "the generator settings whose documentation model to assume"})


@dataclass(frozen=True)
class Plan:
    """The doctor's reading of one view: posterior over the options, expected gain per finding (0 where not a
    candidate), and the chosen finding index (``None`` = answer now)."""

    posterior: np.ndarray
    gains: np.ndarray
    choice: int | None


class GreedyEIGDoctor:
    """Asks the question with the largest expected entropy reduction over the options; see the module docstring."""

    name = "greedy-eig"

    def __init__(self, config: EIGConfig | None = None):
        self.config = config or EIGConfig()
        self.scorer = BayesScorer()

    def plan(self, views: Sequence[DoctorView], rngs) -> list[Plan]:
        """Posterior, gains and choice for each view (one batched posterior call); ``rngs``: one per view, or one."""
        if not views:
            return []
        cfg, m = self.config, model()
        posts = self.scorer.probs([v.query() for v in views])
        plans = []
        for v, post, rng in zip(views, posts, per_view(rngs, len(views))):
            opt = option_indices(v.options)
            init = parse_initial(v.initial_findings)
            cand = relevant_findings(opt)
            if init.sex == 1:
                cand &= ~m.female_only
            blocked = {f.finding.code for f in v.known_facts if f.finding is not None}
            blocked |= {c for c in (finding_of_question(t.question) for t in v.turns) if c}
            if init.cc is not None:
                blocked.add(m.finding_codes[init.cc])
            blocked |= {m.finding_codes[i] for i, _ in init.extra}
            for c in blocked:
                cand[m.finding_index[c]] = False
            gains = np.where(cand, finding_information(m.lik[opt], post), 0.0)
            if cfg.account_documentation:
                gains = gains * documentation_probs(opt, init.cc, init.sex, cfg.generator)
            choice = None
            if v.questions_left > 0 and post.max() < cfg.stop_threshold and gains.max() > cfg.min_gain:
                best = np.flatnonzero(gains >= gains.max() - 1e-12)
                choice = int(best[rng.integers(len(best))]) if len(best) > 1 else int(best[0])
            plans.append(Plan(post, gains, choice))
        return plans

    def act(self, views: Sequence[DoctorView], rngs) -> list[str]:
        out = []
        rngs = per_view(rngs, len(views))
        for v, p, rng in zip(views, self.plan(views, rngs), rngs):
            if p.choice is not None:
                out.append(f"ASK: {kb.FINDINGS[p.choice].question}")
            else:
                top = np.flatnonzero(p.posterior >= p.posterior.max() - 1e-12)
                k = int(top[rng.integers(len(top))]) if len(top) > 1 else int(top[0])
                out.append(f"ANSWER: {v.letters[k]}")
        return out
