"""The pretrained SynthClinic doctor (``promed pretrain``): its own answers against the exact posterior, and a curve.

For a checkpoint, on N SynthClinic test cases (seed 0, the standard benchmark; ``--split val`` for choosing settings),
the doctor answering itself:

* (a) ``reactive``: the initial statement only, as ``promed eval --doctor llm:<ckpt> --max-questions 0`` runs it
  (``LLMDoctor`` through :func:`promed.env.rollout.run_episodes`, budget 0, greedy decoding, the strict parser);
* (b) ``all facts``: every fact revealed at turn 0 (``EnvConfig(reveal_all=True)``, budget 5: what ``full-info``
  runs through the doctor);
* (c) calibration: the model's option probabilities (the answer turn of each option scored after the prompt with the
  backend's ``score_options``, normalised over the options) against the exact posterior (``BayesScorer``): mean
  absolute difference over cases and options, on the prompts of (a) and (b); and the expected calibration error
  against the gold answers (top-label, 10 bins: :func:`promed.eval.metrics.expected_calibration_error`), beside the
  exact posterior's own ECE on the same cases (what sampling alone gives). ``argmax`` accuracies of these
  probabilities are printed too (choosing the most likely option rather than decoding greedily).

Bayes' accuracies on the same cases (0.394 reactive, 0.964 all facts at seed 0, 500 cases) are printed beside.

    python benchmarks/pretrain_curve.py --eval runs/pretrain [--n 500] [--split val]   # evaluate checkpoints
    python benchmarks/pretrain_curve.py --curve --minutes 4 8 --sizes 128x4 ...  # train and evaluate a curve

``--curve`` trains one run per model size (``<hidden>x<layers>``), keeps a checkpoint every ``--save-steps`` steps and
evaluates each: params x training time -> (a), (b), calibration, wall time. A checkpoint's training time is the
time its files were written, counted from the start of training (after data generation); intermediate points are
checkpoints of one cosine schedule, not separate shorter runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def option_probs(llm, cases, fact_sets, answer_format: str, known: bool = True, budget: int = 5):
    """(n, options) model probabilities of each option's answer turn after the pretraining prompt."""
    from promed.train.pretrain import answer_text, prompt_chat

    prompts = [llm.render(prompt_chat(c, f, known=known, budget=budget)) for c, f in zip(cases, fact_sets)]
    opts = [[answer_text(c, o.letter, answer_format) for o in c.options] for c in cases]
    out = []
    for s in range(0, len(prompts), 64):
        out.extend(llm.score_options(prompts[s:s + 64], opts[s:s + 64]))
    return np.array(out)


def evaluate(ckpt: str | Path, n: int = 500, seed: int = 0, answer_format: str | None = None,
             split: str = "test") -> dict:
    """Accuracy of the doctor's own answers (reactive, all facts), calibration and argmax accuracies (module doc)."""
    from promed.data.synthclinic import BayesScorer, generate_cases
    from promed.doctor.policy import LLMDoctor
    from promed.env.consultation import EnvConfig
    from promed.env.rollout import run_episodes
    from promed.eval.metrics import expected_calibration_error
    from promed.llm import load_llm
    from promed.patient import FactPatient

    ckpt = Path(ckpt)
    if answer_format is None:
        from promed.runs.pretrain import checkpoint_answer_format

        answer_format = checkpoint_answer_format(ckpt)
    cases = generate_cases(split, n, seed=seed)
    llm = load_llm(f"hf:{ckpt}")
    doctor = LLMDoctor(llm, f"llm:{ckpt}")
    patient = FactPatient()
    bayes = BayesScorer()
    out: dict = {"ckpt": str(ckpt), "split": split, "n": n, "answer_format": answer_format}
    t0 = time.perf_counter()
    for name, env, facts in (("reactive", EnvConfig(max_questions=0), lambda c: ()),
                             ("all_facts", EnvConfig(max_questions=5, reveal_all=True),
                              lambda c: tuple(range(c.n_facts)))):
        trs = run_episodes(cases, doctor, patient, env, seed=seed, batch_size=64)
        out[name] = float(np.mean([t.answer == c.answer for t, c in zip(trs, cases)]))
        out[f"{name}_policy_answers"] = float(np.mean([not t.forced for t in trs]))
        fsets = [facts(c) for c in cases]
        p = option_probs(llm, cases, fsets, answer_format, known=True, budget=env.max_questions)
        q = np.array(bayes.probs([c.query(f) for c, f in zip(cases, fsets)]))
        gold = np.array([c.gold_index for c in cases])
        out[f"{name}_argmax"] = float(np.mean(p.argmax(1) == gold))
        out[f"{name}_bayes"] = float(np.mean(q.argmax(1) == gold))
        out[f"{name}_mae"] = float(np.mean(np.abs(p - q)))
        out[f"{name}_ece"] = expected_calibration_error(p, gold)
        out[f"{name}_bayes_ece"] = expected_calibration_error(q, gold)  # what sampling alone gives on these cases
    out["eval_s"] = round(time.perf_counter() - t0, 1)
    return out


def _row(r: dict) -> str:
    return (f"{r.get('params', ''):>9} {r.get('train_s', ''):>7} {r.get('steps', ''):>6} "
            f"{r['reactive']:.3f} ({r['reactive_argmax']:.3f}) {r['all_facts']:.3f} ({r['all_facts_argmax']:.3f}) "
            f"{r['reactive_mae']:.3f} {r['all_facts_mae']:.3f}  "
            f"{r['reactive_ece']:.3f} {r['all_facts_ece']:.3f} ({r['reactive_bayes_ece']:.3f} "
            f"{r['all_facts_bayes_ece']:.3f})  bayes {r['reactive_bayes']:.3f}/"
            f"{r['all_facts_bayes']:.3f}  {r['ckpt']}")


HEADER = ("   params train_s  steps reactive (argmax) all-facts (argmax) mae-r mae-all  ece-r ece-all (exact's)  "
          "exact posterior  checkpoint")


def curve(args) -> list[dict]:
    """One pretraining run per size; every checkpoint evaluated (module docstring)."""
    from promed.train.pretrain import PretrainConfig, run_pretrain

    rows = []
    for size in args.sizes:
        hidden, layers = (int(x) for x in size.split("x"))
        small = replace(PretrainConfig().small, hidden_size=hidden, num_layers=layers, num_heads=max(1, hidden // 32),
                        num_kv_heads=max(1, hidden // 32), intermediate_size=3 * hidden)
        if args.pretokenize:
            small = replace(small, pretokenize=args.pretokenize)
        if args.vocab:
            small = replace(small, vocab_size=args.vocab)
        out = Path(args.out) / size
        cfg = PretrainConfig(cases=args.cases, subsets_per_case=args.subsets, small=small,
                             answer_format=args.answer_format, batch_size=args.batch_size,
                             learning_rate=args.lr, save_steps=args.save_steps, save_total_limit=100,
                             num_threads=args.threads, out=out, progress_bar=False, resume=False,
                             max_steps=args.steps)
        t0 = time.time()
        res = run_pretrain(cfg)
        start = t0 + res.data_s
        ckpts = sorted((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        for ck in ckpts:
            r = evaluate(ck, args.n, answer_format=args.answer_format)
            r.update(params=res.n_params, steps=int(ck.name.split("-")[1]),
                     train_s=round((ck / "trainer_state.json").stat().st_mtime - start))
            rows.append(r)
            print(_row(r), flush=True)
        print(f"# {size}: data {res.data_s:.0f} s, total {res.sft.wall_s:.0f} s, {res.sft.n_examples} examples",
              flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", nargs="*", default=[], help="checkpoint directories to evaluate")
    ap.add_argument("--curve", action="store_true", help="train one run per --sizes and evaluate its checkpoints")
    ap.add_argument("--n", type=int, default=500, help="cases of --split")
    ap.add_argument("--split", default="test", choices=("test", "val"),
                    help="SynthClinic split of --eval (choose settings on val, report test)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--sizes", nargs="*", default=["128x4"], help="model sizes <hidden>x<layers>")
    ap.add_argument("--cases", type=int, default=24000)
    ap.add_argument("--subsets", type=int, default=2)
    ap.add_argument("--steps", type=int, default=-1, help="optimizer steps per run (default: one epoch)")
    ap.add_argument("--save-steps", type=int, default=250)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--answer-format", default="name")
    ap.add_argument("--pretokenize", default=None, help="words or lines (default: PretrainConfig's)")
    ap.add_argument("--vocab", type=int, default=None, help="BPE vocabulary (default: PretrainConfig's)")
    ap.add_argument("--out", default="/tmp/pretrain_curve")
    ap.add_argument("--json", default=None, help="write the rows here")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    print(HEADER, flush=True)
    for ck in args.eval:
        r = evaluate(ck, args.n, split=args.split)
        rows.append(r)
        print(_row(r), flush=True)
    if args.curve:
        rows += curve(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    sys.exit(main())
