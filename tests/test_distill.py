"""Soft targets (promed.train.distill): the option token is found, its target is the exact posterior, and with a
one-hot target the loss is exactly TRL's hard cross-entropy."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from promed.data.synthclinic import BayesScorer
from promed.train.data import IGNORE_INDEX
from promed.train.distill import SoftTargetError, option_token_index, soft_target
from promed.train.pretrain import (
    PretrainConfig, answer_only_labels, build_dataset, pretraining_cases, pretraining_examples,
)
from promed.train.small_model import SmallModelConfig, build_model, build_tokenizer

LINES = SmallModelConfig(vocab_size=4096, pretokenize="lines", hidden_size=32, num_layers=1, num_heads=1,
                         num_kv_heads=1, intermediate_size=64, max_position_embeddings=512)


@pytest.fixture(scope="module")
def data():
    exs = pretraining_examples(PretrainConfig(cases=120, labels="soft"))
    tok = build_tokenizer([m["content"] for e in exs for m in e.messages], LINES)
    return exs, tok


def test_option_token_index():
    assert option_token_index([[5, 7, 1], [5, 8, 1], [5, 9, 1]]) == 1
    with pytest.raises(SoftTargetError, match="different token lengths"):
        option_token_index([[5, 7], [5, 8, 9]])
    with pytest.raises(SoftTargetError, match="exactly one"):
        option_token_index([[5, 7, 1], [6, 8, 1]])
    with pytest.raises(SoftTargetError, match="exactly one"):
        option_token_index([[5, 7], [5, 7]])


def test_soft_target_is_the_posterior_at_the_option_token(data):
    exs, tok = data
    bayes = BayesScorer()
    for ex in exs[:60]:
        ids, labels = answer_only_labels(ex.messages, tok)
        before = list(labels)
        t = soft_target(ids, labels, ex.answers, ex.gold, ex.probs, tok)
        # the logit at pos predicts the gold's option token, whose hard label alone was turned off
        assert ids[t.pos + 1] == t.ids[ex.gold] and len(set(t.ids)) == len(ex.answers)
        assert [i for i, (a, b) in enumerate(zip(before, labels)) if a != b] == [t.pos + 1]
        assert labels[t.pos + 1] == IGNORE_INDEX and before[t.pos + 1] == ids[t.pos + 1]
        # each option token decodes to that option's name: the answer turn is ANSWER: <option text>
        assert [tok.decode([i]) for i in t.ids] == [a.removeprefix("ANSWER: ") for a in ex.answers]
        assert sum(t.probs) == pytest.approx(1.0) and min(t.probs) >= 0.0
    # and the probabilities are the exact posterior of the facts shown (here: a known-facts example)
    ex = next(e for e in exs if "Known facts:" in e.messages[1]["content"])
    case_id = ex.id.rsplit("/", 1)[0]
    case = next(c for c in pretraining_cases(PretrainConfig(cases=120)) if c.id == case_id)
    shown = [f.id for f in case.facts if f"- {f.text}" in ex.messages[1]["content"]]
    assert np.allclose(ex.probs, bayes.probs([case.query(shown)])[0])


def test_words_tokenizer_is_refused_with_advice(data):
    exs, _ = data
    words = build_tokenizer([m["content"] for e in exs for m in e.messages], replace(LINES, pretokenize="words"))
    ex = next(e for e in exs if any(len(words(a, add_special_tokens=False)["input_ids"]) > 3 for a in e.answers))
    ids, labels = answer_only_labels(ex.messages, words)
    with pytest.raises(SoftTargetError, match="pretokenize='lines'"):
        soft_target(ids, labels, ex.answers, ex.gold, ex.probs, words)


def test_one_hot_soft_loss_equals_trls_hard_loss(data, tmp_path):
    """With the posterior replaced by the gold one-hot, the soft-target trainer's loss is the hard-label loss on the
    same batch (same tokens, same mean; that one equals TRL's own, tests/test_branches.py), and a real posterior
    gives a different, finite loss."""
    from trl import SFTConfig
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from promed.train.distill import SoftTargetCollator, soft_target_trainer_class

    exs, tok = data
    batch_exs = exs[:6]
    one_hot = [replace(e, probs=tuple(float(i == e.gold) for i in range(len(e.answers)))) for e in batch_exs]
    hard_ds, _ = build_dataset(batch_exs, tok, 512, soft=False)
    soft_ds, _ = build_dataset(one_hot, tok, 512, soft=True)
    post_ds, _ = build_dataset(batch_exs, tok, 512, soft=True)
    model = build_model(tok, LINES)
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], bf16=False, per_device_train_batch_size=6)
    from promed.train.branches import BranchCollator, branch_trainer_class

    hard_collate = BranchCollator(tok.pad_token_id)  # hard labels: the packed rows (one branch each here)
    hard_tr = branch_trainer_class()(model=model, args=args, train_dataset=hard_ds, processing_class=tok,
                                     data_collator=hard_collate)
    collate = SoftTargetCollator(DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id))
    soft_tr = soft_target_trainer_class()(model=model, args=args, train_dataset=soft_ds, processing_class=tok,
                                         data_collator=collate)
    model.eval()
    with torch.no_grad():
        hard = hard_tr.compute_loss(model, hard_collate([hard_ds[i] for i in range(6)]))
        soft = soft_tr.compute_loss(model, collate([soft_ds[i] for i in range(6)]))
        post = soft_tr.compute_loss(model, collate([post_ds[i] for i in range(6)]))
    assert float(soft) == pytest.approx(float(hard), rel=1e-5)
    assert np.isfinite(float(post)) and abs(float(post) - float(hard)) > 1e-4
