"""How much a GRPO group disagrees: the learning signal each credit scheme can see, read from ``rollouts.jsonl``.

GRPO learns only from differences inside a group of G consultations of the same case. For each run directory
(``promed grpo --out DIR``; one line per consultation in ``DIR/rollouts.jsonl``) this prints, over all its steps and
per quarter of training:

* ``same tokens``: share of groups whose G consultations are token for token identical (``ids_sha1``): no credit
  scheme can learn anything from them;
* ``same outcome``: share of groups in which every consultation is right or every one wrong: outcome-only GRPO
  gives them zero advantage;
* ``SIG spread``: the mean, over groups, of the standard deviation of the SIG of the questions asked at the same turn
  across the group (turns where at least two consultations asked), beside the standard deviation of all questions'
  SIG: the part of the SIG signal that is about *which* question was asked in the same situation;
* ``distinct k-th turns``: mean number of distinct (kind, SIG) values at turn 1, a proxy for distinct first
  questions (the record holds each question's SIG, not its text);
* questions per consultation and accuracy of the sampled answers.

    python benchmarks/grpo_group_spread.py runs/promed/grpo-sig-mixed runs/promed/grpo-outcome
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def groups_of(path: Path) -> list[tuple[int, list[dict]]]:
    """(step, the group's records) for every (step, case) of a ``rollouts.jsonl``."""
    by: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            by[(int(r["step"]), str(r["case_id"]))].append(r)
    return [(step, rows) for (step, _), rows in sorted(by.items())]


def question_sigs(r: dict) -> list[float]:
    return [s for k, s in zip(r["kinds"], r["sig"]) if k == "ask"]


def spread(groups: list[tuple[int, list[dict]]]) -> dict:
    """The figures of the module docstring over ``groups``."""
    same_tokens = np.mean([len({r["ids_sha1"] for r in g}) == 1 for _, g in groups])
    same_outcome = np.mean([len({bool(r["correct"]) for r in g}) == 1 for _, g in groups])
    within, first_distinct, every = [], [], []
    for _, g in groups:
        qs = [question_sigs(r) for r in g]
        every.extend(s for q in qs for s in q)
        for t in range(max((len(q) for q in qs), default=0)):
            at_t = [q[t] for q in qs if len(q) > t]
            if len(at_t) >= 2:
                within.append(float(np.std(at_t)))
        first = [q[0] for q in qs if q]
        if len(first) >= 2:
            first_distinct.append(len({round(s, 6) for s in first}))
    return {"groups": len(groups), "same_tokens": float(same_tokens), "same_outcome": float(same_outcome),
            "sig_spread_within": float(np.mean(within)) if within else float("nan"),
            "sig_std_all": float(np.std(every)) if every else float("nan"),
            "distinct_first": float(np.mean(first_distinct)) if first_distinct else float("nan"),
            "questions": float(np.mean([len(question_sigs(r)) for _, g in groups for r in g])),
            "accuracy": float(np.mean([bool(r["correct"]) for _, g in groups for r in g]))}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="promed grpo output directories (with rollouts.jsonl)")
    ap.add_argument("--parts", type=int, default=4, help="report per this many equal parts of training")
    args = ap.parse_args(argv)
    head = (f"{'run':<40} {'steps':>9} {'groups':>6} {'same tokens':>11} {'same outcome':>12} {'SIG spread':>10} "
            f"{'SIG std':>7} {'1st distinct':>12} {'questions':>9} {'accuracy':>8}")
    print(head)
    for run in args.runs:
        path = run / "rollouts.jsonl" if run.is_dir() else run
        groups = groups_of(path)
        steps = sorted({s for s, _ in groups})
        edges = np.linspace(0, len(steps), args.parts + 1).astype(int)
        parts = [(f"{steps[a]}-{steps[b - 1]}", {steps[i] for i in range(a, b)}) for a, b in zip(edges, edges[1:])
                 if b > a]
        for label, keep in [("all", set(steps)), *parts]:
            f = spread([(s, g) for s, g in groups if s in keep])
            print(f"{str(run)[-40:]:<40} {label:>9} {f['groups']:>6} {f['same_tokens']:>11.3f} "
                  f"{f['same_outcome']:>12.3f} {f['sig_spread_within']:>10.4f} {f['sig_std_all']:>7.4f} "
                  f"{f['distinct_first']:>12.2f} {f['questions']:>9.2f} {f['accuracy']:>8.3f}")


if __name__ == "__main__":
    main()
