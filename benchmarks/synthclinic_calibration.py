"""SynthClinic calibration: case statistics, exact-posterior accuracies, and greedy-EIG vs random questions.

Prints: the KB size, n cases, facts per case (mean/min/max), BayesScorer accuracy from the initial statement
alone and with all facts, the mean top posterior (equals accuracy in expectation when the posterior is exact),
scorer throughput, and the accuracy of the greedy EIG doctor with a budget of 5 questions against 5 random
questions from ``candidate_questions``. The patient is the exact-code patient (a question about finding ``c``
reveals the case's fact with code ``c``, if documented).

    python benchmarks/synthclinic_calibration.py [--n 500] [--split test] [--seed 0] [--budget 5]
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Sequence

import numpy as np

from promed.data.synthclinic import (
    BayesScorer,
    candidate_questions,
    fact_for_question,
    generate_cases,
    model,
)
from promed.data.synthclinic import kb
from promed.doctor.actions import normalise_question
from promed.doctor.eig import GreedyEIGDoctor
from promed.env.consultation import EnvConfig
from promed.env.rollout import run_episodes
from promed.types import Case, DoctorView


class ExactCodePatient:
    """Reveals the fact a template question targets (``fact_for_question``), nothing otherwise."""

    def reply(self, cases, questions):
        out = []
        for case, q in zip(cases, questions):
            fact = fact_for_question(case, q)
            out.append((fact.text, (fact.id,)) if fact is not None else ("I can't answer that.", ()))
        return out


class _Doctor:
    def __init__(self, name, act):
        self.name, self.act = name, act


def simulate(cases: Sequence[Case], act: Callable, budget: int, seed: int = 0
             ) -> tuple[list[str], list[int], list[int]]:
    """Run every case through the consultation core with the exact-code patient.

    ``act(views, rngs)`` is the doctor; returns (answers, questions asked, facts found).
    """
    trs = run_episodes(cases, _Doctor("bench", act), ExactCodePatient(), EnvConfig(max_questions=budget), seed=seed,
                       batch_size=len(cases) or 1)
    return [t.answer or "" for t in trs], [t.n_questions for t in trs], [len(t.known) for t in trs]


def random_questions(scorer: BayesScorer, k: int):
    """k uniformly random not-yet-asked questions from ``candidate_questions``, then the posterior argmax."""
    def act(views: list[DoctorView], rngs) -> list[str]:
        out, answer_views = [], []
        for v, rng in zip(views, rngs):
            asked = {normalise_question(t.question) for t in v.turns}
            known = {f.finding.code for f in v.known_facts if f.finding}
            pool = [q for _, q in candidate_questions(v.options, known, initial_findings=v.initial_findings)
                    if normalise_question(q) not in asked]
            if len(v.turns) < k and v.questions_left > 0 and pool:
                out.append(f"ASK: {pool[int(rng.integers(len(pool)))]}")
            else:
                out.append(None)
                answer_views.append(v)
        probs = iter(scorer.probs([v.query() for v in answer_views]))
        return [o if o else f"ANSWER: {v.letters[int(np.argmax(next(probs)))]}" for o, v in zip(out, views)]
    return act


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=int, default=5)
    args = ap.parse_args()

    m = model()
    print(f"KB: {m.n_diseases} diseases, {len({d.specialty for d in kb.DISEASES})} specialties, "
          f"{m.n_findings} findings ({int(m.complaint_mask.sum())} chief complaints)")
    t0 = time.perf_counter()
    cases = generate_cases(args.split, args.n, seed=args.seed)
    print(f"generated {len(cases)} {args.split} cases (seed {args.seed}) in {time.perf_counter() - t0:.2f} s")
    nf = np.array([c.n_facts for c in cases])
    print(f"facts per case: mean {nf.mean():.2f}, min {nf.min()}, max {nf.max()}; "
          f"pertinent negatives {np.mean([not f.finding.present for c in cases for f in c.facts]):.1%}")
    scorer = BayesScorer()
    gold = np.array([c.gold_index for c in cases])
    for label, queries in (("initial only", [c.query() for c in cases]),
                           ("all facts", [c.query(range(c.n_facts)) for c in cases])):
        p = scorer.probs(queries)
        acc = np.mean([pi.argmax() == g for pi, g in zip(p, gold)])
        print(f"BayesScorer accuracy, {label}: {acc:.3f}  (mean top posterior {np.mean([pi.max() for pi in p]):.3f})")

    rng = np.random.default_rng(args.seed)
    queries = [c.query(np.flatnonzero(rng.random(c.n_facts) < 0.5)) for c in cases]
    queries = (queries * (100_000 // len(queries) + 1))[:100_000]
    t0 = time.perf_counter()
    scorer.probs(queries)
    dt = time.perf_counter() - t0
    print(f"BayesScorer throughput: 100000 queries in {dt:.2f} s ({100_000 / dt:,.0f} queries/s)")

    big = max(cases, key=lambda c: c.n_facts)
    masks = (np.arange(2 ** big.n_facts)[:, None] >> np.arange(big.n_facts)) & 1
    t0 = time.perf_counter()
    scorer.subset_probs(big, masks)
    print(f"BayesScorer.subset_probs: all 2^{big.n_facts} subsets of one case in {time.perf_counter() - t0:.3f} s")

    eig = GreedyEIGDoctor()
    for name, act in (
        (f"greedy-eig (budget {args.budget})", eig.act),
        (f"random-{args.budget}", random_questions(scorer, args.budget)),
    ):
        t0 = time.perf_counter()
        answers, asked, found = simulate(cases, act, args.budget, args.seed)
        acc = np.mean([a == c.answer for a, c in zip(answers, cases)])
        print(f"{name}: accuracy {acc:.3f}, questions {np.mean(asked):.2f}, facts revealed {np.mean(found):.2f} "
              f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
