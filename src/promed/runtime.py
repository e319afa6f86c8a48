"""The models of one run (LLM, scorer, patient), built on first use from the command-line specs.

Shared by ``promed eval``, ``promed sig`` and ``promed mcts`` so that a spec means the same thing everywhere: the
scorer defaults to SynthClinic's exact posterior (``bayes``) on SynthClinic cases and to ``--model`` on real
data; the LLM patient and the prompted doctor use ``--model``. Loaded LLMs are cached per process by
:func:`promed.llm.load_llm`, so one model serves every role that names it. :class:`PatientConfig` is the patient's
stage config (which simulator, and the settings of each).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from promed.patient.fact import FactPatientConfig
from promed.patient.llm import LLMPatientConfig
from promed.types import Case

PATIENTS = ("fact", "llm")


@dataclass(frozen=True)
class PatientConfig:
    """The patient simulator of a run (``--patient``; its settings through ``--config``)."""

    kind: str = field(default="fact", metadata={"help": "Patient simulator: fact (embedding retrieval of the "
                                                        "facts) or llm (the fact-select prompt through --model)."})
    fact: FactPatientConfig = field(default_factory=FactPatientConfig,
                                    metadata={"help": "Retrieval settings of the fact patient."})
    llm: LLMPatientConfig = field(default_factory=LLMPatientConfig,
                                  metadata={"help": "Settings of the LLM patient."})

    def __post_init__(self) -> None:
        if self.kind not in PATIENTS:
            raise ValueError(f"unknown patient {self.kind!r}: choose fact or llm")


def is_synthetic(data: str, cases: Sequence[Case]) -> bool:
    """SynthClinic cases (generated, or read back from a file with their annotations)."""
    return data == "synthclinic" or (bool(cases) and all(all(o.key for o in c.options) for c in cases))


def make_scorer(spec: str):
    """``bayes`` -> the SynthClinic exact posterior; anything else -> an LLM scoring the options."""
    if spec == "bayes":
        from promed.data.synthclinic import BayesScorer

        return BayesScorer()
    from promed.llm import load_llm
    from promed.llm.scorer import LLMScorer

    return LLMScorer(load_llm(spec))


@dataclass
class RunModels:
    """Lazily built models of one run; each is built at most once."""

    model: str | None
    scorer_arg: str | None
    patient_arg: str | PatientConfig  # a kind ("fact", "llm") stands for that kind's default settings
    synthetic: bool
    _built: dict = field(default_factory=dict)

    def llm(self):
        if not self.model:
            raise LookupError("this needs a model: pass --model SPEC")
        return self.load_llm(self.model)

    def load_llm(self, spec: str):
        from promed.llm import load_llm

        return load_llm(spec)

    def scorer_spec(self) -> str:
        if self.scorer_arg:
            return self.scorer_arg
        if self.synthetic:
            return "bayes"
        if self.model:
            return self.model
        raise LookupError("real data needs a scorer: pass --scorer SPEC or --model SPEC")

    def scorer(self):
        if "scorer" not in self._built:
            self._built["scorer"] = make_scorer(self.scorer_spec())
        return self._built["scorer"]

    def patient(self):
        if "patient" not in self._built:
            cfg = self.patient_arg
            if isinstance(cfg, str):
                cfg = PatientConfig(kind=cfg)
            if cfg.kind == "fact":
                from promed.patient import FactPatient

                self._built["patient"] = FactPatient.from_config(cfg.fact)
            else:
                from promed.patient import LLMPatient

                c = cfg.llm
                self._built["patient"] = LLMPatient(self.llm(), guard=c.guard, max_facts=c.max_facts,
                                                    max_new_tokens=c.max_new_tokens, temperature=c.temperature)
        return self._built["patient"]
