"""HFBackend on real checkpoints: a save_pretrained directory (``hf:<path>``) and Gemma 3 270M (GGUF)."""

from __future__ import annotations

import numpy as np
import pytest

from promed.llm import load_llm
from promed.llm.scorer import LLMScorer, render_query
from promed.types import Case, Fact, Option, Sampling

LETTERS = [" A", " B", " C", " D"]


def _case() -> Case:
    facts = ["Patient is sexually active.", "Patient complains of fever.", "Patient complains of pain during urination.",
             "Culture of joint fluid shows a bacteria that does not ferment maltose.",
             "The bacteria has no polysaccharide capsule."]
    return Case(
        id="mediq-0",
        initial="A 21-year-old male complains of inflammation and pain in the right knee.",
        facts=tuple(Fact(i, t) for i, t in enumerate(facts)),
        question="The mechanism of action of the medication given blocks cell wall synthesis, which of the "
                 "following was given?",
        options=(Option("A", "Gentamicin"), Option("B", "Ciprofloxacin"), Option("C", "Ceftriaxone"),
                 Option("D", "Trimethoprim")),
        answer="C",
    )


def test_save_pretrained_dir_roundtrip(tmp_path):
    """A local checkpoint written by save_pretrained (model + tokenizer with chat template) loads via hf:<path>."""
    tiny = load_llm("tiny")
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    local = load_llm(f"hf:{tmp_path}", device="cpu", dtype="float32")
    assert local.name == f"hf:{tmp_path}"
    chat = [{"role": "user", "content": "Any fever?"}]
    assert local.render(chat) == tiny.render(chat)  # the chat template survived
    prompts = [render_query(_case().query(s)) for s in ([], [0, 2])]
    np.testing.assert_allclose(np.array(local.score_options(prompts, [LETTERS])),
                               np.array(tiny.score_options(prompts, [LETTERS])), atol=1e-6)
    assert local.generate([chat], Sampling(max_new_tokens=6))[0].token_ids == \
        tiny.generate([chat], Sampling(max_new_tokens=6))[0].token_ids


def test_rewritten_checkpoint_is_not_served_stale(tmp_path):
    """A checkpoint directory saved again (as a trainer does) is reloaded, not taken from the process cache."""
    import torch

    tiny = load_llm("tiny")
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    first = load_llm(f"hf:{tmp_path}", device="cpu", dtype="float32")
    assert load_llm(f"hf:{tmp_path}", device="cpu", dtype="float32") is first
    changed = load_llm("tiny:1").model  # other weights, same shapes
    changed.save_pretrained(tmp_path)
    second = load_llm(f"hf:{tmp_path}", device="cpu", dtype="float32")
    assert second is not first
    w = dict(second.model.named_parameters())["lm_head.weight"]
    assert torch.equal(w, dict(changed.named_parameters())["lm_head.weight"])


@pytest.fixture(scope="module")
def gemma():
    return load_llm("gemma-270m")


@pytest.mark.slow
def test_gemma_scores_a_case(gemma):
    assert gemma.name == "gemma-270m"
    assert not getattr(gemma.tokenizer, "chat_template", None)  # base GGUF: plain fallback rendering
    case = _case()
    subsets = [(), (0, 1), (0, 1, 2, 3, 4)]
    prompts = [render_query(case.query(s)) for s in subsets]
    fast = gemma.score_options(prompts, [LETTERS])
    naive = gemma.score_options(prompts, [LETTERS], reuse_prefix=False)
    for p in fast:
        assert p.shape == (4,) and abs(p.sum() - 1) < 1e-9 and np.all(p > 0)
    np.testing.assert_allclose(np.array(fast), np.array(naive), atol=1e-4)
    probs = LLMScorer(gemma).probs([case.query(s) for s in subsets])
    np.testing.assert_allclose(np.array(probs), np.array(fast), atol=1e-9)


@pytest.mark.slow
def test_gemma_multi_token_and_generate(gemma):
    prompt = render_query(_case().query([0, 1]))
    fast = gemma.score_options([prompt, prompt + " "], [[" Gentamicin", " Ceftriaxone", " C"]])
    naive = gemma.score_options([prompt, prompt + " "], [[" Gentamicin", " Ceftriaxone", " C"]], reuse_prefix=False)
    np.testing.assert_allclose(np.array(fast), np.array(naive), atol=1e-4)
    out = gemma.generate([[{"role": "user", "content": "What is the capital of France?"}]],
                         Sampling(max_new_tokens=8, stop=("\n",)))
    [g] = out
    # cut on the token that completes the stop string: text == decode(ids), the stop only in the last token
    assert g.text == gemma.tokenizer.decode(list(g.token_ids), skip_special_tokens=True)
    assert len(g.logprobs) == len(g.token_ids)
    if g.finish_reason == "stop" and g.token_ids[-1] not in gemma.eos_ids:
        assert "\n" in g.text and "\n" not in gemma.tokenizer.decode(list(g.token_ids[:-1]))
