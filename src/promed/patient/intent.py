"""What a doctor's question asks for: a whole section of the record (broad) or one finding (specific).

What: :func:`read_question` returns a :class:`QuestionIntent`: the record sections (:data:`~promed.patient.
categories.CATEGORIES`) the question names as a whole (:data:`_SECTIONS`: "the physical examination", "your vital
signs", "the blood tests", "your medications", "your family history"...), the sections its words point to
(:data:`_HINTS`: "temperature" is a vital sign, "x-ray" is imaging, "smoke" is social history), and the content words
left once section names and function words are removed (``residue``; hint words are content).

The question is read part by part (sentences and clauses). A part is **broad** when it names at least one section
and nothing is left: "What did the physical examination show?", "Any allergies?", "What were your vital signs and what
did the blood tests show?"; the question is broad when one of its parts is. A part is **specific** otherwise: "What was your temperature?" (hint: vital signs), "What did the chest X-ray show?" (residue "chest",
hint: imaging), "Do you smoke?", "Any fever?".

Why rules: the vocabulary of section names is small and closed, and a wrong "broad" costs precision (a whole
section revealed), so the rule is conservative: one content word left over makes the question specific, and the
specific path (embedding retrieval) still answers it. :class:`~promed.patient.fact.FactPatient` uses the intent;
``benchmarks/patient_real.py`` measures it on hand-written questions.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class QuestionIntent:
    """The reading of one question (see the module docstring)."""

    sections: tuple[str, ...]  # record sections named as a whole by a broad part of the question
    hints: tuple[str, ...]  # sections any part names or points to (includes ``sections``)
    residue: str  # content words of the specific parts, space-joined ("" when every part is broad)
    scoped: tuple[str, ...] = ()  # sections named by a part that also names something in them ("the eye exam")

    @property
    def broad(self) -> bool:
        """Some part of the question asks for a whole section."""
        return bool(self.sections)

    @property
    def mixed(self) -> bool:
        """A broad part and a specific part ("Any allergies, and do you smoke?")."""
        return bool(self.sections) and bool(self.residue)


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(parts) + r")\b", re.IGNORECASE)


# Phrases that name a whole section of the record. Longest alternatives first inside each pattern.
_SECTIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("vital_signs", _rx(r"vital signs?", r"vitals", r"observations")),
    ("examination", _rx(r"physical exam(?:ination)?s?", r"(?:general |clinical |bedside |physical )?"
                        r"exam(?:ination)? (?:findings|results)", r"exam(?:ination)?s?", r"examined",
                        r"examining", r"on exam(?:ination)?")),
    ("labs", _rx(r"blood tests?", r"blood ?work", r"blood results", r"lab(?:oratory)? (?:tests?|results|studies|"
                 r"work|values|findings|investigations)", r"labs?", r"laboratory", r"lab tests?", r"blood and urine "
                 r"tests?", r"tests? (?:of|on) (?:your|the) blood")),
    ("imaging", _rx(r"imaging(?: studies| tests?)?", r"scans?", r"radiology", r"x-?rays? or scans?",
                    r"any (?:x-?rays?|scans?)")),
    ("other_tests", _rx(r"other (?:tests?|procedures)(?: or (?:tests?|procedures))?", r"procedures", r"any other (?:tests?|investigations|studies|results)",
                        r"other (?:investigations|studies|results)", r"investigations", r"special tests?")),
    ("past_history", _rx(r"past medical (?:and|or) surgical history", r"past medical history",
                         r"medical (?:and|or) surgical history", r"surgical history", r"medical history",
                         r"past history", r"(?:past |previous |"
                         r"other |chronic |long-?term |ongoing )?medical (?:problems|conditions|illnesses|issues)",
                         r"health (?:problems|conditions|issues)", r"(?:past|previous|prior|other) (?:illnesses|"
                         r"conditions|diseases|problems)", r"chronic (?:conditions|illnesses|diseases|problems)",
                         r"illnesses", r"conditions", r"diagnoses")),
    ("medications", _rx(r"medications?", r"medicines?", r"meds", r"prescriptions?", r"prescribed drugs",
                        r"drugs you take", r"pills", r"tablets")),
    ("allergies", _rx(r"allergies", r"allergic(?: to anything)?", r"allergy")),
    ("family", _rx(r"family history", r"(?:anyone|anybody|someone) in (?:your|the) family", r"family members?",
                   r"(?:your )?relatives", r"your family", r"runs? in (?:your|the) family", r"blood relatives")),
    ("social", _rx(r"social history", r"sexual history", r"lifestyle", r"(?:other )?habits", r"home situation",
                   r"living situation", r"social situation", r"social circumstances")),
    ("ros", _rx(r"other symptoms", r"any other (?:problems|complaints|symptoms)", r"anything else",
                r"review of systems", r"other complaints")),
    ("hpi", _rx(r"(?:your |the |main |current )?symptoms", r"what brings you(?: in| here)?(?: today)?",
                r"(?:the |your )?(?:main |chief )?(?:problem|complaint)", r"what happened",
                r"(?:the )?(?:problems|trouble) (?:you'?ve|you have|he'?s|she'?s|he has|she has) been having",
                r"what(?:'s| is) (?:been )?(?:wrong|going on|bothering you)", r"how (?:it|this|all this) "
                r"(?:started|began)")),
    ("treatment", _rx(r"treatments?(?: so far)?", r"treated", r"therapy", r"(?:been |was )?done (?:for (?:him|her|"
                      r"you|them|the (?:patient|baby|child)) )?(?:so far|about (?:it|this|that))",
                      r"(?:have you |has (?:he|she) )?tried(?: so far)?",
                      r"(?:been |were you )?given anything", r"management so far")),
)

# Words that point to a section without naming all of it ("What was your temperature?" -> vital signs).
_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("vital_signs", _rx(r"temperature", r"fevers?", r"febrile", r"blood pressure", r"pulse", r"heart ?rate", r"breathing rate",
                        r"respirat(?:ory rate|ions)", r"oxygen(?: saturation| level)?", r"sats?", r"bmi",
                        r"body mass index", r"how much do you weigh", r"weight today")),
    ("labs", _rx(r"hemoglobin", r"haemoglobin", r"hematocrit", r"white (?:blood )?(?:cell )?count", r"wbc",
                 r"platelets?", r"sodium", r"potassium", r"creatinine", r"glucose", r"blood sugar", r"urine tests?",
                 r"urinalysis", r"cultures?", r"csf", r"spinal (?:tap|fluid)", r"lumbar puncture", r"electrolytes",
                 r"liver (?:function )?(?:tests?|enzymes)", r"kidney function", r"thyroid (?:tests?|function)",
                 r"tsh", r"bilirubin", r"cholesterol", r"inr", r"clotting", r"coagulation", r"serum",
                 r"levels?", r"counts?", r"antibod(?:y|ies)", r"titers?", r"blood gas(?:es)?", r"pregnancy test",
                 r"stool (?:test|sample)s?", r"swab", r"mcv", r"calcium", r"iron")),
    ("imaging", _rx(r"x-?rays?", r"radiographs?", r"ct(?: scan)?", r"cat scan", r"mri", r"ultrasound",
                    r"sonogram", r"echo(?:cardiogram)?", r"angiogra(?:m|phy)", r"mammogram")),
    ("other_tests", _rx(r"ecg", r"ekg", r"electrocardiogram", r"heart tracing", r"biops(?:y|ies)",
                        r"endoscop(?:y|ies)", r"colonoscop(?:y|ies)", r"bronchoscopy", r"eeg", r"spirometry",
                        r"lung function", r"pathology", r"histology", r"smear", r"stress test")),
    ("social", _rx(r"smoke", r"smoking", r"cigarettes?", r"tobacco", r"alcohol", r"drink", r"drinking",
                   r"recreational drugs", r"street drugs", r"illicit", r"cocaine", r"marijuana", r"work",
                   r"job", r"occupation", r"live", r"living", r"sexually active", r"sexual(?: partners?| history)?",
                   r"condoms?", r"travel(?:led|ed)?", r"trips?", r"diet", r"eat", r"exercise", r"married",
                   r"pets?", r"animals")),
    ("medications", _rx(r"take any", r"taking", r"contraception", r"birth control", r"inhaler", r"insulin",
                        r"supplements?", r"vitamins?", r"over the counter")),
    ("family", _rx(r"mother", r"father", r"parents?", r"siblings?", r"brothers?", r"sisters?", r"grand\w+")),
    ("past_history", _rx(r"before", r"in the past", r"previously", r"ever (?:been|had)", r"vaccin\w+",
                         r"immuni[sz]\w+", r"pregnan\w+", r"periods?", r"menstrua\w+", r"born", r"birth",
                         r"delivery", r"childhood", r"hospitali[sz]ed", r"diagnosed", r"surger(?:y|ies)",
                         r"operations?", r"surgical history")),
    ("examination", _rx(r"tender(?:ness)?", r"swelling", r"reflexes", r"murmur", r"lungs? sound",
                        r"heart sound", r"pupils?", r"palpat\w*", r"listen\w*")),
    ("demographics", _rx(r"how old", r"your age")),
)

# Function words and question scaffolding; never content.
_FUNCTION = frozenset("""
a an the any anything some something your you yours my me i we us our it its this that these those there here
what which who whom whose when where why how whether if so as at by for from in into of on onto to with without
about over under up out do does did done doing have has had having be is are was were been being am will would
can could shall should may might must let tell describe explain show showed shown shows reveal revealed reveals
find found finding findings result results see seen say said look looked like know please now today currently
recent recently lately so far yet ever also else other others all and or but not no nor any more most much many
get got go went come came give given make made take took find just only really very been go
kind sort type types sorts kinds did've past before previously
he she him his her hers they them their theirs patient patient's baby baby's child child's boy girl infant
son daughter newborn i'd i'm can't we'd okay ok well
illness illnesses disease diseases problem problems condition conditions health issues history serious medical
notable significant important should bit little lately what's how's there's anyone anybody someone somebody
taking currently current regular usual initial arrival available today's received on use using
""".split())
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


_PARTS = re.compile(r"[?.!;:]+\s*|,\s*(?:and|or|but|including|especially)?\s*|\s+(?:and|or|but)\s+(?=(?:what|how|"
                    r"did|do|does|is|are|was|were|any|have|has|had|can|could|tell|when|where|who|why)\b)")


@functools.lru_cache(maxsize=65536)
def read_question(text: str) -> QuestionIntent:
    """The :class:`QuestionIntent` of one doctor question (pure; cached). The question is read part by part
    (sentences and clauses: "What did you find on exam? Anything on the ear exam?"); a part is broad when it names
    a section and nothing else."""
    t = " ".join(text.lower().replace("’", "'").split())
    sections: list[str] = []
    hints: list[str] = []
    residue: list[str] = []
    scoped: list[str] = []
    for part in (p for p in _PARTS.split(t) if p and p.strip()):
        named, stripped = [], part
        for name, pattern in _SECTIONS:
            if pattern.search(stripped):
                named.append(name)
                stripped = pattern.sub(" ", stripped)
        if "family" in named:  # "Does anyone in your family have medical problems?" is family history
            named = [n for n in named if n not in ("past_history", "hpi")]
        words = [w for w in _WORD.findall(stripped) if w not in _FUNCTION]
        hints += [n for n in named if n not in hints]
        hints += [n for n, pattern in _HINTS if n not in hints and pattern.search(stripped)]
        if named and not words:
            sections += [n for n in named if n not in sections]
        else:
            residue += words
            scoped += [n for n in named if n not in scoped]
    return QuestionIntent(tuple(sections), tuple(hints), " ".join(residue), tuple(scoped))
