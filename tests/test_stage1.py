"""The Stage 1 preset end to end on a handful of SynthClinic cases: search -> SFT -> evaluation, then resume."""

import json

from promed.config import with_paths
from promed.runs.stage1 import Stage1Config, run_stage1


def test_stage1_runs_end_to_end_and_resumes(tmp_path):
    cfg = with_paths(Stage1Config(train_cases=24, test_cases=8, no_repeat=2, baselines=("reactive",),
                                  out=tmp_path / "s1"),
                     {"search.iterations": 4, "sft.epochs": 1.0, "sft.batch_size": 4, "sft.num_threads": 1})
    summary = run_stage1(cfg, progress=False)
    rec = json.loads((tmp_path / "s1" / "stage1.json").read_text())
    assert rec["total_s"] == summary["total_s"] > 0 and rec["peak_rss_mib"] > 0
    assert rec["mcts"]["searched"] == 24 and rec["mcts"]["trajectories"] > 0
    assert rec["sft"]["steps"] > 0
    names = set(rec["eval"])
    sft_dir = str(tmp_path / "s1" / "sft")
    assert names == {"reactive", f"llm:{sft_dir}", f"ask:{sft_dir}"}
    for m in rec["eval"].values():
        assert m["n"] == 8 and 0.0 <= m["accuracy"] <= 1.0
    # the search used the preset's discount, and the fine-tuned doctor never asks more than the budget
    manifest = json.loads((tmp_path / "s1" / "mcts" / "manifest.json").read_text())
    assert manifest["config"]["search"]["gamma"] == cfg.search.gamma
    assert all(m["mean_questions"] <= cfg.search.max_questions for m in rec["eval"].values())
    # a second run resumes every step: nothing is searched or trained again
    again = run_stage1(cfg, progress=False)
    assert again["sft"]["steps"] == rec["sft"]["steps"]
    assert again["eval"] == rec["eval"]
