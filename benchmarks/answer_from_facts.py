"""Where a doctor's own answers lose accuracy: its questions, or its reading of the replies.

Reads the transcripts of one ``llm:`` doctor from a ``promed eval`` run on SynthClinic and scores, on exactly the
facts each consultation revealed (plus any given up front), the answer of:

* the exact posterior (``bayes``: the same figure as the ``ask:`` diagnostic),
* each checkpoint named with ``--doctors`` through :class:`promed.doctor.scorer.DoctorScorer` (the facts shown up
  front, no dialogue, no questions left: how the doctor is asked as a scorer),
* with ``--dialogue``, each checkpoint again on the consultation itself: the transcript's messages up to the point
  where the doctor answered (its own questions and the patient's replies, as it saw them), each option's answer turn
  scored after them. This separates the layout (facts up front vs a dialogue) from the reading,

beside the doctor's own answers in the transcripts. If another checkpoint (e.g. the pretrained doctor) answers better
from the same facts, the loss lies in how the trained doctor reads the facts, not in which facts it gathered.

    python benchmarks/answer_from_facts.py runs/stage1/eval/transcripts/llm_..._sft.jsonl \\
        --doctors runs/stage1/pretrain,runs/stage1/sft --cases 500
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from promed.data.sources import DataConfig, load_data
from promed.data.synthclinic.posterior import BayesScorer
from promed.doctor.actions import answer_turn
from promed.doctor.scorer import DoctorScorer
from promed.llm import load_llm


def revealed(record: dict) -> list[int]:
    """The fact ids a consultation made known: every reply's revealed facts and those given up front."""
    return sorted({i for t in record["turns"] for i in t.get("revealed", [])} | set(record.get("given", [])))


def answer_prompt(record: dict) -> list[dict]:
    """The chat the doctor answered after: the transcript's messages up to and including the last user turn."""
    msgs = record["messages"]
    last = max(i for i, m in enumerate(msgs) if m["role"] == "user")
    return msgs[:last + 1]


def dialogue_accuracy(llm, rows, cases, golds, batch: int = 32) -> float:
    """Accuracy of ``llm``'s most likely answer turn after each consultation's own dialogue."""
    right = []
    for i in range(0, len(rows), batch):
        part = rows[i:i + batch]
        prompts = [llm.render(answer_prompt(r)) for r in part]
        opts = [cases[r["id"]].options for r in part]
        options = [[answer_turn(o, x.letter, "name") for x in o] for o in opts]
        right += [int(np.argmax(p) == g) for p, g in zip(llm.score_options(prompts, options), golds[i:i + batch])]
    return float(np.mean(right))


def accuracy(scorer, queries, golds, batch: int = 64) -> float:
    probs: list[np.ndarray] = []
    for i in range(0, len(queries), batch):
        probs += scorer.probs(queries[i:i + batch])
    return float(np.mean([int(np.argmax(p) == g) for p, g in zip(probs, golds)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("transcripts", type=Path, help="one doctor's transcripts JSONL from promed eval (SynthClinic)")
    ap.add_argument("--doctors", default="", help="comma-separated checkpoint directories to answer from the facts")
    ap.add_argument("--split", default="test", help="the SynthClinic split the evaluation ran on")
    ap.add_argument("--cases", type=int, default=500, help="first N transcripts (the evaluation's --limit)")
    ap.add_argument("--dialogue", action="store_true",
                    help="also score each checkpoint's answer after the consultation's own dialogue")
    a = ap.parse_args()

    cases = {c.id: c for c in load_data(DataConfig(split=a.split, limit=a.cases)).cases}
    rows = [json.loads(line) for line in a.transcripts.open()][:a.cases]
    missing = [r["id"] for r in rows if r["id"] not in cases]
    if missing:
        raise SystemExit(f"{a.transcripts}: case {missing[0]} is not among the first {a.cases} {a.split} cases")
    queries = [cases[r["id"]].query(revealed(r)) for r in rows]
    golds = [cases[r["id"]].gold_index for r in rows]
    result = {"cases": len(rows), "own answers": round(float(np.mean([bool(r["correct"]) for r in rows])), 3),
              "bayes": round(accuracy(BayesScorer(), queries, golds), 3)}
    for d in (x for x in a.doctors.split(",") if x):
        t0 = time.perf_counter()
        llm = load_llm(f"hf:{d}")
        result[d] = round(accuracy(DoctorScorer(llm), queries, golds), 3)
        if a.dialogue:
            result[f"{d} (dialogue)"] = round(dialogue_accuracy(llm, rows, cases, golds), 3)
        result[f"{d} s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
