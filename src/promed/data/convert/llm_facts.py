"""The LLM fact writer: an atomic-fact prompt through any :class:`promed.llm.base.LLM`, validated and cached.

What: the model sees the vignette (never the stem, the options or the answer) and is asked for a numbered list of
short atomic facts in the vignette's own words. Each listed line is then validated; a fact is kept only if

* it has a content word and is not a repeat of an earlier fact (same content words);
* it is **grounded**: at least :data:`GROUNDING` (0.8) of its content words occur in the vignette, a word
  counting as found when the vignette has it or a word with the same stem (``vomited`` / ``vomiting``).
  Why 0.8 rather than 1.0: an atomic-fact rewrite legitimately adds a linking word or two the vignette does not
  have (``Patient experiences ...``), and 0.8 still rejects a five-word fact with two invented words, which is
  what a hallucinated finding looks like. Token overlap cannot see a flipped negation (``no fever`` from
  ``fever``): that needs an entailment model and is a known limit;
* it names **no option** (the option's content words as a run in the fact's) unless that option's text is in the
  vignette itself, so a model that guesses the diagnosis cannot leak it into the patient's facts;
* it is not already **in the initial statement** (all its words are the initial statement's).

Rejected facts are counted by reason and returned per case (:class:`LLMFacts`), never kept silently. A case left
with no fact falls back to the rule facts (counted by the converter).

Cache: the raw model output per item is appended, one flushed JSON line per item, to a JSONL file next to the
output, keyed by (item content hash, model id, prompt version); a rerun reads it and calls the model only for
items not yet there, so an interrupted conversion resumes where it stopped. Validation is recomputed from the
cached text (it is cheap and deterministic), so changing the rules of validation needs no new model calls.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from promed.data.convert.items import ExamItem
from promed.data.convert.words import content_words
from promed.io import JsonlAppender, load_jsonl
from promed.types import Chat, Generation, Sampling

PROMPT_VERSION = "atomic-facts-v1"
GROUNDING = 0.8

SYSTEM_PROMPT = "You rewrite clinical case vignettes as lists of atomic facts. You add nothing that is not stated."
USER_TEMPLATE = (
    "Vignette:\n{vignette}\n\n"
    "Rewrite the vignette as a numbered list of short atomic facts, one finding per fact, in the vignette's own "
    "words. Give each vital sign and each laboratory value its own fact. Keep negative findings (for example "
    "\"She denies fever.\"). Do not add diagnoses, explanations or anything the vignette does not say.\n\n"
    "Facts:"
)
_LINE = re.compile(r"^\s*(?:\d{1,3}\s*[.)]|[-*•])\s*(.+?)\s*$")


@dataclass(frozen=True)
class Rejected:
    """A fact the model wrote that validation dropped, and why (``not grounded (0.50)``, ``names option B``,
    ``duplicate``, ``in the initial statement``, ``empty``)."""

    text: str
    reason: str


@dataclass(frozen=True)
class LLMFacts:
    """The validated facts of one item, the rejected ones, and whether the model was called for it (not cached)."""

    facts: tuple[str, ...]
    rejected: tuple[Rejected, ...]
    called: bool


def build_chat(vignette: str) -> Chat:
    """The atomic-fact chat for one vignette (no stem, options or answer)."""
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": USER_TEMPLATE.format(vignette=vignette.strip())}]


def parse_facts(text: str) -> list[str]:
    """The listed facts of a completion: numbered (``1. ...``, ``2) ...``) or bulleted lines; a completion with no
    list marker is read one line per fact. Stops at a blank line after the list (the model moving on)."""
    lines = text.splitlines()
    marked = [m.group(1) for m in (_LINE.match(ln) for ln in lines) if m]
    if marked:
        return [f for f in marked if f.strip()]
    return [ln.strip() for ln in lines if ln.strip()]


def _stem(word: str) -> str:
    """A crude stem for grounding (``vomiting`` / ``vomited`` / ``vomits`` -> ``vomit``); numbers unchanged."""
    if word[:1].isdigit():
        return word
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _contains_run(words: list[str], run: list[str]) -> bool:
    n = len(run)
    return n > 0 and any(words[i:i + n] == run for i in range(len(words) - n + 1))


def validate(item: ExamItem, initial: str, candidates: Sequence[str],
             grounding: float = GROUNDING) -> tuple[list[str], list[Rejected]]:
    """Kept facts and rejected ones (module docstring); kept facts end with a full stop."""
    vig_words = content_words(item.vignette)
    vig_set, vig_stems = set(vig_words), {_stem(w) for w in vig_words}
    init_set = set(content_words(initial))
    leaking = [(o.letter, content_words(o.text)) for o in item.options
               if content_words(o.text) and not _contains_run(vig_words, content_words(o.text))]
    kept, rejected, seen = [], [], set()
    for raw in candidates:
        text = re.sub(r"\s+", " ", raw).strip()
        words = content_words(text)
        if not words:
            rejected.append(Rejected(text, "empty"))
            continue
        share = sum(w in vig_set or _stem(w) in vig_stems for w in words) / len(words)
        named = next((letter for letter, run in leaking if _contains_run(words, run)), None)
        key = tuple(sorted(words))
        if named is not None:
            rejected.append(Rejected(text, f"names option {named}"))
        elif share < grounding:
            rejected.append(Rejected(text, f"not grounded ({share:.2f})"))
        elif key in seen:
            rejected.append(Rejected(text, "duplicate"))
        elif set(words) <= init_set:
            rejected.append(Rejected(text, "in the initial statement"))
        else:
            seen.add(key)
            kept.append(text if text.endswith((".", "?", "!")) else text + ".")
    return kept, rejected


def reason_kind(reason: str) -> str:
    """``not grounded (0.50)`` -> ``not grounded``; ``names option B`` -> ``names an option``."""
    if reason.startswith("names option"):
        return "names an option"
    return reason.split(" (")[0]


class FactCache:
    """Raw model outputs keyed by (item hash, model id, prompt version), in an append-only JSONL file."""

    def __init__(self, path: Path, model_id: str):
        self.path, self.model_id = path, model_id
        self._done = {(r.get("key"), r.get("model"), r.get("prompt")): r.get("output", "")
                      for r in load_jsonl(path)}

    def get(self, item: ExamItem) -> str | None:
        return self._done.get((item.key, self.model_id, PROMPT_VERSION))

    def put_many(self, pairs: Sequence[tuple[ExamItem, str]]) -> None:
        with JsonlAppender(self.path, repair=False) as app:
            for item, output in pairs:
                app.write({"key": item.key, "model": self.model_id, "prompt": PROMPT_VERSION, "id": item.id,
                           "output": output})
                self._done[(item.key, self.model_id, PROMPT_VERSION)] = output


def llm_facts(items: Sequence[ExamItem], initials: Sequence[str], llm, cache: FactCache, *, batch_size: int = 4,
              max_new_tokens: int = 384, grounding: float = GROUNDING,
              tick: Callable[[int], None] | None = None) -> list[LLMFacts]:
    """Validated LLM facts for each item, calling ``llm.generate`` in batches only for items not in ``cache``."""
    outputs: dict[int, str] = {}
    todo = []
    for i, item in enumerate(items):
        hit = cache.get(item)
        if hit is None:
            todo.append(i)
        else:
            outputs[i] = hit
            if tick:
                tick(1)
    sampling = Sampling(max_new_tokens=max_new_tokens, temperature=0.0)
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        gens = llm.generate([build_chat(items[i].vignette) for i in batch], sampling)
        if len(gens) != len(batch):
            raise RuntimeError(f"LLM returned {len(gens)} completions for {len(batch)} chats")
        texts = [Generation.of(g).text for g in gens]
        cache.put_many([(items[i], t) for i, t in zip(batch, texts)])
        outputs.update(zip(batch, texts))
        if tick:
            tick(len(batch))
    called = set(todo)
    out = []
    for i, item in enumerate(items):
        kept, rejected = validate(item, initials[i], parse_facts(outputs[i]), grounding)
        out.append(LLMFacts(tuple(kept), tuple(rejected), i in called))
    return out


def count_reasons(results: Sequence[LLMFacts]) -> dict[str, int]:
    return dict(Counter(reason_kind(r.reason) for res in results for r in res.rejected))
