"""Stage 0's rows: each example tokenized with the loss on its answers only, packed as answer branches.

:func:`answer_only_labels` masks everything but the answer turn (the dialogue layout's questions are random
template questions a reactive doctor must not learn to ask); :func:`known_prefix_points` turns the known-facts
layout into one answer point per prefix of the fact list; :func:`build_dataset` packs each example's answer points
into one sequence (:mod:`promed.train.branches`), with soft targets from the posteriors
(:func:`soft_columns`, :mod:`promed.train.distill`), tokenized in forked worker processes on Linux (the same rows
as one process).
"""

from __future__ import annotations

import functools
import itertools
import math
import multiprocessing
import sys
from typing import Sequence

from promed.errors import InputError
from promed.train.data import IGNORE_INDEX
from promed.train.pretrain.examples import PretrainExample

__all__ = ["FORK", "PARALLEL_MIN_EXAMPLES", "PREFIX_CHECKS", "answer_only_labels", "build_dataset",
           "known_prefix_points", "soft_columns"]


def answer_only_labels(messages: Sequence[dict], tokenizer, max_len: int | None = None) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` of a conversation with the loss on its **last** turn only (the answer).

    Every assistant turn in the loss (:func:`promed.train.data.tokenize_with_mask`'s default) would train the
    randomly ordered template questions of the dialogue layout too (a reactive doctor must not learn to ask at
    random), so only the last turn's span is kept; it must be an assistant turn.
    """
    from promed.train.data import DataError, tokenize_with_mask

    if not messages or messages[-1]["role"] != "assistant":
        raise DataError("the last message must be an assistant turn that the chat template renders after the prompt")
    return tokenize_with_mask(messages, tokenizer, max_len=max_len, last_only=True)


def known_prefix_points(messages: Sequence[dict], n_facts: int, tokenizer) -> list[tuple[list[int], list[int]]]:
    """The tokenized answer points of a known-facts example listing ``n_facts`` facts: with the first ``k`` facts
    listed (``k = 0..n_facts``; the last is ``messages`` itself), as ``(input_ids, labels)``.

    Tokenizes once: the prompt with ``k`` facts is the full prompt up to the line break that ends fact ``k`` (for
    ``k = 0``, the one before ``Known facts:``), then the same budget line, answer header and answer. That holds
    when a line break is one token that no merge crosses (``synthclinic-small`` either way); :func:`build_dataset`
    checks it against rendering each prefix on the first examples. Returns [] if the prompt does not have that
    shape."""
    from promed.train.data import tokenize_with_mask

    ids, labels = tokenize_with_mask(messages, tokenizer, last_only=True)
    nl = tokenizer.encode("\n", add_special_tokens=False)
    first = next((i for i, lab in enumerate(labels) if lab != IGNORE_INDEX), 0)
    if len(nl) != 1 or n_facts < 1:
        return []
    breaks = [i for i in range(first) if ids[i] == nl[0]]
    if len(breaks) < n_facts + 2:
        return []
    q = breaks[-1] + 1
    cuts = [breaks[-(n_facts + 2)], *breaks[-n_facts:-1]]
    return [(ids[:c + 1] + ids[q:], [IGNORE_INDEX] * (c + 1) + labels[q:]) for c in cuts] + [(ids, labels)]


PREFIX_CHECKS = 16  # known-facts examples whose one-pass prefixes are checked against rendering each prefix


PARALLEL_MIN_EXAMPLES = 4000  # fewer are tokenized in-process (the workers' start and the rows' transfer cost more)
FORK = "fork"  # the start method of the workers, used on Linux only (macOS forks unsafely); else in-process


def build_dataset(examples: Sequence[PretrainExample], tokenizer, max_len: int, soft: bool = False,
                  every_turn: bool = False, workers: int = 1):
    """Pre-tokenized ``datasets.Dataset`` of packed rows (:mod:`promed.train.branches`: ``input_ids``, next-token
    ``targets``, position ids and the branch columns); examples cut by ``max_len`` (their answer is at the end) are
    dropped. Returns (dataset, n_dropped).

    With ``every_turn`` one answer branch per answer point (each reply of a dialogue, each prefix of the known facts
    given as ``points``), else the final answer only. With ``soft`` the rows also hold the soft-target columns of
    :mod:`promed.train.distill`: at each branch, the exact posterior of what that branch sees, spread over the
    answer's tokens. ``workers`` > 1 tokenizes contiguous chunks in that many processes (the stdlib's process pool:
    the rows, and so the dataset, are the same as in one process; ``tests/test_pretrain.py`` checks it)."""
    from datasets import Dataset

    chunks = [list(examples)]
    if workers > 1 and len(examples) >= PARALLEL_MIN_EXAMPLES and sys.platform.startswith("linux"):
        size = math.ceil(len(examples) / workers)
        chunks = [list(examples[i:i + size]) for i in range(0, len(examples), size)]
    if len(chunks) == 1:
        parts = [_build_rows(chunks[0], tokenizer, max_len, soft, every_turn)]
    else:
        from concurrent.futures import ProcessPoolExecutor

        # fork (as torch's DataLoader workers on Linux): spawn would re-run an unguarded main script; the tokenizers
        # library turns its own thread pool off in a forked child
        with ProcessPoolExecutor(len(chunks), mp_context=multiprocessing.get_context(FORK)) as pool:
            build = functools.partial(_build_rows, tokenizer=tokenizer, max_len=max_len, soft=soft,
                                      every_turn=every_turn)
            parts = list(pool.map(build, chunks))
    rows = [r for part, _ in parts for r in part]
    dropped = sum(d for _, d in parts)
    if not rows:
        raise InputError(f"no pretraining example fits in max_len={max_len} tokens")
    return Dataset.from_dict({k: [r[k] for r in rows] for k in rows[0]}), dropped


def _build_rows(examples: Sequence[PretrainExample], tokenizer, max_len: int, soft: bool,
                every_turn: bool) -> tuple[list[dict], int]:
    """The packed rows of :func:`build_dataset` for ``examples`` and how many were dropped (one process)."""
    from promed.train.branches import branched_example, pack_branches
    from promed.train.data import tokenize_with_mask

    rows: list[dict] = []
    dropped = 0
    checks, one_pass = PREFIX_CHECKS, True
    encode = functools.lru_cache(maxsize=None)(lambda text: tuple(tokenizer(text, add_special_tokens=False)
                                                                  ["input_ids"]))
    for ex in examples:
        if ex.points and every_turn:
            encodings = known_prefix_points(ex.messages, len(ex.points), tokenizer) if one_pass else []
            if not encodings or checks > 0:  # render each prefix: the fallback, and the check of the one pass
                each = [tokenize_with_mask(p, tokenizer, last_only=True) for p in (*ex.points, ex.messages)]
                if encodings:
                    checks -= 1
                    one_pass = encodings == each
                encodings = each
            packed = pack_branches(encodings)
        else:
            packed = branched_example(ex.messages, tokenizer, every_turn=every_turn)
        if max(packed.position_ids) + 1 > max_len:  # the final answer point, the longest, is cut
            dropped += 1
            continue
        row = packed.as_row()
        if soft:
            row.update(soft_columns(ex, packed, tokenizer, encode))
        rows.append(row)
    return rows, dropped


def soft_columns(ex: PretrainExample, packed, tokenizer, encode=None) -> dict:
    """The soft-target columns of one packed example: per branch, :func:`promed.train.distill.answer_soft_targets`
    of that answer point's posterior, placed at the row positions that predict the answer's tokens."""
    from promed.train.distill import answer_sequences, answer_soft_targets

    if not ex.point_probs:
        raise ValueError(f"example {ex.id!r} has no posterior: soft labels need SynthClinic cases")
    probs = ex.point_probs[-packed.n_answers:]  # the final answer only: the last point
    if len(probs) != packed.n_answers:
        raise ValueError(f"example {ex.id!r}: {packed.n_answers} answer points but {len(ex.point_probs)} posteriors")
    gold_span = list(itertools.takewhile(lambda t: t != IGNORE_INDEX, packed.targets[packed.answer_pos[-1]:]))
    seqs = answer_sequences(ex.answers, ex.gold, gold_span, tokenizer, encode)
    pos, ids, ps = [], [], []
    for at, q in zip(packed.answer_pos, probs):
        for t, tok_ids, tok_probs in answer_soft_targets(seqs, q, ex.gold):
            pos.append(at + t)
            ids.append(list(tok_ids))
            ps.append(list(tok_probs))
    return {"soft_pos": pos, "soft_ids": ids, "soft_probs": ps}
