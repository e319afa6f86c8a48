"""Soft targets for the answer turn: distil the exact posterior into the doctor (``promed pretrain --labels soft``).

A hard label is one draw from the posterior; the posterior itself says, for every option, how likely it is given
what the doctor sees. Training on it (cross-entropy against the exact SynthClinic posterior) has the same minimiser
as the hard label but far less gradient noise where the facts leave the diagnosis open (from the initial statement
alone the best option has ~0.4), and it trains calibration directly.

It is cheap when the options' answer turns differ in exactly **one token** (one position, the rest shared): the
loss at that position is ``-sum_o q(o) log p(token_o | prompt, shared prefix)``, one softmax per example, instead of
scoring one sequence per option. With ``pretokenize="lines"`` every SynthClinic diagnosis is one token
(``ANSWER: `` + ``Septic arthritis``), and letters are one token in any tokenizer (``ANSWER: C``);
:func:`soft_target` checks it and says what to change otherwise.

Engine: TRL's ``SFTTrainer`` (its loop, checkpoints, exact resume, accelerate), with two small additions made here
because TRL's loss is a per-token cross-entropy against one label: a collator that carries the soft targets beside
TRL's padded batch (:class:`SoftTargetCollator`), and :class:`SoftTargetSFTTrainer`, whose ``compute_loss`` adds the
soft cross-entropy at the answer's option token to the hard cross-entropy of the other answer tokens
(``ANSWER: ``, the end-of-turn token), one mean over all of them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

SOFT_COLUMNS = ("soft_pos", "soft_ids", "soft_probs")
IGNORE_INDEX = -100


class SoftTargetError(ValueError):
    """The options' answer turns do not differ in exactly one token under this tokenizer."""


@dataclass(frozen=True)
class SoftTarget:
    """Where and what the soft target is in one tokenized example.

    ``pos``: index of the logit that predicts the option token (the token before it); ``ids``: each option's token
    there; ``probs``: each option's target probability (sums to 1)."""

    pos: int
    ids: tuple[int, ...]
    probs: tuple[float, ...]


def option_token_index(answers: Sequence[Sequence[int]]) -> int:
    """The one index at which the options' answer-turn token ids differ (equal lengths, all else shared)."""
    lengths = {len(a) for a in answers}
    if len(lengths) != 1:
        raise SoftTargetError(f"the options' answer turns have different token lengths {sorted(lengths)}")
    diff = [j for j in range(len(answers[0])) if len({a[j] for a in answers}) > 1]
    if len(diff) != 1 or len({a[diff[0]] for a in answers}) != len(answers):
        raise SoftTargetError(f"the options' answer turns differ at token positions {diff}, not at exactly one "
                              "with a distinct token per option")
    return diff[0]


def soft_target(ids: Sequence[int], labels: list[int], answers: Sequence[str], gold: int, probs: Sequence[float],
                tokenizer) -> SoftTarget:
    """Locate the option token in one example (``labels`` cover its last turn, the gold answer) and turn that label
    off (``labels`` is edited in place: the soft loss replaces it). ``answers``: each option's answer-turn text."""
    enc = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
    try:
        j = option_token_index(enc)
    except SoftTargetError as err:
        raise SoftTargetError(f"{err}: soft labels need each option's answer turn to differ in one token (use "
                              "SmallModelConfig(pretokenize='lines') for diagnoses, or the letter format)") from None
    first = next(i for i, lab in enumerate(labels) if lab != IGNORE_INDEX)
    if list(ids[first:first + len(enc[gold])]) != list(enc[gold]):
        raise SoftTargetError("the answer turn is tokenized differently inside the conversation than alone")
    at = first + j
    labels[at] = IGNORE_INDEX
    return SoftTarget(pos=at - 1, ids=tuple(int(e[j]) for e in enc), probs=tuple(float(p) for p in probs))


class SoftTargetCollator:
    """TRL's collator for ``input_ids``/``labels``, plus the soft-target columns stacked as tensors."""

    def __init__(self, base):
        self.base = base

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        soft = {k: [ex[k] for ex in examples] for k in SOFT_COLUMNS}
        batch = self.base([{k: v for k, v in ex.items() if k not in SOFT_COLUMNS} for ex in examples])
        batch["soft_pos"] = torch.tensor(soft["soft_pos"], dtype=torch.long)
        batch["soft_ids"] = torch.tensor(soft["soft_ids"], dtype=torch.long)
        batch["soft_probs"] = torch.tensor(soft["soft_probs"], dtype=torch.float32)
        return batch


@functools.cache
def soft_target_trainer_class():
    """:class:`trl.SFTTrainer` with the soft-target loss (built on first use, so that importing this module does not
    import TRL)."""
    import torch
    import torch.nn.functional as F
    from trl import SFTTrainer

    class SoftTargetSFTTrainer(SFTTrainer):
        """``SFTTrainer`` whose loss is the hard cross-entropy of the labelled tokens plus, per example, the soft
        cross-entropy of the option token against ``soft_probs`` (one mean over both)."""

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            self._signature_columns = [*self._signature_columns, *SOFT_COLUMNS]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            pos, ids, probs = (inputs.pop(k) for k in SOFT_COLUMNS)
            labels = inputs.pop("labels")
            inputs["use_cache"] = False
            out = model(**inputs)
            logits = out.logits.float()  # (B, T, V)
            shift_labels = labels[:, 1:]
            hard = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), shift_labels.reshape(-1),
                                   ignore_index=IGNORE_INDEX, reduction="sum")
            rows = torch.arange(logits.shape[0], device=logits.device)
            logp = logits[rows, pos].log_softmax(-1).gather(1, ids)  # (B, n_options)
            soft = -(probs * logp).sum()
            n = (shift_labels != IGNORE_INDEX).sum() + logits.shape[0]
            loss = (hard + soft) / n
            return (loss, out) if return_outputs else loss

    return SoftTargetSFTTrainer
