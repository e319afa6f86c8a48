"""Training pairs (question, fact, answers or not) for a learned question-to-fact matcher, made in this project.

A training-only helper of ``train_patient_matcher.py`` (beside it, outside the runtime package: the patient at run
time only loads the trained matcher, :mod:`promed.patient.matcher`).

What: :func:`generate_pairs` returns :class:`Pair` rows ``(question, fact text, label)`` with label 1 when the fact
answers the question and 0 when it does not, from four sources, all rule-made:

* **MediQ facts** of cases *outside* an excluded set (the labelled evaluation cases): :func:`fact_questions` writes
  questions for one atomic fact by rules over its text (a measurement "Her pulse is 95/min" -> "What is your
  pulse?"; a test result "Chest X-ray shows ..." -> "What did the chest X-ray show?"; a report or a denial
  "Patient complains of fatigue and weakness" -> "Any weakness?", "Have you had any fatigue?"; a relative's disease
  -> "Does anyone in your family have ...?"; a duration -> "How long has this been going on?"), in the second or
  third person, some rewritten into lay words through the project's glossary (:func:`lay_rewrite`: "abdominal" ->
  "belly") or followed by the glossary expansion the patient itself uses (:func:`~promed.patient.glossary.
  expand_question`); and, for a fact that names a glossary finding, a question in the other register
  (:func:`glossary_questions`: "Patient is afebrile" -> "Any fever?", "nontender abdomen" -> "Is your belly
  tender?").
* **SynthClinic**: each finding's own question (:func:`~promed.data.synthclinic.questions.question_for_fact`) for
  the fact that documents it, and the questions about findings a case does not document
  (:func:`~promed.data.synthclinic.questions.candidate_questions`) as unanswerable.
* **Broad questions** ("What did the physical examination show?") with the facts the section tagger
  (:mod:`promed.patient.categories`) puts in that section.
* **Negatives**: facts of the same case the question does not target, the lexically closest first (hard
  negatives), never a fact that could answer it (one that holds all of the question's topic words or one of its
  glossary terms); and questions about findings the case does not document (a question written for another case
  whose topic words no fact of this case holds) against this case's closest facts.

Why: no labelled question of the evaluation sets is used (they are the measure); the pairs teach the register gap
the embeddings miss (lay words, "What was the ...?" for a measured value, pertinent negatives) and, with the
negatives, when *no* fact answers. Pure functions of the cases and a seed (:class:`random.Random`); the same inputs
give the same pairs.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from promed.data.questions import PatientQuestion
from promed.patient.categories import case_categories, fact_category
from promed.patient.glossary import GLOSSARY, expand_question, term_pattern
from promed.patient.guard import safe_fact_ids
from promed.types import Case


@dataclass(frozen=True)
class Pair:
    """One training pair: does ``fact`` answer ``question``? ``source`` says which generator made it."""

    question: str
    fact: str
    label: float
    source: str
    case_id: str


# ---- small text helpers ---------------------------------------------------------------------------------------

_STOP = frozenset(
    "a an the of and or but to in on at for with by from is are was were be been being has have had do does did "
    "not no any your you my his her he she i me him patient patients pt this that these those it its as about what "
    "which who how when there their they them than then also some such other ever very noted shows show showed "
    "reveals revealed reports reported denies denied complains complaint".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]*")
_SUBJ = r"(?:the\s+)?(?:patient|pt|man|woman|boy|girl|child|infant|baby|newborn|neonate|she|he|mother|father)"
_POSS = r"(?:the\s+)?(?:patient(?:'s|’s)|pt's|her|his|the\s+(?:man|woman|boy|girl|child|infant)(?:'s|’s))"
_TIME = r"(?:\d+|a|an|one|two|three|four|five|six|several|few|many|couple of)\s+(?:hours?|days?|weeks?|months?|years?)"
_DURATION = re.compile(
    rf"\s*(?:\b(?:for|over|in|during)\s+(?:the\s+)?(?:past\s+|last\s+)?{_TIME}\b|\bsince\b|\bbeginning\b|"
    rf"\bstarting\b|\bthat\s+(?:started|began)\b|\b{_TIME}\s+ago\b).*$", re.IGNORECASE)
_HAS_DURATION = re.compile(
    r"\b(?:for|over)\s+(?:the\s+)?(?:past\s+|last\s+)?(?:\d+|a|an|one|two|three|four|five|six|several|few|many)\s+"
    r"(?:hours?|days?|weeks?|months?|years?)\b|\bago\b|\bsince\b|\d+-(?:hour|day|week|month|year) history",
    re.IGNORECASE)


def stems(text: str) -> frozenset[str]:
    """Content-word stems (first 5 letters, lower case) of ``text``: the cheap lexical key for hard negatives."""
    return frozenset(w.lower()[:5] for w in _WORD.findall(text) if w.lower() not in _STOP and len(w) > 2)


def _clean(text: str) -> str:
    return " ".join(text.replace("’", "'").split()).strip().rstrip(".:;, ")


def _you(text: str) -> str:
    """Third-person possessives and pronouns to second person ("her pain" -> "your pain")."""
    t = re.sub(r"\b(?:her|his|the patient's|patient's)\b", "your", text, flags=re.IGNORECASE)
    t = re.sub(r"\b(?:she|he)\b", "you", t, flags=re.IGNORECASE)
    t = re.sub(r"\b(?:herself|himself)\b", "yourself", t, flags=re.IGNORECASE)
    return re.sub(r"\bhim\b", "you", t, flags=re.IGNORECASE)


def _phrase(text: str, max_words: int = 7) -> str:
    """A finding phrase short enough for a question: durations cut, second person, at most ``max_words`` words."""
    t = _DURATION.sub("", _clean(text))
    t = re.sub(r"^(?:been\s+|having\s+)+", "", t, flags=re.IGNORECASE)
    t = re.sub(r"^(?:a|an|the)\s+(?:history\s+of\s+)?", "", t, flags=re.IGNORECASE)
    words = _you(t).split()
    return " ".join(words[:max_words]).rstrip(",;:")


def _parts(phrase: str) -> list[str]:
    """The list items of a finding phrase ("fever, cough and fatigue" -> 3 items), each >= 1 content word."""
    items = [p.strip() for p in re.split(r",\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+", phrase) if p.strip()]
    return [p for p in items if stems(p)]


# ---- lay rewrites through the glossary ------------------------------------------------------------------------

def _plain_alternatives(pattern: str) -> list[str]:
    """The alternatives of a glossary pattern that read as plain words once optional groups are dropped."""
    out = []
    for alt in pattern.split("|"):
        if "\\w" in alt or ".*" in alt:
            continue  # a stem ("smok\w*") or a phrase with a gap is no plain word
        a = re.sub(r"\(\?:[^()]*\)\?", "", alt).replace(r"\w*", "").replace("s?", "")
        a = re.sub(r"\s+", " ", a).strip()
        if a and re.fullmatch(r"[a-z][a-z '-]*[a-z]", a) and len(a) >= 3:
            out.append(a)
    return out


def _lay_table() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    rows = []
    for pattern, terms in GLOSSARY:
        lay = _plain_alternatives(pattern)
        for term in (t.strip() for t in terms.split(",")):
            if len(term) < 4 or not re.fullmatch(r"[A-Za-z][A-Za-z -]*", term):
                continue
            alts = tuple(a for a in lay if a.lower() != term.lower())
            if alts:
                rows.append((re.compile(rf"\b{re.escape(term)}\b", re.IGNORECASE), alts))
    return tuple(rows)


_LAY = _lay_table()


def _entry_table() -> tuple[tuple[re.Pattern[str], tuple[str, ...], tuple[str, ...]], ...]:
    """Per glossary entry: one pattern matching its lay words or its clinical terms in a fact, its plain lay
    words and its clinical terms."""
    rows = []
    for pattern, terms in GLOSSARY:
        if re.search(r"\bhow\b|\bwhat\b|\.\*", pattern):
            continue  # question forms (duration, triggers, severity), not findings
        lay = tuple(_plain_alternatives(pattern))
        clinical = tuple(t.strip() for t in terms.split(",") if len(t.strip()) >= 4
                         and re.fullmatch(r"[A-Za-z][A-Za-z -]*", t.strip()))
        if lay or clinical:
            rows.append((re.compile(rf"\b(?:{pattern}|{'|'.join(re.escape(t) for t in clinical) or '$^'})\b",
                                    re.IGNORECASE), lay, clinical))
    return tuple(rows)


_ENTRIES = _entry_table()


def glossary_questions(fact: str, rng: random.Random, k: int = 1) -> list[str]:
    """Questions in the other register than ``fact``'s: a fact that names a glossary entry's finding ("Patient is
    afebrile", "nontender abdomen") gets a question with a word of that entry the fact does not use ("Any fever?",
    "Is your belly tender?")."""
    out = []
    hits = [(m, lay, clinical) for pattern, lay, clinical in _ENTRIES for m in [pattern.search(fact)] if m]
    for m, lay, clinical in rng.sample(hits, min(k, len(hits))):
        other = lay if m.group(0).lower() in {c.lower() for c in clinical} else clinical  # the other register
        words = [w for w in other if not re.search(rf"\b{re.escape(w)}\b", fact, re.IGNORECASE)]
        if not words:
            continue
        w = rng.choice(words)
        adj = re.search(r"\bnon-?([a-z]{4,})\b", fact, re.IGNORECASE)
        if adj:
            out.append(rng.choice((f"Is your {w} {adj.group(1)}?", f"Is the {w} {adj.group(1)}?",
                                   f"Any {adj.group(1)}ness in the {w}?")))
        else:
            out.append(rng.choice((f"Any {w}?", f"Have you had any {w}?", f"Do you have {w}?",
                                   f"Is there any {w}?", f"What about your {w}?", f"Has he had {w}?")))
    return out


def lay_rewrite(question: str, rng: random.Random) -> str | None:
    """``question`` with one clinical term replaced by a lay word of the same glossary entry ("Any abdominal
    pain?" -> "Any belly pain?"); ``None`` when it holds no such term."""
    hits = [(m, alts) for pattern, alts in _LAY for m in [pattern.search(question)] if m]
    if not hits:
        return None
    m, alts = rng.choice(hits)
    return question[: m.start()] + rng.choice(alts) + question[m.end():]


# ---- rule-made questions for one fact --------------------------------------------------------------------------

_MEASURE = re.compile(
    rf"^(?:{_POSS}\s+)?(?P<what>[A-Za-z][\w /+()-]{{1,40}}?)\s*(?:\bis\b|\bwas\b|\bare\b|\bwere\b|:|\bof\b|"
    r"\bmeasures?\b|\bmeasured at\b)\s+(?P<val>[<>~≈]?\s*-?\d.*)$", re.IGNORECASE)
_TEST = re.compile(
    r"^(?P<test>[A-Za-z][^,;]{2,60}?)\s+(?:shows?|showed|reveals?|revealed|demonstrates?|demonstrated|is notable for|"
    r"was notable for|is significant for|was significant for|is remarkable for|was remarkable for|confirms?|"
    r"confirmed|indicates?|indicated|finds|found|detects?|detected|displays?)\s+(?P<finding>.+)$", re.IGNORECASE)
_VERBS: tuple[tuple[str, str], ...] = (
    ("neg", r"denies|denied|does not have|did not have|has not had|has not|does not|did not|reports no|has no|had no|"
            r"is not|was not|never"),
    ("hist", r"has (?:a |an )?(?:past )?(?:medical )?history of|had (?:a |an )?history of|was diagnosed with|"
             r"has been diagnosed with|was treated for|has been treated for|underwent|had surgery for"),
    ("med", r"takes|took|is taking|was taking|is on|has been on|uses|was prescribed|is prescribed|was started on|"
            r"receives|received"),
    ("social", r"smokes|smoked|has smoked|drinks|drank|consumes|works as|works in|works at|is employed as|lives|"
               r"lived|recently (?:traveled|travelled|returned)|traveled|travelled|returned from|is sexually active|"
               r"is a student|attends"),
    ("weight", r"weighs|weighed"),
    ("sym", r"complains of|complained of|reports|reported|describes|described|notes|noted|noticed|endorses|"
            r"mentions|experiences|experienced|is experiencing|has been experiencing|has been having|presents with|"
            r"presented with|developed|has developed|has had|has|had|feels|felt|is|was|appears|appeared"),
)
_SUBJ_VERB = re.compile(rf"^{_SUBJ}\s+(?:(?:also|now|still|currently|recently|often|occasionally)\s+)?"
                        rf"(?P<verb>{'|'.join(f'(?:{v})' for _, v in _VERBS)})\s+(?P<rest>.+)$", re.IGNORECASE)
_POSS_NOUN = re.compile(rf"^{_POSS}\s+(?P<noun>[A-Za-z][\w -]{{1,40}}?)\s+(?P<verb>is|was|are|were|has|have|had|"
                        r"includes?|included|consists? of|began|started|worsens?|improves?)\s+(?P<rest>.+)$",
                        re.IGNORECASE)
_RELATIVE = re.compile(r"\b(?:mother|father|sister|brother|sibling|parents?|grandmother|grandfather|aunt|uncle|"
                       r"cousin|son|daughter|family)\b", re.IGNORECASE)
_THERE = re.compile(r"^(?:on \w+(?: \w+)?, )?there (?:is|are|was|were) "
                    r"(?:no |not any |an? |some |mild |marked )?(?P<x>.+)$", re.IGNORECASE)
_OBSTETRIC = re.compile(r"\bG\d+\s*P\d+\b|\bgravida\b|\bprimigravid|\bmultiparous\b|\bnulliparous\b",
                        re.IGNORECASE)
_NORMAL = re.compile(r"^(?P<x>[A-Za-z][\w ,-]{2,50}?)\s+(?:is|are|was|were)\s+(?:otherwise\s+)?(?:unremarkable|normal|"
                     r"within normal limits|negative|clear|noncontributory)\b.*$", re.IGNORECASE)
_AGE = re.compile(r"\b\d+[- ](?:year|month|week|day)s?[- ]old\b", re.IGNORECASE)


def _verb_kind(verb: str) -> str:
    for kind, pattern in _VERBS:
        if re.fullmatch(pattern, verb, flags=re.IGNORECASE):
            return kind
    return "sym"


def _pick(rng: random.Random, templates: Sequence[str], k: int, **kw: str) -> list[str]:
    chosen = rng.sample(list(templates), min(k, len(templates)))
    return [t.format(**kw) for t in chosen]


_THIRD = ("the patient", "he", "she")


def fact_questions(text: str, rng: random.Random, k: int = 2) -> list[str]:
    """Up to ``k`` (+1 for a duration) rule-made questions that ``text`` (one atomic fact) answers."""
    t = _clean(text)
    cat = fact_category(t)
    qs: list[str] = []
    if _AGE.search(t) and cat == "demographics" or re.search(r"\bis \d+ (?:years?|months?) old\b", t, re.I):
        qs += _pick(rng, ("How old are you?", "What is your age?", "How old is the patient?", "What age is he?"), k)
    elif cat == "family" or (_RELATIVE.search(t) and cat in ("family", "past_history", "hpi")):
        body = re.sub(r"^.*?\b(?:for|of|has|had|have|with|died of|suffers? from|was diagnosed with)\s+", "", t, count=1)
        x = _phrase(body, 6)
        qs += _pick(rng, ("Does anyone in your family have {x}?", "Any family history of {x}?",
                          "Is there any {x} in the family?", "Any illnesses that run in the family?",
                          "Do any of your relatives have medical problems?"), k, x=x)
    elif _OBSTETRIC.search(t):
        qs += _pick(rng, ("How many times have you been pregnant?", "How many children do you have?",
                          "Any previous pregnancies?", "How many pregnancies has she had?"), k)
    elif (m := _NORMAL.match(t)) and not re.search(rf"^{_SUBJ}$|\b(?:is|are|was|were|has|have|and)\b",
                                                   m.group("x"), re.IGNORECASE):
        x = re.sub(r"^(?:a|an|the|your)\s+", "", _you(_clean(m.group("x"))), flags=re.IGNORECASE)
        qs += _pick(rng, ("Was the {x} normal?", "Anything abnormal on the {x}?", "What did the {x} show?",
                          "Any problems with the {x}?", "How was the {x}?"), k, x=x)
    elif (m := _TEST.match(t)) and not re.match(rf"^{_SUBJ}\b", m.group("test"), re.IGNORECASE):
        test = _you(_clean(m.group("test")))
        test = re.sub(r"^(?:a|an|the|your)\s+", "", test, flags=re.IGNORECASE)
        parts = _parts(_phrase(m.group("finding"), 8)) or [_phrase(m.group("finding"), 6)]
        x = rng.choice(parts)
        qs += _pick(rng, ("What did the {test} show?", "What were the results of the {test}?",
                          "Was the {test} abnormal?", "Any {x}?", "Did the {test} show {x}?",
                          "Was there any {x} on the {test}?", "Did they find {x}?", "What about the {test}?"),
                    k, test=test, x=x)
    elif (m := _MEASURE.match(t)) and len(m.group("what").split()) <= 5 and not re.match(
            rf"^{_SUBJ}$", m.group("what"), re.IGNORECASE):
        what = re.sub(r"^(?:the|a|an|your)\s+", "", _you(m.group("what")), flags=re.IGNORECASE).strip()
        head = " ".join(what.split()[-2:])
        qs += _pick(rng, ("What is your {what}?", "What was the {what}?", "What was his {what}?",
                          "What was her {head}?", "Do you know your {head}?", "Was the {head} normal?",
                          "How about the {what}?", "What is the {head} level?"), k, what=what, head=head)
    elif m := _SUBJ_VERB.match(t):
        kind, rest = _verb_kind(m.group("verb")), m.group("rest")
        parts = _parts(_phrase(rest, 8)) or [_phrase(rest, 6)]
        x = rng.choice(parts)
        pron = rng.choice(_THIRD)
        if kind == "neg":
            qs += _pick(rng, ("Any {x}?", "Have you had any {x}?", "Do you have {x}?", "Has {p} had any {x}?",
                              "Is there any {x}?", "Have you noticed any {x}?",
                              "Have you ever been told you have {x}?"), k, x=x, p=pron)
        elif kind == "hist":
            qs += _pick(rng, ("Have you ever had {x}?", "Any history of {x}?", "Do you have any medical problems?",
                              "Has {p} been diagnosed with anything before?", "Any past illnesses like {x}?",
                              "Have you had any operations or illnesses?"), k, x=x, p=pron)
        elif kind == "med":
            qs += _pick(rng, ("Are you taking {x}?", "What medications are you on?", "Do you take any medicines?",
                              "Is {p} on any medication?", "Have you been given {x}?"), k, x=x, p=pron)
        elif kind == "social":
            v = m.group("verb").lower()
            if "smok" in v:
                qs += _pick(rng, ("Do you smoke?", "How much do you smoke?", "Any tobacco use?"), k)
            elif "drink" in v or "drank" in v or "consum" in v:
                qs += _pick(rng, ("Do you drink alcohol?", "How much alcohol do you drink?", "Any drinking?"), k)
            elif "work" in v or "employ" in v or "student" in v or "attend" in v:
                qs += _pick(rng, ("What do you do for work?", "What is your job?", "Are you working?"), k)
            elif "travel" in v or "return" in v:
                qs += _pick(rng, ("Any recent travel?", "Have you been abroad recently?", "Where did you travel?"), k)
            elif "sexual" in v:
                qs += _pick(rng, ("Are you sexually active?", "Tell me about your sexual history."), k)
            else:
                qs += _pick(rng, ("Who do you live with?", "What is your living situation?", "Where do you live?"), k)
        elif kind == "weight":
            qs += _pick(rng, ("How much do you weigh?", "What is your weight?", "What does he weigh?"), k)
        else:
            qs += _pick(rng, ("Do you have {x}?", "Have you had any {x}?", "Any {x}?", "Have you noticed {x}?",
                              "Tell me about the {x}.", "Does {p} have {x}?", "Is there {x}?"), k, x=x, p=pron)
    elif m := _POSS_NOUN.match(t):
        noun = _you(m.group("noun"))
        x = _phrase(m.group("rest"), 6)
        qs += _pick(rng, ("Tell me about your {noun}.", "What about your {noun}?", "How is your {noun}?",
                          "Is your {noun} {x}?", "Any change in your {noun}?"), k, noun=noun, x=x)
    elif m := _THERE.match(t):
        parts = _parts(_phrase(m.group("x"), 8)) or [_phrase(m.group("x"), 6)]
        x = rng.choice(parts)
        qs += _pick(rng, ("Any {x}?", "Is there any {x}?", "Was there {x}?", "Did the doctor find any {x}?"), k, x=x)
    if _HAS_DURATION.search(t) and cat in ("hpi", "ros") and (head := _phrase(t, 3)):
        qs.append(rng.choice(("How long has this been going on?", "When did it start?",
                              f"How long have you had {head}?", "When did the symptoms begin?")))
    return [_tidy(q) for q in dict.fromkeys(qs) if stems(q) or "?" in q]


def _tidy(q: str) -> str:
    q = re.sub(r"\s+", " ", q).replace(" ?", "?").replace(" .", ".")
    q = re.sub(r"\byour your\b", "your", q, flags=re.IGNORECASE)
    return q[:1].upper() + q[1:]


# ---- broad-section questions ----------------------------------------------------------------------------------

BROAD_QUESTIONS: dict[str, tuple[str, ...]] = {
    "examination": ("What did the physical examination show?", "What did the doctor find on examination?",
                    "Any findings on exam?", "What did the exam reveal?"),
    "vital_signs": ("What are your vital signs?", "What were the vitals?", "Can you tell me the vital signs?"),
    "labs": ("What did the blood tests show?", "What were the lab results?", "Any abnormal labs?"),
    "imaging": ("Did you have any imaging?", "What did the scans show?", "Any X-rays or scans done?"),
    "other_tests": ("Were any other tests done?", "What other investigations were done?"),
    "medications": ("What medications do you take?", "Are you on any medicines?", "Do you take any regular meds?"),
    "past_history": ("Any past medical history?", "Do you have any medical conditions?",
                     "Have you had any illnesses before?"),
    "family": ("Any family history?", "Does anything run in your family?"),
    "social": ("Tell me about your social history.", "Do you smoke, drink or use drugs?", "What is your lifestyle?"),
    "allergies": ("Any allergies?", "Are you allergic to anything?"),
    "treatment": ("What treatment have you had so far?", "Has anything been done for this yet?"),
}

OFF_TOPIC: tuple[str, ...] = (
    "What is the weather like today?", "Which team do you support?", "What is your favourite colour?",
    "Did you enjoy the drive here?", "What is the capital of France?", "Do you like music?",
)


# ---- negatives -----------------------------------------------------------------------------------------------

_TEMPLATE = frozenset(w[:5] for w in (
    "tell about noticed notice know level normal results result find found anything abnormal ever history problems "
    "problem medical illnesses past like diagnosed before operations taking given medications medicines take "
    "change going start started begin symptoms doctor findings exam family relatives anyone else regular").split())
_AGE_Q = re.compile(r"\bhow old\b|\bage\b", re.IGNORECASE)


def topic(question: str) -> frozenset[str]:
    """The content stems of a question without the words of the question templates ("tell", "history"...)."""
    return stems(question.split(" (")[0]) - _TEMPLATE


def could_answer(question: str, fact: str) -> bool:
    """Whether ``fact`` may answer ``question`` (so it is not used as a negative): it holds at least 60% of the
    question's topic words, one of its glossary terms word for word, or an age for an age question."""
    q = topic(question)
    if q and len(q & stems(fact)) >= 0.6 * len(q):
        return True
    if _AGE_Q.search(question) and (_AGE.search(fact) or re.search(r"\byears? old\b", fact)):
        return True
    pattern = term_pattern(question)
    return bool(pattern is not None and pattern.search(fact))


def hard_negatives(question: str, facts: Sequence[str], exclude: Iterable[int], rng: random.Random,
                   n: int = 2, *, screen: bool = True) -> list[int]:
    """Up to ``n`` indices of ``facts`` that do not answer ``question``: the lexically closest first (stem overlap),
    then a random one; never an index in ``exclude`` nor (with ``screen``) a fact that :func:`could_answer` it.
    ``screen=False`` where a hand label already says which facts answer (``exclude``)."""
    skip = set(exclude)
    pool = [i for i, f in enumerate(facts) if i not in skip and not (screen and could_answer(question, f))]
    if not pool:
        return []
    q = topic(question)
    ranked = sorted(pool, key=lambda i: (-len(q & stems(facts[i])), rng.random()))
    out = ranked[: max(1, n - 1)]
    rest = [i for i in pool if i not in out]
    if len(out) < n and rest:
        out.append(rng.choice(rest))
    return out[:n]


# ---- the generator -------------------------------------------------------------------------------------------

def _variants(q: str, rng: random.Random, p_lay: float, p_expand: float) -> str:
    if rng.random() < p_lay and (lay := lay_rewrite(q, rng)):
        q = lay
    if rng.random() < p_expand:
        q = expand_question(q)
    return q


def mediq_pairs(cases: Sequence[Case], rng: random.Random, *, exclude_ids: Iterable[str] = (),
                facts_per_case: int = 4, questions_per_fact: int = 1, negatives: int = 2,
                p_lay: float = 0.4, p_expand: float = 0.1, p_undocumented: float = 0.5,
                p_broad: float = 0.3, p_glossary: float = 0.6) -> list[Pair]:
    """Pairs from real cases outside ``exclude_ids``: rule-made questions for sampled safe facts with their hard
    negatives, questions about undocumented findings, and broad-section questions."""
    excluded = {str(i) for i in exclude_ids}
    usable = [c for c in cases if str(c.id) not in excluded and len(safe_fact_ids(c)) >= 3]
    out: list[Pair] = []
    bank: list[tuple[str, str]] = []  # (case id, question) for the undocumented-finding negatives
    for c in usable:
        safe = list(safe_fact_ids(c))
        texts = [c.facts[i].text for i in safe]
        for j in rng.sample(range(len(safe)), min(facts_per_case, len(safe))):
            qs = [_variants(q, rng, p_lay, p_expand) for q in fact_questions(texts[j], rng, questions_per_fact)]
            if rng.random() < p_glossary:
                qs += glossary_questions(texts[j], rng)
            for q in qs:
                out.append(Pair(q, texts[j], 1.0, "mediq", str(c.id)))
                bank.append((str(c.id), q))
                for i in hard_negatives(q, texts, [j], rng, negatives):
                    out.append(Pair(q, texts[i], 0.0, "mediq-neg", str(c.id)))
        if rng.random() < p_broad:
            out += _broad_pairs(c, safe, rng)
    for c in usable:  # questions written for another case whose topic this case does not document
        if not bank or rng.random() >= p_undocumented:
            continue
        texts = [c.facts[i].text for i in safe_fact_ids(c)]
        for _ in range(4):
            cid, q = rng.choice(bank)
            if cid == str(c.id) or not topic(q) or any(could_answer(q, f) for f in texts):
                continue
            for i in hard_negatives(q, texts, (), rng, 2):
                out.append(Pair(q, texts[i], 0.0, "undocumented", str(c.id)))
            break
    return out


def _broad_pairs(c: Case, safe: Sequence[int], rng: random.Random) -> list[Pair]:
    cats = case_categories(c)
    present = sorted({cats[i] for i in safe if cats[i] in BROAD_QUESTIONS})
    if not present:
        return []
    cat = rng.choice(present)
    q = rng.choice(BROAD_QUESTIONS[cat])
    pos = [i for i in safe if cats[i] == cat]
    neg = [i for i in safe if cats[i] != cat]
    out = [Pair(q, c.facts[i].text, 1.0, "broad", str(c.id)) for i in rng.sample(pos, min(2, len(pos)))]
    out += [Pair(q, c.facts[i].text, 0.0, "broad-neg", str(c.id)) for i in rng.sample(neg, min(2, len(neg)))]
    return out


def synth_pairs(cases: Sequence[Case], rng: random.Random, *, facts_per_case: int = 3, negatives: int = 2,
                absent_per_case: int = 1, p_lay: float = 0.3) -> list[Pair]:
    """Pairs from SynthClinic cases: each finding's own question with its fact and hard negatives, and questions
    about findings the case does not document against its closest facts."""
    from promed.data.synthclinic.questions import candidate_questions, question_for_fact

    out: list[Pair] = []
    for c in cases:
        safe = [i for i in safe_fact_ids(c) if c.facts[i].finding is not None]
        texts = [f.text for f in c.facts]
        for j in rng.sample(safe, min(facts_per_case, len(safe))):
            q = _variants(question_for_fact(c.facts[j]), rng, p_lay, 0.0)
            out.append(Pair(q, texts[j], 1.0, "synth", c.id))
            for i in hard_negatives(q, texts, [j], rng, negatives):
                out.append(Pair(q, texts[i], 0.0, "synth-neg", c.id))
        known = {f.finding.code for f in c.facts if f.finding}
        absent = candidate_questions(c.options, known, initial_findings=c.initial_findings)[:6]
        for _, q in rng.sample(absent, min(absent_per_case, len(absent))):
            for i in hard_negatives(q, texts, (), rng, 2):
                out.append(Pair(q, texts[i], 0.0, "synth-absent", c.id))
        if rng.random() < 0.1:
            out.append(Pair(rng.choice(OFF_TOPIC), rng.choice(texts), 0.0, "offtopic", c.id))
    return out


def labelled_pairs(cases: dict[str, Case], questions: Sequence[PatientQuestion], rng: random.Random, *,
                   negatives: int = 3) -> list[Pair]:
    """Pairs from hand-written training questions (loaded by :func:`promed.data.questions.load_questions`, the
    format of ``promed patient --questions``; unlabelled ones are skipped): each expected safe fact is a positive;
    the case's other safe facts closest to the question by stem overlap (then a random one), ``negatives`` of them,
    are negatives (:func:`hard_negatives` unscreened: the label says exactly which facts answer); an unanswerable
    question (``facts: []``) gives negatives only. ``cases`` maps case id -> case."""
    out: list[Pair] = []
    for row in questions:
        if row.facts is None:
            continue
        case = cases[row.case_id]
        safe = list(safe_fact_ids(case))
        want = [i for i in row.facts if i in safe]
        if row.facts and not want:
            continue  # every expected fact is withheld: nothing this patient may reveal
        q = row.question.strip()
        texts = [case.facts[i].text for i in safe]
        out += [Pair(q, case.facts[i].text, 1.0, "hand", str(case.id)) for i in want]
        skip = [k for k, i in enumerate(safe) if i in row.facts]
        kind = "hand-neg" if want else "hand-unanswerable"
        out += [Pair(q, texts[k], 0.0, kind, str(case.id))
                for k in hard_negatives(q, texts, skip, rng, negatives, screen=False)]
    return out


def generate_pairs(mediq: Sequence[Case], synth: Sequence[Case] = (), *, exclude_ids: Iterable[str] = (),
                   seed: int = 0, max_pairs: int | None = None, **mediq_kw) -> list[Pair]:
    """All training pairs, shuffled, deterministic in ``seed``; MediQ cases whose id is in ``exclude_ids`` (the
    labelled evaluation cases) contribute nothing. ``max_pairs`` keeps the first ``max_pairs`` after shuffling."""
    rng = random.Random(seed)
    excluded = {str(i) for i in exclude_ids}
    pairs = mediq_pairs(mediq, rng, exclude_ids=excluded, **mediq_kw) + synth_pairs(synth, rng)
    pairs = [p for p in pairs if p.case_id not in excluded]  # belt and braces: synth ids never collide anyway
    rng.shuffle(pairs)
    return pairs[:max_pairs] if max_pairs is not None else pairs
