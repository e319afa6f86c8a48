"""On SynthClinic, the exact posterior of each option after each question of a consultation.

Transcripts hold fact ids, not findings, so the cases are regenerated from the run's manifest: SynthClinic is
deterministic in (split, data seed) and ``generate_cases(split, k)`` is the first ``k`` cases of any longer call,
so case ``sc-<split>-<i>`` needs only the first ``i + 1``. A regenerated case is used only if it matches the record
(fact count, gold letter, initial statement); otherwise the page says why there is no chart. The chart is served as
its own SVG (an ``<img>`` on the consultation page), so the page never waits for the generator.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from promed.types import Case, Transcript
from promed.view.consultations import Consultation
from promed.view.curves import Chart, Series

if TYPE_CHECKING:  # the generator and its knowledge base load on the first chart, not with the viewer
    from promed.data.synthclinic import BayesScorer

_ID = re.compile(r"^sc-(train|val|test)-(\d+)$")


def synthclinic_source(manifest: dict) -> tuple[str, int] | None:
    """(split, data seed) if the run's manifest says its cases are SynthClinic's, else ``None``."""
    data = (manifest.get("config") or {}).get("data")
    if not isinstance(data, dict) or data.get("data") != "synthclinic":
        return None
    return str(data.get("split", "test")), int(data.get("data_seed", 0))


@dataclass
class SynthClinicCases:
    """Regenerated SynthClinic cases, the longest prefix per (split, seed) kept; thread-safe."""

    _prefixes: dict[tuple[str, int], list[Case]] = field(default_factory=dict)
    _scorer: BayesScorer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def scorer(self) -> BayesScorer:
        """The exact posterior (one, shared: it memoises per case)."""
        with self._lock:
            if self._scorer is None:
                from promed.data.synthclinic import BayesScorer

                self._scorer = BayesScorer()
            return self._scorer

    def case(self, source: tuple[str, int], c: Consultation) -> Case:
        """The case of consultation ``c``; ValueError saying why if it cannot be had or does not match."""
        split, seed = source
        m = _ID.match(c.transcript.case_id)
        if m is None or m.group(1) != split:
            raise ValueError(f"case id {c.transcript.case_id!r} is not a SynthClinic {split} id")
        index = int(m.group(2))
        from promed.data.synthclinic import generate_cases

        with self._lock:
            cases = self._prefixes.get(source, [])
            if len(cases) <= index:
                cases = self._prefixes[source] = generate_cases(split, index + 1, seed=seed)
        case = cases[index]
        if (case.id, case.n_facts, case.answer) != (c.transcript.case_id, c.n_facts, c.gold) or (
                c.prompt.initial and c.prompt.initial != case.initial):
            raise ValueError(f"the regenerated case {case.id!r} does not match the record (another generator "
                             "version?)")
        return case


def posterior_chart(case: Case, tr: Transcript, scorer: BayesScorer, mark_gold: bool = True) -> Chart:
    """P(option | initial statement + facts known) after 0, 1, ..., n questions; one series per option, the gold
    one labelled as such if ``mark_gold`` (not during a live consultation)."""
    known = [set(tr.given)]
    for t in tr.turns:
        known.append(known[-1] | set(t.revealed))
    probs = scorer.probs([case.query(sorted(k)) for k in known])
    series = tuple(Series(f"{o.letter}{' (gold)' if mark_gold and o.letter == case.answer else ''}",
                          tuple((float(k), float(p[j])) for k, p in enumerate(probs)))
                   for j, o in enumerate(case.options))
    return Chart("exact posterior of each option after each question", series)
