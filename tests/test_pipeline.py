"""``promed run`` end to end on a handful of SynthClinic cases: every stage, every arm's checkpoint, the ablation
table; a rerun resumes every step instead of repeating it."""

import json

from pathlib import Path

from promed.config import with_paths
from promed.runs.pipeline import ABLATIONS, RunConfig, arm_config, run_pipeline
from tests.test_stage1 import TINY_PRETRAIN


def test_run_pipeline_end_to_end_and_resume(tmp_path):
    tiny = {f"stage1.{k}": v for k, v in TINY_PRETRAIN.items()}
    cfg = with_paths(RunConfig(baselines=("reactive",), ablations=("no-stage1",), test_cases=4, no_repeat=2,
                               out=tmp_path / "run"),
                     {"stage1.train_cases": 12, "stage1.search.iterations": 4, "stage1.sft.epochs": 1.0,
                      "stage1.sft.batch_size": 4, "stage1.sft.num_threads": 1, **tiny,
                      "grpo.steps": 1, "grpo.cases_per_step": 2, "grpo.group_size": 2, "grpo.max_new_tokens": 12,
                      "grpo.num_threads": 1, "grpo.data.limit": 4})
    summary = run_pipeline(cfg, progress=False)
    out = tmp_path / "run"
    arms = ("grpo-sig-mixed", "grpo-outcome", "grpo-sig-mixed-no-stage1")
    for d in ("pretrain", "sft", *arms):
        assert (out / d / "config.json").is_file(), d  # a Hugging Face checkpoint per arm
    assert set(summary.doctors) == {"reactive", "pretrain", "mcts-sft", *arms}
    assert json.loads((out / arms[2] / "manifest.json").read_text())["config"]["model"] == f"hf:{out / 'pretrain'}"
    assert all(m.n == 4 for m in summary.doctors.values())
    table = (out / "ablation.md").read_text()
    assert all(f"| {name} |" in table for name in summary.doctors)
    assert set(summary.steps) == {"pretrain", "mcts", "sft", *arms, "eval"}
    assert all(s.wall_s >= 0 and s.peak_rss_mib > 0 for s in summary.steps.values())
    # the other arms reused the SIG arm's Shapley cache instead of computing their own
    assert not any((out / d / "shapley.jsonl").exists() for d in arms[1:])
    assert (out / "eval" / "accuracy_vs_questions.png").is_file()
    assert (out / "grpo_curves.png").stat().st_size > 0  # both arms' learning curves in one figure
    # rerun: nothing is trained again, the table is the same
    again = run_pipeline(cfg, progress=False)
    arm = again.grpo["sig-mixed"]
    assert again.pretrain.skipped and arm.skipped and arm.steps == 1
    assert again.doctors == summary.doctors
    assert json.loads((out / "run.json").read_text())["doctors"] == {k: m.to_json() for k, m in summary.doctors.items()}


def test_ablation_arms_change_one_thing_each(tmp_path):
    """Each ablation is the SIG arm with one setting changed: the same rollout seed, steps and Shapley cache."""
    cfg = RunConfig(ablations=tuple(ABLATIONS), out=tmp_path / "run").resolved()
    assert cfg.arm_rows() == {"sig-mixed": "sig-mixed", "outcome": "outcome", "sig-mixed-lam0": "lam0",
                              "sig-mixed-softmax": "softmax", "sig-mixed-no-stage1": "no-stage1"}
    cache = Path("shapley.jsonl")
    base = arm_config(cfg, "sig-mixed", cache, False)
    for name, change in (("lam0", {"sig": base.sig.__class__(lam=0.0)}),
                         ("softmax", {"sig": base.sig.__class__(weighting="softmax")}),
                         ("no-stage1", {"model": f"hf:{tmp_path / 'run' / 'pretrain'}"})):
        arm = arm_config(cfg, name, cache, False)
        assert arm.out == tmp_path / "run" / f"grpo-sig-mixed-{name}" and arm.credit == "sig-mixed"
        assert arm == base.__class__(**{**vars(base), **change, "out": arm.out}), name
