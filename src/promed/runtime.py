"""The models of one run (LLM, scorer, patient), built on first use from the command-line specs.

Shared by ``promed eval``, ``promed sig`` and ``promed mcts`` so that a spec means the same thing everywhere: the
scorer defaults to SynthClinic's exact posterior (``bayes``) on SynthClinic cases and to ``--model`` on real
data; the LLM patient and the prompted doctor use ``--model``. Loaded LLMs are cached per process by
:func:`promed.llm.load_llm`, so one model serves every role that names it. :class:`PatientConfig` is the patient's
stage config (which simulator, and the settings of each). :class:`ServerConfig` holds the settings of model servers
(``openai:`` specs): per-request timeout, retries, concurrency; :class:`RunModels` passes them to
:func:`promed.llm.load_llm` for ``openai:`` specs only (local models have no server).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from promed.errors import InputError
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
            raise InputError(f"unknown patient {self.kind!r}: choose fact or llm")


@dataclass(frozen=True)
class ServerConfig:
    """Settings of OpenAI-compatible model servers (``openai:<model>@<url>`` specs; ignored by local models).

    One request takes at most ``timeout * (retries + 1)`` seconds plus the back-off between attempts (0.5, 1, 2,
    4, 8, 8, ... s; a 429/503 reply's Retry-After instead, capped at 30 s): see
    :mod:`promed.llm.openai_compat`. With the defaults, 4 x 60 + 3.5 = 243.5 s before a dead server is reported.
    """

    timeout: float = field(default=60.0, metadata={"help": "Model server (openai: specs): seconds per request "
                                                           "attempt before it counts as a timeout."})
    retries: int = field(default=3, metadata={"help": "Model server: retries per request after a timeout, a "
                                                      "connection error, HTTP 408/409/429/5xx or a malformed reply "
                                                      "(exponential back-off; 401/403/other 4xx fail at once)."})
    concurrency: int = field(default=8, metadata={"help": "Model server: requests in flight at once."})

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise InputError(f"--timeout (server.timeout) must be > 0 seconds, got {self.timeout!r}")
        if self.retries < 0:
            raise InputError(f"--retries (server.retries) must be >= 0, got {self.retries!r}")
        if self.concurrency < 1:
            raise InputError(f"--concurrency (server.concurrency) must be >= 1, got {self.concurrency!r}")

    def llm_options(self, spec: str) -> dict:
        """:func:`promed.llm.load_llm` options for ``spec``: these settings for an ``openai:`` spec, else none."""
        from promed.llm.base import parse_spec

        if parse_spec(spec).kind != "openai":
            return {}
        return {"timeout": float(self.timeout), "max_retries": self.retries, "concurrency": self.concurrency}


def is_synthetic(data: str, cases: Sequence[Case]) -> bool:
    """SynthClinic cases (generated, or read back from a file with their annotations)."""
    return data == "synthclinic" or (bool(cases) and all(all(o.key for o in c.options) for c in cases))


def check_scorer_fits(scorer_spec: str, synthetic: bool, data: str) -> None:
    """The exact posterior scores only SynthClinic cases: say so (an input error) before anything is written."""
    if scorer_spec == "bayes" and not synthetic:
        raise InputError(f"{data}: these cases are not SynthClinic (their options carry no SynthClinic annotations), "
                         "so the scorer bayes cannot score them: pass --scorer <model spec>")


def make_scorer(spec: str, server: ServerConfig | None = None):
    """``bayes`` -> the SynthClinic exact posterior; ``doctor:<model spec>`` -> that doctor scoring its own answer
    turns (``ANSWER: <option text>``) after its consultation prompt (:class:`promed.doctor.scorer.DoctorScorer`,
    e.g. the pretrained SynthClinic doctor); anything else -> an LLM scoring the option letters (an ``openai:`` spec
    with ``server``'s settings)."""
    if spec == "bayes":
        from promed.data.synthclinic import BayesScorer

        return BayesScorer()
    from promed.doctor.scorer import SPEC_PREFIX, DoctorScorer
    from promed.llm import load_llm
    from promed.llm.scorer import LLMScorer

    if spec.startswith(SPEC_PREFIX):
        inner = spec[len(SPEC_PREFIX):]
        return DoctorScorer(load_llm(inner, **(server or ServerConfig()).llm_options(inner)))

    return LLMScorer(load_llm(spec, **(server or ServerConfig()).llm_options(spec)))


@dataclass
class RunModels:
    """Lazily built models of one run; each is built at most once."""

    model: str | None
    scorer_arg: str | None
    patient_arg: str | PatientConfig  # a kind ("fact", "llm") stands for that kind's default settings
    synthetic: bool
    server: ServerConfig = field(default_factory=ServerConfig)  # for openai: specs
    _built: dict = field(default_factory=dict)

    def llm(self):
        if not self.model:
            raise InputError("this needs a model: pass --model SPEC")
        return self.load_llm(self.model)

    def load_llm(self, spec: str):
        from promed.llm import load_llm

        return load_llm(spec, **self.server.llm_options(spec))

    def scorer_spec(self) -> str:
        if self.scorer_arg:
            return self.scorer_arg
        if self.synthetic:
            return "bayes"
        if self.model:
            return self.model
        raise InputError("real data needs a scorer: pass --scorer SPEC or --model SPEC")

    def scorer(self):
        if "scorer" not in self._built:
            self._built["scorer"] = make_scorer(self.scorer_spec(), self.server)
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
