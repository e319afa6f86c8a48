"""What each page shows, computed from the store's records: small frozen types the templates only lay out.

Keeping the arithmetic here (bar widths, which question revealed which fact, the Shapley ranking) leaves the
templates free of logic and lets the tests check the numbers without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass

from promed.sig.cache import ShapleyRecord
from promed.types import Invalid
from promed.view.consultations import Consultation


@dataclass(frozen=True)
class FactRef:
    """A fact a reply stated: its id, text (``""`` when the run holds no text for it) and whether it was new."""

    id: int
    text: str
    new: bool


@dataclass(frozen=True)
class TurnView:
    number: int
    question: str
    reply: str
    facts: tuple[FactRef, ...]
    sig: float | None
    bar: float  # SIG as a share of the page's largest SIG, in percent


@dataclass(frozen=True)
class RankedFact:
    """One row of the Shapley ranking: ``found`` says how the consultation(s) learned the fact, per column."""

    rank: int
    id: int
    text: str
    phi: float
    left: float  # bar geometry in percent of the cell: negative values extend left of the centre line
    width: float
    found: tuple[str, ...]


@dataclass(frozen=True)
class ConsultationView:
    doctor: str
    key: str
    consultation: Consultation
    turns: tuple[TurnView, ...]
    invalid_outputs: tuple[str, ...]
    forced: bool

    @property
    def transcript(self):
        return self.consultation.transcript


def fact_texts(consultation: Consultation, shapley: ShapleyRecord | None) -> dict[int, str]:
    """Fact id -> text: from the Shapley record when it matches the case (same number of facts)."""
    if shapley is not None and shapley.n_facts == consultation.n_facts:
        return dict(enumerate(shapley.facts))
    return {}


def consultation_view(doctor: str, key: str, c: Consultation, texts: dict[int, str], sig_max: float
                      ) -> ConsultationView:
    """What the consultation panel shows: each turn with the facts its reply stated (``texts`` names them) and its
    SIG bar as a share of ``sig_max``; the unreadable outputs; whether the answer was forced."""
    tr = c.transcript
    turns = tuple(
        TurnView(k + 1, t.question, t.reply, tuple(FactRef(i, texts.get(i, ""), i in t.new) for i in t.revealed),
                 t.sig, 100.0 * (t.sig or 0.0) / sig_max if sig_max > 0 else 0.0)
        for k, t in enumerate(tr.turns))
    invalid = tuple(s.text for s in tr.steps if isinstance(s.action, Invalid))
    return ConsultationView(doctor, key, c, turns, invalid, tr.forced)


def page_sig_max(consultations: list[Consultation]) -> float:
    """The largest SIG of any question on a page: the full length of a SIG bar (so two doctors share a scale)."""
    return max([t.sig or 0.0 for c in consultations for t in c.transcript.turns] + [0.0])


def found_marks(c: Consultation) -> dict[int, str]:
    """Fact id -> ``Qk`` (the first question whose reply revealed it) or ``given`` (known from the start)."""
    marks = {i: "given" for i in c.transcript.given}
    for k, t in enumerate(c.transcript.turns):
        for i in t.revealed:
            marks.setdefault(i, f"Q{k + 1}")
    return marks


def shapley_ranking(record: ShapleyRecord, consultations: list[Consultation]) -> tuple[RankedFact, ...]:
    """The case's facts by Shapley value, largest first, each marked per consultation with how it was found."""
    marks = [found_marks(c) for c in consultations]
    scale = max([abs(p) for p in record.phi] + [1e-12])
    order = sorted(range(record.n_facts), key=lambda i: -record.phi[i])
    out = []
    for rank, i in enumerate(order, 1):
        phi = record.phi[i]
        width = 50.0 * abs(phi) / scale
        out.append(RankedFact(rank, i, record.facts[i], phi, 50.0 - width if phi < 0 else 50.0, width,
                              tuple(m.get(i, "") for m in marks)))
    return tuple(out)
