"""Content words of clinical text: the one tokenization behind fact grounding and the fact-matching benchmark.

``content_words("Her temperature is 38.9°C (102°F).")`` -> ``["temperature", "38.9", "c", "102", "f"]``:
lowercase, punctuation dropped, numbers kept whole (``38.9``, ``15,000``, ``120``/``80`` from ``120/80``), and a
small list of function words (articles, prepositions, pronouns, forms of *be*/*have*, the word *patient*) dropped.
Negations (*no*, *not*, *denies*, *without*) are content: a pertinent negative must keep them.

*patient* is a stop word because writers of atomic facts prefix it to everything ("Patient's pulse is 99/min")
while a vignette says "His pulse is 99/min": the word carries no finding.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

# numbers whole ("38.9", "15,000", "0.5"), words with inner apostrophes dropped to their stem ("patient's" -> patient)
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[a-z]+(?:\d+[a-z]*)*")

STOP_WORDS = frozenset(
    """a an the of in on at to for with by from into over about as and or but nor so than then that this these those
    which who whom whose what when where while is are was were be been being am has have had having do does did
    he she it they him her his hers its their them theirs i me my we us our you your s patient patients""".split()
)


def content_words(text: str) -> list[str]:
    """The content words of ``text`` in order (lowercased; stop words and punctuation dropped)."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOP_WORDS]


def token_f1(a: Iterable[str], b: Iterable[str]) -> float:
    """Token F1 between two bags of words (multiset overlap, as SQuAD's answer F1); 0.0 if either is empty."""
    ca, cb = Counter(a), Counter(b)
    common = sum((ca & cb).values())
    if not common:
        return 0.0
    p, r = common / sum(ca.values()), common / sum(cb.values())
    return 2 * p * r / (p + r)


def grounding(fact: str, source_words: set[str]) -> float:
    """Share of ``fact``'s content words found in ``source_words`` (1.0: every word comes from the source;
    a fact with no content word scores 0.0)."""
    words = content_words(fact)
    if not words:
        return 0.0
    return sum(w in source_words for w in words) / len(words)
