"""Seeded generator of MedQA-like SynthClinic cases.

The sampling story of one case (every step uses the one ``np.random.Generator`` of its split):

1. demographics: sex (1:1), age band (``kb.AGE_BAND_PROBS``), age uniform in the band;
2. disease ``d ~ P(d | band, sex)``;
3. chief complaint ``cc ~ P(cc | d) ∝ P(c | d)`` over the complaint findings (a deviation from "pick one of the
   present findings": this form keeps the posterior exact; the complaint finding is then present);
4. the *pool* of confusable diseases: the (at most) ``pool_size`` most probable diseases given (band, sex, cc) whose
   probability is at least ``pool_min_ratio`` times the top one - a function of the visible initial statement only.
   If the pool has fewer than ``n_options`` members (an initial statement that nearly gives the answer away) or
   ``d`` is not in it, the whole draw is rejected and restarted; both events are visible or hold for every option
   disease, so they do not change the posterior over the options;
5. options: ``d`` plus ``n_options - 1`` distractors drawn uniformly from the rest of the pool, shuffled (gold
   position uniform). ``P(options | d)`` is the same for every option disease, so it drops out of the posterior;
6. documentation: each finding relevant to the option diseases (listed by one of them; not the chief complaint;
   not female-only in a man) is documented independently with probability ``q_f`` growing with its information
   about the options (``documentation_probs``); draws are repeated until the count lies in
   [``min_facts``, ``max_facts``]. All of this depends on visible information only, never on ``d`` or on the
   finding values, so documentation drops out of the posterior too;
7. each documented finding's value ~ Bernoulli(P(f | d)); absent ones become pertinent negatives.

Hence ``BayesScorer`` is the exact posterior (see ``posterior.py``). Splits: each split has its own RNG stream
derived from (seed, split) and keeps only cases whose clinical signature hashes to that split (so splits are
disjoint by construction and every prefix is stable); duplicates within a split are skipped. This hash filter and
the de-duplication are the only (negligible) departures from the exact model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from promed.data.synthclinic import kb
from promed.data.synthclinic.posterior import (
    Initial,
    finding_information,
    initial_findings,
    initial_logits,
    model,
)
from promed.types import LETTERS, Case, Fact, Finding, Option

SPLITS = ("train", "val", "test")
DEFAULT_SIZES = {"train": 2000, "val": 200, "test": 500}
QUESTION = "Which of the following is the most likely diagnosis?"
SOURCE = "synthclinic"
_ORDER = {c: i for i, c in enumerate(kb.CATEGORIES)}


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the SynthClinic generator."""

    pool_size: int = field(default=6, metadata={"help": "confusable diseases per initial statement; distractors come from it"})
    n_options: int = field(default=4, metadata={"help": "answer options per case (letters A, B, ...)"})
    target_facts: float = field(default=12.0, metadata={"help": "expected number of documented facts before truncation"})
    min_facts: int = field(default=8, metadata={"help": "fewest hidden facts per case"})
    max_facts: int = field(default=16, metadata={"help": "most hidden facts per case (exact Shapley stays cheap)"})
    pool_min_ratio: float = field(default=0.15, metadata={"help": "pool members need P(d | initial) >= this times the most probable; initial statements with a smaller pool than n_options are rejected (keeps the initial statement ambiguous)"})
    doc_floor: float = field(default=0.15, metadata={"help": "documentation weight of an uninformative finding, relative to the most informative"})
    doc_cap: float = field(default=0.95, metadata={"help": "largest documentation probability of one finding"})


def _pronouns(sex: int) -> dict[str, str]:
    return ({"She": "She", "she": "she", "Her": "Her", "her": "her"} if sex == 0 else
            {"She": "He", "she": "he", "Her": "His", "her": "his"})


def fact_text(code: str, present: bool, sex: int) -> str:
    """The natural-language fact for a finding (``sex`` 0 = female, 1 = male)."""
    spec = kb.FINDINGS[model().finding_index[code]]
    return (spec.present if present else spec.absent).format(**_pronouns(sex))


@lru_cache(maxsize=4096)
def pool(band: int, sex: int, cc: int, size: int, min_ratio: float = 0.0) -> tuple[int, ...]:
    """The (at most) ``size`` most probable diseases given the initial statement whose probability is at least
    ``min_ratio`` times the largest (ties broken by KB order)."""
    logits = initial_logits(Initial(band, sex, cc))
    order = np.argsort(-logits, kind="stable")
    keep = logits >= logits.max() + np.log(max(min_ratio, 1e-300))
    return tuple(int(i) for i in order[:size] if np.isfinite(logits[i]) and keep[i])


def relevant_findings(opt_idx: np.ndarray) -> np.ndarray:
    """(F,) bool: findings listed by at least one of the given diseases."""
    return model().listed[np.asarray(opt_idx)].any(0)


def documentation_probs(opt_idx: np.ndarray, cc: int | None, sex: int | None,
                        cfg: GeneratorConfig = GeneratorConfig()) -> np.ndarray:
    """(F,) probability that a case documents each finding, before the count truncation.

    Candidates are the findings relevant to the options, minus the chief complaint and (for men) female-only
    findings. Weight = information about the options under a uniform prior, relative to the best, plus
    ``doc_floor``; probabilities ``q = min(cap, c * w)`` with ``c`` chosen so that ``sum(q) = target_facts``.
    """
    out = _documentation_probs(tuple(sorted(int(i) for i in opt_idx)), cc, sex, cfg).copy()
    return out


@lru_cache(maxsize=65536)
def _documentation_probs(opt_key: tuple[int, ...], cc: int | None, sex: int | None,
                         cfg: GeneratorConfig) -> np.ndarray:
    m = model()
    opt_idx = np.array(opt_key)
    cand = relevant_findings(opt_idx)
    if cc is not None:
        cand[cc] = False
    if sex == 1:
        cand &= ~m.female_only
    uniform = np.full(len(opt_idx), 1.0 / len(opt_idx))
    info = finding_information(m.lik[opt_idx], uniform)
    w = np.where(cand, info / max(info[cand].max(initial=0.0), 1e-12) + cfg.doc_floor, 0.0)
    target = min(cfg.target_facts, cfg.doc_cap * cand.sum())
    return _water_fill(w, target, cfg.doc_cap)


def _water_fill(w: np.ndarray, target: float, cap: float) -> np.ndarray:
    """``min(cap, c * w)`` with the scale ``c`` chosen so that the sum is ``target`` (<= cap * #positive)."""
    ws = np.sort(w[w > 0])[::-1]
    if len(ws) == 0 or target <= 0:
        return np.zeros_like(w)
    tail = np.concatenate([np.cumsum(ws[::-1])[::-1], [0.0]])  # tail[k] = sum of ws[k:]
    for k in range(len(ws)):  # the k largest weights are capped
        c = (target - k * cap) / tail[k]
        if c * ws[k] <= cap and (k == 0 or c * ws[k - 1] >= cap):
            return np.minimum(cap, c * w)
    return np.where(w > 0, cap, 0.0)


def _draw_documented(q: np.ndarray, cfg: GeneratorConfig, rng: np.random.Generator) -> np.ndarray:
    cand = np.flatnonzero(q > 0)
    if len(cand) <= cfg.min_facts:
        return cand
    for _ in range(1000):
        take = cand[rng.random(len(cand)) < q[cand]]
        if cfg.min_facts <= len(take) <= cfg.max_facts:
            return take
    return cand[np.argsort(-q[cand], kind="stable")[: cfg.max_facts]]


@dataclass(frozen=True)
class _Draw:
    disease: int
    band: int
    sex: int
    age: int
    cc: int
    options: tuple[int, ...]
    gold: int
    documented: tuple[tuple[int, bool], ...]

    def signature(self) -> str:
        """Clinical content (no id, no option order, no age number) used for split assignment and de-duplication."""
        return repr((self.disease, self.band, self.sex, self.cc, tuple(sorted(self.options)), tuple(sorted(self.documented))))


@lru_cache(maxsize=1)
def _cdfs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative distributions of the age band, P(d | band, sex) and P(cc | d) for inverse-CDF sampling."""
    m = model()
    band = np.cumsum(kb.AGE_BAND_PROBS)
    prior = np.cumsum(np.exp(m.log_prior), -1)
    cc = np.cumsum(np.exp(m.log_cc.T), -1)
    return band / band[-1], prior / prior[..., -1:], cc / cc[:, -1:]


def _draw(cdf: np.ndarray, rng: np.random.Generator) -> int:
    return min(int(np.searchsorted(cdf, rng.random(), side="right")), len(cdf) - 1)


def _sample(cfg: GeneratorConfig, rng: np.random.Generator) -> _Draw:
    m = model()
    band_cdf, prior_cdf, cc_cdf = _cdfs()
    while True:
        sex = int(rng.integers(2))
        band = _draw(band_cdf, rng)
        d = _draw(prior_cdf[band, sex], rng)
        cc = _draw(cc_cdf[d], rng)
        pl = pool(band, sex, cc, cfg.pool_size, cfg.pool_min_ratio)
        if d in pl and len(pl) >= cfg.n_options:
            break
    lo, hi = kb.AGE_BANDS[band][1:]
    age = int(rng.integers(lo, hi + 1))
    others = [x for x in pl if x != d]
    distract = rng.choice(len(others), size=cfg.n_options - 1, replace=False)
    opts = np.array([d] + [others[i] for i in distract])[rng.permutation(cfg.n_options)]
    q = documentation_probs(opts, cc, sex, cfg)
    doc = _draw_documented(q, cfg, rng)
    values = rng.random(len(doc)) < m.lik[d, doc]
    return _Draw(d, band, sex, age, cc, tuple(int(x) for x in opts), int(np.flatnonzero(opts == d)[0]),
                 tuple((int(f), bool(v)) for f, v in zip(doc, values)))


def _to_case(draw: _Draw, case_id: str, rng: np.random.Generator) -> Case:
    m = model()
    ordered = sorted(draw.documented, key=lambda fv: _ORDER[m.category[fv[0]]])
    # shuffle within each category so facts read like a vignette (history, symptoms, exam, labs)
    keys = rng.random(len(ordered))
    ordered = [fv for _, fv in sorted(zip(keys, ordered), key=lambda t: (_ORDER[m.category[t[1][0]]], t[0]))]
    facts = tuple(
        Fact(i, fact_text(m.finding_codes[f], v, draw.sex), Finding(m.finding_codes[f], v))
        for i, (f, v) in enumerate(ordered)
    )
    person = "woman" if draw.sex == 0 else "man"
    article = "An" if draw.age in (8, 11, 18) or 80 <= draw.age <= 89 else "A"
    initial = f"{article} {draw.age}-year-old {person} presents with {kb.FINDINGS[draw.cc].complaint}."
    options = tuple(
        Option(LETTERS[i], kb.DISEASES[o].name, kb.DISEASES[o].code) for i, o in enumerate(draw.options)
    )
    return Case(
        id=case_id, initial=initial, facts=facts, question=QUESTION, options=options,
        answer=LETTERS[draw.gold], source=SOURCE, initial_findings=initial_findings(draw.band, draw.sex, draw.cc),
    )


def _split_of(signature: str) -> int:
    return int.from_bytes(hashlib.sha256(signature.encode()).digest()[:8], "big") % len(SPLITS)


def generate_cases(split: str = "test", n: int | None = None, seed: int = 0,
                   config: GeneratorConfig | None = None) -> list[Case]:
    """``n`` SynthClinic cases of ``split`` (default sizes: train 2000, val 200, test 500).

    Deterministic in (split, seed, config); ``generate_cases(s, k)`` is the prefix of ``generate_cases(s, n)`` for
    k <= n; the three splits never share a case (by clinical signature). Ids are ``sc-<split>-<00000>``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    cfg = config or GeneratorConfig()
    if not 2 <= cfg.n_options <= min(cfg.pool_size, len(LETTERS)):
        raise ValueError("need 2 <= n_options <= pool_size")
    n = DEFAULT_SIZES[split] if n is None else n
    s_idx = SPLITS.index(split)
    rng = np.random.default_rng([seed, s_idx])
    seen: set[str] = set()
    cases: list[Case] = []
    while len(cases) < n:
        draw = _sample(cfg, rng)
        sig = draw.signature()
        if _split_of(sig) != s_idx or sig in seen:
            continue
        seen.add(sig)
        cases.append(_to_case(draw, f"sc-{split}-{len(cases):05d}", rng))
    return cases


def gold_disease(case: Case) -> str:
    """The KB code of the case's gold diagnosis."""
    return case.option(case.answer).key or ""
