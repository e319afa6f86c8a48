"""Scoring throughput of the LLM scorer: fact subsets scored per second, prefix reuse vs naive.

What it measures, on Gemma 3 270M (or any ``--model`` spec) over MediQ cases (``../shared/data/mediq/imedqa_dev.jsonl``
relative to the repository root; ``context[0]`` is the initial information, ``facts`` the hidden facts):

1. a Shapley-style workload - ``--subsets-per-fact`` x n random fact subsets of each of the first ``--cases``
   cases - scored (a) naively, one subset per forward pass, and (b) by the default path (shared prefix run once,
   suffixes packed as a token trie, see :mod:`promed.llm.packed_scoring`) at each ``--chunks`` size; subsets/s,
   speed-up, and the largest probability difference to the naive path (must be below 1e-4);
2. all 2^n subsets of the first case with ``--exact-facts`` facts (default path), with the naive rate measured on
   a sample of ``--naive-sample`` of those subsets.

Wall and process CPU seconds are both printed: on a shared machine CPU seconds are the steadier measure of work.
Usage: ``python benchmarks/llm_throughput.py [--model gemma-270m] [--cases 1] [--subsets-per-fact 10]``.
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


def _variant(llm, **changes):
    """The same loaded model with other scoring options (no reload)."""
    from dataclasses import replace

    from promed.llm.hf import HFBackend

    return HFBackend(llm.model, llm.tokenizer, name=llm.name, options=replace(llm.options, **changes))


def _time(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _time(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gemma-270m")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cases", type=int, default=1, help="cases in the naive vs default comparison")
    ap.add_argument("--subsets-per-fact", type=int, default=10, help="random subsets per fact and case")
    ap.add_argument("--exact-facts", type=int, default=8, help="score all 2^n subsets of a case with n facts")
    ap.add_argument("--naive-sample", type=int, default=32, help="subsets of the 2^n scored naively for the rate")
    ap.add_argument("--chunks", default="1024,2048", help="packed chunk sizes to time (first one: the default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not args.data.is_file():
        print(f"skip: MediQ data not found at {args.data}")
        return 0
    rng = np.random.default_rng(args.seed)
    cases = read_mediq(args.data, 400)
    t_load, _, llm = _time(lambda: load_llm(args.model))
    print(f"model {args.model}: loaded in {t_load:.1f} s")
    chunks = [int(c) for c in args.chunks.split(",")]
    variants = {c: _variant(llm, chunk_tokens=c) for c in chunks}
    letters = [" " + x for x in cases[0].letters]
    for v in variants.values():
        v.score_options([render_query(cases[0].query())], [letters])  # warm-up and one-off self-checks

    chosen = cases[: args.cases]
    queries = [c.query(s) for c in chosen for s in random_subsets(c.n_facts, args.subsets_per_fact * c.n_facts, rng)]
    prompts = [render_query(q) for q in queries]
    n_tok = [len(llm.tokenizer(p)["input_ids"]) for p in prompts]
    t_naive, c_naive, naive = _time(lambda: llm.score_options(prompts, [letters], reuse_prefix=False))
    timed = {c: _time(lambda: v.score_options(prompts, [letters])) for c, v in variants.items()}
    diff = max(float(np.max(np.abs(np.array(p) - np.array(naive)))) for _, _, p in timed.values())
    print(f"\n{len(queries)} random fact subsets ({args.subsets_per_fact}n per case) of {len(chosen)} case(s) "
          f"(n facts: {', '.join(str(c.n_facts) for c in chosen)}); prompt tokens mean {np.mean(n_tok):.0f} "
          f"(min {min(n_tok)}, max {max(n_tok)}, total {sum(n_tok)})")
    print(f"{'method':<50}{'wall s':>8}{'cpu s':>8}{'subsets/s':>11}{'speed-up':>10}")
    lines = [("naive (one subset per forward pass)", t_naive, c_naive)]
    lines += [(f"shared prefix + packed trie, chunk {c}", t, cpu) for c, (t, cpu, _) in timed.items()]
    for label, t, cpu in lines:
        print(f"{label:<50}{t:>8.2f}{cpu:>8.2f}{len(queries) / t:>11.2f}{t_naive / t:>9.2f}x")
    print(f"max |p - p_naive| = {diff:.2e}")

    exact = next((c for c in cases if c.n_facts == args.exact_facts), None)
    if exact is not None:
        n = exact.n_facts
        subsets = [tuple(i for i in range(n) if (m >> i) & 1) for m in range(2**n)]
        scorer = LLMScorer(variants[chunks[0]])
        t, cpu, _ = _time(lambda: scorer.probs([exact.query(s) for s in subsets]))
        sample = [subsets[i] for i in rng.choice(len(subsets), min(args.naive_sample, len(subsets)), replace=False)]
        sample_prompts = [render_query(exact.query(s)) for s in sample]
        t_s, c_s, _ = _time(lambda: llm.score_options(sample_prompts, [letters], reuse_prefix=False))
        print(f"\ncase {exact.id} ({n} facts), all {len(subsets)} subsets: default path {t:.2f} s wall "
              f"({cpu:.2f} s cpu), {len(subsets) / t:.2f} subsets/s; naive on {len(sample)} of them: "
              f"{len(sample) / t_s:.2f} subsets/s ({t_s:.2f} s wall, {c_s:.2f} s cpu) -> x{(len(subsets) / t) / (len(sample) / t_s):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
