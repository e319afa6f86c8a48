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
  with ``top_p < 1`` the probabilities are sorted (descending; the top candidates only when they hold the
  nucleus, :func:`sample_rows`) and cut to the smallest prefix whose mass reaches ``top_p``; the kept
  probabilities' cumulative sum (float64, in two levels: :func:`inverse_cdf`) is searched (``searchsorted``) for
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


def sample_rows(scores: torch.Tensor, uniforms: torch.Tensor | None, temperature: float, top_p: float, *,
                candidates: int = 1024, block: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoding step for a batch: ``(chosen ids [B], their log-probabilities [B])``, on ``scores``' device.

    ``scores`` ``[B, V]`` are the next-token logits; ``uniforms`` ``[B]`` (float64, in [0, 1), same device) are
    the rows' uniforms for this step. Temperature 0: the argmax (``uniforms`` unused). See the module docstring
    for the distribution and the recorded log-probability.

    Top-p sorts only the ``candidates`` most likely tokens (``topk``) when, in every row, they hold more than
    ``top_p`` of the mass: the nucleus then lies inside them (exactly the same set as after a full sort), and a
    language model's nucleus is usually a few hundred tokens of a 262k vocabulary. Otherwise the full sort.
    The CDF is searched in two levels (:func:`inverse_cdf`, ``block`` tokens per block).
    """
    scores = scores.float()
    if temperature <= 0:
        logp = torch.log_softmax(scores, dim=-1)
        chosen = scores.argmax(dim=-1)
        return chosen, logp.gather(-1, chosen[:, None])[:, 0]
    logp = torch.log_softmax(scores / temperature, dim=-1)
    probs = logp.exp()
    if top_p < 1.0:
        sp, order = probs.topk(min(candidates, probs.shape[-1]), dim=-1)  # sorted, descending
        if sp.shape[-1] < probs.shape[-1] and not bool((sp.sum(dim=-1) > top_p).all()):
            sp, order = probs.sort(dim=-1, descending=True)
        keep = sp.cumsum(dim=-1) - sp <= top_p  # the smallest prefix reaching top_p (always >= 1 token)
        chosen = order.gather(-1, inverse_cdf(torch.where(keep, sp, 0.0), uniforms, block)[:, None])[:, 0]
    else:
        chosen = inverse_cdf(probs, uniforms, block)
    return chosen, logp.gather(-1, chosen[:, None])[:, 0]


def inverse_cdf(weights: torch.Tensor, uniforms: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """Per row, the index ``i`` with ``cdf[i-1] <= u * total < cdf[i]`` (``weights`` ``[B, N]`` >= 0): index ``i``
    is drawn with probability ``weights[i] / total`` and a zero weight never is.

    Two levels, so that no ``[B, N]`` float64 cumulative sum is built: the float64 sums of blocks of ``block``
    weights locate the block, then one block per row is searched. Targets are clamped inside ``[0, total)`` of
    the level searched (``nextafter``), so rounding can never select a zero weight.
    """
    b, n = weights.shape
    nb = -(-n // block)
    if nb * block != n:
        weights = torch.nn.functional.pad(weights, (0, nb * block - n))
    blocks = weights.view(b, nb, block)
    bsum = blocks.sum(dim=-1, dtype=torch.float64)  # [B, nb]
    bcdf = bsum.cumsum(dim=-1)
    target = _below(uniforms[:, None].to(bcdf) * bcdf[:, -1:], bcdf[:, -1:])  # [B, 1]
    bi = torch.searchsorted(bcdf, target, right=True).clamp(max=nb - 1)  # [B, 1], a block of positive mass
    inner = blocks.gather(1, bi[:, :, None].expand(b, 1, block))[:, 0].double().cumsum(dim=-1)  # [B, block]
    rest = _below((target - (bcdf.gather(-1, bi) - bsum.gather(-1, bi))).clamp(min=0.0), inner[:, -1:])
    i = torch.searchsorted(inner, rest, right=True).clamp(max=block - 1)
    return (bi * block + i)[:, 0]


def _below(x: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """``x`` clamped below ``total`` (the largest float64 under it at most)."""
    return torch.minimum(x, torch.nextafter(total, torch.zeros_like(total)))


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
