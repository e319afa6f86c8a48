"""Packed v(S) scoring keeps its fast path in 16-bit dtypes, and still catches a wrong mask."""

from __future__ import annotations

import copy

import pytest
import torch

from promed.llm import load_llm
from promed.llm.hf import HFBackend
from promed.llm.packed_scoring import Runner, logprob_tolerance, packed_check

LETTERS = [" A", " B", " C", " D"]


def _prompts(n: int = 6) -> list[str]:
    head = ("Question: Which of the following is the most likely diagnosis?\nA. Asthma\nB. Pneumonia\n"
            "C. Myocardial infarction\nD. Appendicitis\n\nPatient information:\nA 45-year-old man with chest pain.\n")
    facts = [f"Fact {k}: the pain started {k} days ago and radiates to the left arm.\n" for k in range(3)]
    return [head + "".join(f for k, f in enumerate(facts) if (s >> k) & 1) + "Answer:" for s in range(n)]


@pytest.fixture(scope="module")
def tiny():
    return load_llm("tiny")


def _backend(tiny, dtype: torch.dtype) -> HFBackend:
    return HFBackend(copy.deepcopy(tiny.model).to(dtype), tiny.tokenizer, name=f"tiny-{dtype}")


def test_tolerance_is_relative_to_the_dtype():
    assert logprob_tolerance(torch.float32, -10.0) == pytest.approx(1e-3, abs=1e-5)
    assert logprob_tolerance(torch.bfloat16, -10.0) == pytest.approx(1e-3 + 40 * 2.0 ** -7)
    assert logprob_tolerance(torch.bfloat16, -0.1) == logprob_tolerance(torch.bfloat16, -8.0)  # the 8-nat floor
    assert logprob_tolerance(torch.bfloat16, -8.0) < logprob_tolerance(torch.bfloat16, -10.0)
    assert logprob_tolerance(torch.float16, -10.0) < logprob_tolerance(torch.bfloat16, -10.0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_16bit_keeps_the_fast_path_within_the_tolerance_of_float32(tiny, dtype):
    prompts, options = _prompts(), [LETTERS + [" Pneumonia"]]  # one multi-token option: every prompt gets rows
    ref = _backend(tiny, torch.float32).option_log_likelihoods(prompts, options)
    low = _backend(tiny, dtype)
    fast = low.option_log_likelihoods(prompts, options)
    assert low.packed_status is not None and low.packed_status.ok  # not the one-sequence-per-forward fallback
    assert low.packed_status.dtype == dtype and 0 < low.packed_status.max_abs_diff
    for f, r in zip(fast, ref):
        for a, b in zip(f, r):
            assert abs(a - b) <= logprob_tolerance(dtype, b), (a, b)
    naive = low.option_log_likelihoods(prompts, options, reuse_prefix=False)
    for f, n in zip(fast, naive):
        for a, b in zip(f, n):
            assert abs(a - b) <= logprob_tolerance(dtype, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_wrong_mask_is_still_caught(tiny, dtype, monkeypatch):
    """Every packed node seeing every other (siblings included) is off by nats: the check falls back."""
    model = copy.deepcopy(tiny.model).to(dtype).eval()
    runner = Runner(model, torch.device("cpu"), head_ok=True)
    with torch.inference_mode():
        assert packed_check(runner).ok
        orig = Runner._mask
        monkeypatch.setattr(Runner, "_mask", lambda self, vis, *a: orig(self, torch.ones_like(vis), *a))
        broken = packed_check(runner)
    assert not broken.ok and broken.worst_ratio > 5
