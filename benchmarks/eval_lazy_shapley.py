"""Cost of SIG annotation in ``promed eval`` with an LLM scorer: wall time and Shapley computations.

An evaluation annotates every question with its SIG, which needs the case's Shapley values. Since the consultation
core (issue 9), they are computed only for cases where some question revealed a fact: doctors that ask nothing
(reactive, full information) cost no Shapley evaluation at all. Run it on the code before and after to compare:

    python benchmarks/eval_lazy_shapley.py --limit 3 [--doctors reactive,full-info] [--model gemma-270m]

It uses only ``EvalConfig``'s long-standing fields, so the same script runs against older checkouts
(``PYTHONPATH=<old checkout>/src python benchmarks/eval_lazy_shapley.py``).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from promed.config import DataConfig, EvalConfig
from promed.eval.evaluate import run_eval

MEDIQ = Path(__file__).resolve().parents[2] / "shared/data/mediq/imedqa_dev.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=3)
    ap.add_argument("--doctors", default="reactive,full-info")
    ap.add_argument("--model", default="gemma-270m")
    ap.add_argument("--data", type=Path, default=MEDIQ)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_lazy_shapley"))
    args = ap.parse_args()
    if not args.data.exists():
        raise SystemExit(f"MediQ data not found at {args.data}")
    from promed.llm import load_llm

    t0 = time.perf_counter()
    load_llm(args.model)
    load_s = time.perf_counter() - t0
    shutil.rmtree(args.out, ignore_errors=True)
    data = DataConfig(data=str(args.data), split="all", limit=args.limit)  # the file's first cases, as measured
    cfg = EvalConfig(data=data, doctors=tuple(args.doctors.split(",")), model=args.model, sig_enabled=True,
                     out=args.out)
    t0 = time.perf_counter()
    res = run_eval(cfg, progress=False)
    wall = time.perf_counter() - t0
    cache = args.out / "shapley.jsonl"
    n_shapley = sum(1 for line in cache.read_text().splitlines() if line.strip()) if cache.exists() else 0
    for name, m in res.items():
        print(f"{name}: accuracy {m.accuracy:.3f}, questions {m.mean_questions:.2f}, n {m.n}")
    print(f"evaluation wall time {wall:.1f} s for {args.limit} cases x {len(res)} doctors; "
          f"Shapley values computed for {n_shapley} cases; model load {load_s:.1f} s")


if __name__ == "__main__":
    main()
