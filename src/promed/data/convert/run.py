"""``convert_file``: MedQA-style items in, partial-information cases (generic JSONL) out.

Order of work, so that bad input never leaves a file behind: the settings are checked, every item is read and
validated (:func:`promed.data.convert.items.read_items`), the model spec is parsed; only then does anything get
written: the LLM cache line by line as the model answers (``--facts llm``), and the output in one go through a
temp file and a rename.

Per case: the initial statement is the rule writer's (the first clause of the first sentence: demographics and
chief complaint); the hidden facts come from the rule writer or from the LLM writer (validated; a case whose LLM
facts were all rejected falls back to the rule facts and is counted). A case with no hidden fact at all (a
one-clause vignette) is left out of the output and named in the result, since a case needs facts to be asked
about.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from promed.data.cases import DataError, write_cases
from promed.data.convert.items import read_items
from promed.data.convert.llm_facts import (
    GROUNDING,
    FactCache,
    Rejected,
    count_reasons,
    llm_facts,
)
from promed.data.convert.segment import RuleSettings, rule_facts
from promed.data.convert.words import content_words
from promed.errors import InputError
from promed.types import Case, Fact

FACT_WRITERS = ("rules", "llm")


@dataclass(frozen=True)
class ConvertConfig:
    """Settings of ``promed data convert``."""

    facts: str = field(default="rules", metadata={"help": "Fact writer: rules (sentence, clause and list rules; "
                                                          "no model) or llm (an atomic-fact prompt through "
                                                          "--model, validated against the vignette)."})
    model: str | None = field(default=None, metadata={"help": "Model spec of the LLM fact writer (gemma-270m, "
                                                              "hf:DIR, openai:MODEL@URL); needed by --facts llm."})
    grounding: float = field(default=GROUNDING, metadata={"help": "LLM facts: the share of a fact's content words "
                                                                  "that must occur in the vignette (0-1]."})
    batch_size: int = field(default=4, metadata={"help": "LLM facts: vignettes per generate call (each batch is "
                                                         "cached as soon as it is done)."})
    max_new_tokens: int = field(default=384, metadata={"help": "LLM facts: generation budget per vignette."})
    rules: RuleSettings = field(default_factory=RuleSettings, metadata={"help": "Switches of the rule writer."})

    def __post_init__(self) -> None:
        if self.facts not in FACT_WRITERS:
            raise InputError(f"--facts must be rules or llm, got {self.facts!r}")
        if not 0.0 < self.grounding <= 1.0:
            raise InputError(f"--grounding must be in (0, 1], got {self.grounding!r}")
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be >= 1, got {self.batch_size!r}")
        if self.max_new_tokens < 1:
            raise InputError(f"--max-new-tokens must be >= 1, got {self.max_new_tokens!r}")


@dataclass(frozen=True)
class CaseReport:
    """One converted item: its hidden facts, the LLM facts rejected (empty for rules), whether it fell back."""

    id: str
    facts: int
    rejected: tuple[Rejected, ...] = ()
    fallback: bool = False


@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert_file` did. ``facts_per_case`` counts hidden facts (the initial statement apart)."""

    out: Path
    cases: int
    facts: int
    rejected: int
    rejected_by_reason: dict[str, int]
    fallbacks: int
    model_calls: int
    cached: int
    seconds: float
    per_case: tuple[CaseReport, ...]
    left_out: tuple[str, ...] = ()
    cache: Path | None = None

    @property
    def facts_per_case(self) -> float:
        return self.facts / self.cases if self.cases else 0.0

    def summary(self) -> dict:
        """A JSON-ready summary (what a command prints or saves)."""
        return {"out": str(self.out), "cases": self.cases, "facts": self.facts,
                "facts_per_case": round(self.facts_per_case, 3), "rejected": self.rejected,
                "rejected_by_reason": self.rejected_by_reason, "fallbacks": self.fallbacks,
                "model_calls": self.model_calls, "cached": self.cached, "seconds": round(self.seconds, 3),
                "left_out": list(self.left_out), "cache": str(self.cache) if self.cache else None,
                "per_case": [{"id": r.id, "facts": r.facts, "rejected": [[x.text, x.reason] for x in r.rejected],
                              "fallback": r.fallback} for r in self.per_case if r.rejected or r.fallback]}


def cache_path(out: Path) -> Path:
    """The LLM cache beside the output: ``cases.jsonl`` -> ``cases.llm-cache.jsonl``."""
    return out.with_name(out.name.removesuffix(".jsonl") + ".llm-cache.jsonl")


def convert_file(path: str | Path, out: str | Path, facts: str | None = None, model: str | None = None,
                 progress: bool = True, *, config: ConvertConfig | None = None, llm=None) -> ConvertResult:
    """Convert the MedQA-style JSONL ``path`` into generic cases at ``out`` (atomic: temp file + rename).

    ``facts`` and ``model``, when given, override those of ``config`` (default :class:`ConvertConfig`). ``llm``
    passes an already built backend for ``--facts llm`` (tests, callers holding a model); otherwise it is loaded
    from ``model`` through :func:`promed.llm.load_llm`. Raises :class:`DataError` / :class:`InputError` for bad
    input before anything is written.
    """
    t0 = time.perf_counter()
    cfg = config or ConvertConfig()
    cfg = replace(cfg, **{k: v for k, v in (("facts", facts), ("model", model)) if v is not None})
    path, out = Path(path), Path(out)
    if out.is_dir():
        raise InputError(f"--out {out}: is a directory, expected a JSONL file path")
    if path.exists() and out.exists() and out.resolve() == path.resolve():
        raise InputError(f"--out {out}: is the input file; write the cases to another file")
    if cfg.facts == "llm" and llm is None and not cfg.model:
        raise InputError("--facts llm needs --model SPEC (e.g. gemma-270m, hf:DIR, openai:MODEL@URL)")
    items = read_items(path)
    segs = [rule_facts(it.vignette, cfg.rules) for it in items]
    for it, seg in zip(items, segs):
        _check_faithful(it.vignette, seg.all_facts, path, it.line)

    llm_results = None
    cache = None
    if cfg.facts == "llm":
        if llm is None:
            from promed.llm import load_llm
            from promed.llm.base import parse_spec

            parse_spec(cfg.model)  # a bad spec is an input error, before anything is written
            llm = load_llm(cfg.model)
        cache = FactCache(cache_path(out), getattr(llm, "name", None) or cfg.model or type(llm).__name__)
        bar = _bar(len(items), progress, "llm facts")
        llm_results = llm_facts(items, [s.initial for s in segs], llm, cache, batch_size=cfg.batch_size,
                                max_new_tokens=cfg.max_new_tokens, grounding=cfg.grounding,
                                tick=bar.update if bar else None)
        if bar:
            bar.close()

    cases, reports, left_out = [], [], []
    for i, (it, seg) in enumerate(zip(items, segs)):
        hidden, rejected, fallback = list(seg.facts), (), False
        if llm_results is not None:
            res = llm_results[i]
            rejected = res.rejected
            if res.facts:
                hidden = list(res.facts)
            else:
                fallback = True
        if not hidden:
            left_out.append(it.id)
            continue
        reports.append(CaseReport(it.id, len(hidden), rejected, fallback))
        cases.append(Case(it.id, seg.initial, tuple(Fact(k, t) for k, t in enumerate(hidden)), it.stem,
                          it.options, it.answer, f"convert:{cfg.facts}:{path.name}"))
    if not cases:
        raise DataError(path, None, None, f"no case with a hidden fact: all {len(items)} vignettes are a single "
                                          "clause (the initial statement)")
    write_cases(cases, out)
    n_rej = sum(len(r.rejected) for r in reports)
    calls = sum(r.called for r in llm_results) if llm_results else 0
    return ConvertResult(
        out=out, cases=len(cases), facts=sum(r.facts for r in reports), rejected=n_rej,
        rejected_by_reason=count_reasons(llm_results) if llm_results else {},
        fallbacks=sum(r.fallback for r in reports), model_calls=calls,
        cached=(len(items) - calls) if llm_results else 0, seconds=time.perf_counter() - t0,
        per_case=tuple(reports), left_out=tuple(left_out), cache=cache.path if cache else None)


def _check_faithful(vignette: str, facts, path: Path, line: int) -> None:
    """Every rule fact's content words come from the vignette (a broken rule is a bug, not bad input)."""
    words = set(content_words(vignette))
    for f in facts:
        missing = [w for w in content_words(f) if w not in words]
        if missing:
            raise AssertionError(f"{path}:{line}: rule fact {f!r} has words not in the vignette: {missing}")


def _bar(total: int, progress: bool, desc: str):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="case", leave=False)


__all__ = ["ConvertConfig", "ConvertResult", "CaseReport", "convert_file", "cache_path"]
