"""Where question-asking baselines get their questions.

* SynthClinic cases (options carry knowledge-base keys): questions about the findings relevant to the options'
  diseases, from :func:`promed.data.synthclinic.questions.candidate_questions`.
* Real cases: a fixed bank of generic clinical questions (history, medications, exam, labs) that a clinician
  would ask in most consultations. It is deliberately case-agnostic: it is the "random questions" baseline's
  pool and the fallback for the abstention doctor when no LLM writes questions.
"""

from __future__ import annotations

from promed.doctor.actions import normalise_question
from promed.types import DoctorView

GENERIC_QUESTIONS: tuple[str, ...] = (
    "How long have you had these symptoms?",
    "Did the symptoms start suddenly or gradually?",
    "Have you had a fever?",
    "Do you have any pain, and where is it?",
    "Have you had nausea, vomiting or diarrhea?",
    "Have you noticed any weight loss?",
    "Have you had a cough or shortness of breath?",
    "Do you have any chest pain or palpitations?",
    "Have you had headaches, weakness or numbness?",
    "Have you had any rash or skin changes?",
    "Do you have any urinary symptoms?",
    "What medical conditions have you had in the past?",
    "Have you had any surgeries?",
    "What medications do you take?",
    "Do you have any allergies?",
    "Do you smoke, drink alcohol or use drugs?",
    "What is your occupation?",
    "Have you travelled recently?",
    "Does anyone in your family have a similar illness?",
    "Are you sexually active?",
    "When was your last menstrual period?",
    "What are your vital signs: temperature, pulse and blood pressure?",
    "What did the physical examination show?",
    "What did the blood tests show?",
    "What did the imaging show?",
    "Were any other tests done, and what were the results?",
    "Has this happened before?",
    "What makes the symptoms better or worse?",
    "Are your vaccinations up to date?",
    "Have you been in contact with anyone who is sick?",
)


def candidate_questions(view: DoctorView) -> list[str]:
    """Questions not yet asked in this consultation, from the case's pool (see the module docstring)."""
    asked = {normalise_question(t.question) for t in view.turns}
    if all(o.key for o in view.options):
        from promed.data.synthclinic.questions import candidate_questions as synth_candidates, finding_of_question

        known = {f.finding.code for f in view.known_facts if f.finding}
        known |= {c for c in (finding_of_question(t.question) for t in view.turns) if c}
        pool = synth_candidates(view.options, known, initial_findings=view.initial_findings)
        return [q for _, q in pool if normalise_question(q) not in asked]
    return [q for q in GENERIC_QUESTIONS if normalise_question(q) not in asked]
