"""The command-line contract: outputs, resumption, and exit code 2 with nothing written on bad input."""

import json

import pytest
from typer.testing import CliRunner

from promed.cli import app
from promed.data.cases import load_cases

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    res = run("eval", "--limit", 12, "--doctor", "reactive,full-info,random-2,greedy-eig", "--out", out,
              "--no-progress")
    assert res.exit_code == 0, res.output
    return out


def test_eval_writes_summary_table_and_transcripts(eval_dir):
    summary = json.loads((eval_dir / "summary.json").read_text())
    assert list(summary) == ["reactive", "full-info", "random-2", "greedy-eig"]
    for name, m in summary.items():
        assert set(m) >= {"accuracy", "ci95", "mean_questions", "fact_recall", "invalid_rate", "truncated_rate",
                          "n", "skipped", "mean_sig", "total_sig"}
        assert m["n"] == 12 and m["ci95"][0] <= m["accuracy"] <= m["ci95"][1]
    assert summary["reactive"]["mean_questions"] == 0 and summary["full-info"]["fact_recall"] == 1.0
    assert summary["random-2"]["mean_questions"] == 2
    assert "| reactive |" in (eval_dir / "table.md").read_text()
    rec = json.loads((eval_dir / "transcripts" / "random-2.jsonl").read_text().splitlines()[0])
    roles = [m["role"] for m in rec["messages"]]
    assert roles[:2] == ["system", "user"] and roles[-1] == "assistant" and roles.count("assistant") == 3
    assert all(t["sig"] is not None for t in rec["turns"])


def test_eval_resumes_without_duplicates(eval_dir):
    path = eval_dir / "transcripts" / "reactive.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:5]) + "\n" + lines[5][: len(lines[5]) // 2])  # an interrupted run
    res = run("eval", "--limit", 12, "--doctor", "reactive", "--out", eval_dir, "--no-progress")
    assert res.exit_code == 0, res.output
    ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]
    assert len(ids) == 12 == len(set(ids))


def test_bad_data_exits_2_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "initial": "x", "facts": ["a"], "question": "q", "options": {"A": "a", "B": "b"}, '
                   '"answer": "A"}\n{"id": 2, "initial": "x", "question": "q"}\n')
    out = tmp_path / "out"
    res = run("eval", "--data", bad, "--doctor", "reactive", "--scorer", "tiny", "--out", out, "--no-progress")
    assert res.exit_code == 2
    assert f"{bad}:2: field 'options': missing" in res.output
    assert not out.exists()


@pytest.mark.parametrize("args,msg", [
    (["--doctor", "oracle"], "unknown doctor"),
    (["--doctor", "llm:nonsense:spec"], "bad model spec"),
    (["--split", "dev"], "unknown split"),
    (["--data", "/no/such/file.jsonl"], "no such file"),
])
def test_bad_options_exit_2(tmp_path, args, msg):
    res = run("eval", "--limit", 3, *args, "--out", tmp_path / "o", "--no-progress")
    assert res.exit_code == 2 and msg in res.output
    assert not (tmp_path / "o").exists()


def test_data_roundtrip(tmp_path):
    out = tmp_path / "sc.jsonl"
    assert run("data", "synthclinic", "--split", "val", "--limit", 20, "--out", out).exit_code == 0
    from promed.data.synthclinic import generate_cases

    assert [c.to_json() for c in load_cases(out).cases] == [c.to_json() for c in generate_cases("val", 20)]


def test_sig_command_resumes(tmp_path):
    out = tmp_path / "sig"
    res = run("sig", "--limit", 4, "--estimator", "exact", "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (out / "shapley.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for r in rows:
        assert set(r) >= {"id", "facts", "phi", "v_empty", "v_full", "stderr", "n_evals"}
        assert abs(sum(r["phi"]) - (r["v_full"] - r["v_empty"])) < 1e-9  # efficiency, exact
    res = run("sig", "--limit", 6, "--estimator", "exact", "--out", out, "--no-progress")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_cases"] == 6 and summary["computed_now"] == 2
    assert len((out / "shapley.jsonl").read_text().splitlines()) == 6


def test_figures(eval_dir, tmp_path):
    assert (eval_dir / "accuracy_vs_questions.png").stat().st_size > 10_000
    out = tmp_path / "case.png"
    res = run("figure", "--run", eval_dir, "--doctor", "greedy-eig", "--out", out)
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    res = run("figure", "--run", eval_dir, "--doctor", "greedy-eig", "--case", "nope", "--out", out)
    assert res.exit_code == 2 and "not in" in res.output


def test_version():
    import importlib.metadata as md

    from typer.testing import CliRunner

    from promed.cli import app

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"promed {md.version('promed')}"


def test_grpo_bad_mix_baseline_exit_2(tmp_path):
    res = run("grpo", "--model", "hf:/no/such/dir", "--reward", "sig-mixed", "--mix-baseline", "answers",
              "--out", tmp_path / "o", "--no-progress")
    assert res.exit_code == 2 and "--mix-baseline must be one of questions, turns" in res.output
    assert not (tmp_path / "o").exists()


def test_run_bad_ablation_exit_2(tmp_path):
    res = run("run", "--ablation", "lam0,nope", "--out", tmp_path / "o", "--no-progress")
    assert res.exit_code == 2 and "--ablation: each is one of lam0, softmax, no-stage1; got nope" in res.output
    res = run("run", "--arm", "outcome", "--ablation", "lam0", "--out", tmp_path / "o", "--no-progress")
    assert res.exit_code == 2 and "--ablation varies the SIG arm" in res.output
    assert not (tmp_path / "o").exists()


def test_grpo_bad_mix_scope_exit_2(tmp_path):
    res = run("grpo", "--model", "hf:/no/such/dir", "--reward", "sig-mixed", "--mix-scope", "tokens",
              "--out", tmp_path / "o", "--no-progress")
    assert res.exit_code == 2 and "--mix-scope must be one of turn, decision" in res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,expected", [([], None), (["--bf16"], True), (["--no-bf16"], False)])
def test_pretrain_bf16_flag_is_three_way(tmp_path, monkeypatch, args, expected):
    """--bf16 / --no-bf16 / neither (None: CUDA's rule) reach PretrainConfig.bf16."""
    import promed.runs.pretrain as runs_pretrain
    from promed.runs.pretrain import PretrainSummary

    seen = {}

    def fake(cfg, progress=False):
        seen["bf16"] = cfg.bf16
        return PretrainSummary(completed=True, model_dir=str(tmp_path), steps=1, params=1, examples=1,
                               dropped_too_long=0, final_loss=None, data_seconds=0.0, wall_seconds_this_run=0.0,
                               resumed_from=None, skipped=True)

    monkeypatch.setattr(runs_pretrain, "run_pretrain_command", fake)
    res = CliRunner().invoke(app, ["pretrain", "--out", str(tmp_path / "pre"), *args])
    assert res.exit_code == 0, res.output
    assert seen == {"bf16": expected}


def test_data_convert_writes_cases_and_bad_input_writes_nothing(tmp_path):
    """promed data convert: a MedQA-style item becomes a case that --data reads; a bad item exits 2, no file."""
    from promed.data.cases import load_cases

    item = {"question": "A 45-year-old man comes to the physician because of a cough for 3 weeks. He denies fever "
                        "or night sweats. Temperature is 37°C, pulse is 90/min, and blood pressure is 120/80 mm Hg. "
                        "Which of the following is the most likely diagnosis?",
            "options": {"A": "Pneumonia", "B": "Asthma", "C": "Gout", "D": "Migraine"}, "answer_idx": "A"}
    src = tmp_path / "items.jsonl"
    src.write_text(json.dumps(item) + "\n", encoding="utf-8")
    out = tmp_path / "cases.jsonl"
    res = CliRunner().invoke(app, ["data", "convert", str(src), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    [case] = load_cases(out, split="all").cases
    assert case.question.startswith("Which of the following") and case.answer == "A"
    assert [f.text for f in case.facts][-3:] == ["Temperature is 37°C.", "Pulse is 90/min.",
                                                 "Blood pressure is 120/80 mm Hg."]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**item, "answer_idx": "F"}) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["data", "convert", str(bad), "--out", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2 and f"{bad}:1" in res.output and "answer_idx" in res.output
    assert not (tmp_path / "none.jsonl").exists()
