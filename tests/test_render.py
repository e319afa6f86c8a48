"""The renderer: the doctor's tokens in a rendered consultation are exactly the sampled ones.

Checked for the tiny model, a synthclinic-small model and Gemma 3 270M (slow), on consultations sampled by the
LLM doctor itself (valid or not: unreadable outputs are part of the conversation) and on consultations whose
doctor turns are valid questions and an answer.
"""

from __future__ import annotations

import numpy as np
import pytest

from promed.doctor.policy import LLMDoctor
from promed.env.consultation import EnvConfig
from promed.env.rollout import run_episodes
from promed.llm import load_llm
from promed.train.render import RenderError, doctor_tokens, render_consultation, step_chats
from promed.types import Generation, Sampling, Transcript, per_view
from tests.conftest import KeywordPatient, make_case

CFG = EnvConfig(max_questions=3, max_invalid_retries=2)


class TokenDoctor:
    """Asks about fact 0, 2, then answers; its outputs carry ids from the model's tokenizer (and end of turn)."""

    name = "token-doctor"

    def __init__(self, backend):
        self.backend = backend
        # the end-of-turn id the chat template writes after an assistant message (else the first eos id)
        shown = backend.render([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}])
        self.end = next((i for i in backend.eos_ids if backend.tokenizer.decode([i]) in shown), backend.eos_ids[0])

    def act(self, views, rngs):
        out = []
        for v, _ in zip(views, per_view(rngs, len(views))):
            text = ["ASK: Tell me about fact 0?", "ASK: And fact 2?", "ANSWER: B"][min(len(v.turns), 2)]
            ids = self.backend.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.end]
            out.append(Generation(text, tuple(ids), tuple([-0.5] * len(ids)), "stop"))
        return out


def _check(backend, trs: list[Transcript], cases) -> list:
    by_id = {c.id: c for c in cases}
    rendered = []
    for tr in trs:
        r = render_consultation(by_id[tr.case_id], tr, backend, CFG.max_questions)
        policy = [s for s in tr.steps if s.policy]
        # the doctor's tokens are exactly the sampled ones, in order, and nothing else is masked in
        assert doctor_tokens(r) == [list(s.token_ids) for s in policy]
        assert int(r.doctor_mask.sum()) == sum(len(s.token_ids) for s in policy)
        assert np.all((r.turn_index >= 0) == (r.doctor_mask == 1))
        lp = np.concatenate([np.asarray(s.logprobs, dtype=np.float32) for s in policy])
        np.testing.assert_allclose(r.logprobs[r.doctor_mask == 1], lp, atol=1e-6)
        assert np.all(r.logprobs[r.doctor_mask == 0] == 0)
        # the sequence reads as the last prompt followed by the last output
        last = step_chats(by_id[tr.case_id], tr, CFG.max_questions)[-1]
        tok = backend.tokenizer
        want = tok.decode(backend.encode_prompt(last) + list(policy[-1].token_ids), skip_special_tokens=True)
        got = tok.decode(r.input_ids.tolist(), skip_special_tokens=True)
        # the same text; exactly so where every prompt was reproduced token for token, else up to the separators
        # a template inserts after a role marker (plain rendering: "Assistant:" + output vs "Assistant: " + output)
        assert got == want if all(r.prompt_exact) else "".join(got.split()) == "".join(want.split())
        assert r.prompt_exact[0]
        rendered.append(r)
    return rendered


def _sampled_and_scripted(backend, n_cases: int = 3, max_new_tokens: int = 12):
    cases = [make_case(f"c{i}") for i in range(n_cases)]
    doctor = LLMDoctor(backend, "llm", Sampling(max_new_tokens=max_new_tokens, temperature=1.0))
    sampled = run_episodes(cases, doctor, KeywordPatient(), CFG, seed=3)
    assert all(s.token_ids for t in sampled for s in t.steps if s.policy)
    rs = _check(backend, sampled, cases)
    scripted = run_episodes(cases, TokenDoctor(backend), KeywordPatient(), CFG, seed=0)
    assert all(t.n_questions == 2 and t.end == "answer" for t in scripted)
    rs += _check(backend, scripted, cases)
    return sampled, scripted, rs


def test_render_tiny_model():
    backend = load_llm("tiny")
    sampled, scripted, rs = _sampled_and_scripted(backend)
    assert any(t.invalid for t in sampled)  # a random model's unreadable outputs are rendered too
    assert all(all(r.prompt_exact) for r in rs[len(sampled):])  # valid turns: every prompt reproduced token-exactly


def test_render_synthclinic_small(tmp_path):
    from promed.train.small_model import SmallModelConfig, build_small_doctor

    texts = ["ASK: Tell me about fact 0?", "ANSWER: B", "Fact number 1 about the patient."]
    cfg = SmallModelConfig(vocab_size=320, hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=2,
                           intermediate_size=128, max_position_embeddings=1024)
    out = build_small_doctor(texts, tmp_path / "small", cfg)
    backend = load_llm(f"hf:{out}", device="cpu", dtype="float32")
    _, _, rs = _sampled_and_scripted(backend)
    assert all(all(r.prompt_exact) for r in rs[3:])


def test_render_refuses_text_only_steps(case):
    backend = load_llm("tiny")

    class TextDoctor:
        name = "text"

        def act(self, views, rngs):
            return ["ANSWER: B" for _ in views]

    [tr] = run_episodes([case], TextDoctor(), KeywordPatient(), CFG)
    with pytest.raises(RenderError, match="no sampled token ids"):
        render_consultation(case, tr, backend, CFG.max_questions)


@pytest.mark.slow
def test_render_gemma():
    backend = load_llm("gemma-270m")
    _sampled_and_scripted(backend, n_cases=2, max_new_tokens=10)
