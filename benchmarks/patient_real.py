"""The fact patient on real clinicians' questions (issue 12): labelled MediQ questions, SynthClinic, doctors, speed.

Part 1 - hand-written questions on 66 MediQ dev cases (``benchmarks/data/mediq_patient_{tune,dev,test}.jsonl``:
146 + 176 + 160 questions on 22 cases each, written for this issue by helpers who did not see the patient's code;
specific, broad, negative and unanswerable; expected answers as fact indices). The patient's rules and defaults
(threshold, margin, bonuses) were developed on *tune* and then *dev* (grid over threshold x margin x hint bonus x term
bonus on both); *test* is held out. Session 13 added *holdout* (``mediq_patient_holdout.jsonl``: 1,126 questions on
120 more cases, written the same way after every choice of that session was made; never used to choose anything),
because 160 test questions leave wide intervals. Reported: micro precision/recall/F1 over (question, fact) pairs,
refusal of unanswerable questions, per kind, for the old patient (the retrieval of the previous release), the new
one, and the new one with each part switched off.

Part 2 - the fact-category tagger against the hand labels of the same cases (``mediq_fact_categories.jsonl``,
``mediq_fact_categories_dev.jsonl``; the rules were written looking at the tune and dev errors only).

Part 3 - SynthClinic (held-out test split): targeted-fact hit rate, precision/recall, refusals of absent-finding,
off-topic and adversarial questions, and leaks (an independent scan) for both patients.

Part 4 - fact recall of the random-5 and abstain-numeric doctors on the first 100 MediQ cases with each patient
(``promed eval``; scorer ``tiny``: an untrained model, so accuracies are meaningless and the abstention doctor asks
up to its budget; fact recall is what this measures).

Part 5 - speed: questions per second for unseen questions (one MiniLM pass each, plus the glossary expansion).

    python benchmarks/patient_real.py [--parts 1,2,3,4,5] [--n-synth 300] [--n-mediq 100] \
        [--embed-model runs/patient_embedder_hand] [--matcher runs/patient_matcher_hand]

With ``--embed-model`` / ``--matcher`` (models made by ``train_patient_matcher.py``) parts 1 and 3 also show the
new patient on them (:data:`BI_SETTINGS`, :data:`BOTH_SETTINGS`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from patient_retrieval import MEDIQ, leaked, question_set  # noqa: E402

from promed.data.cases import load_cases  # noqa: E402
from promed.data.synthclinic import generate_cases  # noqa: E402
from promed.eval.patient_metrics import score_replies  # noqa: E402
from promed.patient import FactPatient, FactPatientConfig  # noqa: E402
from promed.patient.categories import case_categories  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
KINDS = ("specific", "broad", "negative", "unanswerable")
# The patient of the previous release: first-person keys only, no glossary, no sections, no bonuses.
OLD = FactPatientConfig(threshold=0.525, margin=0.025, max_facts=3, both_keys=False, clause_keys=False, glossary=False,
                        broad=False,
                        hint_bonus=0.0, term_bonus=0.0, refuse_answer_questions=False)
NEW = FactPatientConfig()
# The retrieval rule's settings for the fine-tuned bi-encoder (`train_patient_matcher.py --kind bi`), chosen by
# `patient_matcher.py --grid-embed` on tune + dev (the same with and without the hand-written training questions).
BI_SETTINGS: dict = {"threshold": 0.475, "margin": 0.1, "hint_bonus": 0.1, "term_bonus": 0.15}
# The cross-encoder on the fine-tuned bi-encoder (both trained with --hand), chosen by `patient_matcher.py --grid
# --embed-model` on tune + dev.
BOTH_SETTINGS: dict = {**BI_SETTINGS, "matcher_candidates": 6, "matcher_floor": 0.3, "matcher_threshold": 0.5,
                       "matcher_margin": 0.1, "matcher_weight": 0.2}
ABLATIONS = (
    ("new, no broad sections", {"broad": False}),
    ("new, no glossary", {"glossary": False}),
    ("new, first-person keys only", {"both_keys": False}),
    ("new, no section hint bonus", {"hint_bonus": 0.0}),
    ("new, no clause keys", {"clause_keys": False}),
    ("new, no refusal of answer questions", {"refuse_answer_questions": False}),
)


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def mediq_by_id() -> dict:
    return {c.id: c for c in load_cases(MEDIQ, initial="first-sentence").cases}


def labelled(split: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / f"mediq_patient_{split}.jsonl").open()]


def score_line(name: str, rows: list[dict], revealed: list) -> str:
    s = score_replies(revealed, [r["facts"] for r in rows])
    cells = [name, fmt(s.precision), fmt(s.recall), fmt(s.f1), fmt(s.refusal_rate_unanswerable)]
    for kind in KINDS[:3]:
        idx = [i for i, r in enumerate(rows) if r["kind"] == kind]
        k = score_replies([revealed[i] for i in idx], [rows[i]["facts"] for i in idx])
        cells.append(f"{fmt(k.precision)} / {fmt(k.recall)}")
    return "| " + " | ".join(cells) + " |"


def learned(embed_model: str, matcher: str) -> list[tuple[str, FactPatientConfig]]:
    """The learned variants of the new patient for ``--embed-model`` / ``--matcher`` (none when both are '')."""
    out = []
    if embed_model:
        out.append(("new + fine-tuned bi-encoder", replace(NEW, embed_model=embed_model, **BI_SETTINGS)))
    if matcher:
        out.append(("new + cross-encoder", replace(NEW, matcher=matcher)))
    if embed_model and matcher:
        out.append(("new + both", replace(NEW, embed_model=embed_model, matcher=matcher, **BOTH_SETTINGS)))
    return out


def part_labelled(by_id: dict, extra: list) -> None:
    print("== 1. hand-written MediQ questions ==")
    for split in ("tune", "dev", "test", "holdout"):
        rows = labelled(split)
        kinds = Counter(r["kind"] for r in rows)
        print(f"\n{split}: {len(rows)} questions on {len({r['case_id'] for r in rows})} cases "
              f"({', '.join(f'{k} {kinds[k]}' for k in KINDS)})")
        print("| patient | P | R | F1 | refusal (unanswerable) | specific P / R | broad P / R | negative P / R |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        cases = [by_id[r["case_id"]] for r in rows]
        questions = [r["question"] for r in rows]
        variants = [("old (previous release)", OLD), ("**new (default)**", NEW)]
        variants += [(name, replace(NEW, **kw)) for name, kw in ABLATIONS] + extra
        for name, cfg in variants:
            replies = FactPatient.from_config(cfg).reply(cases, questions)
            print(score_line(name, rows, [ids for _, ids in replies]))


def part_categories(by_id: dict) -> None:
    print("\n== 2. fact-category tagger vs hand labels ==")
    rows = [json.loads(line) for name in ("mediq_fact_categories.jsonl", "mediq_fact_categories_dev.jsonl")
            for line in (DATA / name).open()]
    for split in ("tune", "dev", "test"):
        ok = n = 0
        errors: Counter = Counter()
        for r in rows:
            if r["split"] != split:
                continue
            pred = case_categories(by_id[r["case_id"]])
            for gold, got in zip(r["categories"], pred):
                n += 1
                ok += gold == got
                errors[(gold, got)] += gold != got
        top = ", ".join(f"{g}->{p} {k}" for (g, p), k in errors.most_common(4) if k)
        print(f"{split}: accuracy {ok / n:.3f} ({ok}/{n} facts); most common errors (gold->tagged): {top}")


def part_synthclinic(n: int, extra: list) -> None:
    print("\n== 3. SynthClinic test (held out) ==")
    cases = generate_cases("test", n=n, seed=0)
    ex = question_set(cases)
    print(f"{len(ex)} questions on {n} cases")
    print("| patient | P | R | targeted hit | refuse absent | refuse off-topic | refuse adversarial | leaks |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, cfg in [("old", OLD), ("new", NEW)] + extra:
        replies = FactPatient.from_config(cfg).reply([e.case for e in ex], [e.question for e in ex])
        got = [ids for _, ids in replies]
        s = score_replies(got, [e.ids for e in ex])
        tgt = [i for i, e in enumerate(ex) if e.kind == "targeted"]
        hit = np.mean([ex[i].ids[0] in got[i] for i in tgt])
        refuse = {k: np.mean([not got[i] for i, e in enumerate(ex) if e.kind == k])
                  for k in ("absent", "offtopic", "adversarial")}
        leaks = sum(leaked(e.case, text) for e, (text, _) in zip(ex, replies))
        print(f"| {name} | {s.precision:.3f} | {s.recall:.3f} | {hit:.3f} | {refuse['absent']:.3f} | "
              f"{refuse['offtopic']:.3f} | {refuse['adversarial']:.3f} | {leaks} of {len(replies)} |")


def part_doctors(n: int) -> None:
    from promed.config import EvalConfig
    from promed.data.sources import DataConfig
    from promed.eval.evaluate import run_eval
    from promed.runtime import PatientConfig

    print(f"\n== 4. fact recall of question-asking doctors, first {n} MediQ cases ==")
    print("| doctor | fact recall, old patient | fact recall, new patient | questions answered, old | "
          "questions answered, new |")
    print("| --- | --- | --- | --- | --- |")
    doctors = ("random-5", "abstain-numeric")
    res = {}
    for name, cfg in (("old", OLD), ("new", NEW)):
        with tempfile.TemporaryDirectory() as tmp:
            ecfg = EvalConfig(data=DataConfig(data=str(MEDIQ), split="all", limit=n), doctors=doctors, scorer="tiny",
                              sig_enabled=False, patient=PatientConfig(kind="fact", fact=cfg), out=Path(tmp) / "eval")
            t0 = time.perf_counter()
            metrics = run_eval(ecfg, progress=False)
            answered = {}
            for d in doctors:
                turns = [json.loads(line) for line in (Path(tmp) / "eval/transcripts" / f"{d}.jsonl").open()]
                asks = [t for tr in turns for t in tr["turns"]]
                answered[d] = np.mean([bool(t["revealed"]) for t in asks]) if asks else float("nan")
            res[name] = (metrics, answered, time.perf_counter() - t0)
    for d in doctors:
        print(f"| {d} | {res['old'][0][d].fact_recall:.3f} | {res['new'][0][d].fact_recall:.3f} | "
              f"{res['old'][1][d]:.3f} | {res['new'][1][d]:.3f} |")
    print(f"(wall: old {res['old'][2]:.0f} s, new {res['new'][2]:.0f} s)")


def part_speed() -> None:
    print("\n== 5. speed ==")
    cases = generate_cases("test", n=200, seed=0)
    for name, cfg in (("old", OLD), ("new", NEW)):
        patient = FactPatient.from_config(cfg)
        patient.reply(cases[:5], ["warm-up question"] * 5)
        novel = [f"Could you tell me about item {i} of your history, {name}?" for i in range(300)]
        t0 = time.perf_counter()
        patient.reply([cases[i % len(cases)] for i in range(300)], novel)
        dt = time.perf_counter() - t0
        print(f"{name}: {300 / dt:.0f} unseen questions/s (300 questions, batched)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="1,2,3,4,5", help="comma-separated parts to run")
    ap.add_argument("--n-synth", type=int, default=300, help="SynthClinic test cases (part 3)")
    ap.add_argument("--n-mediq", type=int, default=100, help="MediQ cases for the doctors (part 4)")
    ap.add_argument("--embed-model", default="", help="also the new patient on this fine-tuned bi-encoder (parts 1, 3)")
    ap.add_argument("--matcher", default="", help="also the new patient with this cross-encoder (parts 1, 3)")
    args = ap.parse_args()
    extra = learned(args.embed_model, args.matcher)
    parts = {int(p) for p in args.parts.split(",")}
    t0 = time.perf_counter()
    if not MEDIQ.exists():
        print(f"MediQ data not found at {MEDIQ}: parts 1, 2 and 4 skipped")
        parts -= {1, 2, 4}
    by_id = mediq_by_id() if parts & {1, 2} else {}
    if 1 in parts:
        part_labelled(by_id, extra)
    if 2 in parts:
        part_categories(by_id)
    if 3 in parts:
        part_synthclinic(args.n_synth, extra)
    if 4 in parts:
        part_doctors(args.n_mediq)
    if 5 in parts:
        part_speed()
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
