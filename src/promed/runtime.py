"""The models of one run (LLM, scorer, patient), built on first use from the command-line specs.

Shared by ``promed eval``, ``promed sig`` and ``promed mcts`` so that a spec means the same thing everywhere: the
scorer defaults to SynthClinic's exact posterior (``bayes``) on SynthClinic cases and to ``--model`` on real
data; the LLM patient and the prompted doctor use ``--model``. Loaded LLMs are cached per process by
:func:`promed.llm.load_llm`, so one model serves every role that names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from promed.types import Case


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
    patient_arg: str
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
            if self.patient_arg == "fact":
                from promed.patient import FactPatient

                self._built["patient"] = FactPatient()
            elif self.patient_arg == "llm":
                from promed.patient import LLMPatient

                self._built["patient"] = LLMPatient(self.llm())
            else:
                raise ValueError(f"unknown patient {self.patient_arg!r}: choose fact or llm")
        return self._built["patient"]
