"""LLMPatient: the fact-select patient prompt through any LLM backend, grounded and guarded.

What: for each (case, question) pair the model sees the case's numbered hidden facts and the doctor's question
and is asked which fact numbers answer it (or ``NONE``). The numbers are parsed tolerantly, mapped back to fact
ids, and the reply is those facts *verbatim* in fact order; anything unparseable, out of range or ``NONE`` gives
the fixed :data:`~promed.patient.guard.REFUSAL`. All pairs of a call go to ``llm.generate`` as one batch.

Why: this is the patient of the MediQ benchmark and of the paper (an LLM selects among atomic facts). Unlike
MediQ's, our patient does not let the model write the reply: it only picks numbers, so every reply is grounded in
the case, the revealed ids are exact, and the SIG reward needs no matcher.

No-leak (``guard=True``, the default): the prompt lists only the *safe* facts
(:func:`~promed.patient.guard.safe_fact_ids`), never the options, the answer or the question stem, and the
final text is re-scanned by :func:`~promed.patient.guard.guard_reply`. So even a backend that is steered by a
prompt injection in the doctor's question (or is adversarial, as in the tests) can at most reveal genuine safe
facts. ``guard=False`` lists every fact and skips the scan; it exists only to measure what the guard prevents.

Model choice: the task needs instruction following. The base Gemma 3 270M (``gemma-270m``) does not do it: on 16
SynthClinic questions it selected the targeted fact 0 times and wrote prose (refused) 14 times. Use an
instruction-tuned model (an ``hf:`` ``-it`` checkpoint or an ``openai:`` server); :class:`FactPatient` is the
default patient.

Deviations from MediQ's fact-select patient: numbers instead of free text (see above); at most ``max_facts``
facts per reply (the first ones the model lists), so "tell me everything" cannot dump the whole case in one turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from promed.errors import InputError
from promed.llm.base import LLM
from promed.patient.guard import REFUSAL, guard_reply, safe_fact_ids
from promed.types import Case, Chat, Generation, Sampling

SYSTEM_PROMPT = (
    "You are a patient in a medical consultation. You know only the numbered facts below about yourself. "
    "Do not guess, explain or add anything."
)

USER_TEMPLATE = (
    "Facts about the patient:\n{facts}\n\n"
    'Question from the doctor: "{question}"\n\n'
    "Which of the facts above answer the doctor's question? Reply with the fact numbers only, separated by "
    "commas (for example: 2, 5). If no fact answers the question, reply NONE."
)


@dataclass(frozen=True)
class LLMPatientConfig:
    """Settings of :class:`LLMPatient`."""

    guard: bool = field(default=True, metadata={"help": "show the model only safe facts and re-scan replies"})
    max_facts: int = field(default=3, metadata={"help": "max facts revealed per reply (first ones listed)"})
    max_new_tokens: int = field(default=24, metadata={"help": "generation budget for the fact numbers"})
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature (0 = greedy)"})


_NUMBERED_LINE = re.compile(r"^\s*(?:facts?\s*)?#?(\d{1,3})\s*[.):\]](?=\s|$)", re.IGNORECASE | re.MULTILINE)
# a standalone number: not part of "21-year-old", "99/min", "6-8", "38.5", "40%", "2nd"
_STANDALONE = re.compile(r"(?<![\w./\-–])(\d{1,3})(?![\w%/\-–]|\.\d)")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?!\d)")  # "15,000" is one number, not facts 15 and 0
_NONE = re.compile(r"\b(?:none|no\s+facts?)\b", re.IGNORECASE)
_WORDS = re.compile(r"[A-Za-z]+")
# words that may surround the numbers in a free-form answer line ("The facts that answer the question are 2 and 5")
_FRAME = frozenset(
    "fact facts number numbers no nos and or the are is answer answers answering question questions that which "
    "of above relevant these those following".split()
)
_MAX_OTHER_WORDS = 2  # more words than this around the numbers: the line is prose, its numbers are not fact ids


def parse_fact_numbers(text: str, n: int) -> tuple[int, ...]:
    """1-based fact numbers in ``text`` that lie in ``1..n``, in the order given, de-duplicated.

    Accepts ``"2, 5"``, ``"[2,5]"``, ``"Facts 2 and 5."``, ``"2. Patient ...\\n5. ..."`` (leading numbers of
    echoed fact lines), ``"Fact #3"``, ``"The facts that answer the question are 2 and 5."``. Returns ``()`` for
    ``NONE`` without numbers and for anything unreadable, including prose whose numbers are not fact numbers
    ("I have had a cough for 2 weeks": more than two words besides the fact-list vocabulary). Numbers inside
    echoed fact text ("21-year-old", "99/min", "38.5") are ignored.
    """
    text = text.strip()
    if not text:
        return ()
    found = [int(m) for m in _NUMBERED_LINE.findall(text)]
    if not found:
        first = next((ln for ln in text.splitlines() if ln.strip()), "")
        other = [w for w in _WORDS.findall(first) if w.lower() not in _FRAME]
        if len(other) > _MAX_OTHER_WORDS:  # e.g. "I have had a cough for 2 weeks" is prose, not "fact 2"
            return ()
        found = [int(m) for m in _STANDALONE.findall(_THOUSANDS.sub(" ", first))]
        if not found and _NONE.search(text):
            return ()
    return tuple(dict.fromkeys(k for k in found if 1 <= k <= n))


def build_chat(facts: Sequence[str], question: str) -> Chat:
    """The fact-select chat: numbered facts and the doctor's question (nothing about options or the answer)."""
    listing = "\n".join(f"{i}. {t}" for i, t in enumerate(facts, start=1))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": USER_TEMPLATE.format(facts=listing, question=question.strip())},
    ]


class LLMPatient:
    """Fact-select patient over any :class:`~promed.llm.base.LLM`; implements :class:`promed.types.Patient`."""

    def __init__(
        self,
        llm: LLM,
        guard: bool = True,
        max_facts: int = 3,
        max_new_tokens: int = 24,
        temperature: float = 0.0,
    ):
        if max_facts < 1:
            raise InputError(f"max_facts must be >= 1, got {max_facts}")
        self.llm = llm
        self.config = LLMPatientConfig(guard, max_facts, max_new_tokens, temperature)
        self.name = f"llm:{getattr(llm, 'name', type(llm).__name__)}"
        self.n_unparsed = 0  # replies whose model output gave no usable fact number (counted, not an error)

    def visible_ids(self, case: Case) -> tuple[int, ...]:
        """The fact ids the model is shown for ``case`` (the safe ones when guarded)."""
        return safe_fact_ids(case) if self.config.guard else tuple(f.id for f in case.facts)

    def chats(self, cases: Sequence[Case], questions: Sequence[str]) -> list[Chat]:
        return [
            build_chat([c.facts[i].text for i in self.visible_ids(c)], q) for c, q in zip(cases, questions)
        ]

    def reply(self, cases: Sequence[Case], questions: Sequence[str]) -> list[tuple[str, tuple[int, ...]]]:
        if len(cases) != len(questions):
            raise ValueError(f"{len(cases)} cases but {len(questions)} questions")
        if not cases:
            return []
        cfg = self.config
        outs = [Generation.of(g).text for g in self.llm.generate(
            self.chats(cases, questions), Sampling(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature)
        )]
        if len(outs) != len(cases):
            raise RuntimeError(f"LLM returned {len(outs)} completions for {len(cases)} chats")
        result: list[tuple[str, tuple[int, ...]]] = []
        for case, out in zip(cases, outs):
            visible = self.visible_ids(case)
            nums = parse_fact_numbers(out, len(visible))[: cfg.max_facts]
            if not nums:
                self.n_unparsed += int(not _NONE.search(out))
                result.append((REFUSAL, ()))
                continue
            ids = tuple(sorted(visible[k - 1] for k in nums))
            text = " ".join(case.facts[i].text for i in ids)
            result.append(guard_reply(case, text, ids) if cfg.guard else (text, ids))
        return result
