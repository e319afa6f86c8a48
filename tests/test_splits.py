"""Splits of case files by content hash: stable, proportional, overridable per record, and honoured by commands."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promed.cli import app
from promed.data.cases import DataError, load_cases, write_cases
from promed.data.sources import DataConfig, load_data
from promed.data.splits import SPLITS, SplitShares, case_fingerprint, split_of, split_of_fingerprint
from promed.errors import InputError

runner = CliRunner()


def record(i: int, **extra) -> dict:
    return {"id": f"r{i}", "initial": f"A {20 + i % 60}-year-old presents with complaint {i}.",
            "facts": [f"Finding {i}a.", f"Finding {i}b."], "question": "Which diagnosis?",
            "options": {"A": f"Disease {i}", "B": "Flu"}, "answer": "A", **extra}


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def ids(path: Path, split: str, **kw) -> set[str]:
    return {c.id for c in load_cases(path, split=split, **kw).cases}


# ---- the fingerprint and the cut --------------------------------------------------------------------------------


def test_fingerprint_is_content_only(tmp_path):
    [a] = load_cases(write(tmp_path / "one.jsonl", [record(1)])).cases
    b = a.__class__(**{**a.__dict__, "id": "other", "answer": "B", "source": "elsewhere"})
    assert case_fingerprint(a) == case_fingerprint(b)  # id, answer and source do not count
    spaced = a.__class__(**{**a.__dict__, "initial": "  " + a.initial.replace(" ", "   ") + "\n"})
    assert case_fingerprint(spaced) == case_fingerprint(a)  # whitespace runs collapse
    for change in ({"question": "Which drug?"}, {"initial": a.initial + "!"}, {"facts": a.facts[:1]},
                   {"options": a.options[::-1]}):
        assert case_fingerprint(a.__class__(**{**a.__dict__, **change})) != case_fingerprint(a), change


def test_cut_moves_cases_only_to_and_from_train():
    fps = [f"{i:016x}" for i in range(0, 2 ** 64, 2 ** 58)]
    base = [split_of_fingerprint(f) for f in fps]
    more_test = [split_of_fingerprint(f, SplitShares(0.1, 0.3)) for f in fps]
    assert all(a == b or (a, b) == ("train", "test") for a, b in zip(base, more_test))
    assert {split_of_fingerprint(f, SplitShares(0.0, 0.0)) for f in fps} == {"train"}


@pytest.mark.parametrize("val,test", [(-0.1, 0.1), (0.1, 1.5), (0.6, 0.5), (True, 0.1)])
def test_bad_shares_are_input_errors(val, test):
    with pytest.raises(InputError, match="share"):
        SplitShares(val, test)
    with pytest.raises(InputError, match="share"):
        DataConfig(data="x.jsonl", val_share=val, test_share=test)


# ---- files ------------------------------------------------------------------------------------------------------


def test_split_is_stable_under_shuffling_and_appending(tmp_path):
    rows = [record(i) for i in range(300)]
    first = write(tmp_path / "a.jsonl", rows)
    before = {s: ids(first, s) for s in SPLITS}
    shuffled = rows[:200]
    random.Random(0).shuffle(shuffled)
    second = write(tmp_path / "b.jsonl", shuffled + [record(i) for i in range(300, 400)])
    for s in SPLITS:
        after = ids(second, s)
        assert {i for i in after if int(i[1:]) < 200} == {i for i in before[s] if int(i[1:]) < 200}, s
    # renumbered ids and a relabelled answer: the same content, the same split
    renamed = write(tmp_path / "c.jsonl", [record(i) | {"id": f"x{i}", "answer": "B"} for i in range(300)])
    assert {"r" + i[1:] for i in ids(renamed, "test")} == before["test"]


def test_proportions_roughly_respected(tmp_path):
    path = write(tmp_path / "many.jsonl", [record(i) for i in range(600)])
    n = {s: len(ids(path, s)) for s in SPLITS}
    assert sum(n.values()) == 600
    assert 420 <= n["train"] <= 540 and 30 <= n["val"] <= 90 and 30 <= n["test"] <= 90, n
    n2 = {s: len(ids(path, s, shares=SplitShares(0.2, 0.3))) for s in SPLITS}
    assert 240 <= n2["train"] <= 360 and 80 <= n2["val"] <= 160 and 130 <= n2["test"] <= 230, n2


def test_all_returns_everything_in_file_order(tmp_path):
    path = write(tmp_path / "f.jsonl", [record(i) for i in range(50)])
    assert [c.id for c in load_cases(path, split="all").cases] == [f"r{i}" for i in range(50)]
    assert [c.id for c in load_data(DataConfig(data=str(path), split="all")).cases] == [f"r{i}" for i in range(50)]


def test_limit_counts_the_cases_of_the_split(tmp_path):
    path = write(tmp_path / "f.jsonl", [record(i) for i in range(300)])
    test_ids = [c.id for c in load_cases(path, split="test").cases]
    assert [c.id for c in load_cases(path, split="test", limit=5).cases] == test_ids[:5]


def test_record_split_field_wins(tmp_path):
    rows = [record(i) for i in range(100)]
    path = write(tmp_path / "f.jsonl", rows)
    hashed = {c.id: split_of(c) for c in load_cases(path).cases}
    forced = write(tmp_path / "g.jsonl", [r | {"split": "val"} if i % 2 == 0 else r for i, r in enumerate(rows)])
    assert ids(forced, "val") == {f"r{i}" for i in range(0, 100, 2)} | {k for k, s in hashed.items()
                                                                       if s == "val" and int(k[1:]) % 2}
    assert ids(forced, "test") == {k for k, s in hashed.items() if s == "test" and int(k[1:]) % 2}


@pytest.mark.parametrize("value,problem", [("dev", "unknown split 'dev'"), (None, "expected str, got null"),
                                           (3, "expected str, got int"), ("all", "unknown split 'all'")])
def test_bad_split_field_is_a_data_error(tmp_path, value, problem):
    path = write(tmp_path / "f.jsonl", [record(0), record(1, split=value)])
    for split in ("test", "all"):
        with pytest.raises(DataError, match=problem) as err:
            load_cases(path, split=split)
        assert str(err.value).startswith(f"{path}:2: field 'split': ")


def test_empty_split_is_a_data_error_naming_the_others(tmp_path):
    path = write(tmp_path / "f.jsonl", [record(i, split="train") for i in range(3)])
    with pytest.raises(DataError, match=r"no case in split 'test' \(usable cases of the other splits: train 3, "
                                        r"val 0\); choose another --split, or --split all"):
        load_cases(path, split="test")


def test_mediq_split_does_not_depend_on_the_initial_protocol(tmp_path):
    rows = [{"id": i, "question": "Which?", "context": [f"A patient {i}.", "More."],
             "facts": [f"1. Fact {i} one.", f"2. Fact {i} two.", "3. Three."], "options": {"A": "x", "B": "y"},
             "answer_idx": "A"} for i in range(200)]
    path = write(tmp_path / "mediq.jsonl", rows)
    for s in SPLITS:
        assert ids(path, s) == ids(path, s, initial="first-half-facts")


# ---- SynthClinic ------------------------------------------------------------------------------------------------


def test_synthclinic_all_is_the_three_splits_in_turn():
    from promed.data.synthclinic import generate_cases

    every = load_data(DataConfig(split="all")).cases
    assert [c.id for c in every] == [c.id for s in SPLITS for c in generate_cases(s)]
    assert [c.id for c in load_data(DataConfig(split="all", limit=2003)).cases][-3:] == [
        "sc-val-00000", "sc-val-00001", "sc-val-00002"]
    assert load_data(DataConfig(split="val", limit=4)).cases == generate_cases("val", 4)  # unchanged


def test_options_that_cannot_apply_are_refused():
    DataConfig().check_given({"split", "limit", "data_seed"})
    DataConfig(data="f.jsonl").check_given({"split", "initial", "val_share"})
    with pytest.raises(InputError, match="--initial cannot be used with --data synthclinic"):
        DataConfig().check_given({"initial"})
    with pytest.raises(InputError, match="--test-share cannot be used with --data synthclinic"):
        DataConfig().check_given({"test_share"})
    with pytest.raises(InputError, match="--data-seed cannot be used with --data f.jsonl"):
        DataConfig(data="f.jsonl").check_given({"data_seed"})


def test_cli_refuses_initial_for_synthclinic_and_data_seed_for_a_file(tmp_path):
    path = write(tmp_path / "f.jsonl", [record(i) for i in range(20)])
    res = runner.invoke(app, ["eval", "--initial", "first-half-facts", "--limit", "2", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--initial cannot be used with --data synthclinic" in res.output
    res = runner.invoke(app, ["sig", "--data", str(path), "--data-seed", "3", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--data-seed cannot be used with --data" in res.output
    assert not (tmp_path / "o").exists()


# ---- promed data ------------------------------------------------------------------------------------------------


def test_data_synthclinic_writes_each_records_split(tmp_path):
    out = tmp_path / "sc.jsonl"
    res = runner.invoke(app, ["data", "synthclinic", "--split", "test", "--limit", "5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert {json.loads(line)["split"] for line in out.read_text().splitlines()} == {"test"}
    assert len(load_cases(out, split="test").cases) == 5
    with pytest.raises(DataError, match="no case in split 'train'"):
        load_cases(out, split="train")
    out_all = tmp_path / "all.jsonl"
    assert runner.invoke(app, ["data", "synthclinic", "--split", "all", "--limit", "2002",
                               "--out", str(out_all)]).exit_code == 0
    assert [len(load_cases(out_all, split=s).cases) for s in ("train", "val")] == [2000, 2]


def test_data_split_command(tmp_path):
    rows = [record(i) for i in range(120)] + [record(120, facts=[])]  # the last one is unusable
    path = write(tmp_path / "in.jsonl", rows)
    out = tmp_path / "splits"
    res = runner.invoke(app, ["data", "split", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    parts = {s: (out / f"{s}.jsonl").read_text().splitlines() for s in SPLITS}
    lines = path.read_text().splitlines()[:120]
    assert sorted(sum(parts.values(), [])) == sorted(lines)  # verbatim; the union is the (usable) input
    sets = [set(p) for p in parts.values()]
    assert all(not (a & b) for i, a in enumerate(sets) for b in sets[i + 1:])
    for s in SPLITS:  # each part is its split: reading it with --split s keeps every case
        if parts[s]:
            assert ids(out / f"{s}.jsonl", s) == ids(path, s)
        assert f"{s} {len(parts[s])}" in res.output
    assert "left out 1 unusable records: 1 (empty facts)" in res.output


def test_data_split_bad_input_exits_2_writing_nothing(tmp_path):
    path = write(tmp_path / "in.jsonl", [record(0), record(1, split="dev")])
    out = tmp_path / "splits"
    res = runner.invoke(app, ["data", "split", str(path), "--out", str(out)])
    assert res.exit_code == 2 and f"{path}:2: field 'split': unknown split 'dev'" in res.output
    assert not out.exists()
    good = write(tmp_path / "good.jsonl", [record(0)])
    res = runner.invoke(app, ["data", "split", str(good), "--out", str(out), "--test-share", "1.5"])
    assert res.exit_code == 2 and "--test-share must be a number in [0, 1]" in res.output
    taken = tmp_path / "taken"
    taken.write_text("x")
    res = runner.invoke(app, ["data", "split", str(good), "--out", str(taken)])
    assert res.exit_code == 2 and "exists and is not a directory" in res.output
    assert not out.exists() and taken.read_text() == "x"


def test_data_unknown_subcommand_exits_2():
    assert runner.invoke(app, ["data", "mediq", "--out", "x.jsonl"]).exit_code == 2


# ---- a command honours the split --------------------------------------------------------------------------------


def test_eval_on_a_file_sees_only_its_split(tmp_path):
    from promed.data.synthclinic import generate_cases

    cases = generate_cases("test", 40)
    data = tmp_path / "sc.jsonl"
    write_cases(cases, data)  # no split field: split by content hash
    expected = {c.id for c in cases if split_of(c) == "test"}
    assert 0 < len(expected) < 40
    out = tmp_path / "run"
    res = runner.invoke(app, ["eval", "--data", str(data), "--split", "test", "--doctor", "reactive", "--scorer",
                              "bayes", "--no-progress", "--out", str(out)])
    assert res.exit_code == 0, res.output
    seen = {json.loads(line)["id"] for line in (out / "transcripts" / "reactive.jsonl").read_text().splitlines()}
    assert seen == expected
    assert json.loads((out / "summary.json").read_text())["reactive"]["n"] == len(expected)
    assert json.loads((out / "manifest.json").read_text())["config"]["data"]["split"] == "test"
    assert "file, test" in res.output


def test_manifest_binds_the_shares_of_a_file_only(tmp_path):
    """SynthClinic runs made before the shares existed still resume; a file run made then (it read the whole file)
    is refused; other shares on a file are refused too."""
    from promed.config import EvalConfig
    from promed.io import RunMismatch, manifest, prepare_run

    def old_run(cfg) -> Path:
        out = tmp_path / cfg.data.data.replace("/", "_")
        out.mkdir()
        old = manifest(cfg, "eval")
        for key in ("val_share", "test_share"):
            old["config"]["data"].pop(key, None)
        (out / "manifest.json").write_text(json.dumps({**old, "data_fingerprint": "f"}))
        return out

    synth = EvalConfig()
    prepare_run(old_run(synth), synth, "eval", "f")  # resumes
    on_file = EvalConfig(data=DataConfig(data=str(tmp_path / "f.jsonl")))
    out = old_run(on_file)
    with pytest.raises(RunMismatch, match="data.test_share"):
        prepare_run(out, on_file, "eval", "f")
    (out / "manifest.json").write_text(json.dumps({**manifest(on_file, "eval"), "data_fingerprint": "f"}))
    prepare_run(out, on_file, "eval", "f")
    other = EvalConfig(data=DataConfig(data=str(tmp_path / "f.jsonl"), test_share=0.2))
    with pytest.raises(RunMismatch, match="data.test_share: 0.1 -> 0.2"):
        prepare_run(out, other, "eval", "f")
