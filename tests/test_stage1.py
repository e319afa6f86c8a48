"""The Stage 1 preset end to end on a handful of SynthClinic cases: pretraining -> search -> SFT -> evaluation, then
resume; and the same stage from scratch."""

import json

import pytest

from promed.config import with_paths
from promed.runs.stage1 import Stage1Config, run_stage1

TINY_PRETRAIN = {"pretrain.cases": 24, "pretrain.labels": "hard", "pretrain.max_steps": 3, "pretrain.batch_size": 8,
                 "pretrain.num_threads": 1,
                 "pretrain.small.vocab_size": 600, "pretrain.small.hidden_size": 32, "pretrain.small.num_layers": 1,
                 "pretrain.small.num_heads": 1, "pretrain.small.num_kv_heads": 1,
                 "pretrain.small.intermediate_size": 64}


def _cfg(tmp_path, **kw):
    return with_paths(Stage1Config(train_cases=24, test_cases=8, no_repeat=2, baselines=("reactive",),
                                   out=tmp_path / "s1", **kw),
                      {"search.iterations": 4, "sft.epochs": 1.0, "sft.batch_size": 4, "sft.num_threads": 1,
                       **TINY_PRETRAIN})


def test_stage1_starts_from_the_pretrained_doctor_and_skips_it_on_resume(tmp_path):
    cfg = _cfg(tmp_path)
    summary = run_stage1(cfg, progress=False)
    rec = json.loads((tmp_path / "s1" / "stage1.json").read_text())
    assert rec["pretrain"]["completed"] and not rec["pretrain"]["skipped"] and rec["pretrain_s"] > 0
    # the trajectories answer the way the pretrained doctor does (the option's text), and SFT starts from it
    first = json.loads((tmp_path / "s1" / "mcts" / "trajectories.jsonl").read_text().splitlines()[0])
    answer = first["messages"][-1]["content"]
    assert answer == f"ANSWER: {_option_text(first['messages'][1]['content'], first['answer'])}"
    sft_log = json.loads((tmp_path / "s1" / "sft" / "train_log.json").read_text())
    assert sft_log["config"]["model"] == f"hf:{tmp_path / 's1' / 'pretrain'}"
    again = run_stage1(cfg, progress=False)
    assert again.pretrain.skipped and again.pretrain_s is not None  # not trained twice
    assert again.eval == summary.eval


def _option_text(user_message: str, letter: str) -> str:
    line = next(x for x in user_message.splitlines() if x.startswith(f"{letter}. "))
    return line[3:]


def test_stage1_config_checks_its_start():
    with pytest.raises(ValueError, match="exclude each other"):
        Stage1Config(from_scratch=True, pretrained="runs/pretrain")
    assert Stage1Config(from_scratch=True).sft_config().model == "synthclinic-small"
    assert Stage1Config(from_scratch=True).mcts_config().answer_format == "letter"
    assert Stage1Config().mcts_config().answer_format == "name"
    assert Stage1Config().sft_config().model == "hf:runs/stage1/pretrain"


def test_stage1_from_scratch_runs_end_to_end_and_resumes(tmp_path):
    cfg = _cfg(tmp_path, from_scratch=True)
    summary = run_stage1(cfg, progress=False)
    assert not (tmp_path / "s1" / "pretrain").exists() and summary.pretrain is None
    rec = json.loads((tmp_path / "s1" / "stage1.json").read_text())
    assert rec["total_s"] == summary.total_s > 0 and rec["peak_rss_mib"] > 0
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
    assert again.sft.steps == rec["sft"]["steps"]
    assert {k: m.to_json() for k, m in again.eval.items()} == rec["eval"]
