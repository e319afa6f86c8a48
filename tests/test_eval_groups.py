"""`promed eval --samples G --temperature T`: sampled groups keyed by (case id, sample), pass@G, exact resume."""

from __future__ import annotations

import json
from pathlib import Path

from promed.config import DataConfig, EnvConfig, EvalConfig
from promed.eval.evaluate import run_eval
from promed.eval.metrics import group_metrics
from promed.types import Transcript


def _cfg(out: Path, **kw) -> EvalConfig:
    base = dict(data=DataConfig(split="val", limit=12), doctors=("reactive", "random-2"), sig_enabled=False,
                env=EnvConfig(max_questions=3), samples=3, batch_size=5, out=out)
    return EvalConfig(**{**base, **kw})


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_samples_report_mean_and_pass_at_g(tmp_path):
    res = run_eval(_cfg(tmp_path / "a"), progress=False)
    for name in ("reactive", "random-2"):
        m = res[name]
        assert m.samples == 3 and m.n == 12
        assert m.sampled_accuracy <= m.pass_at_k <= 1.0
        recs = _lines(tmp_path / "a" / "transcripts" / f"{name}.samples.jsonl")
        ids = [r["id"] for r in _lines(tmp_path / "a" / "transcripts" / f"{name}.jsonl")]
        assert sorted((r["id"], r["sample"]) for r in recs) == sorted((i, s) for i in ids for s in range(3))
    # reactive is deterministic: every sample answers alike; random-2 samples ask different questions
    assert res["reactive"].sampled_accuracy == res["reactive"].accuracy == res["reactive"].pass_at_k
    recs = _lines(tmp_path / "a" / "transcripts" / "random-2.samples.jsonl")
    by_case: dict[str, set] = {}
    for r in recs:
        by_case.setdefault(r["id"], set()).add(tuple(t["question"] for t in r["turns"]))
    assert any(len(v) > 1 for v in by_case.values())
    table = (tmp_path / "a" / "table.md").read_text()
    assert "pass@G" in table and "(G=3)" in table


def test_sampled_resume_equals_uninterrupted_and_batch_free(tmp_path):
    run_eval(_cfg(tmp_path / "full"), progress=False)
    path = tmp_path / "full" / "transcripts" / "random-2.samples.jsonl"
    whole = path.read_text().splitlines()
    # interrupted: keep a third of the records and half a line, then resume with another batch size
    cut = tmp_path / "cut"
    run_eval(_cfg(cut, doctors=("random-2",)), progress=False)
    part = cut / "transcripts" / "random-2.samples.jsonl"
    part.write_text("\n".join(whole[:12]) + "\n" + whole[12][: len(whole[12]) // 2])
    run_eval(_cfg(cut, doctors=("random-2",), batch_size=64), progress=False)
    key = lambda line: (json.loads(line)["id"], json.loads(line)["sample"])  # noqa: E731
    assert sorted(part.read_text().splitlines(), key=key) == sorted(whole, key=key)


def test_group_metrics_by_hand():
    t = lambda ok: Transcript("c", correct=ok)  # noqa: E731
    mean, pass_k = group_metrics([[t(True), t(False)], [t(False), t(False)], [t(True), t(True)]])
    assert mean == 3 / 6 and pass_k == 2 / 3


def test_llm_doctor_samples_record_token_ids(tmp_path):
    res = run_eval(_cfg(tmp_path / "llm", doctors=("llm:tiny",), samples=2, temperature=1.0,
                        data=DataConfig(split="val", limit=3)), progress=False)
    assert res["llm:tiny"].samples == 2
    recs = _lines(tmp_path / "llm" / "transcripts" / "llm_tiny.samples.jsonl")
    steps = [s for r in recs for s in r["steps"] if s["policy"]]
    assert steps and all(s["token_ids"] and len(s["logprobs"]) == len(s["token_ids"]) for s in steps)


def test_labels_of_coinciding_doctors_do_not_overlap():
    from promed.eval.figures import label_positions
    from promed.eval.metrics import Metrics

    def m(acc, q):
        return Metrics(acc, (acc - 0.04, acc + 0.04), q, 0.1, 0.0, 0.0, None, None, 500, {})

    pos = label_positions({"a": m(0.656, 4.28), "b": m(0.656, 4.31), "c": m(0.2, 0.0), "d": m(0.9, 0.0)})
    assert pos["a"][2] != pos["b"][2]  # the same point: one label moved up
    assert pos["c"][2] == pos["d"][2] == 0.0  # far apart: left where they are
