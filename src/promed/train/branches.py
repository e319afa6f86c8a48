"""Answer branches: train the doctor's answer at every point of a consultation in one sequence.

A pretraining example in the dialogue layout is a consultation: the initial statement, question/reply turns, then the
answer. The doctor may answer after the initial statement or after any reply, and what it should answer there is the
diagnosis that the facts revealed *so far* support. Rendering each of those points as its own example repeats the
prompt (about 140 tokens) for an answer turn of about 8; here the prompt is written once and each answer point
becomes a short **branch** appended after it, with an attention mask and position ids that make every branch see
exactly what a separate example would see:

* the main part is the longest prompt (up to the last user turn), with the ordinary causal mask;
* the branch of an answer point ``p`` (the first token in which the answer's own rendering departs from the main
  part, at the latest the token before its first labelled token) holds that rendering's tokens from ``p`` on, at
  positions ``p, p+1, ...``; each of its tokens attends to the main part's tokens ``[0, p)`` and to the branch's own
  earlier tokens, nothing else.

So the logits of a branch are those of the separate example, token for token (``tests/test_branches.py`` checks it
against the linear sequence). The loss uses explicit next-token ``targets`` (the label of the next token *of the
same branch*; a plain shift would pair a branch's last token with the next branch's first), and the sequences are
padded on the left so that every labelled logit lies in the last ``K`` positions: the model computes logits there
only (``logits_to_keep``), the vocabulary projection of the prompt tokens is skipped.

The packing, the masks and the loss are ours because no library does this: TRL's packing (``padding_free``)
concatenates *independent* sequences, not branches that share a prefix (the inference side does the like for option
scoring, :mod:`promed.llm.packed_scoring`, with a KV cache that training cannot use). The training loop stays TRL's
``SFTTrainer`` (:func:`branch_trainer_class` changes its collator input and its ``compute_loss`` only).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence


IGNORE_INDEX = -100
BRANCH_COLUMNS = ("targets", "position_ids", "branch_ctx", "branch_start")


@dataclass(frozen=True)
class Branched:
    """One packed example. ``input_ids``: the main part then the branches; ``targets[i]``: the label of the token
    after ``i`` in its own sequence (-100 if none or unlabelled); ``position_ids``; ``branch_ctx[i]``: how many main
    tokens ``i`` sees besides its own segment (0 for main tokens); ``branch_start[i]``: where ``i``'s segment starts
    (0 for main tokens); ``n_main``: length of the main part; ``n_answers``: number of branches."""

    input_ids: tuple[int, ...]
    targets: tuple[int, ...]
    position_ids: tuple[int, ...]
    branch_ctx: tuple[int, ...]
    branch_start: tuple[int, ...]
    n_main: int
    n_answers: int
    answer_pos: tuple[int, ...] = ()
    """Per branch, the position whose logit predicts its first labelled token (soft targets are placed from it)."""

    def as_row(self) -> dict:
        return {"input_ids": list(self.input_ids), "targets": list(self.targets),
                "position_ids": list(self.position_ids), "branch_ctx": list(self.branch_ctx),
                "branch_start": list(self.branch_start), "length": len(self.input_ids)}


def pack_branches(encodings: Sequence[tuple[Sequence[int], Sequence[int]]]) -> Branched:
    """Pack answer points into one example (pure).

    ``encodings``: each answer point as its separate example would be tokenized, ``(input_ids, labels)`` with the
    labels on the answer turn; the **last** one must have the longest prompt, and every other one's prompt must be a
    prefix of it up to where it branches (true of the prefixes of one consultation). The main part is the last one's
    tokens before its first labelled token's predecessor."""
    from promed.llm.packed_scoring import common_prefix_len

    if not encodings:
        raise ValueError("no answer point to pack")
    firsts = []
    for ids, labels in encodings:
        if len(ids) != len(labels):
            raise ValueError("input_ids and labels differ in length")
        first = next((i for i, lab in enumerate(labels) if lab != IGNORE_INDEX), None)
        if first is None or first == 0:
            raise ValueError("an answer point has no labelled token after its prompt")
        firsts.append(first)
    last_ids = list(encodings[-1][0])
    n_main = firsts[-1] - 1
    main = last_ids[:n_main]
    input_ids, targets = list(main), [IGNORE_INDEX] * n_main
    position_ids, ctx, start = list(range(n_main)), [0] * n_main, [0] * n_main
    answer_pos = []
    for (ids, labels), first in zip(encodings, firsts):
        p = min(common_prefix_len(ids[:n_main], main), first - 1)
        s = len(input_ids)
        answer_pos.append(s + first - 1 - p)
        seg = list(ids[p:])
        input_ids.extend(seg)
        targets.extend([*labels[p + 1:], IGNORE_INDEX])
        position_ids.extend(range(p, p + len(seg)))
        ctx.extend([p] * len(seg))
        start.extend([s] * len(seg))
    return Branched(tuple(int(x) for x in input_ids), tuple(int(x) for x in targets), tuple(position_ids),
                    tuple(ctx), tuple(start), n_main, len(encodings), tuple(answer_pos))


def answer_points(messages: Sequence[dict]) -> list[list[dict]]:
    """The conversations of every answer point of ``messages`` (a consultation ending in the answer turn): after
    each user turn, that prefix followed by the same answer turn. The last is ``messages`` itself."""
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("the last message must be the answer turn")
    answer = dict(messages[-1])
    return [[*map(dict, messages[:i + 1]), answer] for i, m in enumerate(messages[:-1]) if m["role"] == "user"]


def branched_example(messages: Sequence[dict], tokenizer, every_turn: bool = True) -> Branched:
    """Tokenize a pretraining conversation as one packed example: with ``every_turn`` one branch per answer point
    (:func:`answer_points`), else the final answer only.

    The conversation is tokenized once when the assistant header is a special token (``synthclinic-small``'s
    ``<|assistant|>``): each earlier occurrence of that token starts a turn where the doctor could have answered
    instead, so the answer point there is the prompt up to it followed by the final answer turn (header included),
    which is how the chat template renders and the tokenizer splits that conversation, special tokens being atomic.
    Otherwise each answer point is rendered and tokenized on its own. Both give the same rows
    (``tests/test_branches.py``)."""
    from promed.train.data import tokenize_with_mask

    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("the last message must be the answer turn")
    ids, labels = tokenize_with_mask(messages, tokenizer, last_only=True)
    if not every_turn:
        return pack_branches([(ids, labels)])
    first = next((i for i, lab in enumerate(labels) if lab != IGNORE_INDEX), 0)
    if first < 1:
        raise ValueError("the answer turn has no prompt before it")
    header = ids[first - 1]
    if header not in set(getattr(tokenizer, "all_special_ids", ())) | set(_added_ids(tokenizer)):
        return pack_branches([tokenize_with_mask(p, tokenizer, last_only=True) for p in answer_points(messages)])
    tail_ids, tail_labels = ids[first - 1:], labels[first - 1:]
    points = [(ids[:k] + tail_ids, [IGNORE_INDEX] * k + tail_labels) for k in range(first - 1) if ids[k] == header]
    return pack_branches([*points, (ids, labels)])


def _added_ids(tokenizer) -> list[int]:
    try:
        return [int(i) for i in tokenizer.added_tokens_decoder]
    except AttributeError:
        return []


def attention_bias(ctx, start, lengths, total: int):
    """The additive (B, 1, T, T) attention mask of a left-padded batch: 0 where query ``i`` may see key ``j`` (the
    first ``ctx[i]`` real tokens, or its own segment up to itself), the dtype's minimum elsewhere; pad rows see
    themselves only (so that no row is empty). ``ctx``/``start`` are (B, T) tensors already shifted by the padding,
    ``lengths`` the real lengths."""
    import torch

    B = ctx.shape[0]
    i = torch.arange(total).view(1, total, 1)
    j = torch.arange(total).view(1, 1, total)
    pad = (total - lengths).view(B, 1, 1)
    real = i >= pad
    see = ((j >= pad) & (j < pad + ctx.unsqueeze(-1))) | ((j >= start.unsqueeze(-1)) & (j <= i))
    see = torch.where(real, see, j == i)
    bias = torch.zeros(B, 1, total, total, dtype=torch.float32)
    return bias.masked_fill_(~see.unsqueeze(1), torch.finfo(torch.float32).min)


class BranchCollator:
    """Left-pads packed examples (:meth:`Branched.as_row` columns) and builds the 4-D attention mask; rows with the
    soft-target columns of :mod:`promed.train.distill` give ``soft_index`` ((N, 2): batch row, position),
    ``soft_ids`` and ``soft_probs`` ((N, K), padded with probability 0)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = int(pad_token_id)

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        lengths = torch.tensor([len(r["input_ids"]) for r in rows])
        T = int(lengths.max())
        B = len(rows)
        ids = torch.full((B, T), self.pad_token_id, dtype=torch.long)
        targets = torch.full((B, T), IGNORE_INDEX, dtype=torch.long)
        pos = torch.zeros((B, T), dtype=torch.long)
        ctx = torch.zeros((B, T), dtype=torch.long)
        start = torch.zeros((B, T), dtype=torch.long)
        for b, r in enumerate(rows):
            n = len(r["input_ids"])
            pad = T - n
            ids[b, pad:] = torch.tensor(r["input_ids"])
            targets[b, pad:] = torch.tensor(r["targets"])
            pos[b, pad:] = torch.tensor(r["position_ids"])
            ctx[b, pad:] = torch.tensor(r["branch_ctx"])
            start[b, pad:] = torch.tensor(r["branch_start"]) + pad
        labelled = (targets != IGNORE_INDEX).any(0).nonzero()
        keep = int(T - labelled.min()) if len(labelled) else 1
        batch = {"input_ids": ids, "targets": targets, "position_ids": pos,
                 "attention_mask": attention_bias(ctx, start, lengths, T), "logits_to_keep": keep}
        if rows and "soft_pos" in rows[0]:
            batch.update(_soft_batch(rows, T))
        return batch


def _soft_batch(rows: list[dict], T: int) -> dict:
    import torch

    index, sids, sprobs = [], [], []
    for b, r in enumerate(rows):
        pad = T - len(r["input_ids"])
        for p, i, q in zip(r["soft_pos"], r["soft_ids"], r["soft_probs"]):
            index.append((b, pad + int(p)))
            sids.append(list(i))
            sprobs.append(list(q))
    K = max((len(i) for i in sids), default=1)
    return {"soft_index": torch.tensor(index, dtype=torch.long).reshape(-1, 2),
            "soft_ids": torch.tensor([i + [0] * (K - len(i)) for i in sids], dtype=torch.long).reshape(-1, K),
            "soft_probs": torch.tensor([q + [0.0] * (K - len(q)) for q in sprobs]).reshape(-1, K)}


SOFT_BATCH = ("soft_index", "soft_ids", "soft_probs")


def branch_loss(logits, targets, soft=None):
    """Mean next-token cross-entropy over the labelled positions of ``targets`` ((B, K) aligned with ``logits``'
    (B, K, V)); with ``soft`` (``soft_index`` shifted into the kept window, ``soft_ids``, ``soft_probs``) the
    positions listed there use ``-sum_k q_k log p(id_k)`` instead (pure; :mod:`promed.train.distill`)."""
    import torch.nn.functional as F

    V = logits.shape[-1]
    ce = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=IGNORE_INDEX,
                         reduction="none").view(targets.shape)
    if soft is not None and len(soft[0]):
        index, ids, probs = soft
        rows, cols = index[:, 0], index[:, 1]
        logp = logits[rows, cols].log_softmax(-1).gather(1, ids)
        ce = ce.index_put((rows, cols), -(probs * logp).sum(-1))
    n = (targets != IGNORE_INDEX).sum()
    return ce.sum() / n.clamp(min=1)


@functools.cache
def epoch_length_grouped_sampler():
    """The sampler class below (built on first use: importing this module does not import transformers)."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from promed.train.hf_training import derived_seed

    class EpochLengthGroupedSampler(LengthGroupedSampler):
        """The Trainer's ``group_by_length`` sampler with an order that depends on (seed, epoch) only. The stock one
        draws from torch's global generator, whose state on resume differs from the uninterrupted run's once an
        epoch boundary lies between them (measured: a resumed 2-epoch run ended 0.0101 off in loss)."""

        def __init__(self, *args, seed: int = 0, **kwargs):
            super().__init__(*args, **kwargs)
            self.seed, self.epoch = seed, 0
            self.generator = torch.Generator()

        def set_epoch(self, epoch: int) -> None:  # called by accelerate's DataLoaderShard each epoch
            self.epoch = int(epoch)

        def __iter__(self):
            self.generator.manual_seed(derived_seed(self.seed, self.epoch))
            return super().__iter__()

    return EpochLengthGroupedSampler


@functools.cache
def branch_trainer_class():
    """:class:`trl.SFTTrainer` whose loss reads packed branches (built on first use: importing this module does not
    import TRL)."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler
    from trl import SFTTrainer

    EpochLengthGroupedSampler = epoch_length_grouped_sampler()

    class BranchSFTTrainer(SFTTrainer):
        """``SFTTrainer`` on :class:`Branched` rows: the model sees the 4-D mask and the position ids, the logits are
        computed for the last ``logits_to_keep`` positions only, and the loss is the mean cross-entropy of the
        explicit next-token ``targets`` there."""

        def _get_train_sampler(self, dataset=None):
            sampler = super()._get_train_sampler(dataset)
            if type(sampler) is LengthGroupedSampler:
                sampler = EpochLengthGroupedSampler(sampler.batch_size, lengths=sampler.lengths, seed=self.args.seed)
            return sampler

        def _set_signature_columns_if_needed(self):
            from promed.train.distill import SOFT_COLUMNS

            super()._set_signature_columns_if_needed()
            self._signature_columns = [*self._signature_columns, *BRANCH_COLUMNS, *SOFT_COLUMNS]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            targets = inputs.pop("targets")
            keep = int(inputs.pop("logits_to_keep"))
            soft = None
            if "soft_index" in inputs:
                index, ids, probs = (inputs.pop(k) for k in SOFT_BATCH)
                shift = targets.shape[1] - keep
                soft = (torch.stack([index[:, 0], index[:, 1] - shift], 1), ids, probs)
            out = model(**inputs, logits_to_keep=keep, use_cache=False)
            loss = branch_loss(out.logits.float(), targets[:, -keep:], soft)  # logits (B, keep, V)
            return (loss, out) if return_outputs else loss

    return BranchSFTTrainer
