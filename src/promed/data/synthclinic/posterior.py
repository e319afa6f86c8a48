"""The compiled SynthClinic model and its exact posterior (``BayesScorer``).

The knowledge base (``kb.py``) is compiled once into numpy tables:

* ``lik[d, f] = P(f present | d)`` (listed value, else the finding's background rate);
* ``log_prior[b, s, d] = log P(d | age band b, sex s)``;
* ``log_cc[c, d] = log P(chief complaint = c | d)`` with ``P(cc = c | d) ∝ P(c | d)`` over complaint findings.

Exact posterior. Under the generator's model (see ``generator.py``) the posterior over the option diseases is

    P(d | initial, facts, options) ∝ P(d | band, sex) * P(cc | d) * prod_{f in facts} P(v_f | d),   d in options,

because (i) findings are conditionally independent given the disease, (ii) which findings a case documents depends
only on visible information (options, chief complaint, sex), never on the disease or on the finding values, so the
documentation model drops out, and (iii) the distractors are a uniform draw from a pool that is a function of
the initial information, so ``P(options | d)`` is the same for every option disease. ``initial_findings`` carry the
demographics as ``Finding("age:<band>", True)`` / ``Finding("sex:<sex>", True)``; the first KB finding among them
is the chief complaint; any further KB findings are treated as ordinary evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from promed.data.synthclinic import kb
from promed.types import Case, Fact, Finding, Option, Query

AGE_PREFIX, SEX_PREFIX = "age:", "sex:"


@dataclass(frozen=True, eq=False)
class Model:
    """The KB compiled into arrays. ``D`` diseases, ``F`` findings; indices follow ``kb.DISEASES`` / ``kb.FINDINGS``."""

    disease_codes: tuple[str, ...]
    finding_codes: tuple[str, ...]
    disease_index: dict
    finding_index: dict
    lik: np.ndarray  # (D, F) P(present | d)
    log_lik: np.ndarray  # (2, D, F): [0] log P(absent | d), [1] log P(present | d)
    log_prior: np.ndarray  # (n_bands, 2, D)
    log_prior_marginal: np.ndarray  # (D,) prior marginalised over demographics
    complaint_mask: np.ndarray  # (F,) bool
    log_cc: np.ndarray  # (F, D): log P(cc = f | d); -inf for non-complaint findings
    listed: np.ndarray  # (D, F) bool: the disease lists the finding explicitly
    female_only: np.ndarray  # (F,) bool
    category: tuple[str, ...]  # per finding

    @property
    def n_diseases(self) -> int:
        return len(self.disease_codes)

    @property
    def n_findings(self) -> int:
        return len(self.finding_codes)


@lru_cache(maxsize=1)
def model() -> Model:
    """Compile (once) and return the SynthClinic model; validates the KB."""
    fcodes = tuple(f.code for f in kb.FINDINGS)
    dcodes = tuple(d.code for d in kb.DISEASES)
    if len(set(fcodes)) != len(fcodes) or len(set(dcodes)) != len(dcodes):
        raise ValueError("duplicate finding or disease code in the SynthClinic KB")
    fidx = {c: i for i, c in enumerate(fcodes)}
    didx = {c: i for i, c in enumerate(dcodes)}
    D, F = len(dcodes), len(fcodes)
    lik = np.tile(np.array([f.base for f in kb.FINDINGS]), (D, 1))
    listed = np.zeros((D, F), dtype=bool)
    for i, d in enumerate(kb.DISEASES):
        for code, p in d.lik:
            if code not in fidx:
                raise ValueError(f"disease {d.code} lists unknown finding {code}")
            lik[i, fidx[code]] = p
            listed[i, fidx[code]] = True
    if not ((lik > 0) & (lik < 1)).all():
        raise ValueError("P(finding | disease) must lie strictly between 0 and 1")
    with np.errstate(divide="ignore"):
        prior = np.array([[[d.prior * d.age[b] * d.sex[s] for d in kb.DISEASES] for s in range(2)]
                          for b in range(len(kb.AGE_BANDS))])
        prior /= prior.sum(-1, keepdims=True)
        log_prior = np.log(prior)
        demo = np.array(kb.AGE_BAND_PROBS)[:, None, None] * 0.5
        log_prior_marg = np.log((prior * demo).sum((0, 1)))
        cmask = np.array([f.complaint is not None for f in kb.FINDINGS])
        w = np.where(cmask[None, :], lik, 0.0)  # (D, F)
        pcc = w / w.sum(1, keepdims=True)
        log_cc = np.where(cmask[:, None], np.log(pcc.T), -np.inf)
    log_lik = np.stack([np.log1p(-lik), np.log(lik)])
    return Model(
        disease_codes=dcodes, finding_codes=fcodes, disease_index=didx, finding_index=fidx, lik=lik,
        log_lik=log_lik, log_prior=log_prior, log_prior_marginal=log_prior_marg, complaint_mask=cmask,
        log_cc=log_cc, listed=listed, female_only=np.array([f.sex == "female" for f in kb.FINDINGS]),
        category=tuple(f.category for f in kb.FINDINGS),
    )


@dataclass(frozen=True)
class Initial:
    """Structured initial information: age band index (or None), sex index (0 female, 1 male, or None), chief
    complaint finding index (or None) and any further initial findings as (finding index, present) pairs."""

    band: int | None
    sex: int | None
    cc: int | None
    extra: tuple[tuple[int, bool], ...] = ()


_BANDS = tuple(b[0] for b in kb.AGE_BANDS)


def parse_initial(findings: Sequence[Finding]) -> Initial:
    """Read demographics and the chief complaint out of ``initial_findings`` (see the module docstring)."""
    m = model()
    band = sex = cc = None
    extra: list[tuple[int, bool]] = []
    for g in findings:
        if g.code.startswith(AGE_PREFIX):
            band = _BANDS.index(g.code[len(AGE_PREFIX):])
        elif g.code.startswith(SEX_PREFIX):
            sex = kb.SEXES.index(g.code[len(SEX_PREFIX):])
        elif g.code in m.finding_index:
            i = m.finding_index[g.code]
            if cc is None and g.present and m.complaint_mask[i]:
                cc = i
            else:
                extra.append((i, g.present))
        else:
            raise ValueError(f"unknown SynthClinic initial finding {g.code!r}")
    return Initial(band, sex, cc, tuple(extra))


def initial_findings(band: int, sex: int, cc: int) -> tuple[Finding, ...]:
    """The ``Case.initial_findings`` encoding of (age band, sex, chief complaint)."""
    m = model()
    return (Finding(m.finding_codes[cc], True), Finding(AGE_PREFIX + _BANDS[band], True),
            Finding(SEX_PREFIX + kb.SEXES[sex], True))


def initial_logits(init: Initial) -> np.ndarray:
    """(D,) unnormalised log P(d | initial information)."""
    m = model()
    if init.band is not None and init.sex is not None:
        out = m.log_prior[init.band, init.sex].copy()
    elif init.band is None and init.sex is None:
        out = m.log_prior_marginal.copy()
    else:  # one of the two demographics: marginalise the other
        p = np.exp(m.log_prior)
        if init.band is None:
            p = (p[:, init.sex] * np.array(kb.AGE_BAND_PROBS)[:, None]).sum(0)
        else:
            p = p[init.band].mean(0)
        with np.errstate(divide="ignore"):
            out = np.log(p)
    if init.cc is not None:
        out = out + m.log_cc[init.cc]
    for i, present in init.extra:
        out = out + m.log_lik[int(present), :, i]
    return out


def normalise_logits(logits: np.ndarray) -> np.ndarray:
    """Softmax along the last axis; rows that are all -inf become uniform."""
    mx = logits.max(-1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    p = np.exp(logits - mx)
    s = p.sum(-1, keepdims=True)
    return np.where(s > 0, p / np.where(s > 0, s, 1.0), 1.0 / logits.shape[-1])


def option_indices(options: Sequence[Option]) -> np.ndarray:
    """Disease indices of the options (their ``key``); raises ValueError for non-SynthClinic options."""
    idx = model().disease_index
    try:
        return np.array([idx[o.key] for o in options], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"option key {e.args[0]!r} is not a SynthClinic disease code") from None


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) along the last axis."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(-1)


def finding_information(lik_opts: np.ndarray, post: np.ndarray) -> np.ndarray:
    """Mutual information I(disease; finding) in nats for each finding.

    ``lik_opts`` (..., K, F): P(present | option disease); ``post`` (..., K): current distribution over the K
    options. Returns (..., F): H(post) - E_answer H(post | answer), the expected entropy reduction of asking.
    """
    py = np.einsum("...k,...kf->...f", post, lik_opts)  # P(present)
    joint1 = post[..., :, None] * lik_opts
    joint0 = post[..., :, None] * (1.0 - lik_opts)
    with np.errstate(divide="ignore", invalid="ignore"):
        def h_cond(joint, marg):
            cond = joint / np.where(marg > 0, marg, 1.0)[..., None, :]
            return -np.where(cond > 0, cond * np.log(cond), 0.0).sum(-2)
        exp_h = py * h_cond(joint1, py) + (1 - py) * h_cond(joint0, 1 - py)
    return np.maximum(entropy(post)[..., None] - exp_h, 0.0)


class BayesScorer:
    """Exact SynthClinic posterior over each query's options (implements ``promed.types.Scorer``, id "bayes").

    Vectorised: per batch, every (query, fact) pair becomes one row of a gather from ``log_lik`` over the query's
    options, summed per query with ``bincount``. Initial information and option sets are cached by value.
    Facts without a ``finding`` are ignored (they carry no structured evidence); unknown codes raise ValueError.
    """

    id = "bayes"

    _MEMO_LIMIT = 1_000_000

    def __init__(self) -> None:
        self._m = model()
        self._init_cache: dict[tuple[Finding, ...], np.ndarray] = {}
        self._opt_cache: dict[tuple[Option, ...], np.ndarray] = {}
        # identity memos: queries built from one case share its tuples and Fact objects, and hashing frozen
        # dataclasses by value is the bottleneck. Each entry keeps its object alive, so an id is never reused.
        self._base_memo: dict[tuple[int, int], tuple[object, object, np.ndarray, np.ndarray]] = {}
        self._fact_memo: dict[int, tuple[Fact, int]] = {}

    def _init(self, findings: tuple[Finding, ...]) -> np.ndarray:
        v = self._init_cache.get(findings)
        if v is None:
            v = self._init_cache[findings] = initial_logits(parse_initial(findings))
        return v

    def _opts(self, options: tuple[Option, ...]) -> np.ndarray:
        v = self._opt_cache.get(options)
        if v is None:
            v = self._opt_cache[options] = option_indices(options)
        return v

    def _base(self, q: Query) -> tuple[np.ndarray, np.ndarray]:
        """(option disease indices, initial logits over them) for a query, memoised by object identity."""
        key = (id(q.initial_findings), id(q.options))
        e = self._base_memo.get(key)
        if e is None or e[0] is not q.initial_findings or e[1] is not q.options:
            if len(self._base_memo) > self._MEMO_LIMIT:
                self._base_memo.clear()
            opts = self._opts(q.options)
            e = self._base_memo[key] = (q.initial_findings, q.options, opts, self._init(q.initial_findings)[opts])
        return e[2], e[3]

    def _fact_code(self, f: Fact) -> int:
        """2 * finding index + present, or -1 for a fact without a finding; memoised by object identity."""
        e = self._fact_memo.get(id(f))
        if e is None or e[0] is not f:
            if len(self._fact_memo) > self._MEMO_LIMIT:
                self._fact_memo.clear()
            g = f.finding
            if g is None:
                code = -1
            elif g.code in self._m.finding_index:
                code = 2 * self._m.finding_index[g.code] + int(g.present)
            else:
                raise ValueError(f"unknown SynthClinic finding code {g.code!r}")
            e = self._fact_memo[id(f)] = (f, code)
        return e[1]

    def logits(self, queries: Sequence[Query]) -> tuple[np.ndarray, np.ndarray]:
        """(Q, K) unnormalised log posteriors over the options (padded with -inf) and the (Q,) option counts."""
        Q = len(queries)
        bases = [self._base(q) for q in queries]
        n_opt = np.array([len(b[0]) for b in bases], dtype=np.int64)
        K = int(n_opt.max()) if Q else 0
        valid = np.arange(K)[None, :] < n_opt[:, None]
        opt_mat = np.zeros((Q, K), dtype=np.int64)
        base = np.full((Q, K), -np.inf)
        if Q:
            opt_mat[valid] = np.concatenate([b[0] for b in bases])
            base[valid] = np.concatenate([b[1] for b in bases])
        fc = self._fact_code
        codes = [fc(f) for q in queries for f in q.facts]
        if codes:
            r = np.repeat(np.arange(Q), [len(q.facts) for q in queries])
            codes_a = np.array(codes, dtype=np.int64)
            keep = codes_a >= 0
            r, codes_a = r[keep], codes_a[keep]
            contrib = self._m.log_lik[(codes_a & 1)[:, None], opt_mat[r], (codes_a >> 1)[:, None]]  # (nnz, K)
            for k in range(K):
                base[:, k] += np.bincount(r, weights=contrib[:, k], minlength=Q)
        base[~valid] = -np.inf
        return base, n_opt

    def fact_loglik(self, case: Case) -> tuple[np.ndarray, np.ndarray]:
        """Per-case tables for subset scoring: (K,) initial logits over the options and (n_facts, K) the log
        likelihood each fact contributes to each option (0 for facts without a finding)."""
        opts = self._opts(case.options)
        base = self._init(case.initial_findings)[opts]
        ll = np.zeros((case.n_facts, len(opts)))
        for f in case.facts:
            if f.finding is not None:
                try:
                    j = self._m.finding_index[f.finding.code]
                except KeyError:
                    raise ValueError(f"unknown SynthClinic finding code {f.finding.code!r}") from None
                ll[f.id] = self._m.log_lik[int(f.finding.present), opts, j]
        return base, ll

    def subset_probs(self, case: Case, masks: np.ndarray) -> np.ndarray:
        """(S, K) posteriors of ``case`` for S fact subsets given as an (S, n_facts) 0/1 matrix.

        Equal to ``probs([case.query(subset) ...])`` but one matrix product: the fast path for exact Shapley
        enumeration (2^16 subsets in milliseconds).
        """
        base, ll = self.fact_loglik(case)
        masks = np.asarray(masks, dtype=np.float64).reshape(-1, case.n_facts)
        return normalise_logits(base[None, :] + masks @ ll)

    def probs(self, queries: Sequence[Query]) -> list[np.ndarray]:
        logits, n_opt = self.logits(queries)
        out = np.empty_like(logits)
        for k in np.unique(n_opt):  # normalise each option-count group over its own options
            sel = n_opt == k
            out[sel, :k] = normalise_logits(logits[sel, :k])
        return [out[i, : n_opt[i]] for i in range(len(queries))]
