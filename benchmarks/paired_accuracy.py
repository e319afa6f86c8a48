"""Paired accuracy differences between doctors evaluated on the same cases.

Two doctors' intervals overlap long before their difference is noise: on the same 1,000 cases most answers agree, so
the paired difference is much tighter than either interval. For each pair (A, B) of ``promed eval`` transcript files
this prints ``acc(A) - acc(B)`` with a paired bootstrap 95% interval (cases resampled with replacement, the same
draw for both doctors; seeded) and the number of cases only A / only B got right.

    python benchmarks/paired_accuracy.py runs/promed/eval/transcripts/llm_*grpo-sig-mixed.jsonl \\
        runs/promed/eval/transcripts/llm_*grpo-outcome.jsonl runs/promed/eval/transcripts/llm_*sft.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np


def correctness(path: Path) -> dict[tuple[str, int], bool]:
    """``(case id, sample) -> correct`` of one transcript file."""
    out = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            rec = json.loads(line)
            try:
                out[(rec["id"], int(rec.get("sample", 0)))] = bool(rec["correct"])
            except KeyError as e:
                raise SystemExit(f"{path}:{n}: field {e.args[0]!r}: missing") from None
    return out


def paired_difference(a: np.ndarray, b: np.ndarray, draws: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """(mean(a - b), 2.5% and 97.5% quantiles of the paired bootstrap) for 0/1 arrays over the same cases."""
    d = a.astype(float) - b.astype(float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(draws, len(d)))
    boot = d[idx].mean(axis=1)
    return float(d.mean()), float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("transcripts", type=Path, nargs="+", help="promed eval transcript files (two or more)")
    ap.add_argument("--draws", type=int, default=10_000, help="bootstrap resamples")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if len(a.transcripts) < 2:
        raise SystemExit("give two or more transcript files")
    runs = {p: correctness(p) for p in a.transcripts}
    print("| A | B | cases | acc A - acc B | paired 95% CI | only A right | only B right |")
    print("|---|---|---|---|---|---|---|")
    for pa, pb in itertools.combinations(a.transcripts, 2):
        keys = sorted(set(runs[pa]) & set(runs[pb]))
        if not keys:
            raise SystemExit(f"{pa} and {pb} share no (case, sample)")
        x = np.array([runs[pa][k] for k in keys])
        y = np.array([runs[pb][k] for k in keys])
        mean, lo, hi = paired_difference(x, y, a.draws, a.seed)
        print(f"| {pa.stem} | {pb.stem} | {len(keys)} | {mean:+.3f} | [{lo:+.3f}, {hi:+.3f}] | "
              f"{int((x & ~y).sum())} | {int((~x & y).sum())} |")


if __name__ == "__main__":
    main()
