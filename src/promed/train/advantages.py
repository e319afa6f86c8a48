"""Stage 2 credit assignment as pure functions: turn rewards, their spread over the doctor's tokens, group-relative
advantages (ARCHITECTURE.md section 4b; issue 11).

The SIG arm (``--reward sig``, the reference's token-level scheme): every token of a question turn gets
``alpha * SIG + beta * SIG * correct + f * format``, every token of the answer turn ``gamma * correct + f * format``,
every environment token 0 (:func:`turn_rewards`, :func:`spread_over_tokens`); a token's advantage is its reward minus
the mean reward of the doctor tokens of its group (G consultations of one case, no std scaling, as the reference:
:func:`group_token_advantages`). The outcome arm (``--reward outcome``): one reward per episode (correctness +
format), group-normalised ``(r - mean) / (std + eps)`` (:func:`outcome_advantages`), on every doctor token. Both arms
see the same rollouts; only these functions differ.

Deviations from the reference, on purpose: a forced answer (the environment's, not the policy's) earns nothing and
carries no tokens; an unreadable turn earns the format term 0 (the penalty is the missing ``f``); a repeated
question earns SIG 0 by the SIG definition (:mod:`promed.sig.reward`), not here.

Shapes: ``turn_index`` (T,) int, the policy turn of each token or -1 for environment tokens (what
:func:`promed.train.render.render_consultation` returns); per-turn arrays (K,); per-episode arrays (N,).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

TurnKind = Literal["ask", "answer", "invalid"]


@dataclass(frozen=True)
class RewardWeights:
    """Coefficients of the per-token reward (defaults: the reference's)."""

    alpha: float = field(default=2.0, metadata={"help": "SIG weight on a question's tokens."})
    beta: float = field(default=1.0, metadata={"help": "SIG x correct weight on a question's tokens (a question "
                                                       "that led to a right answer earns more)."})
    gamma: float = field(default=3.0, metadata={"help": "Correctness weight on the answer's tokens."})
    format: float = field(default=1.0, metadata={"help": "Format reward f on every doctor turn that parses (0 on an "
                                                         "unreadable one)."})


def turn_rewards(kinds: Sequence[TurnKind], sig: Sequence[float], correct: bool,
                 w: RewardWeights = RewardWeights()) -> np.ndarray:
    """(K,) reward of each policy turn: questions ``alpha*sig + beta*sig*correct + f``, the answer
    ``gamma*correct + f``, an unreadable turn 0. ``sig`` holds each turn's SIG (ignored for non-questions)."""
    if len(kinds) != len(sig):
        raise ValueError(f"{len(kinds)} turns but {len(sig)} SIG values")
    c = float(bool(correct))
    out = np.zeros(len(kinds))
    for k, (kind, g) in enumerate(zip(kinds, sig)):
        if kind == "ask":
            out[k] = w.alpha * g + w.beta * g * c + w.format
        elif kind == "answer":
            out[k] = w.gamma * c + w.format
        elif kind != "invalid":
            raise ValueError(f"unknown turn kind {kind!r}")
    return out


def spread_over_tokens(turn_index: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """(T,) token rewards: each doctor token gets its turn's reward, environment tokens (index -1) get 0."""
    turn_index = np.asarray(turn_index)
    rewards = np.asarray(rewards, dtype=float)
    if turn_index.size and turn_index.max() >= len(rewards):
        raise ValueError(f"a token belongs to turn {int(turn_index.max())} but only {len(rewards)} turn rewards")
    out = np.zeros(turn_index.shape, dtype=float)
    doctor = turn_index >= 0
    out[doctor] = rewards[turn_index[doctor]]
    return out


def group_token_advantages(token_rewards: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                           groups: Sequence[int]) -> list[np.ndarray]:
    """Per episode (T_i,) advantages: token reward minus the mean reward over the doctor tokens (``mask`` 1) of all
    episodes of the same group; 0 on environment tokens."""
    if not len(token_rewards) == len(masks) == len(groups):
        raise ValueError("token_rewards, masks and groups must have one entry per episode")
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for r, m, g in zip(token_rewards, masks, groups):
        m = np.asarray(m, dtype=bool)
        sums[g] = sums.get(g, 0.0) + float(np.asarray(r, dtype=float)[m].sum())
        counts[g] = counts.get(g, 0) + int(m.sum())
    out = []
    for r, m, g in zip(token_rewards, masks, groups):
        mean = sums[g] / counts[g] if counts[g] else 0.0
        out.append((np.asarray(r, dtype=float) - mean) * np.asarray(m, dtype=float))
    return out


def outcome_advantages(rewards: Sequence[float], groups: Sequence[int], scale: bool = True,
                       eps: float = 1e-4) -> np.ndarray:
    """(N,) GRPO's group-normalised episode advantages ``(r - mean_g) / (std_g + eps)`` (``scale`` False: without
    the division); std is the population std of the group."""
    r = np.asarray(rewards, dtype=float)
    g = np.asarray(groups)
    if r.shape != g.shape:
        raise ValueError("rewards and groups must have one entry per episode")
    out = np.zeros_like(r)
    for key in np.unique(g):
        sel = g == key
        centred = r[sel] - r[sel].mean()
        out[sel] = centred / (r[sel].std() + eps) if scale else centred
    return out
