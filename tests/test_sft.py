"""Stage 1 SFT (promed.train.sft) and the synthclinic-small builder, on a tiny Llama built from scratch."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
import torch

from promed.llm.base import SpecError
from promed.train.data import IGNORE_INDEX, ChatExample, load_chat_jsonl, tokenize_with_mask, write_chat_jsonl
from promed.train.sft import SFTRunConfig, build_dataset, run_sft
from promed.train.small_model import SmallModelConfig, build_small_doctor, n_params

TINY = SmallModelConfig(vocab_size=320, hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=2,
                        intermediate_size=128, max_position_embeddings=256)
SYMPTOMS = ["fever", "cough", "rash", "headache", "nausea", "chest pain", "fatigue", "dizziness"]


def _trajectory(i: int, rng: random.Random) -> ChatExample:
    sym = rng.sample(SYMPTOMS, 4)
    answer = "ABCD"[i % 4]
    msgs = [{"role": "system", "content": "You are a doctor. Ask, then answer."},
            {"role": "user", "content": f"Case {i}: a patient with {sym[0]}. Options: A. flu B. cold C. gout D. ulcer"}]
    for s in sym[1:3]:
        msgs.append({"role": "assistant", "content": f"ASK: Any {s}?"})
        msgs.append({"role": "user", "content": f"Yes, {s}." if rng.random() < 0.5 else f"No {s}."})
    msgs.append({"role": "assistant", "content": f"ANSWER: {answer}"})
    return ChatExample(id=f"t{i}", messages=tuple(msgs), sig=(0.1, 0.2), reward=1.0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("sft")
    rng = random.Random(0)
    exs = [_trajectory(i, rng) for i in range(8)]
    return write_chat_jsonl(exs, d / "train.jsonl"), write_chat_jsonl(exs[:2], d / "two.jsonl")


def _cfg(**kw) -> SFTRunConfig:
    base = SFTRunConfig(small=TINY, batch_size=4, logging_steps=1, save_steps=50, max_len=256, warmup=0.0,
                        progress_bar=False, num_threads=1, resume=False)
    return replace(base, **kw)


def _generate(model, tok, messages) -> tuple[str, list[int]]:
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False)
    new = out[0, len(ids):].tolist()
    return tok.decode(new, skip_special_tokens=True), new


def test_build_small_doctor_saves_a_loadable_chat_model(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    texts = [m["content"] for i in range(20) for m in _trajectory(i, random.Random(i)).messages]
    out = build_small_doctor(texts, tmp_path / "m", SmallModelConfig())
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert 0.5e6 < n_params(model) < 2e6  # the default synthclinic-small is ~1M parameters
    assert tok.eos_token == "<|end|>" and model.generation_config.eos_token_id == tok.eos_token_id
    unseen = "Zxqv naïve 😷 résumé?"  # byte-level: any text round-trips, no unknown token
    assert tok.decode(tok(unseen, add_special_tokens=False)["input_ids"]) == unseen
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert prompt == "<|bos|><|user|>hi<|end|><|assistant|>"


def test_loss_is_mean_cross_entropy_over_doctor_tokens_only(data, tmp_path):
    """Step 1's logged loss (whole set in one batch, before any update) equals the mean token cross-entropy of the
    untrained base over the assistant tokens, and differs from the full-sequence loss."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    train, _ = data
    res = run_sft(train, tmp_path / "o", _cfg(max_steps=1, batch_size=8, learning_rate=1e-9))
    tok = AutoTokenizer.from_pretrained(tmp_path / "o" / "base")
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "o" / "base")
    nll_doc = n_doc = nll_all = n_all = 0.0
    with torch.no_grad():
        for ex in load_chat_jsonl(train):
            ids, labels = tokenize_with_mask(ex.messages, tok)
            logp = torch.log_softmax(base(torch.tensor([ids])).logits[0, :-1].float(), -1)
            tgt = torch.tensor(ids[1:])
            tok_nll = -logp.gather(1, tgt[:, None])[:, 0]
            doc = torch.tensor(labels[1:]) != IGNORE_INDEX
            nll_doc += tok_nll[doc].sum().item()
            n_doc += doc.sum().item()
            nll_all += tok_nll.sum().item()
            n_all += len(tgt)
    assert res.losses[0] == pytest.approx(nll_doc / n_doc, rel=1e-4)
    assert abs(nll_doc / n_doc - nll_all / n_all) > 1e-3


def test_overfit_reproduces_doctor_turns_and_checkpoint_loads(data, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, two = data
    out = tmp_path / "o"
    res = run_sft(two, out, _cfg(max_steps=150, batch_size=2, learning_rate=3e-3, logging_steps=10))
    assert res.completed and res.steps == 150 and res.model_dir == out
    assert res.losses[-1] < 0.1 * res.losses[0]
    assert (out / "loss.png").stat().st_size > 0
    log = json.loads((out / "train_log.json").read_text())
    assert log["result"]["steps"] == 150 and log["config"]["model"] == "synthclinic-small"

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    for ex in load_chat_jsonl(two):
        msgs = list(ex.messages)
        for k, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            text, new = _generate(model, tok, msgs[:k])
            assert text == m["content"]
            assert new[-1] == tok.eos_token_id  # it learned to stop after one turn


def test_interrupted_then_resumed_run_equals_uninterrupted(data, tmp_path):
    train, _ = data
    cfg = _cfg(max_steps=8, batch_size=2, save_steps=3, learning_rate=3e-3)
    full = run_sft(train, tmp_path / "full", cfg)

    part = run_sft(train, tmp_path / "part", replace(cfg, stop_after_steps=5))
    assert not part.completed and part.steps == 5 and part.model_dir.name == "checkpoint-5"
    assert not (tmp_path / "part" / "model.safetensors").exists()  # no final model for an unfinished run
    resumed = run_sft(train, tmp_path / "part", replace(cfg, resume=True))
    assert resumed.resumed_from is not None and resumed.resumed_from.name == "checkpoint-5"
    assert resumed.completed and resumed.steps == 8
    assert resumed.loss_steps == full.loss_steps == tuple(range(1, 9))
    assert resumed.losses == pytest.approx(full.losses, rel=1e-4)

    from safetensors.torch import load_file

    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "part" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)

    again = run_sft(train, tmp_path / "part", replace(cfg, resume=True))  # finished run: nothing left to do
    assert again.steps == 8 and again.resumed_from.name == "checkpoint-8"


def test_lora_trains_and_merges_only_the_target_modules(data, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    train, _ = data
    out = tmp_path / "o"
    res = run_sft(train, out, _cfg(lora=True, lora_r=4, lora_alpha=8, lora_dropout=0.0,
                                   lora_target_modules=("q_proj", "v_proj"), max_steps=20, learning_rate=1e-2))
    assert res.completed and res.losses[-1] < res.losses[0]
    assert not (out / "adapter_config.json").exists()  # merged: a plain model
    AutoModelForCausalLM.from_pretrained(out)
    base, tuned = load_file(out / "base" / "model.safetensors"), load_file(out / "model.safetensors")
    assert base.keys() == tuned.keys()
    changed = {k for k in base if not torch.equal(base[k], tuned[k])}
    assert changed and all(("q_proj" in k or "v_proj" in k) for k in changed)


def test_truncation_drops_examples_without_doctor_tokens(data, tmp_path):
    from transformers import AutoTokenizer

    train, _ = data
    exs = load_chat_jsonl(train)
    tok_dir = build_small_doctor([m["content"] for e in exs for m in e.messages], tmp_path / "b", TINY)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    firsts = [next(j for j, lab in enumerate(tokenize_with_mask(e.messages, tok)[1]) if lab != IGNORE_INDEX)
              for e in exs]
    max_len = min(firsts) + 1
    ds, n_trunc, n_drop = build_dataset(exs, tok, max_len=max_len)
    assert n_trunc == len(exs)
    assert n_drop == sum(f >= max_len for f in firsts) and len(ds) == len(exs) - n_drop
    assert all(len(x) == max_len for x in ds["input_ids"])


@pytest.mark.parametrize("spec", ["tiny", "openai:m@http://localhost:1", "nonsense", "hf:/no/such/dir"])
def test_unusable_model_spec_is_a_spec_error(data, tmp_path, spec):
    with pytest.raises(SpecError):
        run_sft(data[0], tmp_path / "o", _cfg(model=spec))
