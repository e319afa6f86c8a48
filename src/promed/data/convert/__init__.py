"""Converting MedQA-style exam items into partial-information cases (``promed data convert``).

Input: MedQA-style JSONL, one item per line, in either layout (detected per record; see
:mod:`promed.data.convert.items` and ``docs/data.md``, "Converting MedQA-style items"):

* MedQA (US): ``{"question": "<vignette> <question stem>", "options": {"A": ...} or [...], "answer_idx": "C",
  "answer"?: "<text of option C>", "id"?: ...}``; the stem is the last sentence of ``question``.
* MediQ: ``{"context": ["<sentence>", ...], "question": "<stem>", "options": ..., "answer_idx": "C", "id"?: ...}``;
  the vignette is the context sentences joined.

Output: the project's generic case format (``{"id", "initial", "facts", "question", "options", "answer",
"source"}``), readable by :func:`promed.data.cases.load_cases`: the initial statement (demographics and chief
complaint: the first clause of the first sentence) and the rest of the vignette as hidden atomic facts, one
finding each, pertinent negatives kept.

Fact writers: ``rules`` (:mod:`~promed.data.convert.segment`, no model; every fact's content words come from
the vignette) and ``llm`` (:mod:`~promed.data.convert.llm_facts`: a prompt through any model spec, validated,
rejected facts counted, cached per item so that a rerun calls the model only for new items).

Modules, one job each: ``words`` (content words, token F1, grounding), ``segment`` (sentences, clauses, list
items, the initial statement), ``items`` (reading and validating items, the stem split), ``llm_facts`` (prompt,
validation, cache), ``run`` (:func:`convert_file`, :class:`ConvertConfig`, :class:`ConvertResult`).
"""

from promed.data.convert.items import ExamItem, item_hash, read_items, split_stem
from promed.data.convert.llm_facts import LLMFacts, Rejected
from promed.data.convert.run import (
           CaseReport,
           ConvertConfig,
           ConvertResult,
           cache_path,
           convert_file,
)
from promed.data.convert.segment import (
           RuleSettings,
           Segmentation,
           rule_facts,
           split_sentences,
)

__all__ = ["CaseReport", "ConvertConfig", "ConvertResult", "ExamItem", "LLMFacts", "Rejected", "RuleSettings",
           "Segmentation", "cache_path", "convert_file", "item_hash", "read_items", "rule_facts", "split_sentences",
           "split_stem"]
