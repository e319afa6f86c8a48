"""``promed mcts``: search every case's consultation tree and export the best trajectories as SFT data.

Outputs under ``out/``:

* ``trajectories.jsonl`` - chat-format records, appended per case::

      {"id", "messages", "sig", "reward", "correct", "n_questions", "rank", "answer", "gold"}

  ``messages`` is :func:`promed.eval.records.transcript_messages` of the trajectory: system, the case as the first
  user message, then ``ASK: <question>`` / patient reply pairs, and the answer last (``ANSWER: X``;
  ``answer_format`` name: ``ANSWER: <option text>``) - exactly how evaluation
  renders a transcript, so the SFT doctor is trained on the prompts it is evaluated on. ``sig`` is the per-question
  SIG (the annotator's values), ``reward`` the trajectory's return, ``rank`` 0 for the best trajectory.
* ``search.jsonl`` - one line per searched case (its best trajectory's figures and the search's cost); the ids
  here are the cases done. ``shapley.jsonl`` - the Shapley cache (:mod:`promed.sig.cache`).
* ``summary.json`` - cases, trajectories, mean return, trajectory accuracy, mean questions, SIG, wall time.

Settings: :class:`MctsRunConfig` nests the stage configs - ``search`` (:class:`promed.search.mcts.MctsConfig`),
``sig`` (:class:`promed.sig.reward.SigConfig`), ``patient`` (:class:`promed.runtime.PatientConfig`), ``data``
(:class:`promed.data.sources.DataConfig`) - and adds what belongs to the run (candidates, export, seed, out).

Selection rule (per case): trajectories ranked by :func:`promed.search.mcts.rank_trajectories` (correct first, then
higher return, then fewer questions); rank 0 is exported, and ranks 1..top_k-1 if ``top_k > 1``. With
``if_none_correct="skip"`` (default) incorrect trajectories are never exported - a case with none correct is
skipped (rejection sampling: SFT never teaches a wrong answer); with ``"best"`` the ranking applies as is.

Resumable: a case is done once its ``search.jsonl`` line is written (after its trajectories); on restart done
cases are skipped and trajectory lines of a case interrupted in between are dropped. Determinism: each case's
RNG is seeded from (seed, case content hash), so a case's search does not depend on order or resumption.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from promed.data.sources import DataConfig
from promed.doctor.actions import ANSWER_FORMATS
from promed.errors import InputError
from promed.eval.records import transcript_messages
from promed.data.lineage import lineage_of_cases, write_lineage
from promed.io import (
    OVERWRITE_HELP, JsonRecord,
    JsonlAppender, atomic_write_json, atomic_write_lines, check_out_dir, data_fingerprint, prepare_run,
    read_jsonl, repair_jsonl, start_run,
)
from promed.llm.base import check_spec
from promed.runtime import PatientConfig, RunModels, ServerConfig, check_scorer_fits
from promed.search.candidates import SOURCES, build_source, is_synthclinic
from promed.search.mcts import ConsultationWorld, MctsConfig, MctsResult, Rewarder, Trajectory, mcts_search
from promed.sig.cache import check_estimator, check_estimator_budget
from promed.sig.reward import SigConfig
from promed.types import Case

NoneCorrect = Literal["skip", "best"]


@dataclass(frozen=True)
class MctsRunConfig:
    """``promed mcts``: Stage 1 trajectory search and export."""

    data: DataConfig = field(default_factory=lambda: DataConfig(split="train", initial="first-half-facts"),
                             metadata={"help": "Cases (the reference code trains with first-half-facts on MediQ)."})
    candidates: str = field(default="facts", metadata={"help": "Candidate questions: policy (samples of --model), "
                                                              "facts (a question writer targeting hidden facts) or "
                                                              "both."})
    model: str | None = field(default=None, metadata={"help": "Model spec for policy samples, the question writer on "
                                                              "real data, the LLM patient and (without --scorer) the "
                                                              "scorer."})
    scorer: str | None = field(default=None, metadata={"help": "'bayes', a model spec or doctor:<spec>; default: "
                                                               "bayes on SynthClinic, else --model."})
    server: ServerConfig = field(default_factory=ServerConfig,
                                 metadata={"help": "Model servers (openai: specs): timeout, retries, concurrency."})
    patient: PatientConfig = field(default_factory=PatientConfig, metadata={"help": "Patient simulator."})
    search: MctsConfig = field(default_factory=MctsConfig, metadata={"help": "Search settings."})
    sig: SigConfig = field(default_factory=SigConfig, metadata={"help": "SIG step reward (lam, weighting, "
                                                                          "temperature)."})
    sig_enabled: bool = field(default=True, metadata={"help": "Search with SIG step rewards; --no-sig: on "
                                                              "correctness only (w_sig = 0; SIG still recorded)."})
    estimator: str = field(default="auto", metadata={"help": "Shapley estimator: auto, exact, permutation, kernel."})
    estimator_budget: int | None = field(default=None, metadata={"help": "Evaluations per case for sampled "
                                                                         "estimators (None: 10 per fact)."})
    top_k: int = field(default=1, metadata={"help": "Trajectories exported per case, best first (more: better "
                                                    "questions, longer SFT)."})
    answer_format: str = field(default="letter", metadata={"help": "Answer turn of the exported trajectories: letter "
                                                                   "('ANSWER: C'), name ('ANSWER: <option text>', "
                                                                   "what the pretrained SynthClinic doctor writes) "
                                                                   "or text ('ANSWER: <text> (C)')."})
    if_none_correct: NoneCorrect = field(default="skip", metadata={"help": "skip: export correct trajectories "
                                                                           "only; best: export the best anyway."})
    off_target: int = field(default=1, metadata={"help": "facts source: questions per node about undocumented "
                                                         "findings (SynthClinic) or generic questions (real)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the policy source."})
    batch_cases: int = field(default=32, metadata={"help": "Cases whose patient replies are prefetched together."})
    shapley_cache: Path | None = field(default=None, metadata={"help": "Shapley cache file (default "
                                                                       "out/shapley.jsonl); share it across runs."})
    seed: int = field(default=0, metadata={"help": "Run seed (per-case RNGs derive from it)."})
    out: Path = field(default=Path("runs/mcts"), metadata={"help": "Output directory; re-running with it resumes."})
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})

    def __post_init__(self) -> None:
        if self.candidates not in SOURCES:
            raise InputError(f"--candidates must be one of {', '.join(SOURCES)}, got {self.candidates!r}")
        if self.answer_format not in ANSWER_FORMATS:
            raise InputError(f"--answer-format must be one of {', '.join(ANSWER_FORMATS)}, got {self.answer_format!r}")
        if self.if_none_correct not in ("skip", "best"):
            raise InputError(f"if_none_correct must be skip or best, got {self.if_none_correct!r}")
        for opt, value, low in (("--top-k", self.top_k, 1), ("--seed", self.seed, 0),
                                ("batch_cases", self.batch_cases, 1), ("off_target", self.off_target, 0)):
            if value < low:
                raise InputError(f"{opt} must be >= {low}, got {value}")
        if self.estimator_budget is not None and self.estimator_budget < 1:
            raise InputError(f"estimator_budget must be >= 1, got {self.estimator_budget}")
        if not self.temperature >= 0:
            raise InputError(f"temperature must be >= 0, got {self.temperature}")
        check_estimator("estimator", self.estimator)
        check_spec("--model", self.model)
        check_spec("--scorer", self.scorer, bayes=True)

    def mcts(self) -> MctsConfig:
        """The search settings in effect: ``search`` with ``w_sig = 0`` when SIG is off."""
        return self.search if self.sig_enabled else dataclasses.replace(self.search, w_sig=0.0)


def case_seed(seed: int, case: Case) -> list[int]:
    """Seed material of a case's RNG: independent of case order and of resumption."""
    return [seed, int(case.content_hash()[:12], 16)]


def trajectory_record(case: Case, traj: Trajectory, max_questions: int, rank: int,
                      answer_format: str = "letter") -> dict:
    """The exported chat-format line of one trajectory (see the module docstring)."""
    return {
        "id": case.id, "messages": transcript_messages(case, traj.transcript(), max_questions, answer_format),
        "sig": [round(s, 6) for s in traj.sig], "reward": round(traj.ret, 6), "correct": traj.correct,
        "n_questions": traj.n_questions, "rank": rank, "answer": traj.answer, "gold": case.answer,
    }


def export_trajectories(case: Case, result: MctsResult, top_k: int, if_none_correct: NoneCorrect,
                        max_questions: int, answer_format: str = "letter") -> list[dict]:
    """Records for the trajectories chosen by the selection rule (best first; may be empty)."""
    chosen = [t for t in result.top if t.correct or if_none_correct == "best"][:top_k]
    return [trajectory_record(case, t, max_questions, k, answer_format) for k, t in enumerate(chosen)]


def _stats_record(case: Case, res: MctsResult, n_exported: int, shapley_s: float, prefetched: int) -> dict:
    b = res.best
    return {"id": case.id, "exported": n_exported, "prefetched_questions": prefetched,
            "found_correct": any(t.correct for t in res.top),
            "best_return": None if b is None else round(b.ret, 6), "best_correct": None if b is None else b.correct,
            "best_questions": None if b is None else b.n_questions,
            "best_sig": None if b is None else round(sum(b.sig), 6),
            "best_new": None if b is None else [list(t.new) for t in b.turns], "n_facts": case.n_facts,
            **dataclasses.asdict(res.stats), "shapley_seconds": round(shapley_s, 4)}


def _done_ids(out: Path) -> set[str]:
    """Ids finished by an earlier run; trajectory lines of unfinished cases are dropped."""
    stats, traj = out / "search.jsonl", out / "trajectories.jsonl"
    repair_jsonl(stats)
    repair_jsonl(traj)
    done = {r["id"] for r in read_jsonl(stats)}
    lines = traj.read_text(encoding="utf-8").splitlines() if traj.exists() else []
    keep = [ln for ln in lines if ln.strip() and json.loads(ln)["id"] in done]
    if len(keep) != len(lines):
        atomic_write_lines(traj, keep)
    return done


def run_mcts(cfg: MctsRunConfig, progress: bool = True, *, patient=None, scorer=None, source=None,
             cases: list[Case] | None = None) -> MctsSummary:
    """Search every case of ``cfg.data`` (skipping done ones), export trajectories, write and return the summary.

    ``patient``, ``scorer``, ``source`` and ``cases`` override what ``cfg`` would build (tests, benchmarks and
    callers that already hold loaded models).
    """
    from promed.data.sources import load_data
    from promed.sig.annotate import SigAnnotator
    from promed.sig.cache import EstimatorChoice, ShapleyCache
    from promed.sig.value import ScorerValue

    t0 = time.perf_counter()
    # every check before the first byte is written (the option values were checked when cfg was built)
    loaded = load_data(cfg.data) if cases is None else None
    cases = loaded.cases if loaded is not None else list(cases)
    out = Path(cfg.out)
    check_out_dir(out)
    synthetic = bool(cases) and all(is_synthclinic(c) for c in cases)
    models = RunModels(cfg.model, cfg.scorer, cfg.patient, synthetic, server=cfg.server)
    if scorer is None:
        check_scorer_fits(models.scorer_spec(), synthetic, cfg.data.data)
    if source is None:
        llm = models.llm() if cfg.model and (cfg.candidates != "facts" or not synthetic) else None
        source = build_source(cfg.candidates, llm, temperature=cfg.temperature, off_target=cfg.off_target)
    scorer = scorer if scorer is not None else models.scorer()
    patient = patient if patient is not None else models.patient()
    value = ScorerValue(scorer)
    choice = EstimatorChoice(cfg.estimator, cfg.estimator_budget)
    check_estimator_budget(choice, cases, cheap=value.id.startswith("bayes"),
                           options=("estimator", "estimator_budget"))
    mcfg = cfg.mcts()
    run_manifest = prepare_run(out, cfg, "mcts", data_fingerprint(cases, cfg.data.data), cfg.overwrite)
    start_run(out, run_manifest, cfg.overwrite)  # only once every input problem had its chance to raise
    write_lineage(out, lineage_of_cases(cases, f"mcts: {cfg.data.data} ({cfg.data.split})"))  # for the guard
    cache = ShapleyCache(value, choice, cfg.shapley_cache or out / "shapley.jsonl", cfg.seed)
    annotator = SigAnnotator(cache, cfg.sig)

    done = _done_ids(out)
    todo = [c for c in cases if c.id not in done]
    bar = _bar(progress, len(cases), len(cases) - len(todo))
    with JsonlAppender(out / "trajectories.jsonl") as traj_sink, JsonlAppender(out / "search.jsonl") as stat_sink:
        for start in range(0, len(todo), cfg.batch_cases):
            chunk = todo[start:start + cfg.batch_cases]
            memo: dict = {}
            pre = [(c, q) for c in chunk for q in dict.fromkeys(source.prefetch(c))]
            if pre:  # one batched patient call for the chunk's foreseeable questions
                replies = patient.reply([c for c, _ in pre], [q for _, q in pre])
                memo.update({(c.id, q): (r[0], tuple(sorted(r[1]))) for (c, q), r in zip(pre, replies)})
            for case in chunk:
                ts = time.perf_counter()
                weights = annotator.weights(case)
                shapley_s = time.perf_counter() - ts
                world = ConsultationWorld(case, patient, scorer, mcfg.max_questions, memo)
                res = mcts_search(world, source, Rewarder(case, weights, cfg.sig.lam, mcfg), mcfg,
                                  np.random.default_rng(case_seed(cfg.seed, case)), top_k=max(cfg.top_k, 1))
                records = export_trajectories(case, res, cfg.top_k, cfg.if_none_correct, mcfg.max_questions,
                                              cfg.answer_format)
                for rec in records:
                    traj_sink.write(rec)
                n_pre = sum(1 for c, _ in pre if c.id == case.id)
                stat_sink.write(_stats_record(case, res, len(records), shapley_s, n_pre))
                bar.update(1)
    bar.close()
    annotator.close()
    summary = summarise(out, {c.id for c in cases}, time.perf_counter() - t0)
    if loaded is not None:
        summary = dataclasses.replace(summary, skipped=dict(loaded.skipped))
    summary = dataclasses.replace(summary, data=cfg.data.data, split=cfg.data.split)
    atomic_write_json(out / "summary.json", summary)
    return summary


@dataclass(frozen=True)
class MctsSummary(JsonRecord):
    """What ``promed mcts`` did (``summary.json``), over the cases of this run that are done (earlier invocations
    included): how many were searched and exported, the best trajectories' means (return, accuracy, questions, SIG),
    the exported rank-0 trajectories' means, time per case, model calls; ``skipped``: unusable cases of the data
    file by reason (None when the caller passed the cases); ``data`` and ``split``: where the cases came from."""

    cases: int
    searched: int
    exported_cases: int
    trajectories: int
    mean_return: float | None
    trajectory_accuracy: float | None
    mean_questions: float | None
    mean_sig: float | None
    exported_mean_return: float | None
    exported_mean_questions: float | None
    mean_seconds_per_case: float | None
    mean_search_seconds: float | None
    mean_shapley_seconds: float | None
    mean_nodes: float | None
    patient_questions: int
    scorer_queries: int
    proposal_calls: int
    wall_s: float
    skipped: dict[str, int] | None = None
    data: str = ""
    split: str = ""


def summarise(out: Path, ids: set[str], wall_s: float) -> MctsSummary:
    """Figures over the cases of this run that are done (including those done by earlier invocations)."""
    stats = [r for r in read_jsonl(out / "search.jsonl") if r["id"] in ids]
    trajs = [r for r in read_jsonl(out / "trajectories.jsonl") if r["id"] in ids]
    best = [r for r in stats if r["best_return"] is not None]

    def mean(xs) -> float | None:
        xs = [x for x in xs if x is not None]
        return round(float(np.mean(xs)), 6) if xs else None

    return MctsSummary(
        cases=len(ids), searched=len(stats), exported_cases=sum(r["exported"] > 0 for r in stats),
        trajectories=len(trajs),
        mean_return=mean(r["best_return"] for r in best),
        trajectory_accuracy=mean(float(r["best_correct"]) for r in best),
        mean_questions=mean(r["best_questions"] for r in best),
        mean_sig=mean(r["best_sig"] for r in best),
        exported_mean_return=mean(r["reward"] for r in trajs if r["rank"] == 0),
        exported_mean_questions=mean(r["n_questions"] for r in trajs if r["rank"] == 0),
        mean_seconds_per_case=mean(r["seconds"] + r["shapley_seconds"] for r in stats),
        mean_search_seconds=mean(r["seconds"] for r in stats),
        mean_shapley_seconds=mean(r["shapley_seconds"] for r in stats),
        mean_nodes=mean(r["nodes"] for r in stats),
        patient_questions=int(sum(r["patient_questions"] + r["prefetched_questions"] for r in stats)),
        scorer_queries=int(sum(r["scorer_queries"] for r in stats)),
        proposal_calls=int(sum(r["proposal_calls"] for r in stats)),
        wall_s=round(wall_s, 3),
    )


def _bar(enabled: bool, total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="mcts", unit="case", disable=not enabled)
