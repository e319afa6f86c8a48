"""Per-row seeded sampling on the logits' device (promed.llm.sampling): the draw's distribution, its log-probs,
determinism and independence of the batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from promed.llm import load_llm
from promed.llm.hf import HFBackend, HFOptions
from promed.llm.sampling import RowSampler, row_uniforms, sample_rows
from promed.types import Sampling


def _scores(b: int = 4, v: int = 50, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    s = torch.randn((b, v), generator=g) * 3
    s[:, 7] = float("-inf")  # a token of probability zero (a masked id)
    return s


def test_uniforms_are_a_function_of_the_seed_only():
    a = row_uniforms([5, 6, 7], 20)
    assert a.shape == (3, 20) and np.all((a >= 0) & (a < 1))
    np.testing.assert_array_equal(row_uniforms([7], 20)[0], a[2])  # alone or in a batch, any position
    np.testing.assert_array_equal(row_uniforms([6, 5], 20), a[[1, 0]])
    np.testing.assert_array_equal(row_uniforms([5], 8)[0], a[0, :8])  # a longer table starts with the shorter one
    assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize("temperature,top_p,candidates,block", [
    (1.0, 1.0, 1024, 1024), (0.7, 1.0, 1024, 1024), (1.0, 0.9, 1024, 1024), (1.3, 0.5, 1024, 1024),
    (2.0, 0.9, 40, 1024), (2.0, 0.9, 3, 1024), (2.0, 1.0, 1024, 8), (2.0, 0.95, 40, 3), (2.0, 1.0, 1024, 1)])
def test_inverse_cdf_draws_the_sampling_distribution(temperature, top_p, candidates, block):
    """Uniforms on a fine grid hit each token in proportion to its probability (the top-p nucleus renormalised):
    an exact statement about the inverse CDF, no statistics needed. ``candidates`` 40 holds the nucleus (the
    top-k shortcut), 3 does not (the full sort); ``block`` < 50 searches several blocks (the last one padded)."""
    scores = _scores(1, 50)
    n = 20000
    grid = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    chosen, logp = sample_rows(scores.expand(n, -1), grid, temperature, top_p, candidates=candidates, block=block)
    p = torch.softmax(scores[0] / temperature, dim=-1).double()
    sp, order = p.sort(descending=True)
    keep = torch.zeros_like(p, dtype=torch.bool)
    keep[order[(sp.cumsum(0) - sp) <= top_p]] = True  # the nucleus: smallest prefix reaching top_p
    if candidates < 50:  # the parameters exercise both top-p paths: the candidates hold the nucleus or not
        assert bool(sp[:candidates].sum() > top_p) == (candidates == 40)
    target = torch.where(keep, p, 0.0)
    target /= target.sum()
    freq = torch.bincount(chosen, minlength=50).double() / n
    assert float((freq - target).abs().max()) <= 2.0 / n
    assert bool(keep[chosen].all()) and not bool((chosen == 7).any())
    # the recorded log-probability is the sampling distribution's before the top-p cut, exactly
    ref = torch.log_softmax(scores[0].float() / temperature, dim=-1)[chosen]
    assert torch.equal(logp, ref)


def test_extreme_uniforms_never_pick_a_zero_probability_token():
    scores = torch.full((2, 10), float("-inf"))
    scores[:, 3] = 0.0
    scores[:, 4] = -1.0
    u = torch.tensor([0.0, np.nextafter(1.0, 0.0)], dtype=torch.float64)
    for top_p in (1.0, 0.5):
        for block in (1024, 3, 4, 1):
            chosen, _ = sample_rows(scores, u, 1.0, top_p, block=block)
            assert set(chosen.tolist()) <= {3, 4}


def test_greedy_is_the_argmax_with_plain_log_probs():
    scores = _scores()
    chosen, logp = sample_rows(scores, None, 0.0, 1.0)
    assert torch.equal(chosen, scores.argmax(-1))
    assert torch.equal(logp, torch.log_softmax(scores, -1).gather(-1, chosen[:, None])[:, 0])


def test_row_sampler_rows_do_not_depend_on_the_batch():
    """A row's choices over several steps are the same alone, in a batch, at any position."""
    seeds, steps = [101, 202, 303], 5
    scores = [_scores(3, 64, seed=t) for t in range(steps)]

    def run(rows):
        sampler = RowSampler([seeds[r] for r in rows], 1.0, 0.95, torch.device("cpu"), steps=steps)
        picks = [sampler(None, s[rows]).argmax(-1) for s in scores]  # the processor leaves only the choice finite
        return torch.stack(picks, 1), sampler.logprob_table()

    full, full_lp = run([0, 1, 2])
    for order in ([2], [1, 0], [2, 0, 1]):
        part, part_lp = run(order)
        assert torch.equal(part, full[order])
        assert part_lp == [full_lp[r] for r in order]
    sampler = RowSampler(seeds, 1.0, 1.0, torch.device("cpu"), steps=1)
    sampler(None, scores[0])
    with pytest.raises(RuntimeError):
        sampler(None, scores[1])


@pytest.fixture(scope="module")
def tiny() -> HFBackend:
    return load_llm("tiny")


def test_generate_does_not_depend_on_the_generation_batch_size(tiny):
    """gen_batch_size 1 or 16: the same samples and log-probabilities for every chat (and top-p honoured)."""
    chats = [[{"role": "user", "content": t}] for t in ("Do you have a cough?", "Any fever?", "Pain?")]
    s = Sampling(max_new_tokens=10, temperature=0.9, top_p=0.8, seeds=(3, 4, 5), n=2)
    one = HFBackend(tiny.model, tiny.tokenizer, name="b1", options=HFOptions(gen_batch_size=1)).generate(chats, s)
    many = tiny.generate(chats, s)
    assert [g.token_ids for g in one] == [g.token_ids for g in many]
    np.testing.assert_allclose([x for g in one for x in g.logprobs], [x for g in many for x in g.logprobs],
                               atol=1e-5)
    assert len({g.token_ids for g in many}) > 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_draw_matches_cpu_draw():
    """The uniforms are drawn on the host, so a row's choice on the GPU is the CPU's up to the logits' rounding."""
    scores = _scores(8, 1000)
    u = torch.from_numpy(row_uniforms(list(range(8)), 1)[:, 0])
    for top_p in (1.0, 0.9):
        cpu, lp_cpu = sample_rows(scores, u, 1.0, top_p)
        gpu, lp_gpu = sample_rows(scores.cuda(), u.cuda(), 1.0, top_p)
        assert gpu.device.type == "cuda" and torch.equal(cpu, gpu.cpu())
        torch.testing.assert_close(lp_cpu, lp_gpu.cpu())
