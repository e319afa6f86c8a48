"""Stage 2 through TRL's GRPOTrainer: rollouts, per-token credit, the loss's masks, resume, and learning.

A toy doctor (a tiny synthclinic-small model, briefly fine-tuned to ask about facts and answer) consults toy cases
(:func:`tests.conftest.make_case`) with the keyword patient; SIG comes from fixed importance weights. Everything runs
in seconds on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from promed.data.sources import DataConfig
from promed.doctor.policy import LLMDoctor
from promed.env.consultation import EnvConfig
from promed.env.rollout import Episode, run_consultations
from promed.eval.records import transcript_messages
from promed.llm import load_llm
from promed.sig.reward import SigConfig, annotate
from promed.train.advantages import credit_advantages, turn_rewards
from promed.train.grpo import GRPORunConfig, load_cases, read_log, rollout_row, run_grpo, turn_kinds
from promed.types import Generation, Sampling
from tests.conftest import KeywordPatient, make_case

ENV = EnvConfig(max_questions=2)
WEIGHTS = np.array([0.4, 0.1, 0.4, 0.1])  # facts 0 and 2 matter


class FixedSig:
    """The SIG annotator with fixed importance weights (a stand-in for a Shapley cache)."""

    def __call__(self, case, tr):
        return annotate(tr, WEIGHTS, case.n_facts, SigConfig(lam=0.5))

    def close(self):
        pass


class ScriptedDoctor:
    """Asks about 0-2 random facts, then answers a random letter (the behaviour the toy doctor imitates)."""

    name = "scripted"

    def act(self, views, rngs):
        out = []
        for v, rng in zip(views, rngs):
            if len(v.turns) < int(rng.integers(0, 3)) and v.questions_left:
                out.append(f"ASK: Tell me about fact {int(rng.integers(0, 4))}?")
            else:
                out.append(f"ANSWER: {'ABCD'[int(rng.integers(0, 4))]}")
        return out


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(cases file, toy doctor checkpoint): SFT of a tiny model on 64 scripted consultations of 4 toy cases."""
    from promed.train.sft import SFTRunConfig, run_sft
    from promed.train.small_model import SmallModelConfig

    root = tmp_path_factory.mktemp("grpo")
    cases = [make_case(f"c{i}", answer="B") for i in range(4)]
    data = root / "cases.jsonl"
    data.write_text("".join(json.dumps(c.to_json()) + "\n" for c in cases), encoding="utf-8")
    eps = [Episode(c, s) for c in cases for s in range(16)]
    trs = run_consultations(eps, ScriptedDoctor(), KeywordPatient(), ENV, seed=1)
    traj = root / "traj.jsonl"
    traj.write_text("".join(json.dumps({"id": t.case_id, "messages": transcript_messages(e.case, t, 2)}) + "\n"
                            for e, t in zip(eps, trs)), encoding="utf-8")
    small = SmallModelConfig(vocab_size=200, hidden_size=32, num_layers=1, num_heads=1, num_kv_heads=1,
                             intermediate_size=64, min_frequency=1)
    run_sft(traj, root / "doctor", SFTRunConfig(small=small, epochs=30, batch_size=16, learning_rate=1e-2,
                                                 progress_bar=False, num_threads=1, save_steps=1000))
    return data, root / "doctor"


def _cfg(toy, **kw) -> GRPORunConfig:
    data, model = toy
    base = dict(model=f"hf:{model}", data=DataConfig(data=str(data), split="all"), env=ENV, group_size=4, cases_per_step=2,
                steps=2, max_new_tokens=10, temperature=1.0, learning_rate=1e-3, save_steps=1, num_threads=1,
                progress_bar=False)
    return GRPORunConfig(**{**base, **kw})


def _run(toy, out: Path, **kw):
    return run_grpo(_cfg(toy, **kw), out, progress=False, patient=KeywordPatient(), annotator=FixedSig())


def _rollouts(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]


def test_rollout_row_puts_sig_on_its_question_only(toy):
    """A question's SIG lands on that question's tokens only; patient tokens are out of the mask and get 0."""
    _, model = toy
    backend = load_llm(f"hf:{model}", device="cpu", dtype="float32")
    case = make_case("c0", answer="B")
    end = backend.eos_ids[0]

    class TokenDoctor:
        name = "token"

        def act(self, views, rngs):
            out = []
            for v in views:
                text = ["ASK: Tell me about fact 0?", "ASK: Tell me about fact 0?", "ANSWER: B"][len(v.turns)]
                ids = backend.tokenizer(text, add_special_tokens=False)["input_ids"] + [end]
                out.append(Generation(text, tuple(ids), tuple([-0.1] * len(ids)), "stop"))
            return out

    [tr] = run_consultations([Episode(case)], TokenDoctor(), KeywordPatient(), ENV)
    tr = FixedSig()(case, tr)
    row = rollout_row(case, tr, backend, ENV.max_questions)
    credit = row["promed_episode"].credit
    assert turn_kinds(tr) == (("ask", "ask", "answer"), (pytest.approx(0.5 / 4 + 0.5 * 0.4), 0.0, 0.0))
    mask = np.asarray(row["env_mask"])
    assert len(mask) == len(row["completion_ids"]) == len(row["logprobs"]) == len(credit.turn_index)
    assert np.array_equal(mask == 1, credit.turn_index >= 0) and (mask == 0).any()  # the patient's reply is there
    turn = turn_rewards(credit.kinds, credit.sig, credit.correct)
    assert turn.tolist() == pytest.approx([2 * 0.325 + 0.325 + 1, 1.0, 3 + 1])  # repeat: no SIG; right answer
    # with a second episode that answers at once, the first question's tokens stand out from the repeat's
    [adv, _] = credit_advantages("sig", [credit, credit], [0, 0])
    ti = credit.turn_index
    assert np.all(adv[ti < 0] == 0)
    assert len(set(adv[ti == 0])) == 1 and len(set(adv[ti == 1])) == 1
    assert adv[ti == 0][0] - adv[ti == 1][0] == pytest.approx(3 * 0.325)
    # the answer's diagnosis tokens: exactly those after its keyword, and no other turn's
    answer_ids = np.asarray(row["completion_ids"])[ti == 2]
    content = credit.content[ti == 2]
    assert not credit.content[ti != 2].any() and content.any() and not content[0]
    keyword = backend.tokenizer.decode(answer_ids[~content].tolist(), skip_special_tokens=True)
    assert keyword.replace(" ", "") == "ANSWER:"
    assert backend.tokenizer.decode(answer_ids[content].tolist(), skip_special_tokens=True).strip() == "B"


def test_grpo_step_shapes_kl_and_identical_rollouts_across_arms(toy, tmp_path):
    """(B, T) advantages reach the loss; KL is 0 at the first step; both arms sample the same first rollouts."""
    res = _run(toy, tmp_path / "sig", steps=1, credit="sig")
    assert res.completed and res.steps == 1 and res.episodes == 8
    [rec] = res.log
    assert rec["kl"] == pytest.approx(0.0, abs=1e-7)
    for key in ("reward", "promed/accuracy", "promed/questions", "promed/sig_per_question", "entropy"):
        assert key in rec
    out = _run(toy, tmp_path / "outcome", steps=1, credit="outcome")
    a, b = _rollouts(tmp_path / "sig"), _rollouts(tmp_path / "outcome")
    assert [r["ids_sha1"] for r in a] == [r["ids_sha1"] for r in b] and len(a) == 8
    assert out.log[0]["reward"] == rec["reward"]
    # the checkpoint records the cases it learned from (the contamination guard, promed.data.lineage)
    from promed.data.lineage import read_lineage
    from promed.data.splits import case_fingerprint

    train_cases = [c for c in load_cases(_cfg(toy), check_scorer=False)]
    assert read_lineage(tmp_path / "sig").fingerprints >= {case_fingerprint(c) for c in train_cases}
    # a group is one case's G consultations, samples 0..G-1, in a row
    assert [r["sample"] for r in a] == [0, 1, 2, 3] * 2 and len({r["case_id"] for r in a[:4]}) == 1
    # the saved doctor loads and consults
    doctor = LLMDoctor(load_llm(f"hf:{tmp_path / 'sig'}", device="cpu", dtype="float32"), "grpo",
                       Sampling(max_new_tokens=10))
    [tr] = run_consultations([Episode(make_case("c0"))], doctor, KeywordPatient(), ENV)
    assert tr.n_outputs >= 1


def test_patient_tokens_get_no_gradient_even_with_advantage(toy, tmp_path):
    """TRL's loss, fed our (B, T) advantages: changing the advantage on environment tokens changes nothing."""
    from datasets import Dataset

    from promed.train.grpo import episode_reward_func, make_grpo_args, trainer_class
    from promed.train.sft import load_model

    model, tok = load_model(f"hf:{toy[1]}")
    cfg = _cfg(toy, kl=0.0)
    trainer = trainer_class()(model=model, reward_funcs=[episode_reward_func(cfg.weights)],
                              args=make_grpo_args(cfg, tmp_path / "ckpt", world=1),
                              train_dataset=Dataset.from_dict({"prompt": ["c0"]}), processing_class=tok,
                              rollout_func=lambda prompts, trainer: {}, credit="sig", weights=cfg.weights,
                              mix_lambda=cfg.mix_lambda, mix_baseline=cfg.mix_baseline,
                              mix_scope=cfg.mix_scope)
    torch.manual_seed(0)
    b, p, t = 2, 5, 9
    env = torch.tensor([[1, 1, 0, 0, 1, 1, 0, 1, 1], [1, 0, 0, 1, 1, 1, 1, 0, 0]])
    inputs = {"prompt_ids": torch.randint(3, 100, (b, p)), "prompt_mask": torch.ones(b, p, dtype=torch.long),
              "completion_ids": torch.randint(3, 100, (b, t)), "completion_mask": torch.ones(b, t, dtype=torch.long),
              "tool_mask": env, "num_items_in_batch": env.sum()}
    base = torch.randn(b, t)

    def grads(adv):
        model.zero_grad()
        trainer._compute_loss(model, {**inputs, "advantages": adv}).backward()
        return [q.grad.clone() for q in model.parameters() if q.grad is not None]

    g1 = grads(base * env)
    g2 = grads(base * env + 5.0 * (1 - env))  # large advantages on the patient's tokens
    assert len(g1) and all(torch.allclose(x, y, atol=1e-7) for x, y in zip(g1, g2))
    g3 = grads(base * env * 2)  # the doctor's tokens do matter
    assert not all(torch.allclose(x, y) for x, y in zip(g1, g3))


def test_resume_equals_uninterrupted(toy, tmp_path):
    full = _run(toy, tmp_path / "full", steps=4)
    assert full.completed and full.steps == 4 and full.resumed_from is None
    part = _run(toy, tmp_path / "part", steps=4, stop_after_steps=2)
    assert not part.completed and part.steps == 2
    rest = _run(toy, tmp_path / "part", steps=4)
    assert rest.completed and rest.resumed_from is not None and rest.steps == 4
    assert _rollouts(tmp_path / "full") == _rollouts(tmp_path / "part")
    a = [{k: v for k, v in r.items() if k not in ("step_time",)} for r in read_log(tmp_path / "full" / "log.jsonl")]
    b = [{k: v for k, v in r.items() if k not in ("step_time",)} for r in read_log(tmp_path / "part" / "log.jsonl")]
    assert a == b
    from safetensors.torch import load_file

    wa, wb = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "part" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_sig_reward_rises_on_the_toy_task(toy, tmp_path):
    """A few seconds of GRPO with SIG credit raise the return (SIG of new facts + correct answers + format)."""
    res = _run(toy, tmp_path / "learn", steps=12, cases_per_step=4, learning_rate=3e-3, kl=0.0)
    ret = [r["promed/return"] for r in res.log]
    print("returns", [round(x, 2) for x in ret])
    assert np.mean(ret[-4:]) > np.mean(ret[:4]) + 0.3, ret


DDP_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.test_grpo import FixedSig, KeywordPatient, _cfg
from promed.train.grpo import run_grpo
cfg = _cfg((Path({data!r}), Path({model!r})), group_size=2, cases_per_step=3, steps=3)
run_grpo(cfg, Path(sys.argv[1]), progress=False, patient=KeywordPatient(), annotator=FixedSig())
"""


def test_two_processes_train_exactly_as_one(toy, tmp_path):
    """torchrun, 2 gloo processes: 6 consultations per step, 3 per process, so one case's group straddles the two.
    Rewards are gathered before the group means: the run's rollouts, advantages, log and weights equal one
    process's."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(root=str(root), data=str(toy[0]), model=str(toy[1])))
    subprocess.run([sys.executable, str(script), str(tmp_path / "one")], check=True, capture_output=True, cwd=root)
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script),
                          str(tmp_path / "two")], capture_output=True, text=True, cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    one, two = _rollouts(tmp_path / "one"), _rollouts(tmp_path / "two")
    assert len(one) == 18 and one == two
    step1 = [(r["case_id"], r["sample"]) for r in two if r["step"] == 1]
    assert step1[2][0] == step1[3][0]  # positions 2 (process 0) and 3 (process 1): one group
    strip = lambda recs: [{k: v for k, v in r.items() if k != "step_time"} for r in recs]  # noqa: E731
    assert strip(read_log(tmp_path / "one" / "log.jsonl")) == strip(read_log(tmp_path / "two" / "log.jsonl"))
    from safetensors.torch import load_file

    wa, wb = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


class FactTwoScorer:
    """A scorer that names the gold (B) once fact 2 is known, and A before."""

    id = "fact-two"

    def probs(self, queries):
        return [np.array([0.1, 0.7, 0.1, 0.1]) if any(f.id == 2 for f in q.facts) else np.array([0.7, 0.1, 0.1, 0.1])
                for q in queries]


def test_questioner_only_and_information_gain_modes_roll_out_the_same_consultations(toy, tmp_path):
    """--answerer scorer and --credit ig-mixed change the credit, not the rollouts: the same token ids as the normal
    mode for the same seed; the outcome is the scorer's answer on the revealed facts; the gains are recorded."""
    _run(toy, tmp_path / "policy", steps=1, credit="outcome")
    for name, kw in (("asker", {"answerer": "scorer", "credit": "outcome"}), ("ig", {"credit": "ig-mixed"})):
        res = run_grpo(_cfg(toy, steps=1, **kw), tmp_path / name, progress=False, patient=KeywordPatient(),
                       annotator=FixedSig(), judge=FactTwoScorer())
        assert res.completed
        a, b = _rollouts(tmp_path / "policy"), _rollouts(tmp_path / name)
        assert [r["ids_sha1"] for r in a] == [r["ids_sha1"] for r in b]
        if name == "asker":
            assert [r["own_correct"] for r in b] == [r["correct"] for r in a]  # the policy's own answers
            assert "promed/ask_accuracy" in res.log[0]
        else:
            assert all(len(r["gain"]) == len(r["kinds"]) for r in b) and "promed/gain_per_question" in res.log[0]
            assert all(g == 0.0 for r in b for k, g in zip(r["kinds"], r["gain"]) if k != "ask")
