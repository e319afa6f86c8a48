import pytest

from promed.doctor.actions import format_action, parse_action
from promed.types import Answer, Ask, Invalid, Option

OPTS = tuple(Option(l, t) for l, t in zip("ABCD", ["Gentamicin", "Ciprofloxacin", "Ceftriaxone", "Trimethoprim"]))


@pytest.mark.parametrize("text,expected", [
    ("ASK: Do you smoke?", Ask("Do you smoke?")),
    ("ask:   Any fever?  ", Ask("Any fever?")),
    ("ASK: Do you smoke?\nPatient: No, I don't.", Ask("Do you smoke?")),  # rule 3: the invented reply is dropped
    ("**Question:** any rash?", Ask("any rash?")),
    ("Q - any rash?", Ask("any rash?")),
    ("ANSWER: C", Answer("C")),
    ("**ANSWER:** (C)", Answer("C")),
    ("answer: c.", Answer("C")),
    ("Final answer: option B", Answer("B")),
    ("The answer is D) Trimethoprim", Answer("D")),
    ("Answer: Ceftriaxone", Answer("C")),          # rule 4: option text
    ("C", Answer("C")),                            # rule 5: lone letter
    ("(A)", Answer("A")),
    ("Have you had a fever?", Ask("Have you had a fever?")),  # rule 5: a lone question
    ("ASK: Is it ok?\nANSWER: B", Ask("Is it ok?")),  # rule 2: first keyword wins
])
def test_tolerant_rules(text, expected):
    assert parse_action(text, OPTS) == expected


@pytest.mark.parametrize("text,reason", [
    ("", "empty output"),
    ("ASK:", "ASK with no question"),
    ("ANSWER: E", "not an option"),
    ("ANSWER: maybe", "names no option"),
    ("I think we should wait.", "no ASK or ANSWER"),
    ("E", "no ASK or ANSWER"),
    ("???", "no ASK or ANSWER"),
])
def test_invalid_outputs(text, reason):
    res = parse_action(text, OPTS)
    assert isinstance(res, Invalid) and reason in res.reason


def test_format_roundtrip():
    for a in (Ask("Do you smoke?"), Answer("B")):
        assert parse_action(format_action(a), OPTS) == a
