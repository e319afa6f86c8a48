"""Packed v(S) scoring under bfloat16: is the fast path kept, and how far are its log-probabilities from float32?

On Gemma 3 270M (``--model``, default ``gemma-270m``), loaded once in float32; a bfloat16 copy serves the same
prompts. Prompts: the scorer prompt (:func:`promed.llm.scorer.render_query`) of two hand-written MedQA-style cases
with every subset of their first ``--facts`` facts, plus, when ``--mediq`` exists (read in place, never copied),
the first ``--mediq-cases`` MediQ cases with random fact subsets. Printed: the packed self-check's outcome for
each dtype (fast path kept yes/no, largest packed - naive difference, its ratio to the tolerance
:func:`promed.llm.packed_scoring.logprob_tolerance`, and whether the old flat 1e-3 would have kept it), then the
largest |log P(option | prompt)| difference bfloat16 (packed) vs float32 (packed), and the largest ratio of that
difference to the documented tolerance; and the check's verdict on a deliberately wrong mask (every packed node
seeing every other), to show it still catches what it is for. A CPU runs bfloat16 matmuls slowly; keep the prompt count small.
Usage: ``python benchmarks/packed_scoring_bf16.py [--facts 3] [--mediq-cases 2]``.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_throughput import DEFAULT_DATA, random_subsets, read_mediq  # noqa: E402
from sampling_speed import cases  # noqa: E402

from promed.llm import load_llm  # noqa: E402
from promed.llm.hf import HFBackend  # noqa: E402
from promed.llm.packed_scoring import Runner, logprob_tolerance, packed_check  # noqa: E402
from promed.llm.scorer import render_query  # noqa: E402

LETTERS = [" A", " B", " C", " D"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gemma-270m")
    ap.add_argument("--facts", type=int, default=3, help="Every subset of the first FACTS facts of each own case.")
    ap.add_argument("--mediq", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--mediq-cases", type=int, default=2)
    ap.add_argument("--mediq-subsets", type=int, default=4)
    args = ap.parse_args()

    prompts = []
    for case in cases():
        n = min(args.facts, len(case.facts))
        prompts += [render_query(case.query(s)) for k in range(n + 1) for s in itertools.combinations(range(n), k)]
    if args.mediq.is_file() and args.mediq_cases > 0:
        rng = np.random.default_rng(0)
        for case in read_mediq(args.mediq, args.mediq_cases):
            prompts += [render_query(case.query(s))
                        for s in random_subsets(len(case.facts), args.mediq_subsets, rng)]
    else:
        print(f"MediQ file {args.mediq} not found: own cases only")
    print(f"{len(prompts)} prompts, 4 single-token options each")

    ref = load_llm(args.model)
    models = {"float32": ref, "bfloat16": HFBackend(copy.deepcopy(ref.model).to(torch.bfloat16), ref.tokenizer,
                                                    name=f"{args.model}-bf16")}
    scores = {}
    print("| dtype | fast path kept | max abs packed - naive | / tolerance | kept with the old flat 1e-3 | s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, llm in models.items():
        t = time.perf_counter()
        scores[name] = llm.option_log_likelihoods(prompts, [LETTERS])
        st = llm.packed_status
        print(f"| {name} | {'yes' if st.ok else 'no'} | {st.max_abs_diff:.2e} | {st.worst_ratio:.3f} | "
              f"{'yes' if st.max_abs_diff < 1e-3 else 'no'} | {time.perf_counter() - t:.1f} |", flush=True)
    print("\nThe same check with a wrong mask (every packed node sees every other: what it must catch):")
    print("| dtype | max abs packed - naive | / tolerance | caught |\n| --- | --- | --- | --- |")
    orig = Runner._mask
    Runner._mask = lambda self, vis, *rest: orig(self, torch.ones_like(vis), *rest)
    try:
        for name, llm in models.items():
            with torch.inference_mode():
                st = packed_check(llm._runner)
            print(f"| {name} | {st.max_abs_diff:.3f} | {st.worst_ratio:.2f} | {'yes' if not st.ok else 'NO'} |")
    finally:
        Runner._mask = orig

    a = np.concatenate(scores["bfloat16"])
    b = np.concatenate(scores["float32"])
    tol = np.array([logprob_tolerance(torch.bfloat16, x) for x in b])
    print(f"\nlog P(option | prompt), bfloat16 packed vs float32 packed, {a.size} values "
          f"(float32 range {b.min():.2f} .. {b.max():.2f}): max abs difference {np.abs(a - b).max():.3e}, "
          f"mean {np.abs(a - b).mean():.3e}; largest ratio to the tolerance {np.max(np.abs(a - b) / tol):.3f}")
    pa = np.concatenate([np.exp(x - x.max()) / np.exp(x - x.max()).sum() for x in scores["bfloat16"]])
    pb = np.concatenate([np.exp(x - x.max()) / np.exp(x - x.max()).sum() for x in scores["float32"]])
    print(f"v(S)-style probabilities over the 4 options: max abs difference {np.abs(pa - pb).max():.3e}")


if __name__ == "__main__":
    main()
