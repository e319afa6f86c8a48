"""Doctor names on the command line -> doctor objects.

Names: ``reactive``, ``full-info``, ``random-<k>``, ``abstain-numeric``, ``abstain-scale``, ``greedy-eig``,
``prompted``, ``llm:<model spec or checkpoint dir>``, ``ask:<model spec or checkpoint dir>`` (that model asks, the
scorer answers: a trained policy's questions compared on equal terms with the baselines). ``full-info`` is the reactive doctor in an environment that
reveals every fact up front; the others run in the normal environment.

:func:`check_doctor_name` validates a name without building anything (``random-<k>`` needs k >= 1; the model spec of
``llm:``/``ask:`` must parse), so a command can reject a bad ``--doctor`` before it loads a model or writes a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from promed.errors import InputError
from promed.llm.base import LLM, SpecError, parse_spec
from promed.types import Doctor, Scorer

DOCTOR_NAMES = ("reactive", "full-info", "random-<k>", "abstain-numeric", "abstain-scale", "greedy-eig",
                "prompted", "llm:<spec or checkpoint dir>", "ask:<spec or checkpoint dir>")


@dataclass(frozen=True)
class DoctorEntry:
    """A doctor to evaluate and the information regime it runs under."""

    name: str
    doctor: Doctor
    reveal_all: bool = False


def llm_spec_of(target: str) -> str:
    """``llm:<x>``'s target as a model spec: a directory is a Hugging Face checkpoint (``hf:<dir>``)."""
    if Path(target).is_dir():
        return f"hf:{target}"
    return target


_FIXED = ("reactive", "full-info", "abstain-numeric", "abstain-scale", "greedy-eig", "prompted")


def check_doctor_name(name: str) -> None:
    """Raise :class:`SpecError` unless ``name`` is a well-formed doctor name (see the module docstring).

    Nothing is loaded: a ``llm:``/``ask:`` target must parse as a model spec or look like a path (it has a ``/``
    or starts with ``.`` or ``~``: a checkpoint directory, which a config may name before training writes it; a
    missing one is reported when the doctor is built).
    """
    if name in _FIXED:
        return
    if m := re.fullmatch(r"random-(\d+)", name):
        if int(m.group(1)) < 1:
            raise SpecError(f"{name!r}: random-<k> needs k >= 1 (asking no question is the reactive doctor)")
        return
    if name.startswith(("llm:", "ask:")) and len(name) > 4:
        target = name[4:]
        if "/" in target or target.startswith((".", "~")):
            return
        try:
            parse_spec(llm_spec_of(target))
        except SpecError as err:
            raise SpecError(f"{name!r}: {err}") from None
        return
    raise SpecError(f"unknown doctor {name!r}; choose from {', '.join(DOCTOR_NAMES)}")


def build_doctor(name: str, scorer: Callable[[], Scorer], llm: Callable[[], LLM],
                 load_llm: Callable[[str], LLM], no_repeat: int = 0) -> DoctorEntry:
    """Build a doctor by name. ``scorer`` and ``llm`` are lazy factories (models load only if a doctor needs them)."""
    from promed.doctor import baselines
    from promed.doctor.policy import LLMDoctor

    check_doctor_name(name)
    if name == "reactive":
        return DoctorEntry(name, baselines.ReactiveDoctor(scorer(), name))
    if name == "full-info":
        return DoctorEntry(name, baselines.ReactiveDoctor(scorer(), name), reveal_all=True)
    if m := re.fullmatch(r"random-(\d+)", name):
        return DoctorEntry(name, baselines.RandomQuestionDoctor(scorer(), int(m.group(1)), name))
    if name in ("abstain-numeric", "abstain-scale"):
        mode = name.split("-")[1]
        return DoctorEntry(name, baselines.AbstainDoctor(scorer(), mode, llm=_maybe(llm), name=name))
    if name == "greedy-eig":
        from promed.doctor.eig import GreedyEIGDoctor

        return DoctorEntry(name, GreedyEIGDoctor())
    if name == "prompted":
        return DoctorEntry(name, LLMDoctor(llm(), name, no_repeat=no_repeat))
    if name.startswith("llm:") and len(name) > 4:
        return DoctorEntry(name, LLMDoctor(load_llm(llm_spec_of(name[4:])), name, no_repeat=no_repeat))
    if name.startswith("ask:") and len(name) > 4:
        inner = LLMDoctor(load_llm(llm_spec_of(name[4:])), name, no_repeat=no_repeat)
        return DoctorEntry(name, baselines.ScorerAnswers(inner, scorer(), name))
    raise SpecError(f"unknown doctor {name!r}; choose from {', '.join(DOCTOR_NAMES)}")


def _maybe(factory: Callable[[], LLM]) -> LLM | None:
    try:
        return factory()
    except InputError:  # no --model given: the doctor works without a model
        return None
