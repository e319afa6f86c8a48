"""A cheap surrogate of v(S), fitted on the coalitions an estimator evaluated, used as a control variate.

Why: the Shapley value is linear in the game, phi(v) = phi(g) + phi(v - g). If g is a closed-form function of the
coalition, phi(g) can be computed exactly at no cost in v evaluations (2^n evaluations of g are microseconds for
n <= 20), and only the residual v - g has to be estimated from the sampled coalitions. The better g fits, the
smaller the residual and the estimation error (regression adjustment, as in Witter et al. 2025, "Regression-
adjusted Monte Carlo estimators for Shapley values"; here with a parametric family instead of a tree model).

The family. v is the probability a scorer gives the gold option (or its log). If each fact shifts each option's
score additively - exactly true of a naive-Bayes posterior such as SynthClinic's, approximately of an LLM's
option logits - then

    P(gold | S) = 1 / (1 + sum_{k=1..K} exp(a_k + sum_{i in S} b_ki))                                    (*)

with K = number of competing options. :func:`fit_softmax_surrogate` fits (*) by damped Gauss-Newton
(Levenberg-Marquardt) on weighted squared error in logit space with a small ridge, from a logistic (K = 1)
least-squares start, restarting on local minima. With K
matched to the options and enough coalitions it reproduces a naive-Bayes v exactly; when v is outside the family
the residual correction keeps the estimate honest, it just helps less.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from promed.sig.shapley.base import exact_from_table
from promed.sig.shapley.permutation import PermutationShapley


Link = Literal["prob", "logprob"]

__all__ = ["Link", "SoftmaxSurrogate", "detect_link", "fit_softmax_surrogate", "surrogate_shapley"]


@dataclass(frozen=True, eq=False)
class SoftmaxSurrogate:
    """g(S) from (*): ``a`` (K,) competitor offsets, ``b`` (K, n) per-fact shifts; ``link`` = value scale."""

    a: np.ndarray
    b: np.ndarray
    link: Link

    def log_p(self, masks: np.ndarray) -> np.ndarray:
        eta = np.asarray(masks, dtype=float) @ self.b.T + self.a  # (m, K)
        return -np.logaddexp(0.0, _logsumexp(eta))

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        lp = self.log_p(masks)
        return lp if self.link == "logprob" else np.exp(lp)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1)
    return m + np.log(np.exp(x - m[:, None]).sum(axis=1))


def detect_link(values: np.ndarray) -> Link | None:
    """"prob" when every value lies in [0, 1], "logprob" when every value is <= 0, else None (no surrogate)."""
    v = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(v)):
        return None
    if np.all((v >= 0) & (v <= 1)):
        return "prob"
    if np.all(v <= 0):
        return "logprob"
    return None


def _unpack(theta: np.ndarray, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    t = theta.reshape(k, n + 1)
    return t[:, 0], t[:, 1:]


def fit_softmax_surrogate(
    masks: np.ndarray,
    values: np.ndarray,
    n_classes: int,
    link: Link,
    rng: np.random.Generator,
    ridge: float = 1e-6,
    iters: int = 100,
    restarts: int = 4,
    tol: float = 1e-3,
    floor: float = 1e-9,
    weight_floor: float = 1e-4,
    init: SoftmaxSurrogate | None = None,
) -> SoftmaxSurrogate:
    """Fit (*) to ``values`` at ``masks`` ((m, n) bool) by weighted least squares in logit space.

    logit P(gold | S) = -logsumexp_k(eta_k(S)) is close to linear in the parameters and stays well conditioned
    when P saturates near 0 or 1 (where squared error in P has vanishing gradients). Each point is weighted by
    sqrt(max(p (1 - p), weight_floor)), so the fit cares most where v moves (p is clipped to [floor, 1 - floor]).

    Start: K = 1 (logistic) by linear least squares, split evenly over the K competitors plus a random
    perturbation from ``rng`` to break their symmetry; then Levenberg-Marquardt with ridge ``ridge`` (keeps
    under-determined fits bounded). The problem has local minima for K > 1, so up to ``restarts`` starts are
    tried (with growing perturbations) until one fits to a weighted rms logit residual below ``tol``; the best
    fit is returned. ``init`` (a surrogate with the same K and n, e.g. fitted on a subset) is tried first.
    """
    z = np.asarray(masks, dtype=float)
    y = np.asarray(values, dtype=float)
    m, n = z.shape
    k = max(int(n_classes), 1)
    x = np.concatenate([np.ones((m, 1)), z], axis=1)
    p = np.clip(np.exp(y) if link == "logprob" else y, floor, 1 - floor)
    target = np.log(p) - np.log1p(-p)
    wt = np.sqrt(np.maximum(p * (1 - p), weight_floor))
    c = np.linalg.lstsq(x * wt[:, None], -target * wt, rcond=None)[0]  # K = 1: eta = -logit(p)

    starts = [] if init is None or init.b.shape != (k, n) else [np.concatenate([init.a[:, None], init.b], axis=1)]
    good = tol**2 * float((wt**2).sum())  # data loss of a fit with weighted rms residual `tol`
    best: tuple[np.ndarray, float] | None = None
    fresh = (1 if starts else restarts) if k > 1 else 1  # a warm start needs at most one fresh alternative
    for r in range(len(starts) + fresh):
        if r < len(starts):
            theta = starts[r]
        else:
            theta = np.tile(c, (k, 1))
            theta[:, 0] -= np.log(k)
            if k > 1:
                theta += 0.1 * (1 + r) * rng.standard_normal(theta.shape) * (np.abs(c).mean() + 1e-3)
        theta, cur = _levenberg_marquardt(theta.ravel(), x, target, wt, k, ridge, iters, good / 100)
        if best is None or cur < best[1]:
            best = (theta, cur)
        if cur - ridge * float((theta**2).sum()) < good:
            break
    a, b = _unpack(best[0], k, n)
    return SoftmaxSurrogate(a=a.copy(), b=b.copy(), link=link)


def _levenberg_marquardt(theta: np.ndarray, x: np.ndarray, target: np.ndarray, wt: np.ndarray, k: int,
                         ridge: float, iters: int, enough: float = 0.0) -> tuple[np.ndarray, float]:
    """Minimise sum (wt (target + logsumexp_k(x theta_k)))^2 + ridge |theta|^2; returns (theta, loss).

    Stops after ``iters`` steps, when a step improves the loss by less than 1e-7 of it, or once the loss is
    below ``enough``."""
    m, n1 = x.shape

    def predict(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        eta = x @ th.reshape(k, n1).T
        lse = _logsumexp(eta)
        return -lse, -np.exp(eta - lse[:, None])  # logit and d logit / d eta_k = -softmax_k(eta)

    def loss(th: np.ndarray) -> float:
        return float((((target - predict(th)[0]) * wt) ** 2).sum() + ridge * (th**2).sum())

    cur, damp = loss(theta), 1e-3
    eye = np.eye(theta.size)
    for _ in range(iters):
        h, dh = predict(theta)
        jac = (dh[:, :, None] * x[:, None, :]).reshape(m, -1) * wt[:, None]  # (m, K (n+1))
        jtj = jac.T @ jac
        grad = jac.T @ ((target - h) * wt) - ridge * theta
        step = np.linalg.solve(jtj + (ridge + damp * (np.diag(jtj).mean() + 1e-12)) * eye, grad)
        new = loss(theta + step)
        if new < cur:
            done = cur - new < 1e-7 * cur or new < enough
            theta, cur, damp = theta + step, new, max(damp * 0.3, 1e-9)
            if done:
                break
        else:
            damp *= 10
            if damp > 1e8:
                break
    return theta, cur


def surrogate_shapley(g: SoftmaxSurrogate, n: int, rng: np.random.Generator, exact_max: int = 20,
                      pairs: int = 2000) -> np.ndarray:
    """Shapley values of the surrogate: exact over all 2^n coalitions for n <= ``exact_max``, else antithetic
    permutation sampling with ``pairs`` permutation pairs (g costs nothing, so thousands are affordable)."""
    if n <= exact_max:
        # eta over all 2^n coalitions by doubling: eta[key + 2^j] = eta[key] + b_j for key < 2^j
        eta = g.a[None, :].copy()
        for j in range(n):
            eta = np.concatenate([eta, eta + g.b[:, j][None, :]])
        lp = -np.logaddexp(0.0, _logsumexp(eta))
        return exact_from_table(lp if g.link == "logprob" else np.exp(lp), n)
    budget = 2 + 2 * (n - 1) * pairs
    return PermutationShapley().estimate(g, n, budget, rng).values
