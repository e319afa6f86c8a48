"""Patient simulators: they answer the doctor's questions from a case's hidden facts, never leaking the answer.

* :class:`FactPatient` - embedding retrieval of the atomic facts that answer the question (verbatim, exact ids).
* :class:`LLMPatient` - the fact-select prompt through any LLM backend (the paper's patient), grounded the same way.
* :mod:`promed.patient.guard` - the no-leak rule both share (:func:`safe_fact_ids`, :func:`is_safe`, :func:`redact`).
* :mod:`promed.patient.embed` - the shared, cached MiniLM embedder (also used by :mod:`promed.sig.coverage`).
"""

from promed.patient.embed import EmbedConfig, Embedder, default_embedder, load_minilm
from promed.patient.fact import FactPatient, FactPatientConfig
from promed.patient.guard import REFUSAL, forbidden_strings, has_letter_answer, is_safe, redact, safe_fact_ids
from promed.patient.llm import LLMPatient, LLMPatientConfig, parse_fact_numbers

__all__ = [
    "REFUSAL",
    "EmbedConfig",
    "Embedder",
    "FactPatient",
    "FactPatientConfig",
    "LLMPatient",
    "LLMPatientConfig",
    "default_embedder",
    "forbidden_strings",
    "has_letter_answer",
    "is_safe",
    "load_minilm",
    "parse_fact_numbers",
    "redact",
    "safe_fact_ids",
]
