"""Patient retrieval and fact coverage: threshold tuning, precision/recall, leak checks, speed.

Part 1 - FactPatient (question -> revealed facts). Labelled set from SynthClinic:

* targeted: for every safe fact f of a case, its knowledge-base question (``question_for_fact``) must reveal f;
* absent: questions about findings relevant to the case's options that the case does not document reveal nothing;
* off-topic: small talk reveals nothing;
* adversarial: ``guard.adversarial_questions`` (diagnosis, options, letters, injections) reveal nothing.

(threshold, margin, max_facts) is tuned for micro-F1 over (question, fact) pairs on the ``val`` split and
reported on the disjoint ``test`` split, with the leak count over every reply.

Part 2 - EmbeddingCoverage (free-text reply -> facts). Labelled replies are built by rules
(``coverage.paraphrase_examples``: first-person rewrites, clause reordering, polarity-flipped hard negatives,
other cases' facts and small talk as distractors). The threshold is tuned on SynthClinic ``val`` plus the first
half of the MediQ cases and reported on SynthClinic ``test`` and the second MediQ half separately, with the
negation and number checks switched off one at a time (each re-tuned).

    python benchmarks/patient_retrieval.py [--n-tune 150] [--n-test 300] [--n-mediq 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from promed.data.synthclinic import candidate_questions, generate_cases, question_for_fact
from promed.patient import FactPatient, default_embedder
from promed.patient.guard import adversarial_questions, forbidden_strings, is_safe, safe_fact_ids
from promed.sig.coverage import EmbeddingCoverage, paraphrase_examples, precision_recall
from promed.types import Case

MEDIQ = Path(__file__).resolve().parents[2] / "shared/data/mediq/imedqa_dev.jsonl"
OFF_TOPIC = (
    "What is your favourite colour?",
    "How was the traffic on your way here?",
    "Do you like football?",
    "What did you have for dinner last night?",
    "Can you spell your name for me?",
    "What is the capital of France?",
)


@dataclass(frozen=True)
class QExample:
    case: Case
    question: str
    ids: tuple[int, ...]
    kind: str  # targeted | absent | offtopic | adversarial (benchmark-local label, never crosses a module)


def question_set(cases: list[Case], max_absent: int = 4) -> list[QExample]:
    out: list[QExample] = []
    for c in cases:
        safe = set(safe_fact_ids(c))
        out += [QExample(c, question_for_fact(f), (f.id,), "targeted") for f in c.facts if f.id in safe]
        known = {f.finding.code for f in c.facts if f.finding}
        absent = candidate_questions(c.options, known, initial_findings=c.initial_findings)
        out += [QExample(c, q, (), "absent") for _, q in absent[:max_absent]]
        out += [QExample(c, q, (), "offtopic") for q in OFF_TOPIC[:2]]
        out += [QExample(c, q, (), "adversarial") for q in adversarial_questions(c)]
    return out


def evaluate(patient: FactPatient, ex: list[QExample], sims: list[np.ndarray]) -> dict[str, float]:
    pred = [patient.select(e.case, s) for e, s in zip(ex, sims)]
    p, r, f = precision_recall(pred, [e.ids for e in ex])
    tgt = [i for i, e in enumerate(ex) if e.kind == "targeted"]
    res = {"P": p, "R": r, "F1": f, "hit": float(np.mean([ex[i].ids[0] in pred[i] for i in tgt]))}
    for kind in ("absent", "offtopic", "adversarial"):
        idx = [i for i, e in enumerate(ex) if e.kind == kind]
        res[f"refuse_{kind}"] = float(np.mean([not pred[i] for i in idx])) if idx else float("nan")
    res["facts_per_answered"] = float(np.mean([len(x) for x in pred if x] or [0]))
    return res


def tune_fact_patient(ex: list[QExample], sims: list[np.ndarray], k: int) -> tuple[tuple[float, float], dict]:
    """Grid search of (threshold, margin) for micro-F1 at a fixed ``max_facts``."""
    best, best_cfg = None, None
    for margin in (0.025, 0.05, 0.1, 0.2, float("inf")):
        for thr in np.round(np.arange(0.30, 0.801, 0.025), 3):
            res = evaluate(FactPatient(float(thr), k, margin), ex, sims)
            if best is None or res["F1"] > best["F1"] + 1e-12:
                best, best_cfg = res, (float(thr), margin)
    return best_cfg, best


_LETTER_LEAK = re.compile(r"\b(?:answer|option|choice|letter)s?\b\W{0,3}(?:is\W+)?[A-J]\b|\([A-J]\)")


def leaked(case: Case, text: str) -> bool:
    """Independent leak check (not the guard's code): an option text on word boundaries, or a letter answer."""
    low = text.lower()
    return any(re.search(rf"(?<!\w){re.escape(o.text.lower())}", low) for o in case.options) or bool(
        _LETTER_LEAK.search(text))


def fmt(res: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.3f}" for k, v in res.items())


def part_fact_patient(args) -> None:
    print("== FactPatient on SynthClinic ==")
    tune_cases = generate_cases("val", n=args.n_tune, seed=args.seed)
    test_cases = generate_cases("test", n=args.n_test, seed=args.seed)
    probe = FactPatient()
    t0 = time.perf_counter()
    tune_ex = question_set(tune_cases)
    tune_sims = probe.similarities([e.case for e in tune_ex], [e.question for e in tune_ex])
    test_ex = question_set(test_cases)
    test_sims = probe.similarities([e.case for e in test_ex], [e.question for e in test_ex])
    print(f"labelled pairs: tune {len(tune_ex)}, test {len(test_ex)}; embedding {time.perf_counter() - t0:.1f}s")
    hidden = sum(c.n_facts - len(safe_fact_ids(c)) for c in test_cases)
    print(f"answer-bearing (never revealed) facts on test: {hidden} of {sum(c.n_facts for c in test_cases)}")
    for k in (1, 3):
        (thr, margin), res = tune_fact_patient(tune_ex, tune_sims, k)
        print(f"max_facts {k}: tuned on val: threshold {thr}  margin {margin}   {fmt(res)}")
        print(f"max_facts {k}: held-out test:                     {fmt(evaluate(FactPatient(thr, k, margin), test_ex, test_sims))}")
    default = FactPatient()
    c = default.config
    print(f"held-out test, defaults (thr {c.threshold} margin {c.margin} k {c.max_facts}): "
          f"{fmt(evaluate(default, test_ex, test_sims))}")
    for d in (-0.1, -0.05, 0.05, 0.1):
        alt = FactPatient(c.threshold + d, c.max_facts, c.margin)
        print(f"  sensitivity thr {c.threshold + d:.3f}: {fmt(evaluate(alt, test_ex, test_sims))}")
    plain = FactPatient(embedder=None, first_person_keys=False)
    plain_sims = plain.similarities([e.case for e in test_ex], [e.question for e in test_ex])
    (pthr, pm), _ = tune_fact_patient(tune_ex, plain.similarities([e.case for e in tune_ex],
                                                                  [e.question for e in tune_ex]), c.max_facts)
    print(f"ablation, plain fact keys (re-tuned thr {pthr} margin {pm}): "
          f"{fmt(evaluate(FactPatient(pthr, c.max_facts, pm, first_person_keys=False), test_ex, plain_sims))}")

    replies = default.reply([e.case for e in test_ex], [e.question for e in test_ex])
    n_leak = sum(leaked(e.case, text) for e, (text, _) in zip(test_ex, replies))
    n_adv = sum(e.kind == "adversarial" for e in test_ex)
    print(f"leaks in {len(replies)} default replies ({n_adv} adversarial questions): {n_leak}")

    pairs = [(e.case, e.question) for e in test_ex][:1000]
    fresh = FactPatient(embedder=None)
    emb = default_embedder()
    n0 = emb.n_encoded
    t0 = time.perf_counter()
    fresh.reply([p[0] for p in pairs], [p[1] for p in pairs])
    warm = time.perf_counter() - t0
    print(f"throughput (warm cache): {len(pairs) / warm:.0f} pairs/s over {len(pairs)} pairs "
          f"({emb.n_encoded - n0} new encodes)")
    novel = [f"Could you tell me about item {i} of your history?" for i in range(200)]
    t0 = time.perf_counter()
    fresh.reply([test_cases[i % len(test_cases)] for i in range(200)], novel)
    cold = time.perf_counter() - t0
    print(f"throughput (200 unseen questions): {200 / cold:.0f} pairs/s")


def mediq_cases(n: int) -> list[Case]:
    from promed.data.cases import load_cases

    return [c for c in load_cases(MEDIQ, initial="first-sentence").cases if c.facts][:n]


def part_coverage(args) -> None:
    print("== EmbeddingCoverage (free-text replies) ==")
    rng = np.random.default_rng(args.seed)
    sets: dict[str, list] = {}
    synth_tune = generate_cases("val", n=args.n_tune, seed=args.seed)
    synth_test = generate_cases("test", n=args.n_test, seed=args.seed)
    sets["synth_tune"] = paraphrase_examples(synth_tune, rng, allowed=[safe_fact_ids(c) for c in synth_tune])
    sets["synth_test"] = paraphrase_examples(synth_test, rng, allowed=[safe_fact_ids(c) for c in synth_test])
    if MEDIQ.exists() and args.n_mediq > 0:
        mc = mediq_cases(args.n_mediq)
        half = len(mc) // 2
        sets["mediq_tune"] = paraphrase_examples(mc[:half], rng, allowed=[safe_fact_ids(c) for c in mc[:half]])
        sets["mediq_test"] = paraphrase_examples(mc[half:], rng, allowed=[safe_fact_ids(c) for c in mc[half:]])
    else:
        print("(MediQ data absent: SynthClinic only)")
    print("replies: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items()))
    tune = [e for k, v in sets.items() if k.endswith("_tune") for e in v]
    for neg, num, label in ((True, True, "full"), (False, True, "no negation check"), (True, False, "no number check"),
                            (False, False, "cosine only")):
        cov = EmbeddingCoverage(negation_check=neg, number_check=num)
        t0 = time.perf_counter()
        scores = {k: cov.scores([e.case for e in v], [e.reply for e in v]) for k, v in sets.items()}
        tune_scores = [s for k in sets if k.endswith("_tune") for s in scores[k]]
        best = max(
            (precision_recall([np.flatnonzero(s >= t) for s in tune_scores], [e.ids for e in tune])[2], t)
            for t in np.round(np.arange(0.40, 0.901, 0.025), 3)
        )
        thr = float(best[1])
        line = f"[{label}] tuned threshold {thr:.3f} (tune F1 {best[0]:.3f}, {time.perf_counter() - t0:.1f}s)"
        for k in (k for k in sets if k.endswith("_test")):
            p, r, f = precision_recall([np.flatnonzero(s >= thr) for s in scores[k]], [e.ids for e in sets[k]])
            line += f" | {k}: P {p:.3f} R {r:.3f} F1 {f:.3f}"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-tune", type=int, default=150, help="SynthClinic val cases for tuning")
    ap.add_argument("--n-test", type=int, default=300, help="SynthClinic test cases for held-out figures")
    ap.add_argument("--n-mediq", type=int, default=200, help="MediQ cases (half tune, half held out); 0 skips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", choices=("patient", "coverage"), default=None, help="skip one part")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.skip != "patient":
        part_fact_patient(args)
    if args.skip != "coverage":
        part_coverage(args)
    print(f"total {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
