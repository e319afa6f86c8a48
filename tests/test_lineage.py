"""The contamination guard (promed.data.lineage): a checkpoint remembers the cases it learned from, inherited along
MCTS -> SFT (-> GRPO), and ``promed eval`` refuses to evaluate its doctor on those cases unless told to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promed.cli import app
from promed.data.cases import write_cases
from promed.data.lineage import LINEAGE_FILE, Lineage, check_overlap, lineage_of_cases, read_lineage, write_lineage
from promed.data.splits import case_fingerprint
from promed.data.synthclinic import generate_cases
from promed.errors import InputError

SMALL = ("[sft]\nepochs = 1.0\nbatch_size = 4\nnum_threads = 1\n[sft.small]\nvocab_size = 300\nhidden_size = 16\n"
         "num_layers = 1\nnum_heads = 1\nnum_kv_heads = 1\nintermediate_size = 32\nmin_frequency = 1\n")


def _invoke(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def doctor(tmp_path_factory) -> Path:
    """A checkpoint fine-tuned on the MCTS trajectories of 3 SynthClinic val cases (tiny model, seconds)."""
    root = tmp_path_factory.mktemp("lineage")
    res = _invoke("mcts", "--data", "synthclinic", "--split", "val", "--limit", 3, "--candidates", "facts",
                  "--scorer", "bayes", "--iterations", 4, "--no-progress", "--out", root / "mcts")
    assert res.exit_code == 0, res.output
    conf = root / "sft.toml"
    conf.write_text(SMALL, encoding="utf-8")
    res = _invoke("sft", "--config", conf, "--train", root / "mcts" / "trajectories.jsonl", "--no-progress",
                  "--out", root / "sft")
    assert res.exit_code == 0, res.output
    return root / "sft"


def test_mcts_and_sft_record_the_cases_they_learned_from(doctor):
    val = generate_cases("val", 3)
    mcts = read_lineage(doctor.parent / "mcts" / "trajectories.jsonl")
    sft = read_lineage(doctor)
    assert mcts.fingerprints == sft.fingerprints == {case_fingerprint(c) for c in val}
    assert any(s.startswith("mcts: synthclinic (val)") for s in sft.sources)
    # a checkpoint directory inside the run is covered by the run's record
    ckpts = sorted((doctor / "checkpoints").glob("checkpoint-*"))
    assert ckpts and read_lineage(ckpts[-1]) == sft


def test_eval_refuses_the_training_cases_and_accepts_others(doctor, tmp_path):
    base = ["eval", "--data", "synthclinic", "--limit", 3, "--doctor", f"llm:{doctor}", "--no-sig", "--no-progress"]
    res = _invoke(*base, "--split", "val", "--out", tmp_path / "val")
    assert res.exit_code == 2
    assert f"the checkpoint {doctor} learned from 3 of these 3 cases" in res.output and "--allow-overlap" in res.output
    assert not (tmp_path / "val").exists()  # nothing written
    res = _invoke(*base, "--split", "val", "--allow-overlap", "--out", tmp_path / "val")
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "val" / "summary.json").read_text())
    assert summary[f"llm:{doctor}"]["overlap"] == 3
    assert "(trained on 3 of these cases)" in (tmp_path / "val" / "table.md").read_text()
    res = _invoke(*base, "--split", "test", "--out", tmp_path / "test")  # held-out cases: no overlap, no mark
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "test" / "summary.json").read_text())[f"llm:{doctor}"]["overlap"] == 0


def test_the_guard_on_a_case_file_and_an_inherited_lineage(doctor, tmp_path):
    """A checkpoint whose lineage holds cases of a file (as GRPO writes it: its cases plus its base model's) is
    refused on that file, by content: the ids and the order of the file do not matter."""
    cases = generate_cases("test", 6)
    data = tmp_path / "cases.jsonl"
    write_cases(cases[::-1], data)
    ckpt = tmp_path / "grpo"
    shutil.copytree(doctor, ckpt)
    write_lineage(ckpt, lineage_of_cases(cases[:2], "grpo: a file (train)").union(read_lineage(doctor)))
    assert len(read_lineage(ckpt).fingerprints) == 5  # 2 of the file + the SFT doctor's 3
    res = _invoke("eval", "--data", data, "--split", "all", "--doctor", f"ask:{ckpt}", "--no-sig", "--no-progress",
                  "--out", tmp_path / "e")
    assert res.exit_code == 2 and "learned from 2 of these 6 cases" in res.output
    assert check_overlap("llm:x", f"hf:{ckpt}", cases[2:], allow=False) == 0


def test_lineage_unit():
    cases = generate_cases("val", 4)
    a = lineage_of_cases(cases[:2], "a")
    assert a.overlap(cases) == [cases[0].id, cases[1].id] and a.sources == ("a (2 cases)",)
    assert a.union(None) is a and a.union(Lineage()).fingerprints == a.fingerprints
    with pytest.raises(InputError, match="learned from 2 of these 4 cases"):
        check_overlap("llm:d", "/nonexistent/dir", cases, allow=False) or _raise_for(a, cases)
    assert check_overlap("llm:gemma", "gemma-270m", cases, allow=False) == 0  # no lineage: nothing to compare


def _raise_for(lineage: Lineage, cases) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        write_lineage(Path(d), lineage)
        assert (Path(d) / LINEAGE_FILE).is_file()
        return check_overlap("llm:d", d, cases, allow=False)


def test_a_mediq_case_is_one_case_under_either_initial_protocol(tmp_path):
    """Trained with --initial first-half-facts, evaluated with first-sentence: the guard sees the same case."""
    rec = {"id": 7, "question": "Which of the following is the most likely diagnosis?",
           "context": ["A 30-year-old woman has a headache.", "She has a fever.", "Her neck is stiff."],
           "facts": ["1. Patient is a 30-year-old woman.", "2. Patient has a headache.", "3. Patient has a fever.",
                     "4. Patient has a stiff neck."],
           "options": {"A": "Meningitis", "B": "Migraine", "C": "Sinusitis", "D": "Tension headache"},
           "answer_idx": "A"}
    path = tmp_path / "mediq.jsonl"
    path.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    from promed.data.cases import load_cases

    [train] = load_cases(path, initial="first-half-facts").cases
    [test] = load_cases(path, initial="first-sentence").cases
    assert train.initial != test.initial and train.n_facts < test.n_facts  # two readings of one record
    assert case_fingerprint(train) == case_fingerprint(test)
    assert lineage_of_cases([train], "grpo").overlap([test]) == [test.id]
