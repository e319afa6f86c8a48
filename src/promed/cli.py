"""The ``promed`` command. Thin: parse options into config dataclasses and call the library; no logic here.

Every input error (bad data file, unknown doctor, bad model spec, bad option) is printed as one line on stderr
and exits with code 2 before anything is written.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="ProMed: train and evaluate medical LLMs that ask before they answer.",
    pretty_exceptions_enable=False,
)

INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, LookupError)

DATA_HELP = "'synthclinic' or a JSONL file (MediQ or generic format)."
SPLIT_HELP = "SynthClinic split: train, val or test."
SEED_HELP = "Run seed."


@contextmanager
def input_errors():
    """Turn input errors into a one-line message and exit code 2."""
    try:
        yield
    except INPUT_ERRORS as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)


def _data_cfg(data: str, split: str, limit: Optional[int], initial: str, data_seed: int):
    from promed.config import DataConfig

    return DataConfig(data=data, split=split, limit=limit, initial=initial, data_seed=data_seed)


@app.command("eval")
def eval_cmd(
    data: str = typer.Option("synthclinic", help=DATA_HELP),
    split: str = typer.Option("test", help=SPLIT_HELP),
    limit: Optional[int] = typer.Option(None, help="Use at most this many cases."),
    initial: str = typer.Option("first-sentence", help="Initial information for MediQ files: first-sentence or "
                                                       "first-half-facts."),
    doctor: str = typer.Option("reactive,full-info", help="Comma-separated doctors: reactive, full-info, random-<k>, "
                               "abstain-numeric, abstain-scale, greedy-eig, prompted, llm:<spec or checkpoint dir>, ask:<spec or "
                               "checkpoint dir> (that model asks, the scorer answers)."),
    patient: str = typer.Option("fact", help="Patient simulator: fact (embedding retrieval of facts) or llm."),
    model: Optional[str] = typer.Option(None, help="Model spec (gemma-270m, hf:<id|path>, gguf:<file>, "
                                        "openai:<model>@<url>, tiny) for the prompted doctor, the LLM patient and "
                                        "the scorer when --scorer is not given."),
    scorer: Optional[str] = typer.Option(None, help="'bayes' (SynthClinic exact posterior) or a model spec. "
                                         "Default: bayes on SynthClinic, else --model."),
    max_questions: int = typer.Option(5, help="Question budget per consultation."),
    no_repeat: int = typer.Option(0, help="LLM doctors: when a question repeats an earlier one, take the most "
                                  "likely new question among the model's N best (beam search; N samples on APIs "
                                  "without beams). 0 = off."),
    sig: bool = typer.Option(True, help="Annotate questions with SIG (Shapley values cached in OUT/shapley.jsonl)."),
    estimator: str = typer.Option("auto", help="Shapley estimator for SIG: auto, exact, permutation, kernel, "
                                  "reference."),
    seed: int = typer.Option(0, help=SEED_HELP),
    data_seed: int = typer.Option(0, help="SynthClinic generator seed (0 = the standard benchmark)."),
    batch_size: int = typer.Option(64, help="Consultations stepped together."),
    out: Path = typer.Option(Path("runs/eval"), help="Output directory (re-running resumes)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
):
    """Evaluate doctors in the consultation environment; write transcripts, summary.json and table.md."""
    from promed.config import EvalConfig
    from promed.env.consultation import EnvConfig

    with input_errors():
        cfg = EvalConfig(
            data=_data_cfg(data, split, limit, initial, data_seed),
            doctors=tuple(d.strip() for d in doctor.split(",") if d.strip()),
            patient=patient, model=model, scorer=scorer, env=EnvConfig(max_questions=max_questions),
            no_repeat=no_repeat,
            sig=sig, estimator=estimator, seed=seed, batch_size=batch_size, out=out,
        )
        from promed.eval.evaluate import run_eval
        from promed.eval.report import rich_table

        results = run_eval(cfg, progress=progress)
    from rich.console import Console

    Console(width=max(140, Console().width)).print(rich_table(results, title=f"{data} ({split if data == 'synthclinic' else 'file'}), "
                                              f"budget {max_questions}"))
    typer.echo(f"wrote {out}/summary.json, {out}/table.md, {out}/accuracy_vs_questions.png, {out}/transcripts/")


@app.command("data")
def data_cmd(
    source: str = typer.Argument(..., help="Data source to write: synthclinic."),
    split: str = typer.Option("test", help=SPLIT_HELP),
    limit: Optional[int] = typer.Option(None, help="Write at most this many cases."),
    seed: int = typer.Option(0, help="SynthClinic generator seed."),
    out: Path = typer.Option(..., help="Output JSONL file (generic format, readable with --data FILE)."),
):
    """Write generated cases as generic JSONL (read back identically by --data FILE)."""
    from promed.data.cases import write_cases
    from promed.data.sources import load_data

    with input_errors():
        if source != "synthclinic":
            raise ValueError(f"unknown data source {source!r}: only synthclinic can be written")
        cases = load_data(_data_cfg("synthclinic", split, limit, "first-sentence", seed)).cases
        write_cases(cases, out)
    typer.echo(f"wrote {len(cases)} cases to {out}")


@app.command("sig")
def sig_cmd(
    data: str = typer.Option("synthclinic", help=DATA_HELP),
    split: str = typer.Option("test", help=SPLIT_HELP),
    limit: Optional[int] = typer.Option(None, help="Use at most this many cases."),
    initial: str = typer.Option("first-sentence", help="Initial information for MediQ files."),
    scorer: str = typer.Option("bayes", help="'bayes' (SynthClinic exact posterior) or a model spec."),
    log: bool = typer.Option(False, "--log", help="v(S) = log-probability of the gold option (default: probability)."),
    estimator: str = typer.Option("auto", help="exact, reference, permutation, kernel, or auto (exact when 2^n is "
                                  "small, else kernel)."),
    budget: Optional[int] = typer.Option(None, help="Distinct v(S) evaluations per case (default 10 x facts)."),
    seed: int = typer.Option(0, help=SEED_HELP),
    data_seed: int = typer.Option(0, help="SynthClinic generator seed."),
    out: Path = typer.Option(Path("runs/sig"), help="Output directory; re-running with it resumes."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
):
    """Compute and cache the Shapley values of every case's hidden facts (OUT/shapley.jsonl, OUT/summary.json)."""
    from promed.sig.run import SigRunConfig, run_sig

    with input_errors():
        cfg = SigRunConfig(data=_data_cfg(data, split, limit, initial, data_seed), scorer=scorer, log=log,
                           estimator=estimator, budget=budget, seed=seed, out=out)
        summary = run_sig(cfg, progress=progress)
    _print_summary(summary)
    typer.echo(f"wrote {out}/shapley.jsonl and {out}/summary.json")


@app.command("mcts")
def mcts_cmd(
    data: str = typer.Option("synthclinic", help=DATA_HELP),
    split: str = typer.Option("train", help=SPLIT_HELP),
    limit: Optional[int] = typer.Option(None, help="Use at most this many cases."),
    initial: str = typer.Option("first-half-facts", help="Initial information for MediQ files (the reference "
                                "code trains with first-half-facts)."),
    candidates: str = typer.Option("facts", help="Candidate questions: policy (samples of --model), facts (a "
                                   "question writer targeting hidden facts) or both."),
    model: Optional[str] = typer.Option(None, help="Model spec for policy samples, the question writer on real "
                                        "data, the LLM patient and (without --scorer) the scorer."),
    scorer: Optional[str] = typer.Option(None, help="'bayes' or a model spec; default: bayes on SynthClinic, else "
                                         "--model."),
    patient: str = typer.Option("fact", help="Patient simulator: fact or llm."),
    iterations: int = typer.Option(32, help="MCTS iterations per case."),
    width: int = typer.Option(4, help="Candidate questions expanded per node."),
    max_questions: int = typer.Option(5, help="Question budget (tree depth)."),
    c_uct: float = typer.Option(1.0, help="UCT exploration constant."),
    gamma: float = typer.Option(1.0, help="Decay of rewards in returns and back-ups."),
    w_sig: float = typer.Option(1.0, help="Weight of SIG in each question's reward."),
    w_correct: float = typer.Option(1.0, help="Reward of a correct final answer."),
    lam: float = typer.Option(0.5, help="SIG blend: 0 = uniform information gain, 1 = Shapley weights only."),
    sig: bool = typer.Option(True, help="--no-sig: search on correctness only (SIG still recorded)."),
    top_k: int = typer.Option(1, help="Trajectories exported per case, best first."),
    seed: int = typer.Option(0, help=SEED_HELP),
    data_seed: int = typer.Option(0, help="SynthClinic generator seed."),
    out: Path = typer.Option(Path("runs/mcts"), help="Output directory; re-running with it resumes."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
):
    """Stage 1: SIG-guided tree search over consultations; writes OUT/trajectories.jsonl (chat format)."""
    from promed.search.run import MctsRunConfig, run_mcts

    with input_errors():
        cfg = MctsRunConfig(data=_data_cfg(data, split, limit, initial, data_seed), candidates=candidates,
                            model=model, scorer=scorer, patient=patient, iterations=iterations, width=width,
                            max_questions=max_questions, c_uct=c_uct, gamma=gamma, w_sig=w_sig,
                            w_correct=w_correct, lam=lam, sig_enabled=sig, top_k=top_k, seed=seed, out=out)
        summary = run_mcts(cfg, progress=progress)
    _print_summary(summary)
    typer.echo(f"wrote {out}/trajectories.jsonl and {out}/summary.json")


@app.command("sft")
def sft_cmd(
    train: Path = typer.Option(..., help="Chat-format trajectories (promed mcts's trajectories.jsonl)."),
    model: str = typer.Option("synthclinic-small", help="synthclinic-small (a small model trained from scratch on "
                              "the trajectories' text), hf:<id or path>, gguf:<file> or gemma-270m."),
    lora: bool = typer.Option(False, "--lora", help="Train LoRA adapters (merged into the base at the end)."),
    epochs: float = typer.Option(3.0, help="Passes over the training set."),
    learning_rate: Optional[float] = typer.Option(None, help="Peak learning rate (default depends on the model)."),
    batch_size: int = typer.Option(8, help="Sequences per step."),
    max_len: int = typer.Option(1024, help="Max tokens per conversation."),
    eval_data: Optional[Path] = typer.Option(None, "--eval", help="Held-out trajectories for an eval loss."),
    seed: int = typer.Option(0, help=SEED_HELP),
    out: Path = typer.Option(..., help="Checkpoint directory (re-running resumes from its latest checkpoint)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
):
    """Stage 1: fine-tune a doctor on trajectories (loss on doctor turns only); evaluate: --doctor llm:OUT."""
    from promed.train.sft import SFTRunConfig, run_sft

    with input_errors():
        cfg = SFTRunConfig(model=model, lora=lora, epochs=epochs, learning_rate=learning_rate,
                           batch_size=batch_size, max_len=max_len, seed=seed, progress_bar=progress)
        res = run_sft(train, out, cfg, eval_path=eval_data)
    typer.echo(f"steps {res.steps}, final loss {res.losses[-1] if res.losses else float('nan'):.4f}, "
               f"{res.wall_s:.0f} s; wrote {res.model_dir} (loss curve: {out}/loss.png)")


@app.command("stage1")
def stage1_cmd(
    preset: str = typer.Option("synthclinic", help="Preset: synthclinic (the CPU preset: MCTS on SynthClinic "
                               "train cases, SFT of the small doctor, eval on the test split)."),
    train_cases: int = typer.Option(2000, help="Training cases searched."),
    test_cases: int = typer.Option(500, help="Test cases evaluated."),
    iterations: int = typer.Option(32, help="MCTS iterations per case."),
    gamma: float = typer.Option(0.9, help="MCTS discount (< 1: informative questions first, answer when settled)."),
    top_k: int = typer.Option(1, help="Trajectories exported per training case (more: better questions, longer SFT)."),
    epochs: float = typer.Option(5.0, help="SFT epochs."),
    max_questions: int = typer.Option(5, help="Question budget."),
    no_repeat: int = typer.Option(8, help="Evaluation: replace a repeated question by the best new one among the "
                                  "model's N best beams (0 = off)."),
    seed: int = typer.Option(0, help=SEED_HELP),
    out: Path = typer.Option(Path("runs/stage1"), help="Output directory (re-running resumes every step)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
):
    """Stage 1 end to end: MCTS trajectories -> SFT -> evaluation beside the baselines (OUT/stage1.json)."""
    from promed.stages import Stage1Config, run_stage1

    with input_errors():
        if preset != "synthclinic":
            raise ValueError(f"unknown preset {preset!r}: available: synthclinic")
        cfg = Stage1Config(train_cases=train_cases, test_cases=test_cases, iterations=iterations, gamma=gamma,
                           top_k=top_k, epochs=epochs, max_questions=max_questions, no_repeat=no_repeat, seed=seed,
                           out=out)
        summary = run_stage1(cfg, progress=progress)
    from promed.eval.metrics import Metrics
    from promed.eval.report import rich_table
    from rich.console import Console

    results = {k: Metrics(**{**v, "ci95": tuple(v["ci95"])}) for k, v in summary["eval"].items()}
    Console(width=max(140, Console().width)).print(rich_table(results, title="Stage 1 (SynthClinic test)"))
    typer.echo(f"mcts {summary['mcts_s']} s, sft {summary['sft_s']} s, eval {summary['eval_s']} s, "
               f"peak memory {summary['peak_rss_mib']} MiB; wrote {out}/stage1.json")


def _print_summary(summary: dict) -> None:
    for k, v in summary.items():
        typer.echo(f"{k:>28}: {v}")


@app.command("figure")
def figure_cmd(
    run: Path = typer.Option(..., help="A promed eval output directory (with --sig, the default)."),
    doctor: str = typer.Option(..., help="Which doctor's consultation to draw."),
    case: Optional[str] = typer.Option(None, help="Case id (default: the first case)."),
    out: Path = typer.Option(Path("sig_case.png"), help="PNG file to write."),
):
    """Draw one case: its facts ranked by Shapley value beside the consultation with each question's SIG."""
    from promed.eval.figures import case_figure_from_run

    with input_errors():
        cid = case_figure_from_run(run, doctor, case, out)
    typer.echo(f"wrote {out} (case {cid})")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
