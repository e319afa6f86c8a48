"""Bad input files and option values, through ``promed eval``, ``promed sig`` and ``promed mcts``.

Every case must end with exit code 2 and one ``error: ...`` line on stderr (no traceback) that names the file, line
and field, or the option; and nothing may be written: the whole test directory (data files, the output directory
and its parent) is snapshotted before and compared after, both when the output directory does not exist yet (it
must stay absent) and when it holds the files of an earlier run (they must stay byte-for-byte and mtime-for-mtime
the same; their JSONL files end in a partial line, so even a resume-time repair would show).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promed.cli import app

runner = CliRunner()

FAST = ("--split", "val", "--limit", "2", "--no-progress")
COMMAND = {
    "eval": ("eval", *FAST, "--doctor", "reactive"),
    "sig": ("sig", *FAST),
    "mcts": ("mcts", *FAST, "--iterations", "1", "--width", "1"),
}

GOOD = {"id": "x1", "initial": "A 30-year-old woman presents with fever.", "facts": ["She has a rash."],
        "question": "Which diagnosis?", "options": {"A": "Measles", "B": "Flu"}, "answer": "A"}


def jl(*rows: dict) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def without(rec: dict, key: str) -> dict:
    return {k: v for k, v in rec.items() if k != key}


DATA: dict[str, bytes] = {
    "empty": b"",
    "blank-lines": b"\n   \n\n",
    "all-unusable": jl(GOOD | {"facts": []}, GOOD | {"id": "x2", "answer": "Z"},
                       GOOD | {"id": "x3", "options": {"A": "only one"}}),
    "binary": b"\xcc\x8f\x00\x01\x02\xff\xfe binary junk\n\x00\x00\x07\n",
    "latin-1": jl(GOOD) + json.dumps(GOOD | {"id": "x2", "initial": "Fi\u00e8vre depuis deux jours."},
                                     ensure_ascii=False).encode("latin-1") + b"\n",
    "eleven-options": jl(GOOD | {"options": [f"option {i}" for i in range(11)]}),
    "option-key-K": jl(GOOD | {"options": {"A": "Measles", "K": "Flu"}}),
    "numeric-option-keys": jl(GOOD | {"options": {"1": "Measles", "2": "Flu", "3": "Mumps", "4": "Rubella"},
                                      "answer": "2"}),
    "id-null": jl(GOOD, GOOD | {"id": None}),
    "id-missing": jl(without(GOOD, "id")),
    "duplicate-id": jl(GOOD, GOOD),
    "bad-json": jl(GOOD) + b'{"id": "x2", "initial": \n',
    "not-an-object": b'["a", "list"]\n',
    "missing-question": jl(GOOD, without(GOOD | {"id": "x2"}, "question")),
    "fact-not-a-string": jl(GOOD, GOOD | {"id": "x2", "facts": ["ok", 5]}),
    "option-text-null": jl(GOOD | {"options": {"A": "Measles", "B": None}}),
    "plain": jl(GOOD | {"split": "val"}, GOOD | {"id": "x2", "split": "val"}),  # FAST reads the val split
}


@dataclass(frozen=True)
class Bad:
    """One bad invocation: ``args`` after the command's fast defaults (placeholders: {data} the data file named
    ``data``, {dir} a directory, {missing} a missing file, {taken} an existing regular file, {toml} a config file
    holding ``toml``); ``expect``: substrings of the one error line (same placeholders)."""

    id: str
    command: str
    args: tuple[str, ...]
    expect: tuple[str, ...]
    data: str | None = None
    toml: str | None = None


def data_case(name: str, expect: str, command: str = "eval", *extra: str) -> Bad:
    args = ("--data", "{data}", *extra) if command != "eval" else ("--data", "{data}", "--scorer", "tiny", *extra)
    return Bad(f"{command}-file-{name}", command, args, (expect,), data=name)


CASES = [
    # ---- data files ---------------------------------------------------------------------------------------------
    data_case("empty", "{data}: no cases: the file is empty"),
    data_case("blank-lines", "{data}: no cases: the file is empty"),
    data_case("all-unusable", "{data}: no usable case: all 3 cases skipped (empty facts: 1, answer not among the "
                              "options: 1, fewer than two options: 1)"),
    data_case("binary", "{data}:1: "),
    data_case("latin-1", "{data}:2: not UTF-8 text (byte 0xe8"),
    data_case("eleven-options", "{data}:1: field 'options': 11 options; at most 10"),
    data_case("option-key-K", "{data}:1: field 'options.K': option keys must be letters A-J"),
    data_case("numeric-option-keys", "{data}:1: field 'options.1': option keys must be letters A-J, got '1'"),
    data_case("id-null", "{data}:2: field 'id': expected str or number, got null"),
    data_case("id-missing", "{data}:1: field 'id': missing"),
    data_case("duplicate-id", "{data}:2: field 'id': duplicate id 'x1'"),
    data_case("bad-json", "{data}:2: field '<json>': not valid JSON"),
    data_case("not-an-object", "{data}:1: field '<json>': expected a JSON object per line, got list"),
    data_case("missing-question", "{data}:2: field 'question': missing"),
    data_case("fact-not-a-string", "{data}:2: field 'facts[1]': expected str, got int"),
    data_case("option-text-null", "{data}:1: field 'options.B': expected str, got null"),
    Bad("eval-file-directory", "eval", ("--data", "{dir}", "--scorer", "tiny"), ("{dir}: is a directory",)),
    Bad("eval-file-missing", "eval", ("--data", "{missing}", "--scorer", "tiny"), ("{missing}: no such file",)),
    data_case("empty", "{data}: no cases: the file is empty", "sig"),
    data_case("binary", "{data}:1: ", "sig"),
    data_case("all-unusable", "{data}: no usable case: all 3 cases skipped", "mcts"),
    data_case("bad-json", "{data}:2: field '<json>'", "mcts"),
    data_case("plain", "{data}: these cases are not SynthClinic", "sig"),  # the default scorer is bayes
    data_case("plain", "{data}: these cases are not SynthClinic", "mcts", "--scorer", "bayes"),
    Bad("eval-file-plain-bayes", "eval", ("--data", "{data}", "--scorer", "bayes"),
        ("{data}: these cases are not SynthClinic",), data="plain"),
    # ---- option values ------------------------------------------------------------------------------------------
    Bad("eval-limit-minus-1", "eval", ("--limit", "-1"), ("--limit must be >= 1, got -1",)),
    Bad("eval-limit-0", "eval", ("--limit", "0"), ("--limit must be >= 1, got 0",)),
    Bad("eval-doctor-empty", "eval", ("--doctor", ""), ("--doctor must name at least one doctor",)),
    Bad("eval-max-questions-minus-3", "eval", ("--max-questions", "-3"), ("--max-questions must be >= 0, got -3",)),
    Bad("eval-doctor-random-0", "eval", ("--doctor", "random-0"), ("--doctor: 'random-0': random-<k> needs k >= 1",)),
    Bad("eval-doctor-unknown", "eval", ("--doctor", "oracle"), ("--doctor: unknown doctor 'oracle'",)),
    Bad("eval-doctor-bad-spec", "eval", ("--doctor", "llm:nonsense:spec"), ("--doctor: 'llm:nonsense:spec': bad "
                                                                            "model spec",)),
    Bad("eval-no-repeat-minus-1", "eval", ("--no-repeat", "-1"), ("--no-repeat must be >= 0, got -1",)),
    Bad("eval-doctor-twice", "eval", ("--doctor", "reactive,reactive"), ("--doctor names 'reactive' twice",)),
    Bad("eval-model-nonsense", "eval", ("--model", "nonsense"), ("--model: bad model spec 'nonsense'",)),
    Bad("eval-scorer-nonsense", "eval", ("--scorer", "nonsense"), ("--scorer: bad model spec 'nonsense'",)),
    Bad("eval-batch-size-0", "eval", ("--batch-size", "0"), ("--batch-size must be >= 1, got 0",)),
    Bad("eval-estimator-bogus", "eval", ("--estimator", "bogus"), ("--estimator must be auto,", "'bogus'")),
    Bad("eval-data-seed-minus-5", "eval", ("--data-seed", "-5"), ("--data-seed must be >= 0, got -5",)),
    Bad("eval-samples-0", "eval", ("--samples", "0"), ("--samples must be >= 1, got 0",)),
    Bad("eval-temperature-minus-1", "eval", ("--temperature", "-1"), ("--temperature must be >= 0, got -1",)),
    Bad("eval-seed-minus-1", "eval", ("--seed", "-1"), ("--seed must be >= 0, got -1",)),
    Bad("eval-split-dev", "eval", ("--split", "dev"), ("--split: unknown split 'dev'",)),
    Bad("eval-initial-bogus", "eval", ("--initial", "bogus"), ("--initial must be first-sentence or "
                                                               "first-half-facts",)),
    Bad("eval-data-empty-string", "eval", ("--data", ""), ("--data must be 'synthclinic' or a JSONL file",)),
    Bad("eval-out-is-a-file", "eval", ("--out", "{taken}"), ("--out {taken}: exists and is not a directory",)),
    Bad("eval-config-limit-0", "eval", ("--config", "{toml}"), ("{toml}", "--limit must be >= 1, got 0"),
        toml="[data]\nlimit = 0\n"),
    Bad("sig-budget-0", "sig", ("--budget", "0"), ("--budget must be >= 1, got 0",)),
    Bad("sig-budget-too-small", "sig", ("--estimator", "kernel", "--budget", "3"),
        ("--budget 3 is too small: kernel over case",)),
    Bad("sig-estimator-bogus", "sig", ("--estimator", "bogus"), ("--estimator must be auto,", "'bogus'")),
    Bad("sig-limit-0", "sig", ("--limit", "0"), ("--limit must be >= 1, got 0",)),
    Bad("sig-scorer-nonsense", "sig", ("--scorer", "nonsense"), ("--scorer: bad model spec 'nonsense'",)),
    Bad("sig-data-seed-minus-5", "sig", ("--data-seed", "-5"), ("--data-seed must be >= 0, got -5",)),
    Bad("sig-out-is-a-file", "sig", ("--out", "{taken}"), ("--out {taken}: exists and is not a directory",)),
    Bad("sig-out-under-a-file", "sig", ("--out", "{taken}/sub"), ("--out {taken}/sub: {taken} is not a directory",)),
    Bad("mcts-top-k-0", "mcts", ("--top-k", "0"), ("--top-k must be >= 1, got 0",)),
    Bad("mcts-model-nonsense", "mcts", ("--model", "nonsense"), ("--model: bad model spec 'nonsense'",)),
    Bad("mcts-scorer-nonsense", "mcts", ("--scorer", "nonsense"), ("--scorer: bad model spec 'nonsense'",)),
    Bad("mcts-candidates-bogus", "mcts", ("--candidates", "bogus"), ("--candidates must be one of",)),
    Bad("mcts-limit-0", "mcts", ("--limit", "0"), ("--limit must be >= 1, got 0",)),
    Bad("mcts-out-is-a-file", "mcts", ("--out", "{taken}"), ("--out {taken}: exists and is not a directory",)),
]


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def earlier_runs(tmp_path_factory) -> dict[str, Path]:
    """Output directories as earlier runs left them: real ``eval`` and ``sig`` runs; for ``mcts`` (whose real run
    loads the embedding model, too slow here) its files, written by hand. Every JSONL file ends in a partial line
    (an interrupted run), which a resume would repair, i.e. rewrite."""
    root = tmp_path_factory.mktemp("earlier")
    for cmd in ("eval", "sig"):
        res = run(*COMMAND[cmd], "--out", str(root / cmd))
        assert res.exit_code == 0, res.output
    mcts = root / "mcts"
    mcts.mkdir()
    shutil.copy2(root / "sig" / "shapley.jsonl", mcts / "shapley.jsonl")
    (mcts / "manifest.json").write_text('{"command": "mcts"}\n')
    (mcts / "search.jsonl").write_text('{"id": "sc-val-00000", "exported": 1}\n')
    (mcts / "trajectories.jsonl").write_text('{"id": "sc-val-00000", "messages": [], "rank": 0}\n')
    (mcts / "summary.json").write_text('{"cases": 1}\n')
    for path in root.rglob("*.jsonl"):
        with path.open("a") as fh:
            fh.write('{"id": "interrupted')
    return {cmd: root / cmd for cmd in COMMAND}


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` (and ``root``) with its kind, mtime and, for files, size and content hash."""
    snap: dict[str, tuple] = {".": ("dir", root.stat().st_mtime_ns)}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        if p.is_dir():
            snap[str(p.relative_to(root))] = ("dir", st.st_mtime_ns)
        else:
            snap[str(p.relative_to(root))] = ("file", st.st_size, st.st_mtime_ns,
                                              hashlib.sha256(p.read_bytes()).hexdigest())
    return snap


@pytest.mark.parametrize("state", ["no-out", "earlier-run"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_naming_it_and_writes_nothing(case: Bad, state: str, tmp_path: Path, earlier_runs):
    work = tmp_path / "work"
    (work / "adir").mkdir(parents=True)
    places = {"dir": str(work / "adir"), "missing": str(work / "missing.jsonl"), "taken": str(work / "taken"),
              "toml": str(work / "settings.toml"), "data": str(work / f"{case.data}.jsonl")}
    (work / "taken").write_text("a regular file\n")
    if case.data is not None:
        Path(places["data"]).write_bytes(DATA[case.data])
    if case.toml is not None:
        Path(places["toml"]).write_text(case.toml)
    out = work / "out"
    if state == "earlier-run":
        shutil.copytree(earlier_runs[case.command], out)
    args = [a.format(**places) for a in case.args]
    if "--out" not in args:
        args += ["--out", str(out)]
    before = snapshot(work)

    res = run(*COMMAND[case.command], *args)

    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for want in case.expect:
        assert want.format(**places) in lines[0]
    assert snapshot(work) == before
    assert out.exists() == (state == "earlier-run")


def test_cases_cover_every_data_file():
    assert {c.data for c in CASES if c.data} == set(DATA)


# ---- what stays accepted -----------------------------------------------------------------------------------------


def test_accepted_variants_still_load(tmp_path):
    """A byte-order mark, lower-case letter keys, a list of options and a numeric id are fine."""
    from promed.data.cases import load_cases

    path = tmp_path / "ok.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + jl(GOOD | {"id": 7, "options": {"a": "Measles", "b": "Flu"}},
                                          GOOD | {"id": "x2", "options": ["Measles", "Flu", "Mumps"], "answer": "c"},
                                          GOOD | {"id": "x3", "facts": []}))
    res = load_cases(path)
    assert [c.id for c in res.cases] == ["7", "x2"] and res.skipped == {"empty facts": 1}
    assert [o.letter for o in res.cases[1].options] == ["A", "B", "C"] and res.cases[1].answer == "C"


def test_checkpoint_targets_may_name_a_directory_not_yet_written():
    """A config may name the checkpoint a later stage writes (``llm:runs/doctor``); it is checked when built."""
    from promed.config import EvalConfig

    assert EvalConfig(doctors=("llm:runs/not-yet", "ask:./later", "random-1")).doctors[0] == "llm:runs/not-yet"
