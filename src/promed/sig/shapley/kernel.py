"""KernelSHAP with paired, stratified coalition sampling and a surrogate control variate (``get_estimator("kernel")``);
the default estimator for SIG when 2^n coalitions are too many to enumerate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from promed.sig.shapley.base import SetFn, ShapleyResult, budgeted_start, popcount
from promed.sig.shapley.surrogate import SoftmaxSurrogate, detect_link, fit_softmax_surrogate, surrogate_shapley
from promed.sig.value import keys_to_masks

__all__ = ["KernelShapley"]


@dataclass(frozen=True)
class _SizeGroup:
    """Coalition sizes {s, n-s} sampled together (complementary pairs); ``units`` = number of distinct pairs."""

    s: int
    n: int

    @property
    def middle(self) -> bool:
        return 2 * self.s == self.n

    @property
    def units(self) -> int:
        c = math.comb(self.n, self.s)
        return c // 2 if self.middle else c

    @property
    def mass(self) -> float:
        """Total Shapley-kernel weight of the group's coalitions: (n-1)/(s(n-s)) per size."""
        per_size = (self.n - 1) / (self.s * (self.n - self.s))
        return per_size if self.middle else 2 * per_size


def _kernel_groups(n: int) -> list[_SizeGroup]:
    return [_SizeGroup(s, n) for s in range(1, n // 2 + 1)]


def _allocate(total: int, masses: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split ``total`` units proportionally to ``masses`` (largest remainder), never above ``caps``."""
    alloc = np.zeros(len(masses), dtype=np.int64)
    free = np.ones(len(masses), dtype=bool)
    left = min(int(total), int(caps.sum()))
    while left > 0 and free.any():
        share = left * masses * free / (masses * free).sum()
        add = np.minimum(np.floor(share).astype(np.int64), caps - alloc)
        if add.sum() == 0:  # hand out single units by largest remainder
            order = np.argsort(-(share - np.floor(share)) - free * 1e-12)
            for j in order:
                if left and free[j] and alloc[j] < caps[j]:
                    alloc[j] += 1
                    left -= 1
        else:
            alloc += add
            left -= int(add.sum())
        free &= alloc < caps
    return alloc


def _sample_group(g: _SizeGroup, units: int, rng: np.random.Generator) -> np.ndarray:
    """``units`` distinct complementary pairs of group ``g`` without replacement: keys ``(units, 2)``."""
    n, s, full = g.n, g.s, (1 << g.n) - 1
    if units >= g.units / 3 and g.units <= 200_000:  # enumerate the group and choose
        from itertools import combinations

        keys = np.array([sum(1 << i for i in c) for c in combinations(range(n), s)], dtype=np.int64)
        if g.middle:
            keys = keys[keys < (full ^ keys)]
        first = rng.choice(keys, size=units, replace=False)
    else:  # rejection sampling of random subsets of size s
        chosen: dict[int, None] = {}
        while len(chosen) < units:
            m = 2 * (units - len(chosen)) + 8
            idx = np.argsort(rng.random((m, n)), axis=1)[:, :s]
            keys = (np.int64(1) << idx.astype(np.int64)).sum(axis=1)
            if g.middle:
                keys = np.minimum(keys, full ^ keys)
            for k in keys.tolist():
                if len(chosen) < units:
                    chosen.setdefault(k)
        first = np.array(list(chosen), dtype=np.int64)
    return np.stack([first, full ^ first], axis=1)


def _constrained_wls(z: np.ndarray, w: np.ndarray, y: np.ndarray, total: float) -> np.ndarray:
    """argmin_phi sum_k w_k (y_k - z_k . phi)^2 subject to sum(phi) = total (KKT system, least-squares solve).

    Batched over leading axes of ``w`` (``(..., K)``) for the bootstrap.
    """
    n = z.shape[1]
    a = np.swapaxes(w[..., :, None] * z, -1, -2) @ z
    b = (w * y) @ z
    lead = a.shape[:-2]
    kkt = np.zeros(lead + (n + 1, n + 1))
    kkt[..., :n, :n] = 2 * a
    kkt[..., :n, n] = 1.0
    kkt[..., n, :n] = 1.0
    rhs = np.concatenate([2 * b, np.full(lead + (1,), total)], axis=-1)
    # A tiny ridge (1e-9 of the mean diagonal) keeps the system solvable when few coalitions, or a bootstrap
    # resample that drops some, leave directions undetermined; they are then set to ~0 instead of to garbage.
    eps = 1e-9 * (np.trace(a, axis1=-2, axis2=-1) / n)[..., None] + 1e-300
    kkt[..., np.arange(n), np.arange(n)] += 2 * eps
    try:
        sol = np.linalg.solve(kkt, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        sol = np.einsum("...ij,...j->...i", np.linalg.pinv(kkt), rhs)
    return sol[..., :n]


@dataclass(frozen=True, eq=False)
class _Design:
    """The coalitions a budget buys: keys (K,), regression weights (K,), and the sampled pair blocks (start, units)
    that the bootstrap resamples (enumerated coalitions come first and are never resampled)."""

    keys: np.ndarray
    weights: np.ndarray
    blocks: tuple[tuple[int, int], ...]


def _design(n: int, budget: int, enumerate_share: float, rng: np.random.Generator) -> _Design:
    groups = _kernel_groups(n)
    left = budget - 2
    mass_left = sum(gr.mass for gr in groups)
    enum_keys: list[np.ndarray] = []
    n_enum = 0
    for gr in groups:  # enumerate heavy groups while their proportional share covers them
        count = gr.units * 2
        if count > left or left * gr.mass / mass_left < enumerate_share * count * (1 - 1e-9):
            break
        enum_keys.append(_sample_group(gr, gr.units, rng).ravel())
        left -= count
        mass_left -= gr.mass
        n_enum += 1
    sampled = groups[n_enum:]
    alloc = _allocate(left // 2, np.array([gr.mass for gr in sampled]), np.array([gr.units for gr in sampled]))
    ek = np.concatenate(enum_keys) if enum_keys else np.zeros(0, dtype=np.int64)
    sizes = popcount(ek)
    ew = (n - 1) / (np.array([math.comb(n, int(t)) for t in sizes], dtype=float) * sizes * (n - sizes))
    keys, weights, blocks, col = [ek], [ew], [], len(ek)
    for gr, u in zip(sampled, alloc):
        if u > 0:
            pairs = _sample_group(gr, int(u), rng)  # (u, 2): coalition and complement
            keys.append(pairs.ravel())
            weights.append(np.full(2 * int(u), gr.mass / (2 * int(u))))
            blocks.append((col, int(u)))
            col += 2 * int(u)
    return _Design(np.concatenate(keys), np.concatenate(weights), tuple(blocks))


def _bootstrap_weights(d: _Design, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, K) weights: the sampled pairs of each block resampled with replacement (multinomial counts)."""
    out = np.tile(d.weights, (n_boot, 1))
    for start, u in d.blocks:
        counts = rng.multinomial(u, np.full(u, 1.0 / u), size=n_boot)
        out[:, start : start + 2 * u] *= np.repeat(counts, 2, axis=1)
    return out


@dataclass(frozen=True)
class KernelShapley:
    """KernelSHAP: Shapley values as the efficiency-constrained weighted least-squares fit of v on coalitions.

    phi = argmin sum_S k(S) (v(S) - v(empty) - sum_{i in S} phi_i)^2  s.t.  sum(phi) = v(all) - v(empty),
    with the Shapley kernel k(S) = (n-1) / (C(n,|S|) |S| (n-|S|)). With every coalition and exact weights the
    solution is the exact Shapley value; under a budget the sum over coalitions is estimated:

    * Coalition sizes are taken in complementary groups {s, n-s}. As in shap's KernelExplainer, a group is
      enumerated completely when the budget share its kernel mass deserves covers it (groups 1 and n-1 carry the
      most weight per coalition and are enumerated first); the remaining groups are *sampled*.
    * Sampling is stratified (each remaining group gets a share of the budget proportional to its kernel mass),
      paired (a coalition always comes with its complement, which cancels the odd part of the error) and without
      replacement; each sampled coalition carries its group's mass divided by the number sampled (an unbiased
      estimate of the group's term). Deviation from shap: shap samples sizes at random and reweights by counts;
      fixed proportional allocation removes that layer of noise.
    * Efficiency is a hard constraint (solved through the KKT system), so sum(phi) = v(all) - v(empty) exactly.
    * Control variate (``surrogate``, on by default; :mod:`promed.sig.shapley.surrogate`): a closed-form g - P(gold) as a
      softmax of additive option scores against K competitors - is fitted to all evaluated coalitions, and
      phi = exact_phi(g) + regression estimate of phi(v - g) on the same coalitions. No extra v evaluations;
      efficiency still holds exactly; near-exact when v is in the family (naive-Bayes posteriors such as
      SynthClinic's). Out of the family a flexible g can overfit and extrapolate wildly, so each candidate
      (K = ``surrogate_classes`` down to 1) must pass a consistency check against the plain estimate, which is
      unbiased with a bootstrap standard error se: mean_i ((phi_adj_i - phi_plain_i) / se_i)^2 <=
      ``max_consistency``. The first K that passes is used; if none does, the plain estimate is returned.
      ``auto`` enables the surrogate when all values lie in [0, 1] (probabilities) or are <= 0 (log-probs).

    ``stderr`` comes from a bootstrap over the sampled pairs within each group (``n_bootstrap`` resamples) of the
    regression actually used (with the surrogate held fixed, so it ignores the surrogate's own fitting noise); it
    is zero when every group was enumerated. With ``n_bootstrap=0`` stderr is NaN and the surrogate is accepted
    without the check. Cost: at most ``budget`` distinct coalitions (one may stay unused: pairs come in twos).
    """

    n_bootstrap: int = field(default=64, metadata={"help": "bootstrap resamples for stderr and the surrogate check"})
    enumerate_share: float = field(
        default=1.0,
        metadata={"help": "enumerate a size group when its mass-proportional budget share >= this fraction of its "
                  "coalitions (1.0 = shap's rule; 0 = whenever it fits)"},
    )
    surrogate: Literal["auto", "none", "prob", "logprob"] = field(
        default="auto",
        metadata={"help": "control-variate surrogate: 'auto' (by value range), 'none', or force 'prob'/'logprob'"},
    )
    surrogate_classes: int = field(
        default=3, metadata={"help": "largest number K of competing options tried in the surrogate (options - 1)"}
    )
    points_per_param: float = field(
        default=1.0,
        metadata={"help": "surrogates with more than (evaluations / this) parameters, K (n + 1), are not tried"},
    )
    holdout: float = field(
        default=0.25, metadata={"help": "share of sampled pairs held out to choose the surrogate (or none)"}
    )
    max_consistency: float = field(
        default=9.0,
        metadata={"help": "reject a surrogate whose estimate is more than this mean squared number of bootstrap "
                  "standard errors away from the plain estimate"},
    )
    name: str = "kernel"

    def estimate(self, f: SetFn, n_players: int, budget: int | None, rng: np.random.Generator) -> ShapleyResult:
        n = n_players
        res, started = budgeted_start(f, n, budget, "kernel Shapley")
        if res is not None:
            return res
        g, budget, base, full = started
        d = _design(n, budget, self.enumerate_share, rng)
        vals = g.by_keys(d.keys)
        masks = keys_to_masks(d.keys, n)
        z = masks.astype(float)
        y, total = vals - base, full - base
        phi = _constrained_wls(z, d.weights, y, total)
        if not d.blocks:  # every coalition of positive weight was enumerated: exact
            return ShapleyResult(phi, base, full, np.zeros(n), g.n_evals, g.n_queries)
        boot_w = _bootstrap_weights(d, self.n_bootstrap, rng) if self.n_bootstrap > 1 else None
        stderr = _constrained_wls(z, boot_w, y, total).std(axis=0, ddof=1) if boot_w is not None else np.full(n, np.nan)

        link = self._link(np.concatenate([[base, full], vals]))
        k_best, starts = self._select_classes(d, masks, base, full, vals, link, rng) if link is not None else (0, {})
        fit_masks = np.concatenate([np.zeros((1, n), bool), np.ones((1, n), bool), masks])
        fit_vals = np.concatenate([[base, full], vals])
        se = np.maximum(stderr, 1e-3 * abs(total) / n + 1e-12) if boot_w is not None else None
        for k in range(k_best, 0, -1):
            sur = fit_softmax_surrogate(fit_masks, fit_vals, k, link, rng, init=starts.get(k))
            resid = fit_vals - sur(fit_masks)
            if not np.all(np.isfinite(resid)):
                continue
            ry, rtotal = resid[2:] - resid[0], resid[1] - resid[0]
            adj = surrogate_shapley(sur, n, rng) + _constrained_wls(z, d.weights, ry, rtotal)
            if se is not None and float(np.mean(((adj - phi) / se) ** 2)) > self.max_consistency:
                continue  # inconsistent with the unbiased plain estimate: try a simpler surrogate
            if boot_w is not None:
                stderr = _constrained_wls(z, boot_w, ry, rtotal).std(axis=0, ddof=1)
            phi = adj
            break
        return ShapleyResult(phi, base, full, stderr, g.n_evals, g.n_queries)

    def _select_classes(self, d: _Design, masks: np.ndarray, base: float, full: float, vals: np.ndarray, link,
                        rng: np.random.Generator) -> tuple[int, dict[int, SoftmaxSurrogate]]:
        """Pick K in {0 (no surrogate), 1, ..., K_max} by held-out error on sampled pairs.

        K_max = min(surrogate_classes, evaluations / (points_per_param (n + 1))): a surrogate needs data to
        pin down its K (n + 1) parameters, else it extrapolates wildly away from the evaluated coalitions.
        A ``holdout`` share of the sampled pairs (at least one) is left out; the additive model of plain
        KernelSHAP (v(empty) + phi . z, phi refitted without them) and each surrogate K (fitted without them) are
        scored by kernel-weighted squared error on the held-out coalitions. Plain KernelSHAP's error is driven by
        the non-additive part of v, the adjusted estimate's by the surrogate's residual, so the smaller held-out
        residual wins. Enumerated coalitions (always kept for fitting) are never held out. Also returns the
        held-out fits, which warm-start the final fits.
        """
        n = masks.shape[1]
        k_max = min(self.surrogate_classes, int((len(vals) + 2) / (self.points_per_param * (n + 1))))
        if k_max < 1:
            return 0, {}
        pair_rows = np.concatenate([start + 2 * np.arange(u) for start, u in d.blocks])
        n_out = max(1, int(round(self.holdout * len(pair_rows))))
        if len(pair_rows) < 2:
            return k_max, {}
        out_pairs = rng.choice(pair_rows, size=n_out, replace=False)
        out = np.zeros(len(vals), dtype=bool)
        out[out_pairs] = True
        out[out_pairs + 1] = True
        z = masks.astype(float)
        w_in = np.where(out, 0.0, d.weights)
        phi_in = _constrained_wls(z, w_in, vals - base, full - base)
        wo = d.weights[out]
        scores = [float((wo * (vals[out] - base - z[out] @ phi_in) ** 2).sum())]
        fit_masks = np.concatenate([np.zeros((1, n), bool), np.ones((1, n), bool), masks[~out]])
        fit_vals = np.concatenate([[base, full], vals[~out]])
        fits: dict[int, SoftmaxSurrogate] = {}
        for k in range(1, k_max + 1):
            fits[k] = fit_softmax_surrogate(fit_masks, fit_vals, k, link, rng)
            pred = fits[k](masks[out])
            scores.append(float((wo * (vals[out] - pred) ** 2).sum()) if np.all(np.isfinite(pred)) else np.inf)
        return int(np.argmin(scores)), fits

    def _link(self, values: np.ndarray):
        if self.surrogate == "none" or self.surrogate_classes < 1:
            return None
        if self.surrogate == "auto":
            return detect_link(values)
        return self.surrogate
