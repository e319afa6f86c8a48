"""The viewer's access to run files: every page asks this store, which reads lazily and caches by file stamp.

Nothing is read when the viewer starts (:func:`promed.view.runs.discover` only lists directories); a file is read
the first time a page needs it and again only after it changed, so a large run starts at once and a running one is
followed. Problems in a file (malformed JSON, a record the evaluation's reader rejects, a missing summary) come back
as messages for the page to show; only a request for something that does not exist (an unknown run, doctor or case)
raises :class:`NotFound`, which the app turns into a 404 page.

The Shapley values of a case come from the run's own ``shapley.jsonl`` (written by ``promed eval`` when it computed
SIG) or from another given run with the same data (``promed sig``, ``promed mcts``): the manifests' data fingerprints
must match, so values of other cases that happen to share an id are never shown.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from promed.errors import InputError
from promed.eval.metrics import Metrics
from promed.io import safe_name
from promed.sig.cache import ShapleyRecord
from promed.types import Case
from promed.view.consultations import Consultation, DoctorRecords, load_doctor_records
from promed.view.curves import Curves, load_curves
from promed.view.files import FileCache, read_json, read_jsonl_lines
from promed.view.posterior import SynthClinicCases, synthclinic_source
from promed.view.runs import RunDir

READ_ERRORS = (OSError, UnicodeDecodeError, ValueError)
VIEWABLE = (".png", ".md", ".json", ".svg")


class NotFound(InputError, LookupError):
    """A request for a run, doctor, case or file that does not exist (a 404 page naming it)."""


@dataclass
class Messages:
    """What a page tells the reader about its files: problems (shown as errors) and notes, each said once (a page
    may read the same file twice)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, *texts: str) -> None:
        self.problems += [t for t in texts if t not in self.problems]

    def note(self, *texts: str) -> None:
        self.notes += [t for t in texts if t not in self.notes]


@dataclass(frozen=True)
class DoctorRow:
    """One line of a run's summary: ``key`` is the doctor's transcript file stem ("" if it has none)."""

    key: str
    name: str
    metrics: Metrics | None
    source: str
    samples: str = ""  # the key of its sampled groups (``promed eval --samples G``), if the run has them


@dataclass(frozen=True)
class ShapleyIndex:
    """Shapley records by case id (a later line supersedes an earlier one) and the files they came from."""

    records: dict[str, ShapleyRecord]
    sources: tuple[Path, ...]


def describe(path: Path, err: Exception) -> str:
    """One line naming ``path`` and what is wrong with it (for :data:`READ_ERRORS`)."""
    if isinstance(err, UnicodeDecodeError):
        return f"{path}: not UTF-8 text ({err.reason} at byte {err.start})"
    if isinstance(err, OSError):
        return f"{path}: cannot be read ({err.strerror or err})"
    return str(err) if str(path) in str(err) else f"{path}: {err}"


def _read_shapley_file(path: Path) -> tuple[dict[str, ShapleyRecord], tuple[str, ...], bool]:
    read = read_jsonl_lines(path)
    problems, out = list(read.problems), {}
    for line, rec in read.records:
        try:
            r = ShapleyRecord.from_json(rec)
        except ValueError as err:
            problems.append(f"{path}:{line}: {err}; line skipped")
            continue
        out[r.id] = r
    return out, tuple(problems), read.torn


def _summary_metrics(name: str, value: object) -> Metrics:
    if not isinstance(value, dict):
        raise InputError(f"doctor {name!r}: expected an object of metrics, got {type(value).__name__}")
    try:
        return Metrics(**{**value, "ci95": tuple(value["ci95"])})
    except (KeyError, TypeError) as err:
        raise InputError(f"doctor {name!r}: not a metrics record ({err})") from None


class RunStore:
    """Lazy, cached, read-only access to the files of the given runs."""

    def __init__(self, runs: list[RunDir]):
        self.runs = runs
        self._by_id = {r.rid: r for r in runs}
        self._cache = FileCache()
        self.synthclinic = SynthClinicCases()

    def run(self, rid: str) -> RunDir:
        try:
            return self._by_id[rid]
        except KeyError:
            raise NotFound(f"no run {rid!r} (this viewer shows {len(self.runs)} runs)") from None

    # ---- whole-run files ------------------------------------------------------------------------------------

    def _json(self, path: Path, msgs: Messages) -> object | None:
        if not path.is_file():
            return None
        try:
            return self._cache.get(path, read_json)
        except READ_ERRORS as err:
            msgs.problem(describe(path, err))
            return None

    def manifest(self, run: RunDir, msgs: Messages) -> dict:
        data = self._json(run.file("manifest.json"), msgs)
        if data is not None and not isinstance(data, dict):
            msgs.problem(f"{run.file('manifest.json')}: expected a JSON object")
            return {}
        return data or {}

    def stage(self, run: RunDir, msgs: Messages) -> str:
        return str(self.manifest(run, msgs).get("stage") or "run")

    def files(self, run: RunDir) -> list[str]:
        """Files of the run's own directory that a page may link to (figures, tables, summaries)."""
        try:
            return sorted(p.name for p in run.path.iterdir() if p.is_file() and p.suffix in VIEWABLE
                          and not p.name.startswith("."))
        except OSError:
            return []

    # ---- doctors ----------------------------------------------------------------------------------------------

    def doctor_files(self, run: RunDir) -> dict[str, Path]:
        """Transcript files by key (file stem), in the order of the run's ``--doctor`` list, then by name."""
        tdir = run.file("transcripts")
        try:
            paths = sorted(p for p in tdir.glob("*.jsonl") if p.is_file())
        except OSError:
            return {}
        by_key = {p.name.removesuffix(".jsonl"): p for p in paths}
        wanted = (self.manifest(run, Messages()).get("config") or {}).get("doctors") or []
        order = {safe_name(str(d)): i for i, d in enumerate(wanted)} if isinstance(wanted, list) else {}
        return dict(sorted(by_key.items(), key=lambda kv: (order.get(kv[0].removesuffix(".samples"), len(order)),
                                                            kv[0])))

    def records(self, run: RunDir, key: str, msgs: Messages) -> DoctorRecords:
        path = self.doctor_files(run).get(key)
        if path is None:
            raise NotFound(f"run {run.label} has no transcripts for doctor {key!r}")
        try:
            recs = self._cache.get(path, load_doctor_records)
        except READ_ERRORS as err:
            msgs.problem(describe(path, err))
            return DoctorRecords(path, key, {}, (), False)
        msgs.problem(*recs.problems)
        if recs.torn:
            msgs.note(f"{path}: its last line is incomplete (the run is still writing it?); not shown yet")
        return recs

    def consultation(self, run: RunDir, key: str, case_id: str, sample: int, msgs: Messages) -> Consultation:
        recs = self.records(run, key, msgs)
        found = recs.consultations.get((case_id, sample))
        if found is None:
            raise NotFound(f"doctor {recs.name!r} of run {run.label} has no consultation of case {case_id!r}"
                              + (f" (sample {sample})" if sample else ""))
        return found

    def summary(self, run: RunDir, msgs: Messages) -> tuple[list[DoctorRow], dict]:
        """The doctors' rows (from ``summary.json``, or from the transcripts where it is missing or older than
        them) and, for runs whose summary is not per doctor (``promed sig``, ``mcts``), that summary as a dict."""
        path = run.file("summary.json")
        data = self._json(path, msgs)
        files = self.doctor_files(run)
        per_doctor: dict[str, object] = {}
        other: dict = {}
        if isinstance(data, dict):
            if data and all(isinstance(v, dict) and "accuracy" in v for v in data.values()):
                per_doctor = data
            else:
                other = data
        elif data is not None:
            msgs.problem(f"{path}: expected a JSON object")
        stamp = path.stat().st_mtime_ns if path.is_file() else -1
        rows: list[DoctorRow] = []
        for name, value in per_doctor.items():
            key = safe_name(name)
            fpath = files.get(key)
            if fpath is not None and _mtime(fpath) > stamp:
                continue  # the transcripts moved on since the summary was written: computed below
            try:
                rows.append(DoctorRow(key if fpath else "", name, _summary_metrics(name, value), "summary.json"))
            except ValueError as err:
                msgs.problem(f"{path}: {err}")
        done = {r.key for r in rows} | {safe_name(r.name) for r in rows}
        for key in files:
            if key in done:
                continue
            recs = self.records(run, key, msgs)
            if files[key].name.endswith(".samples.jsonl"):
                continue  # sampled groups are listed under their doctor, not summarised as another doctor
            config = self.manifest(run, Messages()).get("config") or {}
            with_sig = bool(config.get("sig_enabled", config.get("sig")))  # "sig": manifests before session 15
            rows.append(DoctorRow(key, recs.name, recs.metrics(with_sig) if recs.consultations else None,
                                  f"{len(recs.consultations)} transcripts so far"))
        listed = {safe_name(r.name) for r in rows} | {r.key for r in rows}
        wanted = (self.manifest(run, Messages()).get("config") or {}).get("doctors")
        for name in wanted if isinstance(wanted, list) else []:
            if safe_name(str(name)) not in listed:  # the run has not reached this doctor yet
                rows.append(DoctorRow("", str(name), None, "no transcripts yet"))
        rows = [dataclasses.replace(r, samples=f"{r.key}.samples") if r.key and f"{r.key}.samples" in files else r
                for r in rows]
        if any(r.source not in ("summary.json", "no transcripts yet") for r in rows):
            msgs.note(f"{run.label}: rows marked 'transcripts so far' are computed from the transcripts "
                              "written so far (no up-to-date summary.json: the run is still going or was "
                              "interrupted)")
        return rows, other

    # ---- Shapley values and curves ------------------------------------------------------------------------------

    def shapley(self, run: RunDir, msgs: Messages) -> ShapleyIndex:
        """The run's own Shapley cache, completed by the caches of given runs with the same data."""
        mine = self.manifest(run, Messages()).get("data_fingerprint")
        paths = []
        for other in [run] + [r for r in self.runs if r is not run]:
            path = other.file("shapley.jsonl")
            if not path.is_file():
                continue
            if other is run or (mine is not None and self.manifest(other, Messages()).get("data_fingerprint") == mine):
                paths.append(path)
        records: dict[str, ShapleyRecord] = {}
        for path in reversed(paths):  # the run's own values win over another run's
            try:
                recs, problems, torn = self._cache.get(path, _read_shapley_file)
            except READ_ERRORS as err:
                msgs.problem(describe(path, err))
                continue
            msgs.problem(*problems)
            if torn:
                msgs.note(f"{path}: its last line is incomplete (still being written?); not used yet")
            records.update(recs)
        return ShapleyIndex(records, tuple(paths))

    def synthclinic_case(self, run: RunDir, c: Consultation) -> Case:
        """The SynthClinic case of ``c`` (regenerated); NotFound if the run is not over SynthClinic or the case
        cannot be matched."""
        source = synthclinic_source(self.manifest(run, Messages()))
        if source is None:
            raise NotFound(f"run {run.label} is not over SynthClinic: no exact posterior")
        try:
            return self.synthclinic.case(source, c)
        except ValueError as err:
            raise NotFound(str(err)) from None

    def curves(self, run: RunDir, msgs: Messages) -> Curves | None:
        try:
            return load_curves(run.path)
        except READ_ERRORS as err:
            msgs.problem(describe(run.path, err))
            return None


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1
