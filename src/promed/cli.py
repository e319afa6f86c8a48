"""The ``promed`` command. Thin: options -> config dataclasses -> library calls; no logic here.

Every option's default and help come from the field of the command's config dataclass it sets
(:mod:`promed.cliopts`); this module only says which fields each command exposes and under which option name.
Every command that runs a stage takes ``--config FILE.toml`` (:func:`promed.config.load_config`). Every input
error (bad data file, unknown doctor, bad model spec, bad option, bad config file) is printed as one line on stderr
and exits with code 2 before anything is written; a model server's failure exits with code 3, anything unexpected
with code 1 (``promed --debug`` shows the traceback instead; :data:`promed.cliopts.EXIT_CODES_HELP`).

Length: one small spec and one formatter per command (thirteen commands); each section stands alone.

Commands are built when they are invoked (:class:`LazyGroup`), so ``promed eval`` does not import the training
stack that ``promed sft`` needs to show its options.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Optional

import typer
from typer.core import TyperGroup

from promed.cliopts import (DEBUG_ENV, DEBUG_HELP, EXIT_CODES_HELP, INPUT_ERRORS, CommandSpec, Extra, Opt,
                             build_command, command_errors, debug_enabled, input_errors)

__all__ = ["COMMANDS", "GROUPS", "INPUT_ERRORS", "SPECS", "app", "input_errors", "main"]

PROGRESS = Extra("progress", bool, typer.Option(True, "--progress/--no-progress", help="Show progress bars."))
DATA_OPTS = (Opt("data.data"), Opt("data.split"), Opt("data.limit"), Opt("data.initial"))
SERVER_OPTS = (Opt("server.timeout"), Opt("server.retries"), Opt("server.concurrency"))  # --timeout ... (openai:)


# ---- eval --------------------------------------------------------------------------------------------------------


def eval_spec() -> CommandSpec:
    from promed.config import EvalConfig

    items = (*DATA_OPTS, Opt("doctors", ("--doctor",)), Opt("patient.kind", ("--patient",)), Opt("model"),
             Opt("scorer"), Opt("env.max_questions"), Opt("no_repeat"), Opt("samples"), Opt("temperature"),
             Opt("sig_enabled", ("--sig/--no-sig",)), Opt("estimator"), Opt("seed"), Opt("data.data_seed"),
             Opt("batch_size"), Opt("out"), Opt("overwrite", ("--overwrite",)),
             Opt("allow_overlap", ("--allow-overlap",)),
             *SERVER_OPTS, PROGRESS)
    return CommandSpec("eval", "Evaluate doctors in the consultation environment; write transcripts, summary.json "
                       "and table.md.", EvalConfig, items, run_eval_cmd)


def run_eval_cmd(cfg, progress: bool) -> None:
    from promed.eval.evaluate import run_eval
    from promed.eval.report import rich_table

    with input_errors():
        results = run_eval(cfg, progress=progress)
    where = cfg.data.split if cfg.data.data == "synthclinic" else f"file, {cfg.data.split}"
    _table(rich_table(results, title=f"{cfg.data.data} ({where}), budget {cfg.env.max_questions}"))
    skipped = next(iter(results.values())).skipped if results else {}
    if skipped:
        typer.echo(f"skipped {sum(skipped.values())} unusable cases: "
                   + ", ".join(f"{n} ({why})" for why, n in sorted(skipped.items())))
    out = cfg.out
    typer.echo(f"wrote {out}/summary.json, {out}/table.md, {out}/accuracy_vs_questions.png, {out}/transcripts/")


# ---- data --------------------------------------------------------------------------------------------------------


def data_synthclinic_spec() -> CommandSpec:
    from promed.data.sources import DataConfig

    items = (Opt("split"), Opt("limit"), Opt("data_seed", ("--seed", "--data-seed")),
             Extra("out", Path, typer.Option(..., help="Output JSONL file (generic format, readable with --data "
                                                       "FILE; each record has its 'split' field).")))
    return CommandSpec("synthclinic", "Write SynthClinic cases as generic JSONL, each record with its split (read "
                       "back identically by --data FILE --split SPLIT).", DataConfig, items, run_data_synthclinic_cmd,
                       config_file=False)


def run_data_synthclinic_cmd(cfg, out: Path) -> None:
    from promed.data.sources import write_synthclinic

    with input_errors():
        n = write_synthclinic(cfg, out)
    typer.echo(f"wrote {n} cases to {out}")


def data_split_spec() -> CommandSpec:
    from promed.data.splits import SplitShares

    items = (Extra("file", Path, typer.Argument(..., help="A JSONL case file (MediQ or generic format).")),
             Opt("val", ("--val-share",)), Opt("test", ("--test-share",)),
             Extra("out", Path, typer.Option(..., help="Output directory: train.jsonl, val.jsonl, test.jsonl (the "
                                                       "input's lines verbatim).")))
    return CommandSpec("split", "Split a case file by content hash (or each record's 'split' field) into "
                       "OUT/train.jsonl, OUT/val.jsonl and OUT/test.jsonl; --split SPLIT on the file selects the same "
                       "cases.", SplitShares, items, run_data_split_cmd, config_file=False)


def run_data_split_cmd(cfg, file: Path, out: Path) -> None:
    from promed.data.sources import write_split_files

    with input_errors():
        counts, skipped = write_split_files(file, out, cfg)
    typer.echo(", ".join(f"{split} {n}" for split, n in counts.items()) + f"; wrote {out}/{{train,val,test}}.jsonl")
    if skipped:
        typer.echo(f"left out {sum(skipped.values())} unusable records: "
                   + ", ".join(f"{n} ({why})" for why, n in sorted(skipped.items())))


def data_convert_spec() -> CommandSpec:
    from promed.data.convert.run import ConvertConfig

    items = (Extra("file", Path, typer.Argument(..., help="MedQA-style JSONL: MedQA's US layout (question = "
                                                          "vignette + stem, options, answer_idx) or MediQ's "
                                                          "(context, question, options, answer_idx).")),
             Opt("facts"), Opt("model"), Opt("grounding"), Opt("batch_size"),
             Extra("out", Path, typer.Option(..., help="Output JSONL file of cases (generic format; --facts llm "
                                                       "caches the model's outputs beside it, so a rerun resumes).")),
             PROGRESS)
    return CommandSpec("convert", "Turn MedQA-style exam items into partial-information cases: initial statement, "
                       "atomic facts, question stem (docs/data.md).", ConvertConfig, items, run_data_convert_cmd,
                       config_file=False)


def run_data_convert_cmd(cfg, file: Path, out: Path, progress: bool) -> None:
    from promed.data.convert.run import convert_file

    with input_errors():
        res = convert_file(file, out, progress=progress, config=cfg)
    extra = f", {res.rejected} LLM facts rejected ({res.fallbacks} cases fell back to rules)" if cfg.facts == "llm" \
        else ""
    left = f"; left out {len(res.left_out)} items without a hidden fact" if res.left_out else ""
    typer.echo(f"wrote {res.cases} cases, {res.facts_per_case:.1f} facts per case{extra}, in {res.seconds:.1f} s, "
               f"to {out}{left}")


# `promed data <subcommand>`, each built on first use
DATA_SPECS: dict[str, Callable[[], CommandSpec]] = {"synthclinic": data_synthclinic_spec, "split": data_split_spec,
                                                    "convert": data_convert_spec}


def data_group():
    """The ``promed data`` group of :data:`DATA_SPECS`."""
    return LazySubGroup(DATA_SPECS, name="data", no_args_is_help=True,
                        help="Case files: write SynthClinic cases (synthclinic), split a file into "
                             "train/val/test (split), turn MedQA-style items into cases (convert).")


# ---- sig ---------------------------------------------------------------------------------------------------------


def sig_spec() -> CommandSpec:
    from promed.runs.sig import SigRunConfig

    items = (*DATA_OPTS, Opt("scorer"), Opt("log", ("--log",)), Opt("estimator"), Opt("budget"), Opt("seed"),
             Opt("data.data_seed"), Opt("out"), Opt("overwrite", ("--overwrite",)), *SERVER_OPTS, PROGRESS)
    return CommandSpec("sig", "Compute and cache the Shapley values of every case's hidden facts (OUT/shapley.jsonl, "
                       "OUT/summary.json).", SigRunConfig, items, run_sig_cmd)


def run_sig_cmd(cfg, progress: bool) -> None:
    from promed.runs.sig import run_sig

    with input_errors():
        summary = run_sig(cfg, progress=progress)
    _print_summary(summary)
    typer.echo(f"wrote {cfg.out}/shapley.jsonl and {cfg.out}/summary.json")


# ---- mcts --------------------------------------------------------------------------------------------------------


def mcts_spec() -> CommandSpec:
    from promed.runs.mcts import MctsRunConfig

    items = (*DATA_OPTS, Opt("candidates"), Opt("model"), Opt("scorer"), Opt("patient.kind", ("--patient",)),
             Opt("search.iterations"), Opt("search.width"), Opt("search.max_questions"), Opt("search.c_uct"),
             Opt("search.gamma"), Opt("search.w_sig"), Opt("search.w_correct"), Opt("sig.lam"),
             Opt("sig_enabled", ("--sig/--no-sig",)), Opt("top_k"), Opt("answer_format"), Opt("seed"),
             Opt("data.data_seed"), Opt("out"), Opt("overwrite", ("--overwrite",)),
             *SERVER_OPTS, PROGRESS)
    return CommandSpec("mcts", "Stage 1: SIG-guided tree search over consultations; writes OUT/trajectories.jsonl "
                       "(chat format).", MctsRunConfig, items, run_mcts_cmd)


def run_mcts_cmd(cfg, progress: bool) -> None:
    from promed.runs.mcts import run_mcts

    with input_errors():
        summary = run_mcts(cfg, progress=progress)
    _print_summary(summary)
    typer.echo(f"wrote {cfg.out}/trajectories.jsonl and {cfg.out}/summary.json")


# ---- sft ---------------------------------------------------------------------------------------------------------


def sft_spec() -> CommandSpec:
    from promed.runs.sft import SftCommandConfig

    items = (Opt("train"), Opt("model"), Opt("lora", ("--lora",)), Opt("epochs"), Opt("learning_rate"),
             Opt("batch_size"), Opt("max_len"), Opt("eval"), Opt("seed"), Opt("out"),
             Opt("progress_bar", ("--progress/--no-progress",)))
    return CommandSpec("sft", "Stage 1: fine-tune a doctor on trajectories (loss on doctor turns only); evaluate: "
                       "--doctor llm:OUT.", SftCommandConfig, items, run_sft_cmd)


def run_sft_cmd(cfg) -> None:
    from promed.runs.sft import run_sft_command

    with input_errors():
        res = run_sft_command(cfg)
    typer.echo(f"steps {res.steps}, final loss {res.losses[-1] if res.losses else float('nan'):.4f}, "
               f"{res.wall_s:.0f} s; wrote {res.model_dir} (loss curve: {cfg.out}/loss.png)")


# ---- stage1 ------------------------------------------------------------------------------------------------------


def stage1_spec() -> CommandSpec:
    from promed.runs.stage1 import Stage1Config

    items = (Opt("preset"), Opt("train_cases"), Opt("test_cases"), Opt("pretrained"), Opt("from_scratch"),
             Opt("pretrain.cases", ("--pretrain-cases",)), Opt("search.iterations"), Opt("search.gamma"), Opt("top_k"), Opt("sft.epochs"),
             Opt("sft.learning_rate"), Opt("search.max_questions"), Opt("no_repeat"), Opt("seed"), Opt("out"),
             PROGRESS)
    return CommandSpec("stage1", "Stage 1 end to end: pretraining (Stage 0) -> MCTS trajectories -> SFT -> evaluation "
                       "beside the baselines (OUT/stage1.json).", Stage1Config, items, run_stage1_cmd)


def run_stage1_cmd(cfg, progress: bool) -> None:
    from promed.eval.report import rich_table
    from promed.runs.stage1 import run_stage1

    with input_errors():
        summary = run_stage1(cfg, progress=progress)
    _table(rich_table(summary.eval, title="Stage 1 (SynthClinic test)"))
    pre = f"pretrain {summary.pretrain_s} s, " if summary.pretrain_s is not None else ""
    typer.echo(f"{pre}mcts {summary.mcts_s} s, sft {summary.sft_s} s, eval {summary.eval_s} s, "
               f"peak memory {summary.peak_rss_mib} MiB; wrote {cfg.out}/stage1.json")


# ---- pretrain ----------------------------------------------------------------------------------------------------


def pretrain_spec() -> CommandSpec:
    from promed.train.pretrain import PretrainConfig

    items = (Opt("cases"), Opt("subsets_per_case"), Opt("data_seed"), Opt("known_share"), Opt("known_min_fraction"),
             Opt("answer_every_turn"), Opt("known_prefixes"), Opt("answer_format"),
             Opt("labels"), Opt("small.pretokenize"), Opt("small.vocab_size"),
             Opt("small.hidden_size"), Opt("small.num_layers"), Opt("epochs"), Opt("max_steps"), Opt("batch_size"),
             Opt("learning_rate"), Opt("seed"), Opt("bf16", ("--bf16/--no-bf16",)), Opt("num_threads", ("--threads",)),
             Opt("data_workers"), Opt("stop_after_steps"), Opt("out"), Opt("overwrite", ("--overwrite",)), PROGRESS)
    return CommandSpec("pretrain", "Stage 0 (SynthClinic): pretrain the small doctor on generated train-split "
                       "consultations (loss on the answer); evaluate: --doctor llm:OUT.", PretrainConfig, items,
                       run_pretrain_cmd)


def run_pretrain_cmd(cfg, progress: bool) -> None:
    from promed.runs.pretrain import run_pretrain_command

    with input_errors():
        summary = run_pretrain_command(cfg, progress=progress)
    _print_summary(summary)
    state = ("already complete:" if summary.skipped else "wrote" if summary.completed
             else "stopped at a checkpoint; rerun to continue:")
    typer.echo(f"{state} {summary.model_dir} (loss curve: {cfg.out}/loss.png)")


# ---- grpo --------------------------------------------------------------------------------------------------------


def grpo_spec() -> CommandSpec:
    from promed.runs.grpo import GrpoCommandConfig

    items = (Opt("model"), *DATA_OPTS, Opt("credit", ("--credit", "--reward")), Opt("answerer"),
             Opt("weights.alpha", ("--alpha",)),
             Opt("weights.beta", ("--beta",)), Opt("weights.gamma", ("--gamma",)),
             Opt("weights.format", ("--format-reward",)), Opt("mix_lambda"), Opt("mix_baseline"), Opt("mix_scope"),
             Opt("sig.lam", ("--lam",)),
             Opt("sig.weighting", ("--weighting",)), Opt("scorer"), Opt("estimator"), Opt("shapley"),
             Opt("patient"), Opt("patient_model"), Opt("env.max_questions"), Opt("group_size"),
             Opt("cases_per_step"), Opt("steps"), Opt("temperature"), Opt("max_new_tokens"), Opt("learning_rate"),
             Opt("epsilon"), Opt("kl"),
             Opt("lora", ("--lora",)), Opt("lora_r"), Opt("grad_accum"), Opt("seed"), Opt("save_steps"),
             Opt("stop_after_steps"), Opt("report_to"), Opt("use_vllm", ("--use-vllm",)),
             Opt("num_threads", ("--threads",)), Opt("out"), PROGRESS)
    return CommandSpec("grpo", "Stage 2: GRPO over consultations; --credit sig gives each question its SIG and the "
                       "answer its correctness (outcome: one episode reward); evaluate: --doctor llm:OUT.",
                       GrpoCommandConfig, items, run_grpo_cmd)


def run_grpo_cmd(cfg, progress: bool) -> None:
    import dataclasses

    from promed.runs.grpo import run_grpo_command

    cfg = dataclasses.replace(cfg, progress_bar=progress)
    with input_errors():
        summary = run_grpo_command(cfg, progress=progress)
    last = summary.last_step or {}
    nan = float("nan")
    state = "wrote" if summary.completed else "stopped at a checkpoint; rerun to continue:"
    typer.echo(f"steps {summary.steps}, last step: reward {last.get('reward', nan):.3f}, accuracy "
               f"{last.get('promed/accuracy', nan):.3f}, questions {last.get('promed/questions', nan):.2f}; "
               f"{summary.wall_s:.0f} s; {state} {summary.model_dir} (curves: {cfg.out}/curves.png)")


# ---- patient -----------------------------------------------------------------------------------------------------


def patient_spec() -> CommandSpec:
    from promed.runs.patient import PatientRunConfig

    items = (*DATA_OPTS, Opt("data.data_seed"), Opt("questions"), Opt("simulator.kind", ("--patient",)), Opt("model"),
             Opt("batch_size"), Opt("out"), Opt("overwrite", ("--overwrite",)), *SERVER_OPTS, PROGRESS)
    return CommandSpec("patient", "Benchmark a patient simulator: answer a JSONL file of questions (OUT/replies.jsonl) "
                       "and score the revealed facts against the expected ones: precision, recall, F1, refusals of "
                       "unanswerable questions, per kind (OUT/summary.json).", PatientRunConfig, items,
                       run_patient_cmd)


def run_patient_cmd(cfg, progress: bool) -> None:
    from promed.eval.report import patient_rich_table
    from promed.runs.patient import run_patient

    with input_errors():
        res = run_patient(cfg, progress=progress)
    _table(patient_rich_table(res.overall, res.by_kind, title=f"patient {cfg.simulator.kind} on {cfg.questions}"))
    speed = f" ({res.questions_per_second:.1f} questions/s)" if res.questions_per_second else ""
    typer.echo(f"{res.overall.n_questions} questions in {res.wall_seconds:.1f} s{speed}; wrote "
               f"{cfg.out}/replies.jsonl and {cfg.out}/summary.json")


# ---- view --------------------------------------------------------------------------------------------------------


def view_spec() -> CommandSpec:
    from promed.view.config import ViewConfig

    items = (Extra("runs", Optional[list[Path]],
                   typer.Argument(None, help="Run directories (promed eval, sig, mcts, sft, stage1 outputs; nested "
                                             "runs are found too).", metavar="RUN_DIR", show_default=False)),
             Opt("host"), Opt("port"), Opt("live", ("--live",)), Opt("doctor"))
    return CommandSpec("view", "Browse runs in a local web viewer: summary, consultations with SIG and Shapley "
                       "values, side-by-side doctors, training curves; --live: consult a case yourself, as the "
                       "doctor or as the patient.",
                       ViewConfig, items, run_view_cmd, config_file=False)


def run_view_cmd(cfg, runs: list[Path] | None) -> None:
    from promed.view.server import serve

    with input_errors():
        serve(runs or [], cfg, echo=typer.echo, warn=lambda line: typer.echo(line, err=True))


# ---- chat --------------------------------------------------------------------------------------------------------


def chat_spec() -> CommandSpec:
    from promed.view.config import ChatConfig

    items = (Opt("role"), Opt("case"), Opt("split"), Opt("doctor"), Opt("seed"))
    return CommandSpec("chat", "A live consultation of a SynthClinic case in the terminal: as the doctor (ask, "
                       "answer, compare with greedy-eig and --doctor) or as the patient (--doctor asks, you reply).",
                       ChatConfig, items, run_chat_cmd, config_file=False)


def run_chat_cmd(cfg) -> None:
    from promed.view.chat import run_chat

    with input_errors():
        run_chat(cfg)


# ---- run ---------------------------------------------------------------------------------------------------------


def run_spec() -> CommandSpec:
    from promed.runs.pipeline import RunConfig

    items = (Opt("preset"), Opt("quick", ("--quick",)), Opt("arms", ("--arm",)), Opt("ablations", ("--ablation",)),
             Opt("test_cases"),
             Opt("stage1.pretrain.cases", ("--pretrain-cases",)), Opt("stage1.train_cases", ("--train-cases",)),
             Opt("grpo.steps", ("--grpo-steps",)), Opt("grpo.cases_per_step", ("--cases-per-step",)),
             Opt("grpo.learning_rate", ("--grpo-learning-rate",)), Opt("no_repeat"), Opt("seed"), Opt("out"),
             PROGRESS)
    return CommandSpec("run", "The whole method in one resumable command: pretrain -> MCTS -> SFT -> GRPO (SIG and "
                       "outcome arms) -> evaluation of every doctor -> the ablation table (OUT/ablation.md).",
                       RunConfig, items, run_run_cmd)


def run_run_cmd(cfg, progress: bool) -> None:
    from promed.eval.report import rich_table
    from promed.runs.pipeline import run_pipeline

    with input_errors():
        summary = run_pipeline(cfg, progress=progress)
    _table(rich_table(summary.doctors, title="ProMed on SynthClinic (test), doctors answering on their own"))
    times = ", ".join(f"{k} {v.wall_s} s" for k, v in summary.steps.items())
    typer.echo(f"{times}; total {summary.total_s} s; wrote {cfg.out}/ablation.md and {cfg.out}/run.json")


# ---- the app -----------------------------------------------------------------------------------------------------

SPECS: dict[str, Callable[[], CommandSpec]] = {
    "eval": eval_spec, "sig": sig_spec, "mcts": mcts_spec, "sft": sft_spec,
    "stage1": stage1_spec, "pretrain": pretrain_spec, "grpo": grpo_spec, "run": run_spec,
    "view": view_spec, "patient": patient_spec,
    "chat": chat_spec,
}
COMMANDS = ("eval", "data", "sig", "mcts", "sft", "stage1", "pretrain", "grpo", "run", "patient", "figure", "view",
            "chat")


GROUPS: dict[str, Callable[[], TyperGroup]] = {"data": data_group}  # commands with subcommands


class LazyGroup(TyperGroup):
    """The ``promed`` group: the commands of :data:`SPECS` and the groups of :data:`GROUPS` are built on first use,
    in :data:`COMMANDS` order."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [n for n in COMMANDS if n in SPECS or n in GROUPS or n in self.commands]

    def get_command(self, ctx: typer.Context, name: str):
        if name not in self.commands:
            if name in SPECS:
                self.commands[name] = build_command(SPECS[name](), COMMANDS)
            elif name in GROUPS:
                self.commands[name] = GROUPS[name]()
        return super().get_command(ctx, name)

    def invoke(self, ctx: typer.Context):
        """Every command (``figure`` too): server failure -> exit 3, internal error -> exit 1, unless --debug."""
        with command_errors(debug_enabled(ctx)):
            return super().invoke(ctx)


class LazySubGroup(TyperGroup):
    """A command group (``promed data``) whose subcommands are built from their specs on first use."""

    def __init__(self, specs: dict[str, Callable[[], CommandSpec]], **kwargs):
        super().__init__(**kwargs)
        self.specs = specs

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(self.specs)

    def get_command(self, ctx: typer.Context, name: str):
        if name in self.specs and name not in self.commands:
            self.commands[name] = build_command(self.specs[name](), COMMANDS)
        return super().get_command(ctx, name)


APP_HELP = f"ProMed: train and evaluate medical LLMs that ask before they answer.\n\n{EXIT_CODES_HELP}"

app = typer.Typer(
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    help=APP_HELP,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        import importlib.metadata as md

        try:
            version = md.version("promed")
        except md.PackageNotFoundError:  # running from a source tree that was not installed
            version = "unknown (not installed)"
        typer.echo(f"promed {version}")
        raise typer.Exit()


@app.callback(help=APP_HELP)
def _group(debug: bool = typer.Option(False, "--debug", envvar=DEBUG_ENV, help=DEBUG_HELP),
           version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Print the version and exit.")) -> None:
    """ProMed: train and evaluate medical LLMs that ask before they answer."""


@app.command("figure")
def figure_cmd(
    run: Path = typer.Option(..., help="A promed eval output directory (with --sig, the default)."),
    doctor: str = typer.Option(..., help="Which doctor's consultation to draw."),
    case: Optional[str] = typer.Option(None, help="Case id (default: the first case by id that has Shapley "
                                       "values, i.e. where some question revealed a fact)."),
    out: Path = typer.Option(Path("sig_case.png"), help="PNG file to write."),
):
    """Draw one case: its facts ranked by Shapley value beside the consultation with each question's SIG."""
    from promed.eval.figures import case_figure_from_run

    with input_errors():
        cid = case_figure_from_run(run, doctor, case, out)
    typer.echo(f"wrote {out} (case {cid})")


def _print_summary(summary) -> None:
    """A runner's result (:class:`promed.io.JsonRecord`), one ``name: value`` line per field."""
    for k, v in summary.to_json().items():
        typer.echo(f"{k:>28}: {v}")


def _table(table) -> None:
    from rich.console import Console

    Console(width=max(140, Console().width)).print(table)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
