"""Stage 0 (promed.train.pretrain, promed pretrain): data from the train split only, rendered as consultations with
the loss on the answer turn, trained through SFT; tiny models, seconds."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from promed.data.synthclinic import generate_cases
from promed.doctor.actions import parse_action
from promed.doctor.policy import view_to_chat
from promed.env.consultation import DialogueState, dialogue_view
from promed.train.data import IGNORE_INDEX
from promed.train.pretrain import (
    PretrainConfig,
    build_dataset,
    answer_only_labels,
    answer_text,
    pretraining_cases,
    pretraining_examples,
    prompt_chat,
    render_example,
    run_pretrain,
)
from promed.train.small_model import SmallModelConfig, build_tokenizer
from promed.types import Answer, Case, Fact, Option

TINY = SmallModelConfig(vocab_size=400, hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=2,
                        intermediate_size=128, max_position_embeddings=512)


def _cfg(tmp: Path, **kw) -> PretrainConfig:
    base = PretrainConfig(cases=24, subsets_per_case=2, small=TINY, labels="hard", batch_size=8, max_steps=6,
                          save_steps=3,
                          logging_steps=1, warmup=0.0, num_threads=1, progress_bar=False, out=tmp, resume=False)
    return replace(base, **kw)


# ---- data ---------------------------------------------------------------------------------------------------------


def _key(case: Case) -> str:
    """Content hash without the id (ids differ across splits by construction, contents must)."""
    return replace(case, id="").content_hash()


def _loose_key(case: Case) -> tuple:
    """The clinical content without option order or fact order."""
    return (case.initial, frozenset(o.text for o in case.options), case.option(case.answer).text,
            frozenset(f.text for f in case.facts))


def test_pretraining_cases_are_disjoint_from_val_and_test():
    cases = pretraining_cases(PretrainConfig(cases=1500))
    cases += generate_cases("train", 500, seed=7)
    held = generate_cases("val", 200, seed=0) + generate_cases("test", 500, seed=0)
    held += generate_cases("val", 200, seed=1) + generate_cases("test", 300, seed=1)
    assert all(c.id.startswith("sc-train-") for c in cases)
    assert {_key(c) for c in cases}.isdisjoint({_key(c) for c in held})
    assert {_loose_key(c) for c in cases}.isdisjoint({_loose_key(c) for c in held})
    # a new seed is a new stream of cases (any number can be drawn)
    assert {_key(c) for c in generate_cases("train", 200, seed=1)}.isdisjoint(
        {_key(c) for c in generate_cases("train", 200, seed=0)})


def test_examples_are_consultations_the_doctor_sees_with_every_subset_size():
    cfg = PretrainConfig(cases=300, subsets_per_case=2)
    cases = pretraining_cases(cfg)
    exs = pretraining_examples(cfg, cases)
    assert len(exs) == 600
    assert exs == pretraining_examples(cfg, cases)  # deterministic
    by_id = {c.id: c for c in cases}
    sizes, layouts = set(), set()
    for ex in exs:
        case = by_id[ex.id.split("/")[0]]
        msgs = list(ex.messages)
        assert msgs[-1]["role"] == "assistant"
        assert parse_action(msgs[-1]["content"], case.options) == Answer(case.answer)  # the strict grammar
        assert msgs[-1]["content"] == answer_text(case, case.answer, cfg.answer_format)
        asks = [m for m in msgs[:-1] if m["role"] == "assistant"]
        assert all(m["content"].startswith("ASK: ") for m in asks)
        listed = msgs[1]["content"].count("\n- ")
        layouts.add("dialogue" if asks else "known" if listed else "none")
        sizes.add(listed if listed else len(asks))
        assert len(asks) <= cfg.dialogue_max_turns
    assert layouts == {"dialogue", "known", "none"}
    assert set(range(0, 13)) <= sizes  # subsets of every size, from none up


def test_rendering_is_view_to_chat_of_the_consultation_state():
    case = generate_cases("train", 1, seed=3)[0]
    known = render_example(case, [0, 2], known=True, budget=5)
    view = dialogue_view(case, DialogueState(known=frozenset({0, 2})), 5)
    assert known[:-1] == [dict(m) for m in view_to_chat(view)]  # reveal_all-style: the facts listed up front
    swapped = render_example(case, [2, 0], known=True, budget=5)[1]["content"]  # listed in the order given
    assert swapped.index(case.facts[2].text) < swapped.index(case.facts[0].text)
    assert prompt_chat(case, (), budget=0)[-1]["content"].endswith("Give your final answer now.")
    dia = render_example(case, [1, 3], known=False, budget=5)
    assert [m["content"] for m in dia if m["role"] == "assistant"][:-1] == [
        f"ASK: {q}" for q in (_q(case, 1), _q(case, 3))]
    assert dia[3]["content"].startswith(case.facts[1].text) and dia[5]["content"].startswith(case.facts[3].text)


def test_known_facts_examples_carry_every_prefix_of_their_list_as_an_answer_point():
    cfg = PretrainConfig(cases=40, known_share=1.0)
    exs = pretraining_examples(cfg)
    with_points = [e for e in exs if e.points]
    assert with_points and all(len(e.points) == e.messages[1]["content"].count("\n- ") for e in with_points)
    for e in with_points[:10]:
        full = e.messages[1]["content"]
        head, listed = full.split("\nKnown facts:\n")
        lines = listed.split("\n")[:-1]  # the facts; the budget line last
        for k, p in enumerate(e.points):  # point k: the first k facts of the same list, the same answer
            assert p[-1] == e.messages[-1] and p[0] == e.messages[0]
            want = head + ("\nKnown facts:\n" + "\n".join(lines[:k]) if k else "") + "\n" + full.split("\n")[-1]
            assert p[1]["content"] == want
    # off: with --no-known-prefixes, with soft labels, or without every-turn answers
    for off in (dict(known_prefixes=False), dict(answer_every_turn=False)):
        assert not any(e.points for e in pretraining_examples(PretrainConfig(cases=10, known_share=1.0, **off)))


def _q(case, i):
    from promed.data.synthclinic import question_for_fact

    return question_for_fact(case.facts[i])


def test_loss_is_on_the_answer_turn_only():
    cfg = PretrainConfig(cases=20, known_share=0.0)
    exs = pretraining_examples(cfg)
    tok = build_tokenizer([m["content"] for e in exs for m in e.messages], TINY)
    ex = next(e for e in exs if sum(m["role"] == "assistant" for m in e.messages) >= 3)
    ids, labels = answer_only_labels(ex.messages, tok)
    kept = [i for i, lab in zip(ids, labels) if lab != IGNORE_INDEX]
    assert tok.decode(kept) == ex.messages[-1]["content"] + "<|end|>"
    assert all(lab in (IGNORE_INDEX, i) for i, lab in zip(ids, labels))


def test_config_checks_its_values():
    with pytest.raises(ValueError, match="answer-format"):
        PretrainConfig(answer_format="number")
    with pytest.raises(ValueError, match="known-share"):
        PretrainConfig(known_share=1.5)
    with pytest.raises(ValueError, match="--cases"):
        PretrainConfig(cases=0)
    with pytest.raises(ValueError, match="--data-workers"):
        PretrainConfig(data_workers=0)


# ---- training -----------------------------------------------------------------------------------------------------

DISEASES = ("Flu", "Gout", "Ulcer", "Asthma")
MARKERS = ("red", "blue", "green", "yellow")  # marker colour k names disease k


def _toy_case(i: int, rng: random.Random) -> Case:
    order = rng.sample(range(4), 4)
    gold = rng.randrange(4)
    options = tuple(Option("ABCD"[j], DISEASES[d]) for j, d in enumerate(order))
    return Case(id=f"toy-{i}", initial=f"A {20 + i % 50}-year-old presents with a cough.",
                facts=tuple(Fact(k, f"The {what} is {MARKERS[gold]}.")
                            for k, what in enumerate(("marker", "stain", "swab"))),
                question="Which is the most likely diagnosis?",
                options=options, answer="ABCD"[order.index(gold)])


def test_a_small_run_learns_a_toy_rule_and_loads_as_a_doctor(tmp_path):
    """The gold disease is named by the colour in the facts (three facts say it); after 400 steps (~25 s) the
    doctor answers it far above chance (about 1.0; chance 0.25), from a checkpoint that load_llm("hf:...") serves
    and LLMDoctor answers with."""
    from promed.doctor.policy import LLMDoctor
    from promed.llm import load_llm

    rng = random.Random(0)
    train = [_toy_case(i, rng) for i in range(1200)]
    test = [_toy_case(2000 + i, rng) for i in range(60)]
    cfg = _cfg(tmp_path / "toy", cases=len(train), subsets_per_case=1, known_share=1.0, max_steps=400,
               batch_size=16, learning_rate=5e-3, save_steps=1000, logging_steps=10)
    res = run_pretrain(cfg, cases=train)
    assert res.sft.completed and res.sft.steps == 400 and (tmp_path / "toy" / "loss.png").is_file()
    assert res.sft.losses[-1] < 0.5 * res.sft.losses[0]

    llm = load_llm(f"hf:{tmp_path / 'toy'}")
    prompts = [llm.render(prompt_chat(c, (0, 1, 2))) for c in test]
    probs = llm.score_options(prompts, [[answer_text(c, o.letter) for o in c.options] for c in test])
    acc = np.mean([int(np.argmax(p)) == c.gold_index for p, c in zip(probs, test)])
    assert acc >= 0.6  # chance: 0.25

    # the same doctor as the SIG scorer (--scorer doctor:hf:CKPT): its own prompt and answer turns, normalised
    from promed.runtime import make_scorer
    from promed.sig.value import ScorerValue

    scorer = make_scorer(f"doctor:hf:{tmp_path / 'toy'}")
    assert scorer.id == f"doctor:{llm.name}:name"
    rows = scorer.probs([c.query((0, 1, 2)) for c in test])
    assert all(abs(r.sum() - 1.0) < 1e-9 for r in rows)
    assert np.mean([int(np.argmax(r)) == c.gold_index for r, c in zip(rows, test)]) >= 0.6
    c0 = test[0]  # the very prompt (no questions left) and answer turns it was trained on
    p0 = llm.score_options([llm.render(prompt_chat(c0, (0, 1, 2), budget=0))],
                           [[answer_text(c0, o.letter) for o in c0.options]])[0]
    assert np.allclose(rows[0], p0, atol=1e-6)
    value = ScorerValue(scorer)
    v = np.array([value.v(c, [frozenset(), frozenset({0, 1, 2})]) for c in test[:20]])
    assert v[:, 1].mean() > v[:, 0].mean() + 0.2  # the facts raise the gold's probability

    doctor = LLMDoctor(llm, "pretrained")
    views = [dialogue_view(c, DialogueState(known=frozenset({0, 1, 2})), 0) for c in test]
    gens = doctor.act(views, [np.random.default_rng(i) for i in range(len(views))])
    actions = [parse_action(g.text, c.options) for g, c in zip(gens, test)]
    assert np.mean([isinstance(a, Answer) for a in actions]) >= 0.9  # it answers, in the grammar
    assert np.mean([isinstance(a, Answer) and a.letter == c.answer for a, c in zip(actions, test)]) >= 0.4


def test_packed_rows_longer_than_max_len_train_whole(tmp_path):
    """Branches make a row longer than the positions it spans; max_len bounds the positions, and the trainer must
    not cut the row (a cut input_ids with whole branch columns failed in the collator)."""
    from promed.train.small_model import build_tokenizer

    cfg = _cfg(tmp_path / "long", known_share=1.0, max_len=320, max_steps=2, labels="soft")
    exs = pretraining_examples(cfg)
    tok = build_tokenizer([m["content"] for e in exs for m in e.messages], TINY)
    ds, _ = build_dataset(exs, tok, cfg.max_len, soft=True, every_turn=True)
    assert max(ds["length"]) > cfg.max_len >= max(max(p) for p in ds["position_ids"]) + 1
    res = run_pretrain(cfg)
    assert res.sft.completed and res.sft.steps == 2


@pytest.mark.parametrize("labels,cases", [("hard", 24), ("soft", 24), ("soft", 8)])
def test_interrupted_then_resumed_run_equals_uninterrupted(tmp_path, labels, cases):
    """24 cases: one epoch of 6 steps; 8 cases: 2 steps per epoch, so the resumed run crosses epoch boundaries
    (the length-grouped order must depend on (seed, epoch) only, not on torch's global generator)."""
    from safetensors.torch import load_file

    cfg = _cfg(tmp_path / "full", labels=labels, cases=cases)
    full = run_pretrain(cfg)
    part_cfg = replace(cfg, out=tmp_path / "part")
    part = run_pretrain(replace(part_cfg, stop_after_steps=3))
    assert not part.sft.completed and part.sft.steps == 3
    resumed = run_pretrain(replace(part_cfg, resume=True))
    assert resumed.sft.resumed_from is not None and resumed.sft.resumed_from.name == "checkpoint-3"
    assert resumed.sft.completed and resumed.sft.steps == 6
    assert resumed.sft.loss_steps == full.sft.loss_steps == tuple(range(1, 7))
    assert resumed.sft.losses == pytest.approx(full.sft.losses, rel=1e-4)
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "part" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_command_writes_manifest_and_resumes(tmp_path):
    from typer.testing import CliRunner

    from promed.cli import app

    conf = tmp_path / "pre.toml"
    conf.write_text("cases = 16\nmax_steps = 2\nbatch_size = 8\nsave_steps = 1\nnum_threads = 1\nlabels = 'hard'\n"
                    "[small]\nvocab_size = 400\nhidden_size = 32\nnum_layers = 1\nnum_heads = 1\nnum_kv_heads = 1\n"
                    "intermediate_size = 64\nmax_position_embeddings = 512\n")
    out = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(app, ["pretrain", "--config", str(conf), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    man = json.loads((out / "manifest.json").read_text())
    assert man["stage"] == "pretrain" and man["config"]["cases"] == 16 and man["config"]["small"]["hidden_size"] == 32
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] and summary["steps"] == 2
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    model_time = (out / "model.safetensors").stat().st_mtime_ns
    again = runner.invoke(app, ["pretrain", "--config", str(conf), "--out", str(out), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert "already complete" in again.output  # a finished run is not repeated
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (out / "model.safetensors").stat().st_mtime_ns == model_time
    other = runner.invoke(app, ["pretrain", "--config", str(conf), "--out", str(out), "--cases", "17"])
    assert other.exit_code == 2 and "other settings" in other.output


def test_length_grouped_order_depends_on_seed_and_epoch_only():
    from promed.train.branches import epoch_length_grouped_sampler

    sampler_cls = epoch_length_grouped_sampler()
    lengths = [int(x) for x in np.random.default_rng(0).integers(5, 200, size=300)]

    def order(seed, epoch):
        s = sampler_cls(8, lengths=lengths, seed=seed)
        torch.manual_seed(epoch * 7 + 1)  # the global generator must not matter
        s.set_epoch(epoch)
        return list(s)

    assert order(0, 0) == order(0, 0) and order(0, 3) == order(0, 3)
    assert order(0, 0) != order(0, 1) and order(0, 0) != order(1, 0)
    assert sorted(order(0, 2)) == list(range(300))


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU has no native bf16")
def test_bf16_on_cpu_autocasts_and_keeps_float32_weights(tmp_path):
    """--bf16 without CUDA is the Trainer's CPU autocast (it needs use_cpu): the same run in bf16 takes the same
    steps to a loss close to float32's but not equal to it (so autocast was on), and saves float32 weights."""
    from safetensors.torch import load_file

    cfg = _cfg(tmp_path / "f32", max_steps=3, labels="soft")
    f32 = run_pretrain(cfg)
    b16 = run_pretrain(replace(cfg, out=tmp_path / "b16", bf16=True))
    assert b16.sft.completed and b16.sft.loss_steps == f32.sft.loss_steps == (1, 2, 3)
    assert b16.sft.losses[0] == pytest.approx(f32.sft.losses[0], rel=0.05)
    assert b16.sft.losses != f32.sft.losses
    weights = load_file(tmp_path / "b16" / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}
    assert json.loads((tmp_path / "b16" / "train_log.json").read_text())["config"]["bf16"] is True


def test_rows_built_in_worker_processes_equal_one_process(tmp_path, monkeypatch):
    """build_dataset(workers=2) tokenizes two chunks in forked processes: the dataset is the one of one process,
    row for row (soft columns and the known-facts prefix branches included)."""
    import sys

    from promed.train.pretrain import tokens as pretrain

    if not sys.platform.startswith("linux"):
        pytest.skip("workers are forked on Linux only: build_dataset stays in-process here")
    cfg = _cfg(tmp_path, cases=30, labels="soft")
    exs = pretraining_examples(cfg)
    tok = build_tokenizer([m["content"] for e in exs for m in e.messages], TINY)
    one, dropped_one = build_dataset(exs, tok, 1024, soft=True, every_turn=True)
    monkeypatch.setattr(pretrain, "PARALLEL_MIN_EXAMPLES", 10)
    from concurrent.futures import ProcessPoolExecutor

    chunks = []
    real_map = ProcessPoolExecutor.map

    def spy(pool, fn, *iterables, **kw):
        iterables = [list(it) for it in iterables]
        chunks.extend(len(c) for c in iterables[0])
        return real_map(pool, fn, *iterables, **kw)

    monkeypatch.setattr(ProcessPoolExecutor, "map", spy)
    two, dropped_two = build_dataset(exs, tok, 1024, soft=True, every_turn=True, workers=2)
    assert chunks == [30, 30]  # 60 examples in two chunks, each tokenized by a worker process
    assert len(one) == len(exs) - dropped_one and dropped_two == dropped_one
    assert one.to_dict() == two.to_dict()
