"""Per-row seeded sampling for the Hugging Face backend: each chat of a batch draws from its own generator.

``transformers`` samples a whole batch from one generator, so a chat's sample would depend on the other chats in
its batch (and on where an interrupted run resumed). :class:`RowSampler` is a logits processor used under greedy
decoding that makes the choice itself, per row, from the row's own ``torch.Generator``, and records each chosen
token's log-probability; ``model.generate`` then takes exactly that token, keeping its batching and caching.
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


class RowSampler:
    """A logits processor that picks each row's next token itself and records its log-probability.

    Used under greedy decoding: it returns scores that are ``-inf`` except at the chosen token, so
    ``model.generate`` takes exactly that token. Temperature 0: the argmax; else a draw from softmax(scores / T),
    restricted to the top-p nucleus, from the row's own generator. Written here because transformers samples a
    batch from one generator, which would make a chat's sample depend on its batch.
    """

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, device: torch.device):
        self.temperature, self.top_p = temperature, top_p
        self.generators = []
        if temperature > 0:
            for s in seeds:
                g = torch.Generator(device="cpu")
                g.manual_seed(int(s))
                self.generators.append(g)
        self.logprobs: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float()
        if self.temperature > 0:
            logp = torch.log_softmax(scores / self.temperature, dim=-1)
            probs = logp.exp().cpu()
            if self.top_p < 1.0:
                sp, order = probs.sort(dim=-1, descending=True)
                drop = sp.cumsum(dim=-1) - sp > self.top_p  # keep the smallest prefix reaching top_p
                sp[drop] = 0.0
                probs = torch.zeros_like(probs).scatter(-1, order, sp)
            chosen = torch.stack([torch.multinomial(probs[r], 1, generator=g)[0]
                                  for r, g in enumerate(self.generators)]).to(scores.device)
        else:
            logp = torch.log_softmax(scores, dim=-1)
            chosen = scores.argmax(dim=-1)
        self.logprobs.append(logp.gather(-1, chosen[:, None])[:, 0].cpu())
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, chosen[:, None], 0.0)
        return out
