"""How close the MedQA converter's atomic facts come to MediQ's, on MediQ's iMedQA dev set (1,272 cases).

Each MediQ case is turned back into a MedQA item (``question`` = the context sentences joined + the stem) and
converted (:mod:`promed.data.convert`: the stem split, then the fact writer). Its facts - the initial statement's
facts plus the hidden facts, because MediQ's list includes the first sentence's ("Patient is a 21-year-old
male") - are matched one-to-one against MediQ's GPT-written facts: every (converted, MediQ) pair is scored by
token F1 over content words (:func:`promed.data.convert.words.content_words`: lowercase, punctuation dropped, a
small stop-word list), pairs are taken greedily by decreasing F1, each fact at most once, and a pair counts when
its F1 >= 0.5. Precision = matched / converted facts, recall = matched / MediQ facts, F1 micro over facts.

Reference points with the same matcher: MediQ's own context sentences as facts, and a crude split on commas and
and/or/but. Halves: even ids (the half the rules were developed on) and odd ids (held out), then all. Cases with
an empty context or no facts (3 + 3 in the file) are left out and counted.

The file is MediQ's (CC BY 4.0, see its NOTICE.md): it is read from ``--data``, never copied.

    python benchmarks/convert_mediq.py [--data ../shared/data/mediq/imedqa_dev.jsonl] [--ablation]
        [--llm-cases 10 --model gemma-270m]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from promed.data.cases import strip_numbering
from promed.data.convert import (
    ConvertConfig,
    RuleSettings,
    convert_file,
    read_items,
    rule_facts,
)
from promed.data.convert.words import content_words, token_f1

MEDIQ = Path(__file__).resolve().parents[2] / "shared/data/mediq/imedqa_dev.jsonl"
THRESHOLD = 0.5


def match(pred: list[str], gold: list[str], threshold: float = THRESHOLD) -> int:
    """Pairs matched one-to-one, greedily by decreasing token F1 (each fact used once; a pair needs >= threshold)."""
    pw, gw = [content_words(p) for p in pred], [content_words(g) for g in gold]
    pairs = sorted(((token_f1(a, b), i, j) for i, a in enumerate(pw) for j, b in enumerate(gw)), reverse=True)
    used_p, used_g, n = set(), set(), 0
    for f1, i, j in pairs:
        if f1 < threshold:
            break
        if i in used_p or j in used_g:
            continue
        used_p.add(i)
        used_g.add(j)
        n += 1
    return n


def crude_split(text: str) -> list[str]:
    """The crude reference: split at commas, semicolons, sentence ends and the words and/or/but."""
    parts = re.split(r"[,;]|(?<=[.?!])\s+|\s+(?:and|or|but)\s+", text)
    return [p.strip() for p in parts if content_words(p)]


class Score:
    def __init__(self):
        self.tp = self.pred = self.gold = self.cases = 0

    def add(self, pred: list[str], gold: list[str]) -> None:
        self.tp += match(pred, gold)
        self.pred += len(pred)
        self.gold += len(gold)
        self.cases += 1

    def row(self) -> str:
        p = self.tp / self.pred if self.pred else 0.0
        r = self.tp / self.gold if self.gold else 0.0
        f = 2 * self.tp / (self.pred + self.gold) if self.pred + self.gold else 0.0
        return f"P {p:.3f}  R {r:.3f}  F1 {f:.3f}  facts/case {self.pred / max(self.cases, 1):5.2f}"


def load(path: Path) -> tuple[list[dict], int]:
    rows, skipped = [], 0
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            r = json.loads(line)
            ctx = [s for s in r.get("context") or [] if s.strip()]
            facts = [strip_numbering(f) for f in r.get("facts") or [] if strip_numbering(f)]
            if not ctx or not facts:
                skipped += 1
                continue
            rows.append({"id": r["id"], "question": " ".join(ctx) + " " + r["question"].strip(), "stem":
                         r["question"].strip(), "context": ctx, "facts": facts, "options": r["options"],
                         "answer_idx": r["answer_idx"]})
    return rows, skipped


def medqa_file(rows: list[dict], path: Path) -> None:
    """The cases as MedQA-layout items (vignette + stem in ``question``), for the converter to read."""
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps({k: r[k] for k in ("id", "question", "options", "answer_idx")}) + "\n")


def evaluate(rows, items, settings: RuleSettings) -> dict[str, Score]:
    halves = {"dev (even ids)": Score(), "held-out (odd ids)": Score(), "all": Score()}
    for r, item in zip(rows, items):
        pred = list(rule_facts(item.vignette, settings).all_facts)
        for name in ("dev (even ids)" if int(r["id"]) % 2 == 0 else "held-out (odd ids)", "all"):
            halves[name].add(pred, r["facts"])
    return halves


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=MEDIQ, help="MediQ's imedqa_dev.jsonl (never copied)")
    ap.add_argument("--ablation", action="store_true", help="also score each rule switch turned the other way")
    ap.add_argument("--llm-cases", type=int, default=0, help="also run --facts llm on the first N cases")
    ap.add_argument("--model", default="gemma-270m", help="model spec of the LLM fact writer")
    ap.add_argument("--max-new-tokens", type=int, default=256, help="LLM generation budget per vignette")
    ap.add_argument("--llm-out", type=Path, default=Path("runs/convert_mediq_llm"),
                    help="where the LLM check writes its cases and its cache (a rerun reuses the cache)")
    args = ap.parse_args()
    if not args.data.is_file():
        sys.exit(f"error: {args.data}: no such file. This benchmark needs MediQ's iMedQA dev set (CC BY 4.0), "
                 "which the repository does not ship: download it and pass --data PATH.")
    rows, skipped = load(args.data)
    print(f"{len(rows)} cases ({skipped} left out: empty context or no facts); MediQ facts per case "
          f"{sum(len(r['facts']) for r in rows) / len(rows):.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "medqa.jsonl", Path(tmp) / "cases.jsonl"
        medqa_file(rows, src)
        items = read_items(src)
        stems_ok = sum(it.stem == r["stem"] for it, r in zip(items, rows))
        print(f"stem split: {stems_ok}/{len(rows)} stems recovered exactly from vignette + stem")
        t0 = time.perf_counter()
        res = convert_file(src, out, progress=False)
        dt = time.perf_counter() - t0
        print(f"convert_file --facts rules: {res.cases} cases in {dt:.2f} s ({res.cases / dt:.0f} cases/s), "
              f"{res.facts_per_case:.2f} hidden facts per case (+ the initial statement)")

    refs = {"MediQ context sentences": lambda r: r["context"], "crude split (, ; and or but)":
            lambda r: [p for s in r["context"] for p in crude_split(s)]}
    for name, fn in refs.items():
        sc = {"dev (even ids)": Score(), "held-out (odd ids)": Score(), "all": Score()}
        for r in rows:
            for h in ("dev (even ids)" if int(r["id"]) % 2 == 0 else "held-out (odd ids)", "all"):
                sc[h].add(fn(r), r["facts"])
        print(f"\n{name}:")
        for h, s in sc.items():
            print(f"  {h:20s} {s.row()}")
    print("\nrules (defaults):")
    for h, s in evaluate(rows, items, RuleSettings()).items():
        print(f"  {h:20s} {s.row()}")
    if args.ablation:
        base = RuleSettings()
        variants = {"split_lists=all": replace(base, split_lists="all"),
                    "split_lists=none": replace(base, split_lists="none"),
                    "short_item=2": replace(base, short_item=2), "short_item=5": replace(base, short_item=5),
                    "short_item=8": replace(base, short_item=8),
                    "and_split=all": replace(base, and_split="all"), "and_split=none": replace(base, and_split="none"),
                    "negated_lists=distribute": replace(base, negated_lists="distribute"),
                    "split_presentation=True": replace(base, split_presentation=True),
                    "split_demographics=False": replace(base, split_demographics=False),
                    "join_relative=True": replace(base, join_relative=True)}
        for name, st in variants.items():
            s = evaluate(rows, items, st)
            print(f"  {name:26s} dev {s['dev (even ids)'].row()}")
    if args.llm_cases:
        llm_check(rows[: args.llm_cases], args.model, args.max_new_tokens, args.llm_out)


def llm_check(rows: list[dict], model: str, max_new_tokens: int, where: Path) -> None:
    """``--facts llm`` on a few cases: the same matcher, plus the rejected facts and the time per case. The cases and
    the LLM cache go to ``where`` (MediQ-derived: keep it out of the repository), so a rerun calls no model."""
    where.mkdir(parents=True, exist_ok=True)
    src, out = where / "medqa.jsonl", where / "cases.jsonl"
    medqa_file(rows, src)
    t0 = time.perf_counter()
    cfg = ConvertConfig(facts="llm", model=model, max_new_tokens=max_new_tokens)
    res = convert_file(src, out, progress=False, config=cfg)
    dt = time.perf_counter() - t0
    items = read_items(src)
    from promed.data.cases import load_cases

    cases = load_cases(out, fmt="generic").cases
    s = Score()
    fallback = {rep.id for rep in res.per_case if rep.fallback}
    for r, item, case in zip(rows, items, cases):
        init = list(rule_facts(item.vignette).initial_facts)
        # a case whose LLM facts were all rejected holds rule facts: they are not the LLM's, score none
        s.add(init + ([] if case.id in fallback else [f.text for f in case.facts]), r["facts"])
    print(f"\nllm ({model}) on {len(rows)} cases: {s.row()}  (initial-statement facts from the rules; "
          "rule facts of fallback cases not counted)")
    print(f"  {dt:.1f} s ({dt / len(rows):.1f} s per case); facts kept {res.facts}, rejected {res.rejected} "
          f"{dict(res.rejected_by_reason)}; cases with no grounded fact (rules fallback) {res.fallbacks}")


if __name__ == "__main__":
    main()
