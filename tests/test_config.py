"""Settings have one source: the config dataclasses. The CLI's defaults are theirs, ``--config FILE.toml`` overlays
them (command-line options win), bad files exit 2 naming key and file, manifests record the resolved config, and
the presets in ``configs/`` load through the CLI's own loader."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from typer.testing import CliRunner

from promed import cli
from promed.cliopts import Extra, Opt, build_command, cli_default, resolve
from promed.config import get_path, load_config, with_path, with_paths

runner = CliRunner()
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REQUIRED = {"data": ["synthclinic", "--out", "x.jsonl"]}  # arguments/options a command cannot run without


def run(*args):
    return runner.invoke(cli.app, [str(a) for a in args])


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def captured(monkeypatch):
    """Replace every command's runner by one that records the config it was given and exits 0."""
    seen: dict[str, object] = {}

    def fake(name):
        def run_cmd(cfg, **extras):
            seen[name] = cfg
            raise typer.Exit(0)
        return run_cmd

    for name in cli.SPECS:
        monkeypatch.setattr(cli, f"run_{name}_cmd", fake(name))
    return seen


# ---- one source of truth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(cli.SPECS))
def test_cli_defaults_are_the_dataclass_defaults(name, captured):
    spec = cli.SPECS[name]()
    res = run(name, *REQUIRED.get(name, []))
    assert res.exit_code == 0, res.output
    assert captured[name] == spec.default()  # nothing given: exactly the config's default instance
    # and every option shows its field's default and help
    command = build_command(spec)
    params = {p.name: p for p in command.params}
    base = spec.default()
    for opt in (i for i in spec.items if isinstance(i, Opt)):
        assert params[opt.name].default == cli_default(base, opt), opt.path
        parent_path, _, leaf = opt.path.rpartition(".")
        parent = get_path(base, parent_path) if parent_path else base
        fld = {f.name: f for f in dataclasses.fields(parent)}[leaf]
        assert params[opt.name].help == fld.metadata["help"]


def _all_fields(cfg, prefix=""):
    for f in dataclasses.fields(cfg):
        yield prefix + f.name, f
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield from _all_fields(value, prefix + f.name + ".")


@pytest.mark.parametrize("name", sorted(cli.SPECS))
def test_every_setting_has_help_and_no_field_is_named_after_its_command(name):
    base = cli.SPECS[name]().default()
    for path, f in _all_fields(base):
        assert f.metadata.get("help"), f"{type(base).__name__}.{path} has no help"
    # a top-level key named after the command marks a file with one section per command
    assert name not in {f.name for f in dataclasses.fields(base)} or not cli.SPECS[name]().config_file


def test_defaults_that_used_to_disagree():
    from promed.config import EvalConfig
    from promed.runs.mcts import MctsRunConfig
    from promed.runs.stage1 import Stage1Config
    from promed.search.mcts import MctsConfig
    from promed.train.sft import SFTRunConfig

    assert MctsConfig().iterations == MctsRunConfig().search.iterations == Stage1Config().search.iterations == 32
    assert SFTRunConfig().epochs == 3.0 and Stage1Config().sft.epochs == 5.0  # the preset's own value
    assert MctsRunConfig().sig.lam == Stage1Config().sig.lam == 0.5
    assert MctsRunConfig().data.initial == "first-half-facts" and EvalConfig().data.initial == "first-sentence"
    assert EvalConfig().samples == 1 and EvalConfig().temperature == 0.0


# ---- --config FILE.toml ----------------------------------------------------------------------------------------


def test_file_overlays_defaults_and_options_win(tmp_path, captured):
    path = write(tmp_path, 'doctors = ["reactive", "greedy-eig"]\nseed = 3\n[env]\nmax_questions = 3\n'
                           '[data]\nlimit = 7\n[patient.fact]\nthreshold = 0.6\n')
    assert run("eval", "--config", path, "--seed", 5, "--no-sig").exit_code == 0
    cfg = captured["eval"]
    assert cfg.env.max_questions == 3 and cfg.data.limit == 7 and cfg.doctors == ("reactive", "greedy-eig")
    assert cfg.patient.fact.threshold == 0.6 and cfg.patient.kind == "fact"
    assert cfg.seed == 5 and cfg.sig_enabled is False  # given on the command line: they win
    assert cfg.data.split == "test" and cfg.batch_size == 64  # neither in the file nor given: the defaults
    # an option given with its default value still wins over the file
    assert run("eval", "--config", path, "--max-questions", 5).exit_code == 0
    assert captured["eval"].env.max_questions == 5


def test_sections_per_command(tmp_path, captured):
    path = write(tmp_path, "[eval]\nseed = 2\n[eval.env]\nmax_questions = 4\n[mcts]\ntop_k = 2\n"
                           "[mcts.search]\niterations = 8\n[mcts.sig]\nlam = 0.25\n")
    assert run("eval", "--config", path).exit_code == 0
    assert captured["eval"].seed == 2 and captured["eval"].env.max_questions == 4
    assert run("mcts", "--config", path, "--lam", 0.75).exit_code == 0
    cfg = captured["mcts"]
    assert cfg.top_k == 2 and cfg.search.iterations == 8 and cfg.sig.lam == 0.75
    res = run("sig", "--config", path)
    assert res.exit_code == 2 and f"{path}: no [sig] section" in res.output


@pytest.mark.parametrize("text,msg", [
    ("[env]\nmax_question = 3\n", "unknown setting 'env.max_question'"),
    ("sed = 1\n", "unknown setting 'sed'"),
    ("[eval.env]\nmax_questions = 3\n[evaluate]\nseed = 1\n", "unknown section(s) evaluate"),
    ("seed = 'abc'\n", "seed: expected an integer, got 'abc'"),
    ("[env]\nmax_questions = 2.5\n", "env.max_questions: expected an integer"),
    ("sig_enabled = 1\n", "sig_enabled: expected true or false"),
    ("doctors = 'reactive'\n", "doctors: expected an array of strings"),
    ("env = 3\n", "env: expected a table"),
    ("[patient]\nkind = 'robot'\n", "unknown patient 'robot'"),
    ("seed = \n", "not valid TOML"),
])
def test_bad_files_exit_2_naming_key_and_file(tmp_path, text, msg):
    path = write(tmp_path, text)
    out = tmp_path / "o"
    res = run("eval", "--config", path, "--out", out, "--no-progress")
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and str(path) in res.output and msg in res.output, res.output
    assert not out.exists()


def test_missing_config_file_exits_2(tmp_path):
    res = run("mcts", "--config", tmp_path / "nope.toml")
    assert res.exit_code == 2 and "nope.toml" in res.output


def test_types_follow_the_fields(tmp_path):
    from promed.runs.mcts import MctsRunConfig
    from promed.runs.sft import SftCommandConfig

    path = write(tmp_path, 'shapley_cache = "x/shapley.jsonl"\nestimator_budget = 40\nif_none_correct = "best"\n'
                           '[search]\nc_uct = 2\n')
    cfg = load_config(MctsRunConfig(), path, "mcts")
    assert cfg.shapley_cache == Path("x/shapley.jsonl") and cfg.estimator_budget == 40
    assert cfg.search.c_uct == 2.0 and isinstance(cfg.search.c_uct, float) and cfg.if_none_correct == "best"
    with pytest.raises(ValueError, match="if_none_correct: expected one of 'skip', 'best'"):
        load_config(MctsRunConfig(), write(tmp_path, 'if_none_correct = "all"\n'), "mcts")
    sft = load_config(SftCommandConfig(), write(tmp_path, 'bf16 = true\nlora_target_modules = ["q_proj"]\n'), "sft")
    assert sft.bf16 is True and sft.lora_target_modules == ("q_proj",)


def test_with_path_copies_nested_configs():
    from promed.runs.stage1 import Stage1Config

    base = Stage1Config()
    cfg = with_paths(base, {"search.iterations": 4, "sft.epochs": 1.0})
    assert cfg.search.iterations == 4 and cfg.search.gamma == 0.9 and cfg.sft.epochs == 1.0
    assert base.search.iterations == 32 and with_path(base, "seed", 1).seed == 1


@pytest.mark.parametrize("preset", ["synthclinic-cpu.toml", "gpu-7b.toml"])
def test_presets_load_for_every_command_they_name(preset):
    import tomllib

    path = CONFIGS / preset
    sections = tomllib.loads(path.read_text())
    assert sections and set(sections) <= set(cli.SPECS)
    for name in sections:
        spec = cli.SPECS[name]()
        cfg = resolve(spec, {}, set(), path, cli.COMMANDS)  # exactly what `promed NAME --config PATH` does
        assert type(cfg) is type(spec.default())
        for key, value in sections[name].items():
            if not isinstance(value, dict):
                got = getattr(cfg, key)
                assert (list(got) if isinstance(got, tuple) else str(got) if isinstance(got, Path) else got) == value
    if preset == "gpu-7b.toml":
        sft = resolve(cli.SPECS["sft"](), {}, set(), path, cli.COMMANDS)
        assert sft.model == "hf:Qwen/Qwen2.5-7B-Instruct" and sft.lora and sft.bf16


def test_cpu_preset_is_the_stage1_preset():
    from promed.runs.stage1 import Stage1Config

    path = CONFIGS / "synthclinic-cpu.toml"
    mcts = resolve(cli.SPECS["mcts"](), {}, set(), path, cli.COMMANDS)
    sft = resolve(cli.SPECS["sft"](), {}, set(), path, cli.COMMANDS)
    preset = Stage1Config()
    assert mcts.search == preset.search and mcts.sig == preset.sig
    assert (sft.epochs, sft.batch_size, sft.learning_rate) == (preset.sft.epochs, preset.sft.batch_size,
                                                                preset.sft.learning_rate)
    # Stage 0 as the preset runs it, and Stage 1 on top of it: name-format trajectories, SFT from its checkpoint
    pretrain = resolve(cli.SPECS["pretrain"](), {}, set(), path, cli.COMMANDS)
    assert dataclasses.replace(pretrain, out=preset.pretrain.out) == preset.pretrain
    assert mcts.answer_format == preset.mcts_config().answer_format == "name"
    assert sft.model == f"hf:{pretrain.out}"


# ---- manifests record the resolved config ---------------------------------------------------------------------


def test_sig_and_mcts_manifests_hold_the_resolved_config(tmp_path):
    path = write(tmp_path, "[sig]\nestimator = 'exact'\n[sig.data]\nsplit = 'val'\n"
                           "[mcts.search]\ngamma = 0.8\nwidth = 2\n[mcts.sig]\nweighting = 'softmax'\n")
    out = tmp_path / "sig"
    assert run("sig", "--config", path, "--limit", 2, "--out", out, "--no-progress").exit_code == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["stage"] == "sig" and man["config"]["data"]["split"] == "val" and man["config"]["data"]["limit"] == 2
    assert man["config"]["estimator"] == "exact"
    out = tmp_path / "mcts"
    res = run("mcts", "--config", path, "--limit", 2, "--iterations", 2, "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "manifest.json").read_text())["config"]
    assert cfg["search"] == {**cfg["search"], "gamma": 0.8, "width": 2, "iterations": 2}
    assert cfg["sig"]["weighting"] == "softmax" and cfg["patient"]["kind"] == "fact"
    assert cfg["data"]["initial"] == "first-half-facts" and cfg["data"]["split"] == "train"


def test_sft_manifest_and_required_paths(tmp_path, monkeypatch):
    import promed.runs.sft as runs_sft

    calls = []

    def fake_run_sft(train, out, cfg, eval_path=None):
        calls.append((train, out, cfg, eval_path))
        return SimpleNamespace(steps=1, losses=(0.5,), wall_s=0.0, model_dir=out)

    monkeypatch.setattr(runs_sft, "run_sft", fake_run_sft)
    train = write(tmp_path, '{"id": "a", "messages": [{"role": "user", "content": "Case."}, '
                            '{"role": "assistant", "content": "ANSWER: A"}]}\n', "t.jsonl")
    out = tmp_path / "doc"
    path = write(tmp_path, f'[sft]\ntrain = "{train}"\nout = "{out}"\nepochs = 2.0\nlora_r = 8\n')
    res = run("sft", "--config", path, "--batch-size", 4)
    assert res.exit_code == 0, res.output
    (_, _, cfg, _), = calls
    assert cfg.epochs == 2.0 and cfg.lora_r == 8 and cfg.batch_size == 4
    man = json.loads((out / "manifest.json").read_text())
    assert man["stage"] == "sft" and man["config"]["train"] == str(train) and man["config"]["lora_r"] == 8
    assert man["config"]["small"]["hidden_size"] > 0  # nested settings too
    res = run("sft", "--out", tmp_path / "x")
    assert res.exit_code == 2 and "missing --train" in res.output


def test_stage1_manifest_is_written_first(tmp_path, monkeypatch):
    import promed.runs.mcts as runs_mcts
    import promed.runs.pretrain as runs_pretrain
    from promed.runs.stage1 import Stage1Config, run_stage1

    def stop(*a, **k):
        raise RuntimeError("stop")

    monkeypatch.setattr(runs_pretrain, "run_pretrain_command", stop)  # the first step: pretraining
    monkeypatch.setattr(runs_mcts, "run_mcts", stop)
    cfg = with_paths(Stage1Config(out=tmp_path / "s1"), {"search.iterations": 3, "sft.epochs": 2.0})
    with pytest.raises(RuntimeError, match="stop"):
        run_stage1(cfg, progress=False)
    man = json.loads((tmp_path / "s1" / "manifest.json").read_text())
    assert man["config"]["search"]["iterations"] == 3 and man["config"]["search"]["gamma"] == 0.9
    assert man["config"]["sft"]["epochs"] == 2.0 and man["config"]["sft"]["batch_size"] == 16


def test_extras_are_not_settings():
    spec = cli.SPECS["eval"]()
    assert any(isinstance(i, Extra) and i.name == "progress" for i in spec.items)
    assert not any(isinstance(i, Opt) and i.path == "progress" for i in spec.items)
