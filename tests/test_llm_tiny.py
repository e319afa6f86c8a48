"""The tiny in-process backend: spec dispatch, generation and option scoring (incl. prefix reuse == naive)."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest

from promed.llm import SpecError, clear_llm_cache, load_llm
from promed.llm.base import ModelSpec
from promed.llm.hf import HFBackend, render_plain
from promed.llm.packed_scoring import build_rows
from promed.types import Generation, Sampling

LETTERS = [" A", " B", " C", " D"]


@pytest.fixture(scope="module")
def tiny() -> HFBackend:
    return load_llm("tiny")


def _prompts(n: int = 9) -> list[str]:
    head = ("Question: Which of the following is the most likely diagnosis?\nA. Asthma\nB. Pneumonia\n"
            "C. Myocardial infarction\nD. Appendicitis\n\nPatient information:\nA 45-year-old man with chest pain.\n")
    facts = [f"Fact {k}: the pain started {k} days ago and radiates to the left arm.\n" for k in range(4)]
    return [head + "".join(f for k, f in enumerate(facts) if (s >> k) & 1) + "Answer:" for s in range(n)]


def test_load_is_fast_and_cached():
    from transformers import Gemma3ForCausalLM, PreTrainedTokenizerFast  # noqa: F401  (import time is not load time)

    clear_llm_cache()
    t = time.perf_counter()
    a = load_llm("tiny")
    assert time.perf_counter() - t < 2.0
    assert load_llm("tiny") is a and load_llm(ModelSpec("tiny")) is a
    assert load_llm("tiny:1") is not a
    assert a.name == "tiny"


def test_spec_errors(tmp_path):
    with pytest.raises(SpecError):
        load_llm("nonsense")
    with pytest.raises(SpecError, match="not found"):
        load_llm(f"gguf:{tmp_path / 'missing.gguf'}")
    with pytest.raises(SpecError, match="not found"):
        load_llm(f"hf:{tmp_path / 'missing_dir'}")
    with pytest.raises(SpecError, match="config.json"):
        load_llm(f"hf:{tmp_path}")
    with pytest.raises(SpecError, match="unknown option"):
        load_llm("tiny", colour="blue")
    with pytest.raises(SpecError):
        load_llm("tiny:abc")


def test_seeded_init_is_deterministic():
    from promed.llm.tiny import load_tiny

    a, b = load_tiny(), load_tiny()
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert np.array_equal(pa.detach().numpy(), pb.detach().numpy())


def test_generate_greedy_and_seeded(tiny):
    chats = [[{"role": "user", "content": "Do you have a cough?"}], [{"role": "user", "content": "Any fever?"}]]
    greedy = tiny.generate(chats, Sampling(max_new_tokens=8))
    assert len(greedy) == 2 and all(isinstance(g, Generation) and g.has_tokens for g in greedy)
    assert tiny.generate(chats, Sampling(max_new_tokens=8)) == greedy
    s = Sampling(max_new_tokens=8, temperature=1.0, seed=7, n=3)
    one = tiny.generate(chats, s)
    assert len(one) == 6 and one == tiny.generate(chats, s)
    assert len({g.text for g in one}) > 1  # sampling varies across the n samples


def test_generation_is_token_exact(tiny):
    """text == decode(ids); one log-probability per id, equal to a fresh forward pass's; eos ends a turn."""
    import torch

    chats = [[{"role": "user", "content": t}] for t in ("Do you have a cough?", "Any fever?", "Pain?")]
    for sampling in (Sampling(max_new_tokens=12), Sampling(max_new_tokens=12, temperature=0.8, seeds=(1, 2, 3))):
        for chat, g in zip(chats, tiny.generate(chats, sampling)):
            assert g.text == tiny.tokenizer.decode(list(g.token_ids), skip_special_tokens=True)
            assert len(g.logprobs) == len(g.token_ids) and all(lp <= 0 for lp in g.logprobs)
            assert g.finish_reason in ("stop", "length")
            assert (g.finish_reason == "stop") == (g.token_ids[-1] in tiny.eos_ids)
            prompt = tiny.encode_prompt(chat)
            with torch.no_grad():
                logits = tiny.model(torch.tensor([prompt + list(g.token_ids)])).logits[0].float()
            t = max(sampling.temperature, 1e-9) if sampling.temperature > 0 else 1.0
            logp = torch.log_softmax(logits[len(prompt) - 1:-1] / t, dim=-1)
            expect = logp.gather(-1, torch.tensor(g.token_ids)[:, None])[:, 0]
            np.testing.assert_allclose(np.array(g.logprobs), expect.numpy(), atol=1e-4)


def test_sampling_is_independent_of_the_batch(tiny):
    """With one seed per chat, a chat's sample is the same alone, in a batch, in any position."""
    chats = [[{"role": "user", "content": t}] for t in ("Do you have a cough?", "Any fever?", "Pain?", "Rash?")]
    seeds = (11, 12, 13, 14)
    s = Sampling(max_new_tokens=10, temperature=1.0, seeds=seeds)
    batch = tiny.generate(chats, s)
    for i in range(4):
        alone = tiny.generate([chats[i]], Sampling(max_new_tokens=10, temperature=1.0, seeds=(seeds[i],)))[0]
        assert alone.token_ids == batch[i].token_ids
    rev = tiny.generate(chats[::-1], Sampling(max_new_tokens=10, temperature=1.0, seeds=seeds[::-1]))
    assert [g.token_ids for g in rev[::-1]] == [g.token_ids for g in batch]


def test_live_model_is_left_as_it_was(tiny):
    """A backend around a model it did not load keeps its dtype, device and mode, and serves current weights."""
    import torch

    from promed.llm.hf import HFBackend

    model = copy.deepcopy(tiny.model).to(torch.float64).train()
    backend = HFBackend(model, tiny.tokenizer, name="live", options=type(tiny.options)(device="cpu", dtype="float32"))
    chat = [[{"role": "user", "content": "Any fever?"}]]
    before = backend.generate(chat, Sampling(max_new_tokens=6))[0]
    assert model.training and next(model.parameters()).dtype == torch.float64 and backend.model is model
    backend.score_options(["Question: x. Answer:"], [[" A", " B"]])
    assert model.training
    with torch.no_grad():
        model.lm_head.weight.mul_(-1.0)  # the trainer changes the weights: the backend sees the change
    after = backend.generate(chat, Sampling(max_new_tokens=6))[0]
    assert after.token_ids != before.token_ids


def test_beam_search_returns_n_best_per_chat(tiny):
    chats = [[{"role": "user", "content": "Do you have a cough?"}], [{"role": "user", "content": "Any fever?"}]]
    beams = Sampling(max_new_tokens=6, n=3, beams=3)
    both = [g.text for g in tiny.generate(chats, beams)]
    assert len(both) == 6 and len(set(both[:3])) == 3  # three distinct beams per chat, chat-major
    assert both[3:] == [g.text for g in tiny.generate(chats[1:], beams)]  # a chat's beams do not depend on its batch
    # the best beam is at least as likely as the greedy completion (beam search widens greedy search)
    greedy = tiny.generate(chats[:1], Sampling(max_new_tokens=6))[0].text
    prompt = tiny.render(chats[0])
    ll = tiny.option_log_likelihoods([prompt], [[both[0], greedy]])[0]
    assert ll[0] >= ll[1] - 1e-4
    with pytest.raises(ValueError):
        tiny.generate(chats, Sampling(n=4, beams=3))


def test_stop_strings_cut_on_a_token_boundary(tiny):
    chat = [[{"role": "user", "content": "Tell me about the pain."}]]
    full = tiny.generate(chat, Sampling(max_new_tokens=24, temperature=1.0, seed=1))[0]
    assert len(full.text) > 4
    stop = full.text[2:4]
    cut = tiny.generate(chat, Sampling(max_new_tokens=24, temperature=1.0, seed=1, stop=(stop,)))[0]
    dec = tiny.tokenizer.decode
    assert cut.finish_reason == "stop" and cut.text == dec(list(cut.token_ids), skip_special_tokens=True)
    assert stop in cut.text and stop not in dec(list(cut.token_ids[:-1]), skip_special_tokens=True)
    assert full.token_ids[:len(cut.token_ids)] == cut.token_ids and full.text.startswith(cut.text)
