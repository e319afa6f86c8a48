"""Gemma 3 270M on MediQ iMedQA through the Hugging Face backend: reactive and full-information accuracy.

The model is a 270M base model: expect chance level (0.25) at MedQA. This measures the real-model code path and
its speed, not medical accuracy.

    python benchmarks/eval_mediq_gemma.py [--limit 50] [--model gemma-270m]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from promed.config import DataConfig, EvalConfig
from promed.eval.evaluate import run_eval
from promed.eval.report import markdown_table

MEDIQ = Path(__file__).resolve().parents[2] / "shared/data/mediq/imedqa_dev.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--model", default="gemma-270m")
    ap.add_argument("--data", type=Path, default=MEDIQ)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_mediq_gemma"))
    args = ap.parse_args()
    if not args.data.exists():
        raise SystemExit(f"MediQ data not found at {args.data}")
    from promed.llm import load_llm

    t0 = time.perf_counter()
    load_llm(args.model)
    load_s = time.perf_counter() - t0
    for doctor in ("reactive", "full-info"):
        data = DataConfig(data=str(args.data), split="all", limit=args.limit)  # the file's first cases, as measured
        cfg = EvalConfig(data=data, doctors=(doctor,), model=args.model, sig_enabled=False, out=args.out / doctor)
        t0 = time.perf_counter()
        res = run_eval(cfg, progress=False)
        wall = time.perf_counter() - t0
        print(markdown_table(res))
        print(f"{doctor}: {wall / args.limit:.2f} s per case ({wall:.1f} s for {args.limit} cases)")
    print(f"model load: {load_s:.1f} s")


if __name__ == "__main__":
    main()
