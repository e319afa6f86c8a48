"""The one doctor action grammar and its parser.

Grammar (what every doctor is prompted and trained to emit)::

    ASK: <one question for the patient>
    ANSWER: <option letter>

:func:`parse_action` is tolerant, by these rules, applied in order:

1. Markdown emphasis and code marks (``*``, ``_``, backticks, ``#``) are removed and whitespace trimmed;
   keywords are case-insensitive.
2. The first keyword found wins. Keywords for asking: ``ASK``, ``QUESTION``, ``Q``; for answering: ``ANSWER``,
   ``FINAL ANSWER``, ``THE ANSWER IS``, ``ANSWER IS``. The keyword may be followed by ``:``, ``-`` or whitespace.
3. An asked question runs to the end of its line (models often go on to invent the patient's reply on the next
   line, which is discarded). An empty question is invalid.
4. An answer is read from the text after the keyword as a letter in the forms ``C``, ``(C)``, ``C.``, ``C)``,
   ``Option C``, or, failing that, as an option text matched exactly (case-insensitive) or contained at the start.
   A letter that is not one of the case's options is invalid.
5. With no keyword at all: a lone letter (``C``, ``(C)``, ``C.``) is an answer; a single line ending in ``?`` (with at least
   one word) is a question; anything else is invalid.

Invalid output never raises: it becomes :class:`promed.types.Invalid` with a reason, and the environment counts
it, lets the doctor retry once, then ends the episode with a forced answer.
"""

from __future__ import annotations

import re
from typing import Sequence

from promed.types import Action, Answer, Ask, Invalid, Option

_MARKUP = re.compile(r"[*_`#]+")
_KEYWORD = re.compile(
    r"(?:(?P<answer>\bfinal\s+answer\b|\bthe\s+answer\s+is\b|\banswer\s+is\b|\banswer\b)"
    r"|(?P<ask>\bask\b|\bquestion\b|\bq\b))"
    r"\s*[:\-]?\s*",
    re.IGNORECASE,
)
_LETTER = re.compile(r"^\(?\s*(?:option\s+)?([A-Za-z])\s*(?:[).:,]|$|\s)", re.IGNORECASE)
_LONE_LETTER = re.compile(r"^\(?([A-Za-z])\)?\.?$")


def _clean(text: str) -> str:
    return _MARKUP.sub("", text).strip()


def _read_letter(rest: str, options: Sequence[Option]) -> Answer | Invalid:
    letters = {o.letter.upper() for o in options}
    rest = rest.strip()
    m = _LETTER.match(rest)
    if m and m.group(1).upper() in letters:
        return Answer(m.group(1).upper())
    low = rest.lower().rstrip(".")
    for o in options:
        if low == o.text.lower() or (o.text and low.startswith(o.text.lower())):
            return Answer(o.letter)
    if m:
        return Invalid(rest, f"letter {m.group(1).upper()!r} is not an option")
    return Invalid(rest, "answer names no option")


def parse_action(text: str, options: Sequence[Option]) -> Action:
    """Parse one doctor output into :class:`Ask`, :class:`Answer` or :class:`Invalid` (see module rules)."""
    clean = _clean(text)
    if not clean:
        return Invalid(text, "empty output")
    m = _KEYWORD.search(clean)
    if m:
        rest = clean[m.end():]
        if m.group("ask"):
            question = rest.splitlines()[0].strip() if rest.strip() else ""
            if not question:
                return Invalid(text, "ASK with no question")
            return Ask(question)
        res = _read_letter(rest.splitlines()[0] if rest.strip() else "", options)
        return res if isinstance(res, Answer) else Invalid(text, res.reason)
    first = clean.splitlines()[0].strip()
    lone = _LONE_LETTER.match(first)
    if lone and lone.group(1).upper() in {o.letter.upper() for o in options}:
        return Answer(lone.group(1).upper())
    if len(clean.splitlines()) == 1 and first.endswith("?") and re.search(r"[A-Za-z]{2,}", first):
        return Ask(first)
    return Invalid(text, "no ASK or ANSWER")


def format_action(action: Ask | Answer) -> str:
    """The canonical text of an action (what trajectories and prompts use)."""
    return f"ASK: {action.question}" if isinstance(action, Ask) else f"ANSWER: {action.letter}"
