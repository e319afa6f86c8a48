"""The tiny in-process backend: spec dispatch, generation and option scoring (incl. prefix reuse == naive)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from promed.llm import SpecError, clear_llm_cache, load_llm
from promed.llm.base import ModelSpec
from promed.llm.hf import HFBackend, render_plain
from promed.llm.packed_scoring import build_rows
from promed.types import Sampling

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
    assert len(greedy) == 2 and all(isinstance(t, str) for t in greedy)
    assert tiny.generate(chats, Sampling(max_new_tokens=8)) == greedy
    s = Sampling(max_new_tokens=8, temperature=1.0, seed=7, n=3)
    one = tiny.generate(chats, s)
    assert len(one) == 6 and one == tiny.generate(chats, s)
    assert len(set(one)) > 1  # sampling varies across the n samples


def test_beam_search_returns_n_best_per_chat(tiny):
    chats = [[{"role": "user", "content": "Do you have a cough?"}], [{"role": "user", "content": "Any fever?"}]]
    beams = Sampling(max_new_tokens=6, n=3, beams=3)
    both = tiny.generate(chats, beams)
    assert len(both) == 6 and len(set(both[:3])) == 3  # three distinct beams per chat, chat-major
    assert both[3:] == tiny.generate(chats[1:], beams)  # a chat's beams do not depend on its batch
    # the best beam is at least as likely as the greedy completion (beam search widens greedy search)
    greedy = tiny.generate(chats[:1], Sampling(max_new_tokens=6))[0]
    prompt = tiny.render(chats[0])
    ll = tiny.option_log_likelihoods([prompt], [[both[0], greedy]])[0]
    assert ll[0] >= ll[1] - 1e-4
    with pytest.raises(ValueError):
        tiny.generate(chats, Sampling(n=4, beams=3))


def test_stop_strings_cut_text(tiny):
    chat = [[{"role": "user", "content": "Tell me about the pain."}]]
    full = tiny.generate(chat, Sampling(max_new_tokens=24, temperature=1.0, seed=1))[0]
    assert len(full) > 4
    stop = full[2:4]
    cut = tiny.generate(chat, Sampling(max_new_tokens=24, temperature=1.0, seed=1, stop=(stop,)))[0]
    assert stop not in cut and full.startswith(cut)


def test_chat_rendering(tiny):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert tiny.render(chat) == "<bos><|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n"
    assert render_plain(chat) == "System: Be brief.\nUser: Hi\nAssistant:"


def test_score_options_normalised(tiny):
    probs = tiny.score_options(_prompts(5), [LETTERS])
    assert len(probs) == 5
    for p in probs:
        assert p.shape == (4,) and np.all(p >= 0) and abs(p.sum() - 1) < 1e-9
    # per-prompt option lists of different sizes
    mixed = tiny.score_options(_prompts(2), [[" A", " B"], [" A", " B", " C"]])
    assert [len(p) for p in mixed] == [2, 3]
    with pytest.raises(ValueError):
        tiny.score_options(_prompts(3), [LETTERS, LETTERS])


@pytest.mark.parametrize("options", [LETTERS, [" Asthma", " Pneumonia of the lung", " C", " Appendicitis"]])
def test_prefix_reuse_equals_naive(tiny, options):
    prompts = _prompts(16) + ["Something unrelated. Answer:", "Question: short. Answer:"]
    fast = tiny.score_options(prompts, [options], reuse_prefix=True)
    naive = tiny.score_options(prompts, [options], reuse_prefix=False)
    np.testing.assert_allclose(np.array(fast), np.array(naive), atol=1e-4)
    # small chunks (several packed passes share one prefix cache; a suffix longer than a chunk gets its own)
    for chunk in (8, 40):
        opts = type(tiny.options)(device="cpu", dtype="float32", chunk_tokens=chunk)
        other = HFBackend(tiny.model, tiny.tokenizer, name="tiny-variant", options=opts)
        np.testing.assert_allclose(np.array(other.score_options(prompts, [options])), np.array(naive), atol=1e-4)


def test_multi_token_log_likelihood_is_a_sum(tiny):
    """log P(" X Y") = log P(" X") + log P(" Y" | " X"): the multi-token path agrees with single-token scoring."""
    prompt = _prompts(1)[0]
    rows, _ = build_rows(tiny.tokenizer, [prompt], [[" A B", " C"]])
    assert len(rows) == 2  # one row per option when an option has several tokens
    ll = tiny.option_log_likelihoods([prompt], [[" A B", " C"]])[0]
    first = tiny.option_log_likelihoods([prompt], [[" A", " C"]])[0]
    second = tiny.option_log_likelihoods([prompt + " A"], [[" B", " C"]])[0]
    assert ll[1] == pytest.approx(first[1], abs=1e-5)
    assert ll[0] == pytest.approx(first[0] + second[0], abs=1e-4)


def test_long_prompts_cross_the_sliding_window(tiny):
    """The tiny model's sliding window is 16 tokens: prefixes and suffixes far longer than it still agree."""
    prompts = [p.replace("Patient information:", "Patient information: " + "history of cough. " * 20)
               for p in _prompts(6)]
    fast = tiny.score_options(prompts, [LETTERS])
    naive = tiny.score_options(prompts, [LETTERS], reuse_prefix=False)
    np.testing.assert_allclose(np.array(fast), np.array(naive), atol=1e-4)
