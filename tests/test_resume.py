"""Resume = uninterrupted: runs killed with SIGKILL at two points (the second leaving a torn line) and resumed give the
same output files, byte for byte apart from timings, as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "promed", *args, "--no-progress"]


def _lines(path: Path) -> int:
    return path.read_text(encoding="utf-8").count("\n") if path.exists() else 0


def _kill_at(cmd: list[str], watch: Path, n_lines: int, tear: bool) -> None:
    """Start ``cmd``, SIGKILL it once ``watch`` holds ``n_lines`` complete lines; then leave exactly those lines
    (plus half of the next one when ``tear``), as a crash at that point would. If the process ends first, the file
    is cut back the same way, which is what a kill at that point leaves."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while proc.poll() is None and _lines(watch) < n_lines and time.time() < deadline:
        time.sleep(0.02)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    text = watch.read_text(encoding="utf-8") if watch.exists() else ""
    lines = text.splitlines(keepends=True)
    kept = "".join(lines[:n_lines])
    if tear and len(lines) > n_lines:
        kept += lines[n_lines][: len(lines[n_lines]) // 2]
    watch.write_text(kept, encoding="utf-8")


def _run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]


def _without_timings(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        for key in ("seconds", "wall_s", "shapley_seconds"):
            rec.pop(key, None)
        out.append(rec)
    return out


def _resume_chain(tmp_path: Path, args: list[str], watch: str, points: list[tuple[int, bool]]) -> tuple[Path, Path]:
    """An uninterrupted run (``ref``) and one killed at ``points`` then resumed (``cut``)."""
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    _run(_cmd(*args, "--out", str(ref)))
    for n, tear in points:
        _kill_at(_cmd(*args, "--out", str(cut)), cut / watch, n, tear)
    _run(_cmd(*args, "--out", str(cut)))
    return ref, cut


def _same_bytes(ref: Path, cut: Path, *names: str) -> None:
    for name in names:
        assert (ref / name).read_bytes() == (cut / name).read_bytes(), name


def _same_records(ref: Path, cut: Path, name: str, by_id: bool = False) -> None:
    """Equal records apart from timings (``by_id``: in any line order, for files written in completion order)."""
    a, b = _without_timings(ref / name), _without_timings(cut / name)
    if by_id:
        a, b = sorted(a, key=lambda r: r["id"]), sorted(b, key=lambda r: r["id"])
    assert a == b, name


@pytest.mark.slow
def test_eval_resume_equals_uninterrupted(tmp_path):
    args = ["eval", "--split", "val", "--limit", "30", "--doctor", "random-5,greedy-eig", "--batch-size", "7"]
    ref, cut = _resume_chain(tmp_path, args, "transcripts/random-5.jsonl", [(5, False), (14, True)])
    _same_bytes(ref, cut, "transcripts/random-5.jsonl", "transcripts/greedy-eig.jsonl", "summary.json", "table.md")
    _same_records(ref, cut, "shapley.jsonl", by_id=True)  # computed as consultations end


@pytest.mark.slow
def test_sig_resume_equals_uninterrupted(tmp_path):
    args = ["sig", "--split", "val", "--limit", "40", "--estimator", "kernel", "--budget", "60"]
    ref, cut = _resume_chain(tmp_path, args, "shapley.jsonl", [(7, False), (19, True)])
    _same_records(ref, cut, "shapley.jsonl")


@pytest.mark.slow
def test_mcts_resume_equals_uninterrupted(tmp_path):
    args = ["mcts", "--split", "train", "--limit", "10", "--iterations", "8", "--top-k", "2"]
    ref, cut = _resume_chain(tmp_path, args, "search.jsonl", [(2, False), (5, True)])
    _same_bytes(ref, cut, "trajectories.jsonl")
    _same_records(ref, cut, "search.jsonl")
