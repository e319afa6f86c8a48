"""Patient retrieval and fact coverage: threshold tuning, precision/recall, leak checks, speed.

Part 1 - FactPatient (question -> revealed facts). Labelled set from SynthClinic:

* targeted: for every safe fact f of a case, its knowledge-base question (``question_for_fact``) must reveal f;
* absent: questions about findings relevant to the case's options that the case does not document reveal nothing;
* off-topic: small talk reveals nothing;
* adversarial: ``guard.adversarial_questions`` (diagnosis, options, letters, injections) reveal nothing;

plus 65 hand-written doctor questions on the first MediQ dev cases (``MEDIQ_QUESTIONS``). (threshold, margin) is
tuned for the mean micro-F1 over (question, fact) pairs of SynthClinic ``val`` and the MediQ hand set, and
reported on the disjoint SynthClinic ``test`` split (held out) and the MediQ hand set (in-sample: it is too small
to split), with the leak count over every reply.

Part 2 - EmbeddingCoverage (free-text reply -> facts). Labelled replies are built by rules
(``coverage.paraphrase_examples``: first-person rewrites with contractions, clause reordering, polarity-flipped
hard negatives, other cases' facts and small talk as distractors), plus 56 hand-written replies on MediQ cases
(``MEDIQ_REPLIES``). The threshold is tuned for the mean F1 of SynthClinic ``val``, the first half of the MediQ
cases and the hand set, and reported on SynthClinic ``test``, the second MediQ half and the hand set (in-sample),
with each part of the matcher switched off in turn (each variant re-tuned).

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
from promed.patient import FactPatient
from promed.patient.guard import adversarial_questions, safe_fact_ids
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


# Hand-written doctor questions for the first MediQ dev cases, with the fact ids that answer them (written for
# this benchmark by reading the cases' facts; () = the case does not answer it). Only ids and our own questions are
# stored here, never the MediQ text. A small, realistic check of the SynthClinic-tuned threshold.
MEDIQ_QUESTIONS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("0", "How old are you?", (0,)), ("0", "Are you sexually active?", (1,)), ("0", "Have you had a fever?", (2,)),
    ("0", "Does it burn or hurt when you pass urine?", (3,)), ("0", "Do you have any joint pain or swelling?", (4,)),
    ("0", "What did the joint fluid culture grow?", (5, 6, 7)), ("0", "Do you have a rash?", ()),
    ("0", "Have you travelled recently?", ()),
    ("1", "How many times has she vomited?", (2,)), ("1", "Is the vomit green?", (2,)),
    ("1", "How does she feel between the episodes?", (4,)), ("1", "Has she been hospitalized for this before?", (5,)),
    ("1", "Are her vaccinations up to date?", (7,)), ("1", "What are her vital signs?", (10,)),
    ("1", "Is her belly tender?", (13,)), ("1", "Does she have diarrhea?", ()),
    ("1", "Has anything changed at home recently?", (6,)),
    ("2", "How are you sleeping?", (1, 2, 4)), ("2", "Do you wake up too early?", (4,)),
    ("2", "Have you had any thoughts of harming yourself?", (7,)), ("2", "Has your weight changed?", (8,)),
    ("2", "Do you drink alcohol?", (9,)), ("2", "Do you take any medications?", (11,)),
    ("2", "How is your mood?", (5,)), ("2", "Do you have any chest pain?", ()),
    ("3", "Do you have diabetes?", (1,)), ("3", "Does it hurt when you urinate?", (3,)),
    ("3", "What is your temperature?", (4,)), ("3", "What is your blood pressure?", (5,)),
    ("3", "What is your heart rate?", (6,)), ("3", "Is there tenderness over your back or flank?", (10, 11)),
    ("3", "Do you have a cough?", ()),
    ("5", "Do you smoke?", (5,)), ("5", "How much alcohol do you drink?", (6,)),
    ("5", "Do you use any recreational drugs?", (7,)), ("5", "Any history of bleeding problems or clots?", (2,)),
    ("5", "Does anyone in your family have cancer?", (3,)), ("5", "What is your heart rate?", (10,)),
    ("5", "What is your hematocrit?", (17,)), ("5", "What is the MCV?", (18,)), ("5", "Do you have any allergies?", ()),
    ("8", "Do you have numbness or tingling in your hands or feet?", (3,)),
    ("8", "What have you been eating lately?", (5,)), ("8", "How are your reflexes?", (7,)),
    ("8", "Any muscle weakness?", (4,)), ("8", "Do you have a fever?", ()),
    ("9", "Do you have high blood pressure?", (1, 5)), ("9", "Do you get chest pain when you exert yourself?", (3,)),
    ("9", "Have you been in the hospital recently?", (2,)), ("9", "What is your oxygen saturation?", (8,)),
    ("9", "Do you have a headache?", ()),
    ("10", "Where is the pain and what makes it better?", (2,)), ("10", "Have you lost weight?", (3,)),
    ("10", "Do you drink alcohol?", (5,)), ("10", "Do you smoke?", (6,)),
    ("10", "Any family history of endocrine tumors?", (7,)), ("10", "Have you had surgery before?", (4,)),
    ("10", "Do you have diarrhea?", ()),
    ("11", "How has your mood been?", (1,)), ("11", "Do you feel tired?", (2,)),
    ("11", "Can you concentrate?", (3,)), ("11", "How are you sleeping?", (4,)),
    ("11", "Have you ever had periods of elevated mood or lots of energy?", (5,)),
    ("11", "Any thoughts of suicide?", (7,)), ("11", "Do you drink alcohol?", ()),
)


# Hand-written free-text patient replies for the same MediQ cases, with the fact ids they state (our wording, not
# the rules of coverage.paraphrase_examples, so this set is not circular). Includes contradictions ("No fever at
# all." for a patient with fever) and small talk, labelled (). A small, realistic check of EmbeddingCoverage.
MEDIQ_REPLIES: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("0", "Yeah, I've been running a temperature.", (2,)), ("0", "It burns when I pee.", (3,)),
    ("0", "My right knee is swollen and it really hurts.", (4,)), ("0", "I'm 21.", (0,)),
    ("0", "I have a girlfriend and we're sexually active, yes.", (1,)), ("0", "No fever at all.", ()),
    ("0", "My left elbow is fine.", ()), ("0", "I've had a fever, and peeing hurts.", (2, 3)),
    ("0", "Thanks, doctor.", ()),
    ("1", "She has thrown up green stuff six or seven times, and her tummy hurts.", (2,)),
    ("1", "Between these attacks she's completely fine.", (4,)),
    ("1", "She's been admitted twice in the last six months for being dehydrated.", (5,)),
    ("1", "Her shots are all up to date.", (7,)), ("1", "Her father and I split up; she lives with me now.", (6,)),
    ("1", "She has never had any vaccinations.", ()),
    ("1", "She's up to date on her vaccines, and between episodes she's fine.", (4, 7)),
    ("2", "I go to bed early but just lie there awake.", (2,)),
    ("2", "I wake up really early and can't get back to sleep.", (4,)),
    ("2", "I've never thought about killing myself.", (7,)), ("2", "I've lost about 4 kilos recently.", (8,)),
    ("2", "I have a glass of wine every evening instead of dinner.", (9,)), ("2", "I don't take any medicines.", (11,)),
    ("2", "I feel hopeless and I snap at people.", (5,)), ("2", "I take a lot of medications.", ()),
    ("3", "I'm diabetic, type 2.", (1,)), ("3", "It hurts when I urinate.", (3,)), ("3", "I don't have diabetes.", ()),
    ("5", "I smoke a pack a day.", (5,)), ("5", "I have one glass of wine daily.", (6,)),
    ("5", "I don't do drugs.", (7,)),
    ("5", "My mom was recently treated for breast cancer.", (3,)),
    ("5", "I've never had problems with clotting or bleeding.", (2,)), ("5", "I feel tired and weak.", (1,)),
    ("5", "I quit smoking years ago.", ()), ("5", "I smoke a pack a day and drink a glass of wine.", (5, 6)),
    ("8", "My hands and feet have been numb for about a year.", (3,)),
    ("8", "We've been eating mostly white rice since the harvest failed.", (5,)),
    ("8", "My legs are weak, thin and painful.", (4,)),
    ("8", "I've always been healthy apart from the odd infection.", (2,)),
    ("9", "I have high blood pressure.", (1,)), ("9", "I was discharged yesterday after a heart attack.", (2,)),
    ("9", "Sometimes I get chest pain when I exert myself.", (3,)), ("9", "I like hiking on weekends.", ()),
    ("10", "The pain is in my upper belly and gets better when I eat.", (2,)),
    ("10", "I've lost 15 pounds since this started.", (3,)),
    ("10", "I had a pituitary tumour removed through my nose.", (4,)), ("10", "I drink socially.", (5,)),
    ("10", "My uncle on my mom's side had a parathyroid tumour.", (7,)), ("10", "I've never smoked.", ()),
    ("11", "I've felt down most days for three years.", (1,)), ("11", "I'm always tired.", (2,)),
    ("11", "I can't concentrate.", (3,)), ("11", "I sleep more than I used to.", (4,)),
    ("11", "I've never had periods of feeling high or hyper.", (5,)),
    ("11", "I've never wanted to kill myself.", (7,)), ("11", "I'm tired all the time and can't focus.", (2, 3)),
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


def grid(ex: list[QExample], sims: list[np.ndarray], k: int) -> dict[tuple[float, float], float]:
    """Micro-F1 for each (threshold, margin) at a fixed ``max_facts``."""
    return {
        (float(thr), m): evaluate(FactPatient(float(thr), k, m), ex, sims)["F1"]
        for m in (0.025, 0.05, 0.1, 0.2, float("inf"))
        for thr in np.round(np.arange(0.30, 0.801, 0.025), 3)
    }


_LETTER_LEAK = re.compile(r"\b(?:answer|option|choice|letter)s?\b\W{0,3}(?:is\W+)?[A-J]\b|\([A-J]\)")


def leaked(case: Case, text: str) -> bool:
    """Independent leak check (not the guard's code): an option text on word boundaries, or a letter answer."""
    low = text.lower()
    return any(re.search(rf"(?<!\w){re.escape(o.text.lower())}", low) for o in case.options) or bool(
        _LETTER_LEAK.search(text))


def fmt(res: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.3f}" for k, v in res.items())


def mediq_question_set() -> list[QExample]:
    by_id = {c.id: c for c in mediq_cases(20)}
    ex = [QExample(by_id[cid], q, ids, "targeted" if ids else "absent") for cid, q, ids in MEDIQ_QUESTIONS]
    return [e for e in ex if set(e.ids) <= set(safe_fact_ids(e.case))]


def part_fact_patient(args) -> None:
    print("== FactPatient (question -> facts) ==")
    tune_cases = generate_cases("val", n=args.n_tune, seed=args.seed)
    test_cases = generate_cases("test", n=args.n_test, seed=args.seed)
    probe = FactPatient()
    t0 = time.perf_counter()
    sets = {"synth_val": question_set(tune_cases), "synth_test": question_set(test_cases)}
    if MEDIQ.exists():
        sets["mediq_hand"] = mediq_question_set()
    sims = {k: probe.similarities([e.case for e in v], [e.question for e in v]) for k, v in sets.items()}
    print("labelled questions: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items())
          + f"; embedding {time.perf_counter() - t0:.1f}s")
    hidden = sum(c.n_facts - len(safe_fact_ids(c)) for c in test_cases)
    print(f"answer-bearing (never revealed) facts on synth_test: {hidden} of {sum(c.n_facts for c in test_cases)}")

    # Tuning objective: mean F1 of SynthClinic val and the MediQ hand set (SynthClinic alone prefers a higher
    # threshold because its questions share the fact's key words; real doctors' questions do not).
    tuning = [k for k in ("synth_val", "mediq_hand") if k in sets]
    for k_facts in (1, 3):
        grids = [grid(sets[k], sims[k], k_facts) for k in tuning]
        (thr, margin) = max(grids[0], key=lambda key: np.mean([g[key] for g in grids]))
        tuned = FactPatient(thr, k_facts, margin)
        print(f"max_facts {k_facts}: tuned on {'+'.join(tuning)}: threshold {thr}  margin {margin}")
        for k, v in sets.items():
            print(f"   {k:11s} {fmt(evaluate(tuned, v, sims[k]))}")
    default = FactPatient()
    c = default.config
    print(f"defaults (thr {c.threshold} margin {c.margin} k {c.max_facts}) and threshold sensitivity:")
    for d in (-0.1, -0.05, 0.0, 0.05, 0.1):
        alt = FactPatient(c.threshold + d, c.max_facts, c.margin)
        print(f"   thr {c.threshold + d:.3f}: " + " | ".join(
            f"{k} P {r['P']:.3f} R {r['R']:.3f} F1 {r['F1']:.3f}"
            for k, r in ((k, evaluate(alt, v, sims[k])) for k, v in sets.items() if k != "synth_val")))
    plain = FactPatient(first_person_keys=False)
    psims = {k: plain.similarities([e.case for e in v], [e.question for e in v]) for k, v in sets.items()}
    grids = [grid(sets[k], psims[k], c.max_facts) for k in tuning]
    (pthr, pm) = max(grids[0], key=lambda key: np.mean([g[key] for g in grids]))
    alt = FactPatient(pthr, c.max_facts, pm, first_person_keys=False)
    print(f"ablation, plain fact keys (re-tuned thr {pthr} margin {pm}): " + " | ".join(
        f"{k} F1 {evaluate(alt, v, psims[k])['F1']:.3f}" for k, v in sets.items() if k != "synth_val"))

    test_ex = sets["synth_test"]
    replies = default.reply([e.case for e in test_ex], [e.question for e in test_ex])
    n_leak = sum(leaked(e.case, text) for e, (text, _) in zip(test_ex, replies))
    n_adv = sum(e.kind == "adversarial" for e in test_ex)
    print(f"leaks in {len(replies)} default replies on synth_test ({n_adv} adversarial questions): {n_leak}")

    pairs = [(e.case, e.question) for e in test_ex][:1000]
    t0 = time.perf_counter()
    default.reply([p[0] for p in pairs], [p[1] for p in pairs])
    print(f"throughput, warm cache: {len(pairs) / (time.perf_counter() - t0):.0f} pairs/s ({len(pairs)} pairs)")
    novel = [f"Could you tell me about item {i} of your history?" for i in range(200)]
    t0 = time.perf_counter()
    default.reply([test_cases[i % len(test_cases)] for i in range(200)], novel)
    print(f"throughput, 200 unseen questions: {200 / (time.perf_counter() - t0):.0f} pairs/s")


def mediq_cases(n: int) -> list[Case]:
    from promed.data.cases import load_cases

    return [c for c in load_cases(MEDIQ, initial="first-sentence").cases if c.facts][:n]


def mediq_reply_set() -> list:
    from promed.sig.coverage import CoverageExample

    by_id = {c.id: c for c in mediq_cases(20)}
    ex = [CoverageExample(by_id[cid], r, ids) for cid, r, ids in MEDIQ_REPLIES]
    return [e for e in ex if set(e.ids) <= set(safe_fact_ids(e.case))]


COVERAGE_VARIANTS = (
    ("full", {}),
    ("no first-person keys", {"first_person_keys": False}),
    ("no margin", {"margin": float("inf")}),
    ("no negation check", {"negation_check": False}),
    ("no number check", {"number_check": False}),
    ("cosine only", {"first_person_keys": False, "margin": float("inf"), "negation_check": False,
                     "number_check": False}),
)


def part_coverage(args) -> None:
    print("== EmbeddingCoverage (free-text replies -> facts) ==")
    rng = np.random.default_rng(args.seed)
    synth_tune = generate_cases("val", n=args.n_tune, seed=args.seed)
    synth_test = generate_cases("test", n=args.n_test, seed=args.seed)
    sets = {
        "synth_tune": paraphrase_examples(synth_tune, rng, allowed=[safe_fact_ids(c) for c in synth_tune]),
        "synth_test": paraphrase_examples(synth_test, rng, allowed=[safe_fact_ids(c) for c in synth_test]),
    }
    if MEDIQ.exists() and args.n_mediq > 0:
        mc = mediq_cases(args.n_mediq)
        half = len(mc) // 2
        sets["mediq_tune"] = paraphrase_examples(mc[:half], rng, allowed=[safe_fact_ids(c) for c in mc[:half]])
        sets["mediq_test"] = paraphrase_examples(mc[half:], rng, allowed=[safe_fact_ids(c) for c in mc[half:]])
        sets["mediq_hand"] = mediq_reply_set()
    else:
        print("(MediQ data absent: SynthClinic only)")
    print("replies: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items()))
    # Tuning objective: mean F1 over the rule-built tuning sets (hard negatives and distractors: precision) and the
    # hand-written MediQ replies (natural wording: recall). The rule-built positives share rewriting rules with the
    # matcher's first-person keys, so alone they would favour a far too high threshold.
    tuning = [k for k in ("synth_tune", "mediq_tune", "mediq_hand") if k in sets]
    reported = [k for k in ("synth_test", "mediq_test", "mediq_hand") if k in sets]
    for label, overrides in COVERAGE_VARIANTS:
        cov = EmbeddingCoverage(**overrides)
        t0 = time.perf_counter()
        scores = {k: cov.scores([e.case for e in v], [e.reply for e in v]) for k, v in sets.items()}

        def f1(k: str, t: float) -> float:
            return precision_recall([np.flatnonzero(s >= t) for s in scores[k]], [e.ids for e in sets[k]])[2]

        thr = max(np.round(np.arange(0.40, 0.901, 0.025), 3), key=lambda t: np.mean([f1(k, t) for k in tuning]))
        line = f"[{label}] threshold {thr:.3f} ({time.perf_counter() - t0:.0f}s)"
        for k in reported:
            p, r, f = precision_recall([np.flatnonzero(s >= thr) for s in scores[k]], [e.ids for e in sets[k]])
            line += f" | {k} P {p:.3f} R {r:.3f} F1 {f:.3f}"
        print(line)
    print("(mediq_hand is in the tuning objective: in-sample)")


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
