"""Soft targets (promed.train.distill): the posterior spread over the answer's tokens by a trie over the options,
placed at every answer branch, each branch with the exact posterior of what it sees; with a one-hot posterior the
loss is exactly the hard one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from promed.data.synthclinic import BayesScorer
from promed.train.branches import IGNORE_INDEX, BranchCollator, branch_trainer_class
from promed.train.distill import SoftTargetError, answer_sequences, answer_soft_targets
from promed.train.pretrain import (
    PretrainConfig, build_dataset, pretraining_cases, pretraining_examples, revealed_at_answer_points,
)
from promed.train.small_model import SmallModelConfig, build_model, build_tokenizer

TINY = SmallModelConfig(vocab_size=600, hidden_size=32, num_layers=1, num_heads=1, num_kv_heads=1,
                        intermediate_size=64, max_position_embeddings=512)
CFG = PretrainConfig(cases=60, labels="soft")


@pytest.fixture(scope="module")
def data():
    exs = pretraining_examples(CFG)
    tok = build_tokenizer([m["content"] for e in exs for m in e.messages], TINY)
    return exs, tok


def test_answer_soft_targets_follow_the_trie_of_the_options():
    answers = [[1, 2, 5, 9], [1, 2, 6, 9], [1, 2, 5, 7, 9]]
    got = answer_soft_targets(answers, [0.5, 0.3, 0.2], gold=0)
    assert [t for t, _, _ in got] == [2, 3]  # shared tokens carry no soft target
    (_, ids2, p2), (_, ids3, p3) = got
    assert ids2 == (5, 6) and p2 == pytest.approx((0.7, 0.3))  # options 0 and 2 share token 5
    assert ids3 == (7, 9) and p3 == pytest.approx((0.2 / 0.7, 0.5 / 0.7))  # then they part
    assert answer_soft_targets(answers, [1.0, 0.0, 0.0], gold=0) == []  # one-hot: the hard label everywhere
    with pytest.raises(SoftTargetError):
        answer_soft_targets(answers, [0.5, 0.5], gold=0)
    with pytest.raises(SoftTargetError):
        answer_soft_targets(answers, [0.0, 0.0, 0.0], gold=0)


def test_answer_sequences_need_the_gold_tokenized_alone_as_in_context():
    class Tok:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [ord(c) for c in text]}

    assert answer_sequences(["ab", "c"], 0, [97, 98, 0], Tok()) == [[97, 98, 0], [99, 0]]
    with pytest.raises(SoftTargetError, match="differently"):
        answer_sequences(["ab", "c"], 0, [97, 99, 0], Tok())
    seen = []  # a given encoder replaces the tokenizer call (build_dataset passes a memoised one)
    encode = lambda text: seen.append(text) or [ord(c) for c in text]  # noqa: E731
    assert answer_sequences(["ab", "c"], 0, [97, 98, 0], None, encode) == [[97, 98, 0], [99, 0]]
    assert seen == ["ab", "c"]


def test_every_branch_gets_the_posterior_of_what_it_sees(data):
    exs, tok = data
    bayes = BayesScorer()
    cases = {c.id: c for c in pretraining_cases(CFG)}
    ds, dropped = build_dataset(exs, tok, 1024, soft=True, every_turn=True)
    assert dropped == 0 and len(ds) == len(exs)
    n_known = n_dialogue = 0
    for ex, row in zip(exs, ds):
        case = cases[ex.id.rsplit("/", 1)[0]]
        user = ex.messages[1]["content"]
        if ex.points:  # known facts: point k sees the first k listed facts
            listed = [f.id for line in user.split("\n") if line.startswith("- ")
                      for f in case.facts if f.text == line[2:]]
            shown = [listed[:k] for k in range(len(listed) + 1)]
            n_known += 1
        else:
            shown = revealed_at_answer_points(case, ex.messages)
            n_dialogue += len(shown) > 1
        assert np.allclose(ex.point_probs, bayes.probs([case.query(s) for s in shown]))
        # the soft positions predict labelled tokens, and the gold's token is always a candidate
        for p, ids, q in zip(row["soft_pos"], row["soft_ids"], row["soft_probs"]):
            assert row["targets"][p] != IGNORE_INDEX and row["targets"][p] in ids
            assert sum(q) == pytest.approx(1.0)
        # each branch's first soft target is the posterior itself where the options' names start differently
        name_tok = [tok(a, add_special_tokens=False)["input_ids"][2] for a in ex.answers]  # after "ANSWER", ":"
        if len(set(name_tok)) == len(ex.answers):
            assert len(row["soft_pos"]) == len(ex.point_probs)
            for ids, q, post in zip(row["soft_ids"], row["soft_probs"], ex.point_probs):
                assert np.allclose([q[ids.index(t)] if t in ids else 0.0 for t in name_tok], post)
    assert n_known and n_dialogue


def test_one_hot_soft_loss_equals_the_hard_loss(data, tmp_path):
    """With every posterior replaced by the gold one-hot, the trainer's loss is the hard-label loss on the same batch
    (that one equals TRL's own, tests/test_branches.py), and the real posteriors give a different, finite loss."""
    from trl import SFTConfig

    exs, tok = data
    batch_exs = exs[:6]
    one_hot = [replace(e, point_probs=tuple(tuple(float(i == e.gold) for i in range(len(e.answers)))
                                            for _ in e.point_probs)) for e in batch_exs]
    hard_ds, _ = build_dataset(batch_exs, tok, 512, soft=False, every_turn=True)
    one_ds, _ = build_dataset(one_hot, tok, 512, soft=True, every_turn=True)
    post_ds, _ = build_dataset(batch_exs, tok, 512, soft=True, every_turn=True)
    model = build_model(tok, TINY).eval()
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], bf16=False, per_device_train_batch_size=6)
    collate = BranchCollator(tok.pad_token_id)
    trainer = branch_trainer_class()(model=model, args=args, train_dataset=hard_ds, processing_class=tok,
                                     data_collator=collate)
    with torch.no_grad():
        hard, one, post = (float(trainer.compute_loss(model, collate([d[i] for i in range(6)])))
                           for d in (hard_ds, one_ds, post_ds))
    assert sum(len(r) for r in post_ds["soft_pos"]) > 6  # several soft positions: every branch has one
    assert one == pytest.approx(hard, rel=1e-6)
    assert np.isfinite(post) and abs(post - hard) > 1e-4
