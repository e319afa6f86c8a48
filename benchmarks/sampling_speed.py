"""Rollout sampling speed: the per-row seeded draw on the logits' device vs the old host-side draw, same run.

What it measures (``promed.llm.sampling``; the old implementation is copied below as :class:`OldRowSampler`, the
RowSampler of 2026-12-06: probabilities copied to the host, one ``torch.multinomial`` per row from a CPU
generator):

1. **The sampling step alone**: ``--rows`` x Gemma's vocabulary (262,144), temperature 1, ``top_p`` 1.0 and 0.95;
   milliseconds per step, old vs new, and the ratio. Two kinds of logits: Gemma's own (the next-token logits of
   the warm-up generate below, tiled to ``--rows``: peaked, a nucleus of a few tokens) and synthetic
   ``N(0, 4^2)`` ones (flat: the 0.95 nucleus is most of the vocabulary, the worst case for top-p).
2. **Whole generate**: Gemma 3 270M (``--model``, default ``gemma-270m``) plays doctor turns of a few hand-written
   consultations (the real doctor prompt, :func:`promed.doctor.policy.view_to_chat`, at 0, 1 and 2 questions
   asked), ``--samples`` samples per prompt at temperature 1, ``--max-new-tokens`` each; old and new alternate
   ``--repeats`` times on the same loaded model. Consultation turns per second (one doctor turn = one
   generation), generated tokens per second, and the ratio; wall and process CPU seconds.
3. llama.cpp's OpenAI server as a reference point only when ``llama_cpp`` is importable (skipped with a note
   otherwise; nothing is installed).

The two samplers draw different (equally distributed) samples for the same seed, so their completions can differ
in length; tokens per second is the fair figure. Usage:
``python benchmarks/sampling_speed.py [--rows 8 32] [--samples 2] [--max-new-tokens 16] [--repeats 1]``
(about 5 minutes on a 2-core CPU; twice that with another job on the cores or ``--repeats 2``; most of it is the
12 prompts' prefill).
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import torch

import promed.llm.hf as hf
from promed.doctor.policy import view_to_chat
from promed.env.consultation import DialogueState, dialogue_view, transition
from promed.llm import load_llm
from promed.llm.sampling import RowSampler
from promed.types import Ask, Case, Fact, Option, Sampling


class OldRowSampler:
    """The pre-2026-12-07 RowSampler, verbatim but for ``steps`` (accepted, unused) and ``logprob_table``."""

    def __init__(self, seeds, temperature, top_p, device, *, steps=None):
        self.temperature, self.top_p = temperature, top_p
        self.generators = []
        if temperature > 0:
            for s in seeds:
                g = torch.Generator(device="cpu")
                g.manual_seed(int(s))
                self.generators.append(g)
        self.logprobs = []

    def __call__(self, input_ids, scores):
        scores = scores.float()
        if self.temperature > 0:
            logp = torch.log_softmax(scores / self.temperature, dim=-1)
            probs = logp.exp().cpu()
            if self.top_p < 1.0:
                sp, order = probs.sort(dim=-1, descending=True)
                drop = sp.cumsum(dim=-1) - sp > self.top_p
                sp[drop] = 0.0
                probs = torch.zeros_like(probs).scatter(-1, order, sp)
            chosen = torch.stack([torch.multinomial(probs[r], 1, generator=g)[0]
                                  for r, g in enumerate(self.generators)]).to(scores.device)
        else:
            logp = torch.log_softmax(scores, dim=-1)
            chosen = scores.argmax(dim=-1)
        self.logprobs.append(logp.gather(-1, chosen[:, None])[:, 0].cpu())
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, chosen[:, None], 0.0)
        return out

    def logprob_table(self):
        return torch.stack(self.logprobs, dim=1).tolist() if self.logprobs else None


SAMPLERS = {"old": OldRowSampler, "new": RowSampler}


def cases() -> list[Case]:
    """Two hand-written MedQA-style cases (written for this benchmark)."""
    a = Case(
        id="bench-knee", initial="A 23-year-old man comes to the clinic with a painful, swollen right knee for 2 days.",
        facts=(Fact(0, "He has had a fever of 38.4 C since yesterday."), Fact(1, "He reports burning on urination."),
               Fact(2, "He has a new sexual partner."), Fact(3, "Joint fluid shows gram-negative diplococci.")),
        question="Which of the following is the most appropriate treatment?",
        options=(Option("A", "Ceftriaxone"), Option("B", "Vancomycin"), Option("C", "Colchicine"),
                 Option("D", "Allopurinol")), answer="A", source="bench")
    b = Case(
        id="bench-chest", initial="A 58-year-old woman presents to the emergency department with chest pain.",
        facts=(Fact(0, "The pain started 40 minutes ago at rest."), Fact(1, "It radiates to the left jaw."),
               Fact(2, "She has type 2 diabetes and smokes."), Fact(3, "The ECG shows ST elevation in II, III, aVF.")),
        question="Which of the following is the most likely diagnosis?",
        options=(Option("A", "Aortic dissection"), Option("B", "Inferior myocardial infarction"),
                 Option("C", "Pericarditis"), Option("D", "Pulmonary embolism")), answer="B", source="bench")
    return [a, b]


def consultation_chats() -> list:
    """Doctor prompts at 0, 1 and 2 questions asked, for each case (6 chats)."""
    asks = [("Do you have a fever?", 0), ("Any pain when you urinate?", 1)]
    chats = []
    for case in cases():
        state = DialogueState()
        for k in range(3):
            chats.append(view_to_chat(dialogue_view(case, state, max_questions=5)))
            if k < 2:
                q, fid = asks[k]
                state, _ = transition(state, Ask(q), (case.facts[fid].text, (fid,)))
    return chats


class Recorder:
    """A stand-in sampler that keeps every step's logits (and samples greedily)."""

    seen: list[torch.Tensor] = []

    def __init__(self, *args, **kwargs):
        self.inner = RowSampler(*args, **kwargs)
        self.logprob_table = self.inner.logprob_table

    def __call__(self, input_ids, scores):
        Recorder.seen.append(scores.float().clone())
        return self.inner(input_ids, scores)


def bench_step(logits: list[torch.Tensor], top_p: float) -> dict[str, float]:
    """Milliseconds per sampling step (mean over the ``logits`` steps) for each sampler."""
    rows, reps = logits[0].shape[0], len(logits)
    out = {}
    for name in ("old", "new", "old", "new"):  # alternate; keep the second round (warm caches)
        sampler = SAMPLERS[name](list(range(rows)), 1.0, top_p, torch.device("cpu"), steps=reps)
        t = time.perf_counter()
        for x in logits:
            sampler(None, x)
        out[name] = (time.perf_counter() - t) / reps * 1e3
    return out


def bench_generate(llm, chats, args) -> dict[str, dict[str, float]]:
    sampling = Sampling(max_new_tokens=args.max_new_tokens, temperature=1.0, n=args.samples,
                        seeds=tuple(range(1, len(chats) + 1)))
    totals = {k: {"wall": 0.0, "cpu": 0.0, "turns": 0, "tokens": 0} for k in SAMPLERS}
    original = hf.RowSampler
    try:
        for _ in range(args.repeats):
            for name, cls in SAMPLERS.items():
                hf.RowSampler = cls
                w, c = time.perf_counter(), time.process_time()
                gens = llm.generate(chats, sampling)
                t = totals[name]
                t["wall"] += time.perf_counter() - w
                t["cpu"] += time.process_time() - c
                t["turns"] += len(gens)
                t["tokens"] += sum(len(x.token_ids) for x in gens)
    finally:
        hf.RowSampler = original
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gemma-270m")
    ap.add_argument("--rows", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--step-reps", type=int, default=3)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cuda {torch.cuda.is_available()}")

    llm = load_llm(args.model)
    chats = consultation_chats()
    hf.RowSampler = Recorder  # warm-up generate: 2 prompts, 4 steps; keeps Gemma's next-token logits
    try:
        llm.generate(chats[:2], Sampling(max_new_tokens=4, temperature=1.0, seeds=(0, 1)))
    finally:
        hf.RowSampler = RowSampler
    real = torch.cat(Recorder.seen)  # [steps x 2, vocab]
    vocab = real.shape[-1]

    print(f"\n1. sampling step, {vocab:,}-token vocabulary, temperature 1 (ms per step, mean of {args.step_reps})")
    print("| logits | rows | top_p | old ms | new ms | old / new |\n| --- | --- | --- | --- | --- | --- |")
    g = torch.Generator().manual_seed(0)
    for rows in args.rows:
        kinds = {"Gemma": [real[torch.randint(len(real), (rows,), generator=g)] for _ in range(args.step_reps)],
                 "N(0, 16)": [torch.randn((rows, vocab), generator=g) * 4 for _ in range(args.step_reps)]}
        for kind, logits in kinds.items():
            for top_p in (1.0, 0.95):
                r = bench_step(logits, top_p)
                print(f"| {kind} | {rows} | {top_p} | {r['old']:.1f} | {r['new']:.1f} | {r['old'] / r['new']:.2f}x |",
                      flush=True)
        del kinds
    print(f"\n2. whole generate: {args.model} ({llm.device}, {llm.dtype}), {len(chats)} doctor prompts x "
          f"{args.samples} samples, {args.max_new_tokens} new tokens, temperature 1, {args.repeats} repeats")
    totals = bench_generate(llm, chats, args)
    print("| sampler | turns/s | tokens/s | wall s | CPU s | tokens |\n| --- | --- | --- | --- | --- | --- |")
    for name, t in totals.items():
        print(f"| {name} | {t['turns'] / t['wall']:.2f} | {t['tokens'] / t['wall']:.1f} | {t['wall']:.1f} | "
              f"{t['cpu']:.1f} | {t['tokens']} |")
    o, n = totals["old"], totals["new"]
    print(f"new / old: turns/s {(n['turns'] / n['wall']) / (o['turns'] / o['wall']):.2f}x, tokens/s "
          f"{(n['tokens'] / n['wall']) / (o['tokens'] / o['wall']):.2f}x, tokens per CPU s "
          f"{(n['tokens'] / n['cpu']) / (o['tokens'] / o['cpu']):.2f}x")

    print("\n3. llama.cpp reference")
    if importlib.util.find_spec("llama_cpp") is None:
        print("skipped: llama_cpp is not importable here (not installed; this benchmark does not install it)")
    else:
        print("llama_cpp is importable, but this benchmark has no llama.cpp server runner yet: start "
              "`python -m llama_cpp.server --model <gguf>` and compare with `promed.llm.openai_compat` by hand")


if __name__ == "__main__":
    main()
