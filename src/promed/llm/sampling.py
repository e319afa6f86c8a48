"""Per-row seeded sampling for the Hugging Face backend, drawn on the logits' device.

``transformers`` samples a whole batch from one generator, so a chat's sample would depend on the other chats in
its batch (and on where an interrupted run resumed). :class:`RowSampler` is a logits processor used under greedy
decoding that makes the choice itself, per row, and records each chosen token's log-probability;
``model.generate`` then takes exactly that token, keeping its batching and caching.

How a row draws (inverse-CDF sampling with per-row uniforms):

* Each row has its own random stream, ``numpy.random.PCG64(seed)`` with the row's seed (:func:`row_seed`). Before
  decoding, the row's first ``steps`` uniforms (one per decoding step, float64) are drawn from it and the whole
  ``[batch, steps]`` table is moved to the model's device once. Step ``t`` of a row uses its ``t``-th uniform: a
  function of the row's seed and ``t`` only, never of the batch, the row's position in it, the batch size, the
  device or ``steps`` (the stream is read sequentially, so a longer table starts with the shorter one).
* Per step, on the logits' device, batched over rows: ``p = softmax(logits / T)`` (float32, as before);
  with ``top_p < 1`` the probabilities are sorted (descending) and cut to the smallest prefix whose mass reaches
  ``top_p``; the kept probabilities' cumulative sum (float64) is searched (``searchsorted``) for
  ``u * total``: token ``i`` is chosen with probability ``p_i / total`` and zero-probability tokens never are.
  Nothing vocabulary-sized leaves the device and no Python loop runs over rows.
* ``T == 0``: the argmax. The recorded log-probability is that of the sampling distribution before the top-p cut,
  ``log_softmax(logits / T)`` at the chosen id (the plain ``log_softmax(logits)`` when greedy), as TRL computes it.

Top-k: :class:`promed.types.Sampling` has no top-k field; the backend passes ``top_k=None``, so no top-k cut exists
here (neither before nor after this change).

Deviation from the previous implementation (up to 2026-12): it copied the ``[batch, vocabulary]`` probabilities
to the CPU and called ``torch.multinomial`` once per row with a CPU ``torch.Generator``, which draws one
exponential per vocabulary entry (the exponential race). The draws here are from the same distribution but are
not bit-equal to the old ones: the same seed gives other samples than before this change (a run resumed across the
change is not token-identical to an uninterrupted one). Determinism under a seed and batch independence hold as
before (``tests/test_llm_sampling.py``).
"""

from __future__ import annotations

import secrets
from typing import Sequence

import numpy as np
import torch

from promed.types import Sampling


def row_seed(sampling: Sampling, chat: int, sample: int) -> int:
    """The seed of sample ``sample`` of chat ``chat``: from ``seeds[chat]``, else ``seed``, else fresh entropy."""
    if sampling.seeds:
        base = [int(sampling.seeds[chat]) & 0xFFFFFFFF, int(sampling.seeds[chat]) >> 32 & 0xFFFFFFFF, sample]
    elif sampling.seed is not None:
        base = [int(sampling.seed) & 0xFFFFFFFF, chat, sample]
    else:
        base = [secrets.randbits(32), chat, sample]
    return int(np.random.SeedSequence(base).generate_state(1, dtype=np.uint64)[0] >> 1)


def row_uniforms(seeds: Sequence[int], steps: int) -> np.ndarray:
    """``[len(seeds), steps]`` float64 uniforms in [0, 1): row ``r`` is the start of ``PCG64(seeds[r])``'s stream."""
    out = np.empty((len(seeds), steps), dtype=np.float64)
    for r, s in enumerate(seeds):
        out[r] = np.random.Generator(np.random.PCG64(int(s))).random(steps)
    return out


def sample_rows(scores: torch.Tensor, uniforms: torch.Tensor, temperature: float,
                top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoding step for a batch: ``(chosen ids [B], their log-probabilities [B])``, on ``scores``' device.

    ``scores`` ``[B, V]`` are the next-token logits; ``uniforms`` ``[B]`` (float64, in [0, 1), same device) are
    the rows' uniforms for this step. Temperature 0: the argmax (``uniforms`` unused). See the module docstring
    for the distribution and the recorded log-probability.
    """
    scores = scores.float()
    if temperature <= 0:
        logp = torch.log_softmax(scores, dim=-1)
        chosen = scores.argmax(dim=-1)
        return chosen, logp.gather(-1, chosen[:, None])[:, 0]
    logp = torch.log_softmax(scores / temperature, dim=-1)
    probs = logp.exp()
    if top_p < 1.0:
        sp, order = probs.sort(dim=-1, descending=True)
        keep = sp.cumsum(dim=-1) - sp <= top_p  # the smallest prefix reaching top_p (always >= 1 token)
        cdf = torch.where(keep, sp, 0.0).double().cumsum(dim=-1)
        last = keep.sum(dim=-1, keepdim=True) - 1  # [B, 1] index of the last kept token
    else:
        order = None
        cdf = probs.double().cumsum(dim=-1)
        last = None
    total = cdf[:, -1:]
    # u * total < total strictly (u < 1; nextafter guards the product's rounding), so the first cdf entry above it
    # is a token of positive probability: trailing zero-probability tokens repeat the total and are never reached
    target = torch.minimum(uniforms[:, None].to(cdf) * total, torch.nextafter(total, torch.zeros_like(total)))
    idx = torch.searchsorted(cdf, target, right=True)  # [B, 1]
    idx = idx.clamp(max=cdf.shape[-1] - 1) if last is None else torch.minimum(idx, last)
    chosen = (idx if order is None else order.gather(-1, idx))[:, 0]
    return chosen, logp.gather(-1, chosen[:, None])[:, 0]


class RowSampler:
    """A logits processor that picks each row's next token itself and records its log-probability.

    Used under greedy decoding: it returns scores that are ``-inf`` except at the chosen token, so
    ``model.generate`` takes exactly that token. The draw (:func:`sample_rows`) runs on the logits' device from
    per-row uniforms drawn up front (:func:`row_uniforms`, ``steps`` per row: the call's ``max_new_tokens``).
    Written here because transformers samples a batch from one generator, which would make a chat's sample depend
    on its batch.
    """

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, device: torch.device, *,
                 steps: int):
        self.temperature, self.top_p, self.steps = temperature, top_p, steps
        self.uniforms = (torch.from_numpy(row_uniforms(seeds, steps)).to(device)
                         if temperature > 0 else None)  # [B, steps]
        self.logprobs: list[torch.Tensor] = []  # one [B] tensor per step, left on the device until the end

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        t = len(self.logprobs)
        if self.uniforms is not None and t >= self.steps:
            raise RuntimeError(f"RowSampler called for step {t + 1} with uniforms for {self.steps} steps")
        u = self.uniforms[:, t] if self.uniforms is not None else None
        chosen, logp = sample_rows(scores, u, self.temperature, self.top_p)
        self.logprobs.append(logp)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, chosen[:, None], 0.0)
        return out

    def logprob_table(self) -> list[list[float]] | None:
        """The recorded log-probabilities, ``[B][steps taken]`` (one device-to-host copy), or None before a step."""
        return torch.stack(self.logprobs, dim=1).cpu().tolist() if self.logprobs else None
