"""Patient-directed questions for SynthClinic findings, and the candidate questions for a set of options.

Every finding has exactly one question (``kb.FindingSpec.question``); the mapping is a bijection, so
``finding_of_question(question_for(c)) == c``. The question shares the key words of the finding's fact text so an
embedding retriever (``promed.patient``) can match one to the other.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from promed.data.synthclinic import kb
from promed.data.synthclinic.posterior import finding_information, model, option_indices, parse_initial
from promed.types import Case, Fact, Finding, Option


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    by_code = {f.code: f.question for f in kb.FINDINGS}
    by_text: dict[str, str] = {}
    for f in kb.FINDINGS:
        key = _norm(f.question)
        if key in by_text:
            raise ValueError(f"findings {by_text[key]} and {f.code} share the question {f.question!r}")
        by_text[key] = f.code
    return by_code, by_text


def question_for(code: str) -> str:
    """The patient-directed question that targets finding ``code`` (KeyError for an unknown code)."""
    return _tables()[0][code]


def finding_of_question(text: str) -> str | None:
    """The finding code whose question is ``text`` (exact match up to case and whitespace), else ``None``.

    A leading ``ASK:`` is tolerated so raw doctor actions can be passed directly.
    """
    t = text.strip()
    if t[:4].upper() == "ASK:":
        t = t[4:]
    return _tables()[1].get(_norm(t))


def question_for_fact(fact: Fact) -> str:
    """The question that targets a given hidden fact (ValueError for a fact without a SynthClinic finding)."""
    if fact.finding is None:
        raise ValueError(f"fact {fact.id} has no SynthClinic finding")
    return question_for(fact.finding.code)


def candidate_questions(options: Sequence[Option], known_codes: set[str], *,
                        initial_findings: Sequence[Finding] = ()) -> list[tuple[str, str]]:
    """(code, question) for the findings relevant to the options' diseases that are not in ``known_codes``.

    Relevant = listed by at least one option disease in the KB. Ordered by decreasing information about the
    options under a uniform prior (ties in KB order). With ``initial_findings`` the chief complaint is dropped too,
    and female-only findings are dropped for a man.
    """
    m = model()
    opt = option_indices(options)
    cand = m.listed[opt].any(0)
    known = set(known_codes)
    if initial_findings:
        init = parse_initial(initial_findings)
        if init.cc is not None:
            known.add(m.finding_codes[init.cc])
        known.update(m.finding_codes[i] for i, _ in init.extra)
        if init.sex == 1:
            cand &= ~m.female_only
    info = finding_information(m.lik[opt], np.full(len(opt), 1.0 / len(opt)))
    order = np.argsort(-info, kind="stable")
    return [(m.finding_codes[i], kb.FINDINGS[i].question) for i in order
            if cand[i] and m.finding_codes[i] not in known]


def fact_for_question(case: Case, question: str) -> Fact | None:
    """The hidden fact that ``question`` targets by exact code match, or ``None`` (not a KB question, or the case
    does not document that finding). This is the exact-code patient used by tests and benchmarks."""
    code = finding_of_question(question)
    if code is None:
        return None
    return next((f for f in case.facts if f.finding is not None and f.finding.code == code), None)
