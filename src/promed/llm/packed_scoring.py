"""Fast ``log P(option | prompt)`` for many prompts that share prefixes (the value function's workload).

The workload: one case scored with many fact subsets. The prompts share a long head (instruction, question,
options, initial information) and then differ in which facts follow; subsets that start with the same facts also
share those. Two reuses make it fast, both exact:

1. **Shared prefix, run once.** Prompts are sorted by tokens and grouped by their longest common token prefix
   (at least ``min_shared`` tokens). A group's prefix runs once (batch 1) and its KV cache serves every suffix.
2. **Suffixes packed as a token trie (tree attention).** A group's suffixes, in sorted order, form a trie: each
   suffix reuses the nodes of the longest prefix it shares with the previous one. The trie's nodes are packed into
   one sequence (a chunk of at most ``chunk_tokens`` nodes) and run in one forward pass with a custom attention
   mask: a node sees the cached prefix and its own ancestors in the trie, and sits at its true position (prefix
   length + depth). So every distinct token sequence is computed once, nothing is padded and the KV cache is never
   copied per row. Sliding-window layers get their window applied on true positions, over the keys their cache
   layer actually returns, so the result equals an unpadded single-sequence pass.

Only the positions that are scored go through the output head (one per prompt for single-token options), which
saves a vocabulary-sized projection per token (Gemma: 262k x 640).

The naive path (:func:`score_rows_naive`: one sequence per forward pass, the model's own causal mask) shares no code
with the packed masks, so comparing the two checks the packing. Models whose forward does not accept a custom mask
in this form are detected once (:func:`packed_supported`) and scored naively.

The check's tolerance depends on the model's dtype (:func:`logprob_tolerance`): ``1e-3 + 4 eps max(|log p|, 8)``
nats, ``eps`` the dtype's machine epsilon. Float32: 1e-3 (as before). Bfloat16 (eps 2^-7): at least 0.25, 0.63 at
log p = -20; float16 (eps 2^-10): at least 0.032. Why: the packed and naive passes run the same weights through
differently ordered kernels, so in 16 bits they differ by rounding alone, and a flat 1e-3 rejected that (bf16:
9.9e-3 on the tiny model, 0.27 on Gemma 3 270M's check rows): on a GPU in bf16 the check fell back to one sequence
per forward. A 16-bit log-probability's rounding error scales with the spread of the logits, not with the
log-probability itself: ``|log p|`` stands in for that spread, floored at 8 nats because a likely option's
log-probability is near 0 while the logits over a large vocabulary still span many nats. A wrong mask differs by
nats (a mask that lets every packed node see every other: 2.5 on the tiny model, in every dtype; Gemma:
``benchmarks/packed_scoring_bf16.py``), so the check still catches what it is for. Measured margins and the
bf16-vs-float32 differences of real scores are in BENCHMARKS.md ("Rollout sampling on the device and packed
scoring under bf16").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class Row:
    """One token sequence to score.

    ``ids`` are the tokens fed; the next-token distribution at position ``start`` (the prompt's last token) scores
    the first token of every target; a target ``(prompt index, option index, continuation tokens)`` with k tokens
    reads positions ``start .. start + k - 1`` (its tokens after the first are part of ``ids``).
    """

    ids: tuple[int, ...]
    start: int
    targets: tuple[tuple[int, int, tuple[int, ...]], ...]

    @property
    def n_read(self) -> int:
        return max(len(t[2]) for t in self.targets)


def build_rows(tokenizer, prompts: Sequence[str], options: Sequence[Sequence[str]]) -> tuple[list[Row], list[int]]:
    """Tokenize prompts and continuations into :class:`Row` s; also return the option count per prompt.

    ``options`` is one list per prompt, or a single list used for every prompt. Tokenization boundary: an option's
    tokens are those of ``tokenize(prompt + option)`` after the prompt's own tokens when the prompt's tokens are a
    prefix of the joint tokenization; otherwise (the option merges with the prompt's last token) the option is
    tokenized on its own and appended. A prompt whose options are all single tokens needs one row; otherwise each
    option gets its own row.
    """
    if len(options) == 1 and len(prompts) != 1:
        options = [options[0]] * len(prompts)
    if len(options) != len(prompts):
        raise ValueError(f"got {len(options)} option lists for {len(prompts)} prompts (expected 1 or one each)")
    prompt_ids = tokenizer(list(prompts))["input_ids"] if prompts else []
    joint_texts = [p + o for p, opts in zip(prompts, options) for o in opts]
    joint_ids = iter(tokenizer(joint_texts)["input_ids"]) if joint_texts else iter(())
    rows: list[Row] = []
    for i, (p_ids, opts) in enumerate(zip(prompt_ids, options)):
        if not opts:
            raise ValueError(f"prompt {i} has no options")
        if not p_ids:
            raise ValueError(f"prompt {i} tokenizes to nothing; scoring needs at least one prompt token")
        conts = []
        for opt in opts:
            joint = next(joint_ids)
            if joint[: len(p_ids)] == p_ids and len(joint) > len(p_ids):
                cont = joint[len(p_ids) :]
            else:
                cont = tokenizer(opt, add_special_tokens=False)["input_ids"]
            if not cont:
                raise ValueError(f"option {opt!r} of prompt {i} tokenizes to nothing")
            conts.append(tuple(cont))
        start = len(p_ids) - 1
        if all(len(c) == 1 for c in conts):
            rows.append(Row(tuple(p_ids), start, tuple((i, j, c) for j, c in enumerate(conts))))
        else:
            rows.extend(Row(tuple(p_ids) + c[:-1], start, ((i, j, c),)) for j, c in enumerate(conts))
    return rows, [len(o) for o in options]


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    k = 0
    while k < n and a[k] == b[k]:
        k += 1
    return k


# ---- the two scoring paths ------------------------------------------------------------------------------------


def score_rows_naive(runner: "Runner", rows: Sequence[Row]) -> list[list[float]]:
    """Each row in its own forward pass with the model's built-in causal mask (the reference path)."""
    out = []
    for r in rows:
        hidden = runner.model_hidden(torch.tensor([r.ids], device=runner.device))[0]
        out.append(runner.read(hidden, [list(range(r.start, r.start + r.n_read))], [r])[0])
    return out


def score_rows_packed(runner: "Runner", rows: Sequence[Row], *, min_shared: int = 16,
                      chunk_tokens: int = 1024) -> list[list[float]]:
    """Score rows with a shared prefix run once per group and suffix tries packed per chunk (module docstring)."""
    order = sorted(range(len(rows)), key=lambda k: rows[k].ids)
    groups: list[tuple[list[int], int]] = []
    for k in order:
        if groups:
            members, lcp = groups[-1]
            shared = common_prefix_len(rows[members[0]].ids[:lcp], rows[k].ids)
            if shared >= min_shared:
                members.append(k)
                groups[-1] = (members, shared)
                continue
        groups.append(([k], len(rows[k].ids)))
    results: list[list[float] | None] = [None] * len(rows)
    loose: list[int] = []  # stays in sorted order: groups are consecutive runs of the sorted rows
    for members, lcp in groups:
        prefix_len = min(lcp, min(rows[k].start for k in members))  # every row must compute its read positions
        if len(members) == 1 or prefix_len < max(min_shared, 1):
            loose.extend(members)
            continue
        cache = runner.extend(None, rows[members[0]].ids[:prefix_len], 0)
        _run_trie_chunks(runner, rows, members, prefix_len, cache, chunk_tokens, results)
    _run_trie_chunks(runner, rows, loose, 0, None, chunk_tokens, results)
    return results  # type: ignore[return-value]


def _run_trie_chunks(runner, rows, members, prefix_len, cache, chunk_tokens, results) -> None:
    """Pack the (sorted) rows' suffixes after ``prefix_len`` into tries of at most ``chunk_tokens`` nodes."""
    chunk: list[tuple[int, list[int]]] = []  # (row index, node index of each suffix token)
    tokens: list[int] = []
    depth: list[int] = []
    prev: Sequence[int] = ()
    for k in members:
        suffix = rows[k].ids[prefix_len:]
        shared = common_prefix_len(prev, suffix) if chunk else 0
        if chunk and len(tokens) + len(suffix) - shared > chunk_tokens:
            _run_trie(runner, rows, chunk, tokens, depth, prefix_len, cache, results)
            chunk, tokens, depth, shared = [], [], [], 0
        path = (chunk[-1][1][:shared] if chunk else []) + list(range(len(tokens), len(tokens) + len(suffix) - shared))
        tokens.extend(suffix[shared:])
        depth.extend(range(shared, len(suffix)))
        chunk.append((k, path))
        prev = suffix
    if chunk:
        _run_trie(runner, rows, chunk, tokens, depth, prefix_len, cache, results)


def _run_trie(runner, rows, chunk, tokens, depth, prefix_len, cache, results) -> None:
    n = len(tokens)
    # visible[i, j]: node j is node i or one of its ancestors. In sorted order a row's new nodes are created by
    # that row, so each node's ancestors are the first (depth + 1) entries of its creating row's path.
    visible = torch.zeros((n, n), dtype=torch.bool)
    for _, path in chunk:
        p = torch.tensor(path)
        lower = torch.tril(torch.ones((len(path), len(path)), dtype=torch.bool))
        visible[p[:, None], p[None, :]] |= lower
    positions = torch.tensor(depth) + prefix_len
    hidden = runner.packed_hidden(tokens, positions, visible, prefix_len, cache)
    reads = [path[rows[k].start - prefix_len : rows[k].start - prefix_len + rows[k].n_read] for k, path in chunk]
    for (k, _), value in zip(chunk, runner.read(hidden, reads, [rows[k] for k, _ in chunk])):
        results[k] = value


# ---- forward passes -------------------------------------------------------------------------------------------


class Runner:
    """The forward passes behind both scoring paths, and the output head applied to the read positions only."""

    def __init__(self, model, device: torch.device, head_ok: bool):
        self.model, self.device, self.head_ok = model, device, head_ok
        self.base = model.base_model
        self.head = model.get_output_embeddings()
        self.softcap = getattr(model.config, "final_logit_softcapping", None)
        types = list(getattr(model.config, "layer_types", None) or [])
        self.layer_types = types
        self.sliding_window = getattr(model.config, "sliding_window", None)
        # hybrid (Gemma 2/3, ...): per-layer-type masks; no layer types but a window (Mistral): every layer slides
        self.hybrid = "sliding_attention" in types
        self.all_sliding = not types and self.sliding_window is not None

    def model_hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """Last hidden states ``[batch, seq, d]`` (or logits when the head check failed) of a plain causal pass."""
        if self.head_ok:
            return self.base(input_ids=ids).last_hidden_state
        return self.model(input_ids=ids).logits

    def extend(self, cache, ids: Sequence[int], start: int):
        """The KV cache of ``cache``'s tokens followed by ``ids`` (batch 1; ``cache`` itself is left unchanged)."""
        x = torch.tensor([list(ids)], device=self.device)
        pos = torch.arange(start, start + len(ids), device=self.device)[None]
        past = copy.deepcopy(cache) if cache is not None else None
        return self.base(input_ids=x, position_ids=pos, past_key_values=past, use_cache=True).past_key_values

    def _mask(self, visible, positions, prefix_len, kept, window):
        """Additive mask ``[1, 1, n, kept + n]``: the last ``kept`` prefix positions, then the packed nodes."""
        dtype = self.model.dtype
        pos_q = positions[:, None]
        prefix_pos = torch.arange(prefix_len - kept, prefix_len)[None, :]
        see_prefix = torch.ones((len(positions), kept), dtype=torch.bool)
        see_nodes = visible
        if window is not None:
            see_prefix = see_prefix & (pos_q - prefix_pos < window)
            see_nodes = see_nodes & (pos_q - positions[None, :] < window)
        allowed = torch.cat([see_prefix, see_nodes], dim=1)
        mask = torch.zeros(allowed.shape, dtype=dtype)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        return mask[None, None].to(self.device)

    def packed_hidden(self, tokens, positions, visible, prefix_len, cache) -> torch.Tensor:
        """Hidden states (or logits) ``[n, d]`` of packed trie nodes over a copy of the prefix ``cache``."""
        past = copy.deepcopy(cache) if cache is not None else None

        def kept(layer_type: str | None) -> int:  # prefix keys that layer's cache returns (sliding layers: a window)
            if past is None:
                return 0
            idx = self.layer_types.index(layer_type) if layer_type in self.layer_types else 0
            return past.layers[idx].keys.shape[-2]

        mask = self._mask(visible, positions, prefix_len, kept("full_attention"),
                          self.sliding_window if self.all_sliding else None)
        if self.hybrid:
            sliding = self._mask(visible, positions, prefix_len, kept("sliding_attention"), self.sliding_window)
            mask = {"full_attention": mask, "sliding_attention": sliding}
        kwargs = dict(input_ids=torch.tensor([tokens], device=self.device),
                      position_ids=positions[None].to(self.device), attention_mask=mask, past_key_values=past,
                      use_cache=past is not None)
        if self.head_ok:
            return self.base(**kwargs).last_hidden_state[0]
        return self.model(**kwargs).logits[0]

    def read(self, hidden: torch.Tensor, reads: Sequence[Sequence[int]], rows: Sequence[Row]) -> list[list[float]]:
        """Summed log-likelihood of every target of every row, from ``hidden[reads[i]]``."""
        flat = torch.tensor([i for r in reads for i in r], device=hidden.device)
        logits = hidden[flat]
        if self.head_ok:
            logits = self.head(logits)
            if self.softcap:
                logits = torch.tanh(logits / self.softcap) * self.softcap
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()
        out: list[list[float]] = []
        offset = 0
        for r, positions in zip(rows, reads):
            out.append([float(sum(logp[offset + k, tok] for k, tok in enumerate(cont))) for _, _, cont in r.targets])
            offset += len(positions)
        return out


def logprob_tolerance(dtype: torch.dtype, logp: float) -> float:
    """How far (nats) two computations of the log-probability ``logp`` in ``dtype`` may differ by rounding alone.

    ``1e-3 + 4 eps max(|logp|, 8)`` with ``eps = torch.finfo(dtype).eps``: 1e-3 in float32; in bfloat16 at least
    0.25 nats and 3.1 % of larger ``|logp|``; in float16 at least 0.032 and 0.4 % (module docstring: why, and
    where the measured margins are).
    """
    return 1e-3 + 4.0 * torch.finfo(dtype).eps * max(abs(logp), 8.0)


def head_supported(model, device) -> bool:
    """Whether ``lm_head(base(x))`` (+ Gemma-style soft-capping) reproduces ``model(x).logits``.

    Models with other output transforms fail this check and are read through ``model(...).logits`` instead.
    Tolerance: 1e-3 absolute and relative, or 2 eps of a 16-bit dtype relative (the same operations, so normally
    equal).
    """
    x = torch.tensor([[1, 2, 3, 4]], device=device) % model.config.vocab_size
    ref = model(input_ids=x).logits.float()
    logits = model.get_output_embeddings()(model.base_model(input_ids=x).last_hidden_state)
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    rtol = max(1e-3, 2.0 * torch.finfo(logits.dtype).eps)
    return bool(torch.allclose(ref, logits.float(), atol=1e-3, rtol=rtol))


@dataclass(frozen=True)
class PackedCheck:
    """The outcome of :func:`packed_check`: whether the packed path is used, and by what margin."""

    ok: bool
    max_abs_diff: float  # largest |packed - naive| log-probability (nats); inf when the packed forward failed
    worst_ratio: float  # largest |packed - naive| / logprob_tolerance (< 1 passes)
    dtype: torch.dtype


def packed_check(runner: Runner) -> PackedCheck:
    """Compare the packed path with the naive one on a small synthetic batch (:func:`logprob_tolerance`)."""
    v = runner.model.config.vocab_size
    dtype = runner.model.dtype
    head = [1 + (7 * i) % (v - 1) for i in range(20)]
    rows = [Row(tuple(head + tail), len(head) + len(tail) - 1, ((0, 0, (5 % v,)), (0, 1, (9 % v,))))
            for tail in ([3 % v, 4 % v], [3 % v, 8 % v, 2 % v], [6 % v])]
    try:
        packed = score_rows_packed(runner, rows, min_shared=8)
    except Exception:  # noqa: BLE001 - a model whose forward rejects the custom mask is simply scored naively
        return PackedCheck(False, float("inf"), float("inf"), dtype)
    naive = score_rows_naive(runner, rows)
    pairs = [(a, b) for p, q in zip(packed, naive) for a, b in zip(p, q)]
    diff = max(abs(a - b) for a, b in pairs)
    ratio = max(abs(a - b) / logprob_tolerance(dtype, b) for a, b in pairs)
    return PackedCheck(bool(ratio < 1.0), float(diff), float(ratio), dtype)  # NaN compares False: not ok


def packed_supported(runner: Runner) -> bool:
    """Whether the packed path reproduces the naive one within the dtype's tolerance (checked once per backend)."""
    return packed_check(runner).ok
