"""Where a doctor's own answers lose accuracy: its questions, or its reading of the replies.

Reads the transcripts of one ``llm:`` doctor from a ``promed eval`` run on SynthClinic and scores, on exactly the
facts each consultation revealed (plus any given up front), the answer of:

* the exact posterior (``bayes``: the same figure as the ``ask:`` diagnostic),
* each checkpoint named with ``--doctors`` through :class:`promed.doctor.scorer.DoctorScorer` (the facts shown up
  front, no dialogue, no questions left: how the doctor is asked as a scorer),

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
from promed.doctor.scorer import DoctorScorer
from promed.llm import load_llm


def revealed(record: dict) -> list[int]:
    """The fact ids a consultation made known: every reply's revealed facts and those given up front."""
    return sorted({i for t in record["turns"] for i in t.get("revealed", [])} | set(record.get("given", [])))


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
        result[d] = round(accuracy(DoctorScorer(load_llm(f"hf:{d}")), queries, golds), 3)
        result[f"{d} s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
