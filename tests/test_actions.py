"""The strict action grammar: the tolerated forms (one test each), the invalid ones, and properties."""

import pytest
from hypothesis import given, settings, strategies as st

from promed.doctor.actions import answer_turn, format_action, format_reward, normalise_question, parse_action
from promed.types import Answer, Ask, Invalid, Option

OPTS = tuple(Option(l, t) for l, t in zip("ABCD", ["Gentamicin", "Ciprofloxacin", "Ceftriaxone", "Trimethoprim"]))


@pytest.mark.parametrize("text,expected", [
    ("ASK: Do you smoke?", Ask("Do you smoke?")),
    ("ask:   Any fever?  ", Ask("Any fever?")),                      # 1: case, surrounding whitespace
    ("  ASK: Any fever?\n", Ask("Any fever?")),                      # 1: one trailing line break
    ("ASK:Any   rash?", Ask("Any rash?")),                           # inner whitespace collapsed
    ("**ASK:** Any rash?", Ask("Any rash?")),                        # 2: markdown emphasis
    ("*ASK: Any rash?*", Ask("Any rash?")),
    ("ASK: What did the Q fever test show?", Ask("What did the Q fever test show?")),
    ("ASK: Could you answer a few questions about your cough?",
     Ask("Could you answer a few questions about your cough?")),
    ("ANSWER: C", Answer("C")),
    ("answer: c", Answer("C")),                                      # 3: lower case
    ("ANSWER: C.", Answer("C")),                                     # 3: trailing period
    ("Answer: (C)", Answer("C")),                                    # 3: parenthesised
    ("ANSWER: [C]", Answer("C")),
    ("**ANSWER:** C", Answer("C")),                                  # 2
    ("**ANSWER**: C", Answer("C")),
    ("ANSWER: C. Ceftriaxone", Answer("C")),                         # 3: letter then the option's text
    ("ANSWER: C) ceftriaxone", Answer("C")),
    ("ANSWER: C: Ceftriaxone.", Answer("C")),
    ("ANSWER: C - Ceftriaxone", Answer("C")),
    ("ANSWER: (C) Ceftriaxone", Answer("C")),
    ("ANSWER: Ceftriaxone (C)", Answer("C")),                        # 3: the option's text then the letter
    ("ANSWER: Ceftriaxone", Answer("C")),                            # 3: the option's text alone
])
def test_tolerated_forms(text, expected):
    assert parse_action(text, OPTS) == expected
    assert format_reward(text, OPTS) == 1.0


@pytest.mark.parametrize("text,reason", [
    ("", "empty output"),
    ("   ", "empty output"),
    ("ASK:", "ASK with no question"),
    ("ASK: ?", "ASK with no question"),
    ("ANSWER:", "ANSWER with no option"),
    ("ANSWER: E", "not an option"),
    ("ANSWER: maybe", "names no option"),
    ("ANSWER: C. Gentamicin", "names option 'A'"),
    ("ANSWER: C. penicillin", "not that option's text"),
    ("ANSWER: Gentamicin (C)", "names option 'A'"),
    ("ASK: ANSWER: B", "two actions"),
    ("ASK: Do you smoke?\nPatient: No, I don't.", "more than one line"),
    ("ASK: Is it ok?\nANSWER: B", "more than one line"),
    # the three measured failures of the old, lenient parser
    ("Could you answer a few questions about your cough?", "does not start"),
    ("I have no further question. ANSWER: B", "does not start"),
    ("What did the Q fever test show?", "does not start"),
    ("C", "does not start"),
    ("Final answer: B", "does not start"),
    ("The answer is D", "does not start"),
    ("Question: any rash?", "does not start"),
    ("ASK - any rash?", "does not start"),
])
def test_invalid_outputs(text, reason):
    res = parse_action(text, OPTS)
    assert isinstance(res, Invalid) and reason in res.reason, res
    assert format_reward(text, OPTS) == 0.0


def test_format_roundtrip():
    for a in (Ask("Do you smoke?"), Answer("B")):
        assert parse_action(format_action(a), OPTS) == a


@pytest.mark.parametrize("fmt, text", [("letter", "ANSWER: C"), ("name", "ANSWER: Ceftriaxone"),
                                       ("text", "ANSWER: Ceftriaxone (C)")])
def test_every_answer_format_is_a_turn_of_the_grammar(fmt, text):
    """The formats doctors are trained to write (letter, the option's text, both) all parse to the same letter, so
    the parser, the format reward and every doctor's prompt agree whichever format a doctor uses."""
    assert answer_turn(OPTS, "C", fmt) == format_action(Answer("C"), OPTS, fmt) == text
    assert parse_action(text, OPTS) == Answer("C") and format_reward(text, OPTS) == 1.0
    for letter in "ABD":
        assert parse_action(answer_turn(OPTS, letter, fmt), OPTS) == Answer(letter)
    with pytest.raises(ValueError, match="no option"):
        answer_turn(OPTS, "E", fmt if fmt != "letter" else "name")
    with pytest.raises(ValueError, match="unknown answer format"):
        answer_turn(OPTS, "C", "emoji")


def test_prompts_name_both_answer_forms():
    from promed.doctor.policy import INVALID_NOTE, SYSTEM_PROMPT

    for prompt in (SYSTEM_PROMPT, INVALID_NOTE):
        assert "'ANSWER: <option letter or text>'" in prompt


def test_normalise_question():
    assert normalise_question("  Do you  SMOKE? ") == normalise_question("do you smoke")
    assert normalise_question("Any fever?") != normalise_question("Any rash?")


_WORDS = st.sampled_from(["answer", "Answer", "ANSWER", "question", "Question", "option", "Option", "Q", "q",
                          "A", "B", "C", "D", "the", "your", "fever", "could", "you", "what", "is", "did", "test",
                          "a", "few", "about", "cough", "show", "ANSWER:", "answer:", "(C)", "C.", "Q:"])
_QUESTIONS = st.lists(_WORDS, min_size=1, max_size=12).map(lambda ws: " ".join(ws) + "?")


@settings(max_examples=400, deadline=None)
@given(_QUESTIONS)
def test_no_question_parses_as_an_answer(q):
    """A question, however it uses answer/question/option/Q, is never read as an answer."""
    assert not isinstance(parse_action(q, OPTS), Answer) or q.lower().startswith("answer:")
    asked = parse_action(f"ASK: {q}", OPTS)
    if not q.lower().startswith(("answer:", "ask:")) and any(len(w.strip("?:().")) > 1 for w in q.split()):
        assert asked == Ask(" ".join(q.split()))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_parser_is_total(text):
    """Any text parses to exactly one action without raising; the format reward agrees with the parse."""
    res = parse_action(text, OPTS)
    assert isinstance(res, (Ask, Answer, Invalid))
    assert format_reward(text, OPTS) == (0.0 if isinstance(res, Invalid) else 1.0)
