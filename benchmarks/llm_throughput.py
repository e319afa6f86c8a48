"""Scoring throughput of the LLM scorer: fact subsets scored per second, prefix reuse vs naive.

What it measures, on Gemma 3 270M (or any ``--model`` spec) over MediQ cases (``../shared/data/mediq/imedqa_dev.jsonl``
relative to the repository root; ``context[0]`` is the initial information, ``facts`` the hidden facts):

1. the same random fact subsets of a few cases scored (a) in one batched call with shared-prefix KV reuse and
   (b) naively, one subset per forward pass; subsets/s of each, the speed-up, and the largest probability
   difference between the two (they must agree within 1e-4);
2. the seconds to score the subsets a Shapley estimate of one case needs: all 2^n subsets when n is small,
   else ``--subsets-per-fact`` x n random subsets.

Usage: ``python benchmarks/llm_throughput.py [--model gemma-270m] [--cases 2] [--subsets 24]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from promed.llm import load_llm
from promed.llm.scorer import LLMScorer, render_query
from promed.types import Case, Fact, Option

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mediq" / "imedqa_dev.jsonl"


def read_mediq(path: Path, limit: int) -> list[Case]:
    """The first ``limit`` usable MediQ cases (only the fields this benchmark needs)."""
    cases: list[Case] = []
    with path.open() as f:
        for line in f:
            rec = json.loads(line)
            if not rec.get("context") or not rec.get("facts") or rec.get("answer_idx") not in rec.get("options", {}):
                continue
            facts = tuple(Fact(i, re.sub(r"^\d+\.\s*", "", t)) for i, t in enumerate(rec["facts"]))
            cases.append(Case(
                id=str(rec["id"]), initial=rec["context"][0], facts=facts, question=rec["question"],
                options=tuple(Option(k, v) for k, v in sorted(rec["options"].items())), answer=rec["answer_idx"],
                source="mediq",
            ))
            if len(cases) == limit:
                break
    return cases


def random_subsets(n: int, k: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    return [tuple(int(i) for i in np.flatnonzero(rng.random(n) < 0.5)) for _ in range(k)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gemma-270m")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cases", type=int, default=2, help="cases in the prefix-reuse vs naive comparison")
    ap.add_argument("--subsets", type=int, default=24, help="random subsets per case in the comparison")
    ap.add_argument("--exact-max-facts", type=int, default=6, help="enumerate all 2^n subsets up to this n")
    ap.add_argument("--subsets-per-fact", type=int, default=10, help="else score this many x n subsets")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not args.data.is_file():
        print(f"skip: MediQ data not found at {args.data}")
        return 0
    rng = np.random.default_rng(args.seed)
    cases = read_mediq(args.data, args.cases)
    t0 = time.perf_counter()
    llm = load_llm(args.model)
    print(f"model {args.model}: loaded in {time.perf_counter() - t0:.1f} s")
    scorer = LLMScorer(llm)
    letters = [" " + x for x in cases[0].letters]

    queries = [c.query(s) for c in cases for s in random_subsets(c.n_facts, args.subsets, rng)]
    prompts = [render_query(q) for q in queries]
    n_tok = [len(llm.tokenizer(p)["input_ids"]) for p in prompts]
    llm.score_options(prompts[:2], [letters])  # warm-up
    t = time.perf_counter()
    fast = llm.score_options(prompts, [letters], reuse_prefix=True)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    naive = llm.score_options(prompts, [letters], reuse_prefix=False)
    t_naive = time.perf_counter() - t
    diff = float(np.max(np.abs(np.array(fast) - np.array(naive))))
    print(f"\n{len(queries)} subsets of {len(cases)} case(s), prompt tokens mean {np.mean(n_tok):.0f} "
          f"(min {min(n_tok)}, max {max(n_tok)})")
    print(f"{'method':<34}{'seconds':>9}{'subsets/s':>11}")
    print(f"{'naive (one subset per forward)':<34}{t_naive:>9.2f}{len(queries) / t_naive:>11.2f}")
    print(f"{'batched + shared-prefix KV reuse':<34}{t_fast:>9.2f}{len(queries) / t_fast:>11.2f}")
    print(f"speed-up x{t_naive / t_fast:.2f}; max |p_fast - p_naive| = {diff:.2e}")

    print(f"\n{'case':>6}{'n facts':>9}{'subsets':>9}{'kind':>14}{'seconds':>9}{'subsets/s':>11}")
    for case in cases:
        n = case.n_facts
        if n <= args.exact_max_facts:
            subsets, kind = [tuple(i for i in range(n) if (m >> i) & 1) for m in range(2**n)], "all 2^n"
        else:
            subsets, kind = random_subsets(n, args.subsets_per_fact * n, rng), f"{args.subsets_per_fact}n random"
        t = time.perf_counter()
        scorer.probs([case.query(s) for s in subsets])
        dt = time.perf_counter() - t
        print(f"{case.id:>6}{n:>9}{len(subsets):>9}{kind:>14}{dt:>9.2f}{len(subsets) / dt:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
