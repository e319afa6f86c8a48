"""The one doctor action grammar: its strict parser, its format reward and the one rule for "asked before".

Grammar (what every doctor is prompted and trained to emit; one line)::

    ASK: <one question for the patient>
    ANSWER: <option letter>   (or the option's text: see ANSWER_FORMATS)

The keyword must open the turn (after optional whitespace) and is followed by a colon; keywords are
case-insensitive. A lenient parser is a reward the policy learns to exploit under RL, so everything outside the
grammar is invalid; the only tolerances are the ones real models need, each one tested:

1. Surrounding whitespace, and one trailing line break (generation stops at the line's end), are ignored.
2. Markdown emphasis around the whole turn or the keyword (``**ANSWER:** C``, ``*ASK: ...*``), as instruction
   models write it.
3. ``ANSWER``: the letter may be wrapped as ``(C)`` or ``[C]``, be lower case, and be followed by a period
   (``C.``); it may be followed by the option's text (``C. Asthma``, ``C) Asthma``, ``C: Asthma``, ``C - Asthma``)
   or preceded by it (``Asthma (C)``), and the option's text alone names its letter (``ANSWER: Asthma``). Option
   texts are compared after :func:`normalise_text`; a text that names another option than the letter is invalid.

Invalid, with the reason recorded: no keyword at the start (``Could you answer a few questions?``), text after the
first line, an empty question, a question that itself opens with a keyword (``ASK: ANSWER: B``: two actions), a
letter that is not one of the case's options, an answer that names no option.

:func:`format_reward` scores the format (1 valid, 0 invalid) from the same parser, so the format is defined once.
:func:`normalise_question` is the one rule every "was this asked before?" check uses (the no-repeat decoding rule,
the random doctors, MCTS, the SIG of repeated questions).

Invalid output never raises: it becomes :class:`promed.types.Invalid` with a reason, and the environment records
it as a step, lets the doctor retry, then ends the episode with a forced answer.
"""

from __future__ import annotations

import re
from typing import Sequence

from promed.errors import InputError
from promed.types import Action, Answer, Ask, Invalid, Option

_EMPH = "*_`"
_KEYWORD_TAIL = r"[*_`]*\s*:"  # emphasis and the colon after a keyword (``**ANSWER**:``)
_TURN = re.compile(r"^(?P<kw>ask|answer)" + _KEYWORD_TAIL + r"(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
ANSWER_KEYWORD = re.compile(r"^[*_`\s]*answer" + _KEYWORD_TAIL, re.IGNORECASE)
"""The start of an answer turn up to its colon, as :func:`parse_action` reads it (emphasis around it allowed)."""
_KEYWORD_START = re.compile(r"^[*_`\s]*(?:ask|answer)\s*:", re.IGNORECASE)
_LETTER_ONLY = re.compile(r"^(?:\((?P<a>[A-Za-z])\)|\[(?P<b>[A-Za-z])\]|(?P<c>[A-Za-z]))\.?$")
_LETTER_THEN_TEXT = re.compile(
    r"^(?:\((?P<a>[A-Za-z])\)|\[(?P<b>[A-Za-z])\]|(?P<c>[A-Za-z])(?=\s*[.):\-]))\s*[.):\-]?\s*(?P<text>\S.*)$"
)
_TEXT_THEN_LETTER = re.compile(r"^(?P<text>\S.*?)\s*\((?P<l>[A-Za-z])\)\.?$")


def normalise_text(text: str) -> str:
    """Case-folded, whitespace collapsed, surrounding punctuation and emphasis removed."""
    return " ".join(text.split()).casefold().strip(" .,;:!?*_`\"'")


def normalise_question(question: str) -> str:
    """The key under which two questions count as the same question (repeats earn nothing, are not re-asked)."""
    return normalise_text(question)


def _strip_emphasis(text: str) -> str:
    return text.strip().strip(_EMPH).strip()


def _letter(m: re.Match) -> str:
    return next(g for g in (m.group("a"), m.group("b"), m.group("c")) if g).upper()


def _read_answer(rest: str, options: Sequence[Option]) -> Answer | Invalid:
    letters = {o.letter.upper(): o for o in options}
    by_text = {normalise_text(o.text): o.letter.upper() for o in options if o.text}
    rest = _strip_emphasis(rest)
    if not rest:
        return Invalid(rest, "ANSWER with no option")
    m = _LETTER_ONLY.match(rest)
    if m:
        letter = _letter(m)
        return Answer(letter) if letter in letters else Invalid(rest, f"letter {letter!r} is not an option")
    text_letter = by_text.get(normalise_text(rest))
    if text_letter:
        return Answer(text_letter)
    for pattern in (_LETTER_THEN_TEXT, _TEXT_THEN_LETTER):
        m = pattern.match(rest)
        if not m:
            continue
        letter = _letter(m) if pattern is _LETTER_THEN_TEXT else m.group("l").upper()
        if letter not in letters:
            return Invalid(rest, f"letter {letter!r} is not an option")
        named = by_text.get(normalise_text(m.group("text")))
        if named == letter:
            return Answer(letter)
        if named is not None:
            return Invalid(rest, f"letter {letter!r} but the text names option {named!r}")
        return Invalid(rest, f"text after letter {letter!r} is not that option's text")
    return Invalid(rest, "answer names no option")


def parse_action(text: str, options: Sequence[Option]) -> Action:
    """Parse one doctor output into :class:`Ask`, :class:`Answer` or :class:`Invalid` (module rules)."""
    body = text.strip()
    if not body:
        return Invalid(text, "empty output")
    if "\n" in body:
        return Invalid(text, "more than one line")
    m = _TURN.match(_strip_emphasis(body))
    if m is None:
        return Invalid(text, "does not start with ASK: or ANSWER:")
    rest = m.group("rest")
    if m.group("kw").lower() == "ask":
        question = _strip_emphasis(rest)
        if not re.search(r"[A-Za-z]{2,}", question):
            return Invalid(text, "ASK with no question")
        if _KEYWORD_START.match(question):
            return Invalid(text, "two actions in one turn")
        return Ask(" ".join(question.split()))
    res = _read_answer(rest, options)
    return res if isinstance(res, Answer) else Invalid(text, res.reason)


def format_reward(text: str, options: Sequence[Option]) -> float:
    """1.0 when ``text`` is a valid turn of the grammar (a question, or an answer naming an option), else 0.0."""
    return 0.0 if isinstance(parse_action(text, options), Invalid) else 1.0


ANSWER_FORMATS = ("letter", "name", "text")
"""How a doctor writes its answer turn; every form is a turn of the grammar above and parses to the same letter.

``letter``: ``ANSWER: C`` (instruction models, the baselines); ``name``: ``ANSWER: Asthma`` (the option's text
alone: what the pretrained SynthClinic doctor is trained to write, since a small model learns the diagnosis long
before it can bind it to a shuffled letter; BENCHMARKS.md, Pretraining); ``text``: ``ANSWER: Asthma (C)``."""


def answer_turn(options: Sequence[Option], letter: str, answer_format: str = "letter") -> str:
    """The canonical answer turn for option ``letter`` of ``options`` in ``answer_format`` (:data:`ANSWER_FORMATS`)."""
    if answer_format == "letter":
        return f"ANSWER: {letter}"
    text = next((o.text for o in options if o.letter == letter), None)
    if text is None:
        raise ValueError(f"no option {letter!r} among {[o.letter for o in options]}")
    if answer_format == "name":
        return f"ANSWER: {text}"
    if answer_format == "text":
        return f"ANSWER: {text} ({letter})"
    raise InputError(f"unknown answer format {answer_format!r}; expected one of {', '.join(ANSWER_FORMATS)}")


def format_action(action: Ask | Answer, options: Sequence[Option] = (), answer_format: str = "letter") -> str:
    """The canonical text of an action (what trajectories and prompts use); answers in ``answer_format``."""
    if isinstance(action, Ask):
        return f"ASK: {action.question}"
    return answer_turn(options, action.letter, answer_format)
