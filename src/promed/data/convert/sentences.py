"""Text units of a vignette: sentences, bracket depth, splits outside brackets, runs of lab values.

* :func:`split_sentences`: a sentence ends at ``.``/``?``/``!`` followed by a capital letter, a digit or a quote,
  never inside a number (``38.9``), after a title or Latin abbreviation (``Dr.``, ``e.g.``, ``vs.``, ``mm.``) or
  inside brackets; a table cell separator (`` | ``) and a line break also end one. A letter before the full stop
  is not taken for an initial: ``... 4.1 mEq/L. Which ...`` ends a sentence.
* :func:`top_level_split`: split at a separator outside round/square brackets and quotes (straight or curly); a
  comma between digits (``15,000``) never splits.
* :func:`split_values`: a flattened lab table (``Hemoglobin 12.1 g/dL Leukocyte count 6,000/mm3``) into one
  item per value.
"""

from __future__ import annotations

import re

_ABBREVIATIONS = frozenset("dr mr mrs ms st vs approx fig no jr sr prof e.g i.e etc ca mm".split())
_SENTENCE_END = re.compile(r"([.!?])([\"')\]]*)\s+(?=[A-Z0-9\"'(\[])")
_BREAKS = re.compile(r"\s*(?:\n+|\s\|\s|^\|\s|\s\|$)\s*")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (stripped, non-empty), by the rules in the module docstring."""
    out: list[str] = []
    for block in _BREAKS.split(text):
        block = block.strip(" |")
        start = 0
        for m in _SENTENCE_END.finditer(block):
            before = block[start:m.start()]
            last = re.search(r"([A-Za-z.]+)$", before)
            word = last.group(1).lower().rstrip(".") if last else ""
            if m.group(1) == "." and word in _ABBREVIATIONS:
                continue
            if depth(block, m.start()) > 0:
                continue
            out.append(block[start:m.end()].strip())
            start = m.end()
        if block[start:].strip():
            out.append(block[start:].strip())
    return [s for s in out if s]


def depth(text: str, pos: int) -> int:
    """Bracket depth at ``pos`` (round and square brackets)."""
    d = 0
    for ch in text[:pos]:
        if ch in "([":
            d += 1
        elif ch in ")]" and d:
            d -= 1
    return d


def top_level_split(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside brackets and quotes; a comma between digits (``15,000``) never splits."""
    parts, level, quote, start, i = [], 0, False, 0, 0
    while i < len(text):
        ch = text[i]
        if ch in "([":
            level += 1
        elif ch in ")]" and level:
            level -= 1
        elif ch == '"':
            quote = not quote
        elif ch in "“‘" and not quote:
            level += 1
        elif ch in "”’" and level and text[i - 1:i] != "s":
            level -= 1
        elif level == 0 and not quote and text.startswith(sep, i):
            if not (sep == "," and i + 1 < len(text) and text[i + 1].isdigit() and i and text[i - 1].isdigit()):
                parts.append(text[start:i])
                start = i + len(sep)
                i = start
                continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


_VALUE_TOKEN = re.compile(
    r"(?:[<>≤≥]?\d[\d.,–-]*(?:%|\+|/[\w^µμ/]+)?|[\w^µμ]*/[\w^µμ/]+|mm\d|m[lm]|[mnµμp]?g|[mkd]?l|[mnµμ]?mol|"
    r"meq|iu|u|negative|positive|none|normal|absent|present|trace)$", re.IGNORECASE)


def split_values(text: str) -> list[str]:
    """A run of lab values without separators (``Hemoglobin 12.1 g/dL Leukocyte count 6,000/mm3 ...``, as tables
    flatten) split into one item per value: at a capitalised word that follows a value or a unit. Only where the
    text holds at least two numbers."""
    if len(re.findall(r"\d+", text)) < 2:
        return [text]
    words = text.split(" ")
    pieces, cur = [], []
    for w in words:
        if cur and w[:1].isupper() and _VALUE_TOKEN.match(cur[-1].rstrip(",;:)")) and \
                not _VALUE_TOKEN.match(w.rstrip(",;:)")) and w.rstrip(",;:.)") not in ("Hg", "H2O", "HPF") and \
                any(ch.isdigit() for ch in " ".join(cur)) and len(cur) >= 2:
            pieces.append(" ".join(cur))
            cur = []
        cur.append(w)
    pieces.append(" ".join(cur))
    return [p for p in pieces if p.strip()]
