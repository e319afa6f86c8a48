"""Soft targets for the answer turn: distil the exact posterior into the doctor (``promed pretrain --labels soft``).

A hard label is one draw from the posterior; the posterior itself says, for every option, how likely it is given
what the doctor sees. Training on it (cross-entropy against the exact SynthClinic posterior) has the same minimiser
as the hard label but far less gradient noise where the facts leave the diagnosis open (from the initial statement
alone the best option has ~0.4), and it trains calibration directly.

An answer turn is several tokens (``ANSWER: Infectious mononucleosis<|end|>``), and the options' turns share some
of them. The posterior over options defines a distribution over answer *sequences*; along the gold option's tokens,
its next-token distribution at offset ``t`` is the posterior mass of the options whose tokens agree with the gold's
first ``t`` tokens, summed per next token and renormalised (a trie over the options' token sequences). Where only one
token has mass (``ANSWER``, ``:``, the rest of a name once it is unambiguous, the end-of-turn token) that is the gold
token, the hard target; where the options part ways (usually the first token of the name) it is a real distribution.
:func:`answer_soft_targets` computes those offsets (a pure function); the loss replaces the hard cross-entropy there
by ``-sum_k q_k log p(token_k)`` and keeps it everywhere else, one mean over the answer tokens, so a one-hot
posterior on the gold gives exactly the hard loss (``tests/test_distill.py``). It works with any tokenizer
(earlier versions needed each diagnosis to be one token).

Engine: the answer-branch trainer (:func:`promed.train.branches.branch_trainer_class`, TRL's ``SFTTrainer``) reads
the optional columns :data:`SOFT_COLUMNS` of a packed row: ``soft_pos`` (the row positions whose logit predicts a
soft-target token), ``soft_ids`` / ``soft_probs`` (per position, the candidate tokens and their probabilities).
"""

from __future__ import annotations

from typing import Sequence

SOFT_COLUMNS = ("soft_pos", "soft_ids", "soft_probs")


class SoftTargetError(ValueError):
    """The gold answer's tokens inside the conversation are not its tokens alone, or the posterior is unusable."""


def answer_soft_targets(answers: Sequence[Sequence[int]], probs: Sequence[float],
                        gold: int) -> list[tuple[int, tuple[int, ...], tuple[float, ...]]]:
    """``[(t, token_ids, token_probs)]``: the offsets ``t`` along ``answers[gold]`` at which the posterior ``probs``
    over the options puts mass on more than one next token, with that next-token distribution (pure).

    ``answers``: each option's answer-turn token ids; offset ``t`` is the prediction of ``answers[gold][t]`` after
    the gold's first ``t`` tokens. Offsets where one token carries all the mass are left out (their target is the
    gold token, the hard label)."""
    if len(answers) != len(probs) or not 0 <= gold < len(answers):
        raise SoftTargetError(f"{len(answers)} answers, {len(probs)} probabilities, gold {gold}")
    if any(p < 0 for p in probs) or not sum(probs) > 0:
        raise SoftTargetError(f"not a distribution: {list(probs)}")
    path = list(answers[gold])
    out = []
    alive = [k for k in range(len(answers)) if probs[k] > 0 or k == gold]
    for t, tok in enumerate(path):
        mass: dict[int, float] = {}
        for k in alive:
            if len(answers[k]) > t and probs[k] > 0:
                mass[int(answers[k][t])] = mass.get(int(answers[k][t]), 0.0) + float(probs[k])
        total = sum(mass.values())
        if len(mass) > 1 and total > 0:
            ids = tuple(sorted(mass))
            out.append((t, ids, tuple(mass[i] / total for i in ids)))
        alive = [k for k in alive if len(answers[k]) > t and answers[k][t] == tok]
    return out


def answer_sequences(answers: Sequence[str], gold: int, gold_span: Sequence[int], tokenizer,
                     encode=None) -> list[list[int]]:
    """Each option's answer-turn tokens as the conversation would hold them: the option's text tokenized alone, then
    whatever the chat template adds after the turn (the end-of-turn token), read off ``gold_span``, the gold answer's
    labelled tokens inside the conversation. Raises :class:`SoftTargetError` if the gold's text alone is not how
    the conversation tokenized it. ``encode`` (text -> token ids), if given, replaces calling ``tokenizer`` (a
    memoised encoder: the same few hundred diagnoses recur in every example)."""
    enc = [list(encode(a)) if encode is not None else list(tokenizer(a, add_special_tokens=False)["input_ids"])
           for a in answers]
    head = list(gold_span[:len(enc[gold])])
    if head != enc[gold]:
        raise SoftTargetError("the answer turn is tokenized differently inside the conversation than alone")
    tail = list(gold_span[len(enc[gold]):])
    return [e + tail for e in enc]
