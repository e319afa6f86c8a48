"""Answer branches (promed.train.branches): packed answer points give the separate examples' logits exactly."""

from __future__ import annotations

import pytest
import torch

from promed.train.branches import (
    IGNORE_INDEX, BranchCollator, answer_points, attention_bias, branched_example, pack_branches,
)
from promed.train.data import example_texts
from promed.train.pretrain import (
    PretrainConfig, answer_only_labels, build_dataset, known_prefix_points, pretraining_examples,
)
from promed.train.small_model import SmallModelConfig, build_model, build_tokenizer

TINY = SmallModelConfig(vocab_size=600, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=2,
                        intermediate_size=64)


@pytest.fixture(scope="module")
def setup():
    examples = pretraining_examples(PretrainConfig(cases=12, known_share=0.0))
    tok = build_tokenizer(example_texts([e.chat for e in examples]), TINY)
    model = build_model(tok, TINY).eval()
    return examples, tok, model


def test_pack_branches_layout_is_exact_on_token_lists():
    # two answer points: prompt [1 2 3] then answer [8 9], and the longer prompt [1 2 3 4 5] with the same answer
    short = ([1, 2, 3, 7, 8, 9], [IGNORE_INDEX] * 4 + [8, 9])
    long = ([1, 2, 3, 4, 5, 7, 8, 9], [IGNORE_INDEX] * 6 + [8, 9])
    b = pack_branches([short, long])
    assert b.n_main == 5 and b.n_answers == 2  # main: the long prompt up to the token before its first label
    assert b.input_ids == (1, 2, 3, 4, 5, 7, 8, 9, 7, 8, 9)  # then the branch at 3, then the branch at 5
    assert b.position_ids == (0, 1, 2, 3, 4, 3, 4, 5, 5, 6, 7)
    assert b.branch_ctx == (0, 0, 0, 0, 0, 3, 3, 3, 5, 5, 5)
    assert b.branch_start == (0, 0, 0, 0, 0, 5, 5, 5, 8, 8, 8)
    # each labelled token is the target of its predecessor in the same branch; a branch's last token has none
    assert b.targets == (-100,) * 5 + (8, 9, -100, 8, 9, -100)


def test_pack_branches_rejects_an_answer_point_without_labels():
    with pytest.raises(ValueError, match="no labelled token"):
        pack_branches([([1, 2, 3], [IGNORE_INDEX] * 3)])


def test_answer_points_end_each_user_turn_with_the_same_answer(setup):
    examples, _, _ = setup
    msgs = next(e.messages for e in examples if len(e.messages) >= 4)
    points = answer_points(msgs)
    assert len(points) == sum(m["role"] == "user" for m in msgs)
    assert points[-1] == [dict(m) for m in msgs]
    for p in points:
        assert p[-1] == dict(msgs[-1]) and p[-2]["role"] == "user"


def test_attention_bias_sees_own_prefix_and_branch_only():
    # one example, main 2 tokens, a branch at 1 of 2 tokens, left-padded by 1 in a batch of length 5
    ctx = torch.tensor([[0, 0, 0, 1, 1]])
    start = torch.tensor([[1, 1, 1, 3, 3]])
    bias = attention_bias(ctx, start, torch.tensor([4]), 5)[0, 0]
    see = (bias == 0).int().tolist()
    assert see == [[1, 0, 0, 0, 0],   # pad sees itself only
                   [0, 1, 0, 0, 0],   # main token 0
                   [0, 1, 1, 0, 0],   # main token 1
                   [0, 1, 0, 1, 0],   # branch token 0: main [0, 1) and itself
                   [0, 1, 0, 1, 1]]


def test_packed_logits_equal_the_separate_examples(setup):
    """The property the packing exists for: every labelled logit of a packed, left-padded batch equals the logit of
    the answer point rendered as its own linear example, and the targets are the same tokens."""
    examples, tok, model = setup
    chosen = [e for e in examples if len(e.messages) >= 4][:4] + [e for e in examples if len(e.messages) == 2][:1]
    rows = [branched_example(e.messages, tok).as_row() for e in chosen]
    batch = BranchCollator(tok.pad_token_id)(rows)
    keep, targets = batch.pop("logits_to_keep"), batch.pop("targets")
    T = batch["input_ids"].shape[1]
    with torch.no_grad():
        packed_logits = model(**batch, logits_to_keep=keep).logits
    n_points = 0
    for b, e in enumerate(chosen):
        packed = [(i, int(targets[b, i])) for i in range(T) if targets[b, i] != IGNORE_INDEX]
        linear = []
        for p in answer_points(e.messages):
            n_points += 1
            ids, labels = answer_only_labels(p, tok)
            with torch.no_grad():
                lg = model(input_ids=torch.tensor([ids])).logits[0]
            linear += [(lg[i], labels[i + 1]) for i in range(len(ids) - 1) if labels[i + 1] != IGNORE_INDEX]
        assert [t for _, t in packed] == [t for _, t in linear]
        for (i, _), (lg, _) in zip(packed, linear):
            assert i >= T - keep  # every labelled logit lies in the kept tail
            torch.testing.assert_close(packed_logits[b, i - (T - keep)], lg, atol=1e-5, rtol=1e-5)
    assert n_points > len(chosen)  # the dialogues really had several answer points


def test_final_answer_only_packs_one_branch(setup):
    examples, tok, _ = setup
    msgs = next(e.messages for e in examples if len(e.messages) >= 4)
    one = branched_example(msgs, tok, every_turn=False)
    ids, labels = answer_only_labels(msgs, tok)
    assert one.n_answers == 1 and list(one.input_ids) == ids
    assert [t for t in one.targets if t != IGNORE_INDEX] == [t for t in labels if t != IGNORE_INDEX]


def test_one_tokenization_equals_rendering_each_answer_point(setup):
    examples, tok, _ = setup
    for e in examples[:8]:
        slow = pack_branches([answer_only_labels(p, tok) for p in answer_points(e.messages)])
        assert branched_example(e.messages, tok) == slow


def test_one_branch_loss_is_trls_own_loss(setup, tmp_path):
    """With the final answer only, the branch trainer's loss on a batch is TRL's SFTTrainer cross-entropy on the same
    examples tokenized plainly (input_ids, labels): same tokens, same mean. With every answer point it differs (more
    answers in the loss)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from promed.train.branches import branch_trainer_class

    examples, tok, model = setup
    exs = examples[:6]
    plain = [answer_only_labels(e.messages, tok) for e in exs]
    plain_ds = Dataset.from_dict({"input_ids": [i for i, _ in plain], "labels": [lab for _, lab in plain]})
    rows = [branched_example(e.messages, tok, every_turn=False).as_row() for e in exs]
    every = [branched_example(e.messages, tok).as_row() for e in exs]
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], bf16=False, per_device_train_batch_size=6)
    trl_tr = SFTTrainer(model=model, args=args, train_dataset=plain_ds, processing_class=tok)
    collate = BranchCollator(tok.pad_token_id)
    ours = branch_trainer_class()(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                  processing_class=tok, data_collator=collate)
    with torch.no_grad():
        ref = trl_tr.compute_loss(model, trl_tr.data_collator([plain_ds[i] for i in range(6)]))
        one = ours.compute_loss(model, collate(rows))
        many = ours.compute_loss(model, collate(every))
    assert float(one) == pytest.approx(float(ref), rel=1e-5)
    assert abs(float(many) - float(ref)) > 1e-4


@pytest.fixture(scope="module")
def known_setup():
    examples = [e for e in pretraining_examples(PretrainConfig(cases=12, known_share=1.0)) if e.points]
    out = {}
    for pretokenize in ("words", "lines"):
        cfg = SmallModelConfig(**{**TINY.__dict__, "pretokenize": pretokenize})
        out[pretokenize] = build_tokenizer(example_texts([e.chat for e in examples]), cfg)
    return examples, out


def test_known_facts_prefixes_in_one_tokenization_equal_rendering_each_prefix(known_setup):
    examples, toks = known_setup
    for tok in toks.values():
        for e in examples:
            fast = known_prefix_points(e.messages, len(e.points), tok)
            assert fast == [answer_only_labels(p, tok) for p in (*e.points, e.messages)]
            assert len(fast) == len(e.points) + 1 >= 2


def test_known_facts_prefix_branches_give_the_separate_examples_logits(known_setup):
    examples, toks = known_setup
    tok = toks["words"]
    model = build_model(tok, TINY).eval()
    ds, dropped = build_dataset(examples[:3], tok, max_len=1024, every_turn=True)
    assert dropped == 0
    batch = BranchCollator(tok.pad_token_id)([ds[i] for i in range(len(ds))])
    keep, targets = batch.pop("logits_to_keep"), batch.pop("targets")
    T = batch["input_ids"].shape[1]
    with torch.no_grad():
        packed_logits = model(**batch, logits_to_keep=keep).logits
    for b, e in enumerate(examples[:3]):
        packed = [i for i in range(T) if targets[b, i] != IGNORE_INDEX]
        linear = []
        for p in (*e.points, e.messages):
            ids, labels = answer_only_labels(p, tok)
            with torch.no_grad():
                lg = model(input_ids=torch.tensor([ids])).logits[0]
            linear += [lg[i] for i in range(len(ids) - 1) if labels[i + 1] != IGNORE_INDEX]
        assert len(packed) == len(linear) > len(e.points)
        for i, lg in zip(packed, linear):
            torch.testing.assert_close(packed_logits[b, i - (T - keep)], lg, atol=1e-5, rtol=1e-5)
