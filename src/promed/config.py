"""What the command line needs to assemble a run's config: ``promed eval``'s config, and ``--config FILE.toml``.

Settings have one home each. Every stage's frozen dataclass lives beside its code, with help on every field, and
a command's config nests them rather than repeating their fields:

============  ===========================================  =============================================
stage         dataclass                                    home
============  ===========================================  =============================================
data          :class:`DataConfig`                          :mod:`promed.data.sources`
env           :class:`EnvConfig`                           :mod:`promed.env.consultation`
patient       :class:`PatientConfig`                       :mod:`promed.runtime` (kind + each simulator's)
server        :class:`ServerConfig`                        :mod:`promed.runtime` (openai: model servers)
sig           ``SigConfig`` (lam, weighting, temperature)  :mod:`promed.sig.reward`
mcts          ``MctsConfig``                               :mod:`promed.search.mcts`
sft           ``SFTRunConfig``                             :mod:`promed.train.sft`
grpo          ``GRPORunConfig``                            :mod:`promed.train.grpo`
eval          :class:`EvalConfig`                          here (``promed eval``)
============  ===========================================  =============================================

The per-command configs of the runners (``SigRunConfig``, ``MctsRunConfig``, ``SftCommandConfig``,
``Stage1Config``) live in :mod:`promed.runs`; the command line generates its options from all of them
(:mod:`promed.cliopts`), so a default or a help text is written once.

``--config FILE.toml`` (:func:`load_config`): the file's keys are the command's config fields, nested tables for
nested dataclasses (``[env]`` then ``max_questions = 3``). A file may also hold several commands, one section per
command (``[eval]``, ``[eval.env]``, ``[mcts]``, ...): a command reads its own section when the file has a
top-level table named after the command. Unknown keys and values of the wrong type are errors that name the key
and the file. Options given on the command line win over the file, the file wins over the defaults.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from promed.data.sources import DataConfig
from promed.env.consultation import EnvConfig
from promed.errors import InputError
from promed.io import OVERWRITE_HELP
from promed.runtime import PatientConfig, ServerConfig

__all__ = ["DataConfig", "EnvConfig", "EvalConfig", "PatientConfig", "ServerConfig", "get_path",
           "load_config", "overlay", "read_toml", "with_path", "with_paths"]

T = TypeVar("T")

DOCTORS_HELP = ("Comma-separated doctors: reactive, full-info, random-<k>, abstain-numeric, abstain-scale, "
                "greedy-eig, prompted, llm:<spec or checkpoint dir>, ask:<spec or checkpoint dir> (that model asks, "
                "the scorer answers).")


@dataclass(frozen=True)
class EvalConfig:
    """``promed eval``: evaluate doctors in the consultation environment."""

    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "Cases."})
    doctors: tuple[str, ...] = field(default=("reactive", "full-info"), metadata={"help": DOCTORS_HELP})
    patient: PatientConfig = field(default_factory=PatientConfig, metadata={"help": "Patient simulator."})
    model: str | None = field(
        default=None, metadata={"help": "Model spec (gemma-270m, hf:<id|path>, gguf:<file>, openai:<model>@<url>, "
                                        "tiny) for the prompted doctor, the LLM patient and the scorer when --scorer "
                                        "is not given."}
    )
    scorer: str | None = field(
        default=None, metadata={"help": "'bayes' (SynthClinic exact posterior) or a model spec. Default: bayes on "
                                        "SynthClinic, else --model."}
    )
    server: ServerConfig = field(default_factory=ServerConfig,
                                 metadata={"help": "Model servers (openai: specs): timeout, retries, concurrency."})
    env: EnvConfig = field(default_factory=EnvConfig, metadata={"help": "Consultation settings."})
    no_repeat: int = field(default=0, metadata={"help": "LLM doctors: when a question repeats an earlier one, take "
                                                        "the most likely new question among the model's N best "
                                                        "(beam search; N samples on APIs without beams). 0 = off."})
    samples: int = field(default=1, metadata={"help": "Sampled consultations per case (G); > 1 reports mean "
                                                      "accuracy and pass@G beside greedy accuracy."})
    temperature: float = field(default=0.0, metadata={"help": "Sampling temperature of LLM doctors (0 = greedy)."})
    sig_enabled: bool = field(default=True, metadata={"help": "Annotate questions with SIG (Shapley values cached in "
                                                      "OUT/shapley.jsonl)."})
    estimator: str = field(default="auto", metadata={"help": "Shapley estimator for SIG: auto, exact, permutation, "
                                                            "kernel, reference."})
    seed: int = field(default=0, metadata={"help": "Run seed (rollouts, random doctors, forced answers)."})
    batch_size: int = field(default=64, metadata={"help": "Consultations stepped together."})
    out: Path = field(default=Path("runs/eval"), metadata={"help": "Output directory (re-running resumes)."})
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})
    allow_overlap: bool = field(default=False, metadata={"help": "Evaluate llm:/ask: doctors even on cases their "
                                                                 "checkpoint learned from (its learned_cases.json); "
                                                                 "the table marks those rows. Off: such a run is "
                                                                 "refused."})

    def __post_init__(self) -> None:
        """Check every value before anything runs; a message names the option as typed (nothing is loaded)."""
        from promed.doctor.registry import check_doctor_name
        from promed.llm.base import SpecError, parse_spec
        from promed.sig.shapley import ESTIMATORS

        if not self.doctors:
            raise InputError("--doctor must name at least one doctor")
        for i, name in enumerate(self.doctors):
            if name in self.doctors[:i]:
                raise InputError(f"--doctor names {name!r} twice: each doctor is evaluated once")
            try:
                check_doctor_name(name)
            except SpecError as err:
                raise InputError(f"--doctor: {err}") from None
        for opt, spec in (("--model", self.model), ("--scorer", self.scorer)):
            if spec is not None and not (opt == "--scorer" and spec == "bayes"):
                try:
                    parse_spec(spec)
                except SpecError as err:
                    raise InputError(f"{opt}: {err}{' (or bayes)' if opt == '--scorer' else ''}") from None
        for opt, value, low in (("--no-repeat", self.no_repeat, 0), ("--samples", self.samples, 1),
                                ("--seed", self.seed, 0), ("--batch-size", self.batch_size, 1)):
            if value < low:
                raise InputError(f"{opt} must be >= {low}, got {value}")
        if not self.temperature >= 0:
            raise InputError(f"--temperature must be >= 0, got {self.temperature}")
        if self.estimator != "auto" and self.estimator not in ESTIMATORS:
            raise InputError(f"--estimator must be auto, {', '.join(ESTIMATORS)}; got {self.estimator!r}")


# ---- --config FILE.toml ----------------------------------------------------------------------------------------


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file; a missing file or bad TOML raises an input error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such config file")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: not valid TOML: {err}") from None


def load_config(base: T, path: Path | None, command: str, commands: Collection[str] = ()) -> T:
    """``base`` overlaid with the settings ``path`` holds for ``command`` (the module docstring has the layout).

    ``commands`` are the names of every command: in a file with sections, the other sections are allowed (they
    belong to other commands) and a missing section for ``command`` is reported as such.
    """
    if path is None:
        return base
    raw = read_toml(path)
    names = {f.name for f in dataclasses.fields(base)}
    if command in raw and command not in names:
        stray = sorted(k for k in raw if k not in commands and k != command)
        if stray:
            raise InputError(f"{path}: unknown section(s) {', '.join(stray)}; sections are named after commands: "
                             f"{', '.join(sorted(set(commands) | {command}))}")
        table = raw[command]
        if not isinstance(table, dict):
            raise InputError(f"{path}: {command}: expected a table ([{command}]), got {table!r}")
        return overlay(base, table, path, prefix=f"{command}.")
    sections = sorted(k for k in raw if k not in names and k in commands)
    if sections and all(k in commands for k in raw if k not in names):
        raise InputError(f"{path}: no [{command}] section (the file has sections for: {', '.join(sections)})")
    return overlay(base, raw, path)


def overlay(cfg: T, table: dict[str, Any], path: Path | str, prefix: str = "") -> T:
    """``cfg`` with the values of ``table`` (nested tables for nested dataclasses), checked against field types."""
    hints = get_type_hints(type(cfg))
    known = {f.name: f for f in dataclasses.fields(cfg)}
    changes: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if key not in known:
            raise InputError(f"{path}: unknown setting '{name}'; known here: {', '.join(sorted(known))}")
        tp = hints[key]
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise InputError(f"{path}: {name}: expected a table ([{name}]), got {value!r}")
            changes[key] = overlay(current, value, path, prefix=f"{name}.")
        else:
            changes[key] = coerce(value, tp, name, path)
    try:
        return dataclasses.replace(cfg, **changes)
    except (ValueError, TypeError) as err:
        where = prefix.rstrip(".") or "top level"
        raise InputError(f"{path}: {where}: {err}") from None


def coerce(value: Any, tp: Any, name: str, path: Path | str) -> Any:
    """``value`` (as TOML gives it) as a value of type ``tp``, or an InputError naming ``name`` and ``path``."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        errors = []
        for a in options:
            try:
                return coerce(value, a, name, path)
            except ValueError as err:
                errors.append(err)
        raise errors[0] if len(errors) == 1 else _type_error(value, " or ".join(_describe(a) for a in options),
                                                             name, path)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _type_error(value, "one of " + ", ".join(repr(a) for a in args), name, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise _type_error(value, _describe(tp), name, path)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{name}[{i}]", path) for i, v in enumerate(value))
        if len(args) != len(value):
            raise _type_error(value, _describe(tp), name, path)
        return tuple(coerce(v, a, f"{name}[{i}]", path) for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Path:
        if isinstance(value, str):
            return Path(value)
    elif tp is Any:
        return value
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _type_error(value, _describe(tp), name, path)


def _describe(tp: Any) -> str:
    if get_origin(tp) is tuple:
        item = get_args(tp)[0]
        plural = {bool: "booleans", int: "integers", float: "numbers", str: "strings", Path: "paths (strings)"}
        return f"an array of {plural.get(item, getattr(item, '__name__', str(item)))}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            Path: "a path (string)"}.get(tp, getattr(tp, "__name__", str(tp)))


def _type_error(value: Any, expected: str, name: str, path: Path | str) -> InputError:
    return InputError(f"{path}: {name}: expected {expected}, got {value!r} ({type(value).__name__})")


# ---- dotted paths into nested configs --------------------------------------------------------------------------


def get_path(cfg: Any, dotted: str) -> Any:
    """``get_path(cfg, "env.max_questions") == cfg.env.max_questions``."""
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def with_path(cfg: T, dotted: str, value: Any) -> T:
    """``cfg`` with the field at ``dotted`` (e.g. ``"search.iterations"``) replaced; nested configs are copied."""
    head, _, rest = dotted.partition(".")
    if not rest:
        return dataclasses.replace(cfg, **{head: value})
    return dataclasses.replace(cfg, **{head: with_path(getattr(cfg, head), rest, value)})


def with_paths(cfg: T, values: dict[str, Any]) -> T:
    """:func:`with_path` for every ``{dotted path: value}`` in turn."""
    for dotted, value in values.items():
        cfg = with_path(cfg, dotted, value)
    return cfg
