"""SynthClinic: a knowledge base written by us, a seeded MedQA-like case generator and the exact posterior.

Because the model is explicit, v(S) is the exact Bayesian posterior of the gold option (``BayesScorer``), Shapley
values can be computed exactly, and the Bayes-optimal and information-gain doctors are known. See ``kb.py`` for the
model, ``generator.py`` for the sampling story, ``posterior.py`` for why the posterior is exact.
"""

from promed.data.synthclinic.generator import (
    DEFAULT_SIZES,
    QUESTION,
    SPLITS,
    GeneratorConfig,
    documentation_probs,
    fact_text,
    generate_cases,
    gold_disease,
)
from promed.data.synthclinic.posterior import BayesScorer, model
from promed.data.synthclinic.questions import (
    candidate_questions,
    fact_for_question,
    finding_of_question,
    question_for,
    question_for_fact,
)

__all__ = [
    "BayesScorer",
    "DEFAULT_SIZES",
    "GeneratorConfig",
    "QUESTION",
    "SPLITS",
    "candidate_questions",
    "documentation_probs",
    "fact_for_question",
    "fact_text",
    "finding_of_question",
    "generate_cases",
    "gold_disease",
    "model",
    "question_for",
    "question_for_fact",
]
