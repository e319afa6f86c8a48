"""Stage 2 credit assignment as pure functions: turn rewards, their spread over the doctor's tokens, group-relative
advantages (ARCHITECTURE.md section 4b; issue 11).

The SIG arm (``--reward sig``, the reference's token-level scheme): every token of a question turn gets
``alpha * SIG + beta * SIG * correct + f * format``, every token of the answer turn ``gamma * correct + f * format``,
every environment token 0 (:func:`turn_rewards`, :func:`spread_over_tokens`); a token's advantage is its reward minus
the mean reward of the doctor tokens of its group (G consultations of one case, no std scaling, as the reference:
:func:`group_token_advantages`). The outcome arm (``--reward outcome``): one reward per episode (correctness +
format), group-normalised ``(r - mean) / (std + eps)`` (:func:`outcome_advantages`), on every doctor token. The
documented variant ``--reward sig-mixed`` (the multi-turn GRPO form): the outcome advantage plus ``lambda`` times each
question's SIG normalised over its group's questions (:func:`turn_group_advantages`). ``ig-mixed`` is the same form
with each question's *information gain* in place of its SIG: the rise of the scorer's probability of the gold answer
that the question's reply brought, v(S after) - v(S before), with no Shapley values (IGPO-style: Wang et al., 2025,
"Information Gain-based Policy Optimization"). All arms see the same rollouts; only these functions differ
(:func:`credit_advantages` picks one per arm).

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


# ---- whole rollout batches: the credit of each arm ----------------------------------------------------------------

Credit = Literal["sig", "sig-mixed", "ig-mixed", "outcome"]
CREDITS: tuple[str, ...] = ("sig", "sig-mixed", "ig-mixed", "outcome")


@dataclass(frozen=True)
class EpisodeCredit:
    """What credit assignment needs of one consultation (no text, no model): ``turn_index`` (T,) the policy turn of
    each trained token (-1 on the environment's), each policy turn's kind and SIG, and how the episode ended.

    ``correct`` is the answer the outcome rewards being right: the *policy's* (a forced answer is never correct
    then), or the scorer's given the facts revealed (``--answerer scorer``); ``format_ok`` that every output parsed
    and the policy answered (no forced answer). ``gain`` holds each policy turn's information gain (``ig-mixed``).
    """

    turn_index: np.ndarray
    kinds: tuple[TurnKind, ...]
    sig: tuple[float, ...]
    correct: bool
    format_ok: bool
    content: np.ndarray | None = None
    """(T,) bool, optional: the tokens of an answer turn after its keyword (the diagnosis it names); None: none."""
    gain: tuple[float, ...] | None = None
    """(K,) optional: each policy turn's information gain v(S after) - v(S before) (0 unless a question)."""

    @property
    def mask(self) -> np.ndarray:
        return (np.asarray(self.turn_index) >= 0).astype(float)


def episode_reward(ep: EpisodeCredit, w: RewardWeights = RewardWeights()) -> float:
    """The outcome arm's one reward per episode: ``gamma * correct + f * format_ok``."""
    return w.gamma * float(ep.correct) + w.format * float(ep.format_ok)


TurnBaseline = Literal["questions", "turns", "position"]
TURN_BASELINES: tuple[str, ...] = ("questions", "turns", "position")

TurnScope = Literal["turn", "decision", "questions"]
TURN_SCOPES: tuple[str, ...] = ("turn", "decision", "questions")
"""Where ``sig-mixed`` puts the turn (SIG) advantage of a turn that is not a question: on all of an answer's tokens
(``turn``); only on the tokens that choose to answer (``decision``: the keyword), leaving the diagnosis it names to
the outcome advantage alone; or nowhere (``questions``: only questions get the term, so an answer, and the
diagnosis it names, gets the outcome advantage alone and a right diagnosis is never pushed down by the SIG term)."""


def turn_group_advantages(kinds: Sequence[Sequence[TurnKind]], sig: Sequence[Sequence[float]],
                          groups: Sequence[int], eps: float = 1e-4,
                          baseline: TurnBaseline = "turns") -> list[np.ndarray]:
    """Per episode (K_i,) turn advantages: each turn's SIG normalised over its group ``(sig - mean) / (std + eps)``.

    * ``baseline="questions"``: mean and std over the group's questions only; answers and unreadable turns get 0 (and
      every turn of a group with one question). A question below the group's mean is pushed down even when it was
      better than answering at that point, so at higher learning rates this form teaches the doctor to ask *fewer*
      questions (BENCHMARKS.md, Stage 2, session 10).
    * ``baseline="turns"``: every policy turn is a step whose immediate reward is its SIG, 0 for an answer or an
      unreadable turn (they reveal nothing); mean and std over all the group's policy turns, and every policy turn
      gets its advantage. Answering when a question would still have revealed something sits below the mean, so
      questions compete with each other *and* with stopping.
    * ``baseline="position"``: a question is compared only with the group's questions asked at the same turn (the
      k-th turn of each consultation): mean and std over those; answers, unreadable turns and a question that no
      other consultation of the group asked at its turn get 0. At the first turn every consultation of a group is
      in the same state (the initial statement), so there the comparison is exact: which question to ask from
      here, the step-level group of GiGPO (Feng et al., 2025, "Group-in-Group Policy Optimization for LLM Agent
      Training"); later turns are compared by position, an approximation (their states differ). Whether to ask
      at all is left to the outcome advantage.
    """
    if baseline not in TURN_BASELINES:
        raise ValueError(f"unknown turn baseline {baseline!r}: expected one of {', '.join(TURN_BASELINES)}")
    # per episode: each turn's immediate reward (its SIG; 0 unless a question) and whether it enters the baseline
    rewards = [np.array([s if k == "ask" else 0.0 for k, s in zip(ks, ss)]) for ks, ss in zip(kinds, sig)]
    counted = [np.array([baseline == "turns" or k == "ask" for k in ks], dtype=bool) for ks in kinds]

    def pool(g: int, k: int) -> tuple[int, int]:  # the pool a turn is compared within: its group (and its turn)
        return (g, k if baseline == "position" else -1)

    pooled: dict[tuple[int, int], list[float]] = {}
    for r, c, g in zip(rewards, counted, groups):
        for k in np.flatnonzero(c):
            pooled.setdefault(pool(g, int(k)), []).append(float(r[k]))
    stats = {key: (float(np.mean(v)), float(np.std(v))) if len(v) > 1 else (0.0, np.inf) for key, v in pooled.items()}
    out = []
    for r, c, g in zip(rewards, counted, groups):
        adv = np.zeros(len(r))
        for k in np.flatnonzero(c):
            mean, std = stats[pool(g, int(k))]
            adv[k] = (r[k] - mean) / (std + eps)
        out.append(adv)
    return out


def credit_advantages(credit: Credit, episodes: Sequence[EpisodeCredit], groups: Sequence[int],
                      w: RewardWeights = RewardWeights(), mix_lambda: float = 1.0,
                      mix_baseline: TurnBaseline = "turns", mix_scope: TurnScope = "turn",
                      train_diagnosis: bool = True) -> list[np.ndarray]:
    """Per episode (T_i,) token advantages of one rollout batch under an arm's credit; 0 on environment tokens.

    * ``sig`` (the reference's scheme): :func:`turn_rewards` spread over each turn's tokens, minus the group's mean
      doctor-token reward (:func:`group_token_advantages`).
    * ``sig-mixed`` (the multi-turn GRPO form, outcome + lambda x turn): the outcome arm's advantage on every doctor
      token plus ``mix_lambda`` times the turn's group-normalised SIG (:func:`turn_group_advantages` with
      ``mix_baseline``) on that turn's tokens. Each question's credit is shifted by how informative it was compared
      with the group's other questions (``questions``) or other turns, answers included (``turns``), whatever the
      episode's length. With ``mix_scope="decision"`` an answer turn's term lands only on the tokens that chose to
      answer, not on the diagnosis after them (``EpisodeCredit.content``): whether to stop asking is what SIG can
      judge; which diagnosis to name is the outcome's to judge. With ``mix_scope="questions"`` only question turns
      get the term.
    * ``ig-mixed``: ``sig-mixed`` with each turn's information gain (``EpisodeCredit.gain``) in place of its SIG.
    * ``outcome``: :func:`outcome_advantages` of :func:`episode_reward`, the same on every doctor token.

    ``train_diagnosis`` false (``--answerer scorer``: the scorer names the diagnosis, the policy only asks): the
    tokens of the diagnosis an answer names (``EpisodeCredit.content``) get advantage 0 under every arm.

    ``groups[i]`` is episode ``i``'s group (its case within the batch); every episode of a group must be present.
    """
    if credit not in CREDITS:
        raise ValueError(f"unknown credit {credit!r}: expected one of {', '.join(CREDITS)}")
    if mix_scope not in TURN_SCOPES:
        raise ValueError(f"unknown turn scope {mix_scope!r}: expected one of {', '.join(TURN_SCOPES)}")
    if len(episodes) != len(groups):
        raise ValueError("one group id per episode")
    if credit == "sig":
        rewards = [spread_over_tokens(e.turn_index, turn_rewards(e.kinds, e.sig, e.correct, w)) for e in episodes]
        return _without_diagnosis(group_token_advantages(rewards, [e.mask for e in episodes], groups), episodes,
                                  train_diagnosis)
    outcome = outcome_advantages([episode_reward(e, w) for e in episodes], groups)
    out = [a * e.mask for a, e in zip(outcome, episodes)]
    if credit in ("sig-mixed", "ig-mixed"):
        if credit == "ig-mixed" and any(e.gain is None for e in episodes):
            raise ValueError("ig-mixed needs each episode's information gains (EpisodeCredit.gain)")
        values = [e.sig if credit == "sig-mixed" else e.gain for e in episodes]
        turn_adv = turn_group_advantages([e.kinds for e in episodes], values, groups, baseline=mix_baseline)
        for i, (e, t) in enumerate(zip(episodes, turn_adv)):
            if mix_scope == "questions":
                t = np.where(np.asarray(e.kinds) == "ask", t, 0.0)
            term = mix_lambda * spread_over_tokens(e.turn_index, t)
            if mix_scope == "decision" and e.content is not None:
                term = np.where(np.asarray(e.content, dtype=bool), 0.0, term)
            out[i] = out[i] + term
    return _without_diagnosis(out, episodes, train_diagnosis)


def _without_diagnosis(adv: list[np.ndarray], episodes: Sequence[EpisodeCredit], train: bool) -> list[np.ndarray]:
    """``adv`` with 0 on the tokens of each named diagnosis unless ``train`` (the scorer answers for the policy)."""
    if train:
        return adv
    return [a if e.content is None else np.where(np.asarray(e.content, dtype=bool), 0.0, a)
            for a, e in zip(adv, episodes)]
