"""Runs bound to their settings: a directory holding a run with other settings is refused (exit 2, naming the
differences, nothing changed); the same settings resume; --overwrite starts afresh. Output files get the usual
mode (the umask), whole-file outputs included."""

from __future__ import annotations

import os
import stat

import pytest
from typer.testing import CliRunner

from promed.cli import app

FAST = ["--split", "val", "--limit", "4", "--no-progress"]


def _snapshot(d):
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command,first,second,named", [
    ("eval", ["--doctor", "random-2", "--seed", "0", "--max-questions", "5"],
     ["--doctor", "random-2", "--seed", "7", "--max-questions", "2"], ["seed: 0 -> 7", "env.max_questions: 5 -> 2"]),
    ("sig", ["--estimator", "exact"], ["--estimator", "kernel", "--budget", "40"], ["estimator: 'exact' -> 'kernel'"]),
    ("mcts", ["--iterations", "4", "--split", "train"], ["--iterations", "6", "--split", "train"],
     ["search.iterations: 4 -> 6"]),
])
def test_other_settings_are_refused_then_overwritten(tmp_path, command, first, second, named):
    runner = CliRunner()
    out = tmp_path / "run"
    res = runner.invoke(app, [command, *FAST, *first, "--out", str(out)])
    assert res.exit_code == 0, res.output
    before = _snapshot(out)
    res = runner.invoke(app, [command, *FAST, *second, "--out", str(out)])
    assert res.exit_code == 2
    assert "holds a run with other settings" in res.output and "--overwrite" in res.output
    for text in named:
        assert text in res.output
    assert _snapshot(out) == before  # nothing changed
    # the same settings resume (and another batch size or --no-progress do not bind the run)
    res = runner.invoke(app, [command, *FAST, *first, "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [command, *FAST, *second, "--out", str(out), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert _snapshot(out) != before


def test_other_data_is_refused(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    assert runner.invoke(app, ["eval", *FAST, "--doctor", "reactive", "--out", str(out)]).exit_code == 0
    res = runner.invoke(app, ["eval", "--split", "val", "--limit", "4", "--data-seed", "3", "--no-progress",
                              "--doctor", "reactive", "--out", str(out)])
    assert res.exit_code == 2 and "data.data_seed: 0 -> 3" in res.output


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert CliRunner().invoke(app, ["eval", *FAST, "--doctor", "reactive", "--out", str(out)]).exit_code == 0
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()}
        assert modes["manifest.json"] == modes["summary.json"] == modes["table.md"] == modes["reactive.jsonl"] == 0o644
    finally:
        os.umask(old)


def test_edited_data_file_is_refused_and_a_larger_limit_extends(tmp_path):
    runner = CliRunner()
    data = tmp_path / "cases.jsonl"
    assert runner.invoke(app, ["data", "synthclinic", "--split", "val", "--limit", "6", "--out", str(data)]).exit_code == 0
    out = tmp_path / "run"
    args = ["eval", "--data", str(data), "--split", "val", "--doctor", "random-2", "--no-progress", "--out", str(out)]
    assert runner.invoke(app, [*args, "--limit", "3"]).exit_code == 0
    res = runner.invoke(app, [*args, "--limit", "6"])  # more cases of the same data: the run is extended
    assert res.exit_code == 0, res.output
    assert len((out / "transcripts" / "random-2.jsonl").read_text().splitlines()) == 6
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:-1]) + "\n")  # the file changed
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "data: other cases" in res.output
