"""Clinical categories of a case's hidden facts, tagged once per case by ordered rules.

What: :func:`fact_category` puts one atomic fact into one of the :data:`CATEGORIES` of a clinical record
(demographics, history of present illness, past history, medications, allergies, family, social, review of
systems, vital signs, examination, labs, imaging, other tests, treatment so far); :func:`case_categories` tags all
facts of a case (cached per case, so a case is tagged once per process).

Method: an ordered list of regular-expression rules over the fact text (:data:`_RULES`); the first rule that
matches decides. A fact no rule matches continues the section of the fact before it when that is an examination or
a test result (:data:`CONTINUED`: vignettes list an examination's or a test's findings as a run, and the later ones
often lack the section's words), and is otherwise history of present illness (the bulk of a vignette: the
complaint, its course and the symptoms now). The order encodes the precedence a clinician would use when a fact
could fit two sections: a measured vital sign or a test result is data even when it mentions a symptom; "denies
smoking" is social, not review of systems; a relative's disease is family history. SynthClinic facts carry their
knowledge-base finding; the same rules tag them (their templates are clinical sentences like MediQ's), so there is
one method.

Why rules and not a trained classifier: the categories are defined by section vocabulary ("examination shows",
"serum", "mm Hg", "family history") that rules read exactly, every decision is explainable, and tagging costs
microseconds with no model. Accuracy against hand labels (66 MediQ cases labelled for issue 12, split tune/dev/test;
the rules were written looking at the tune and dev errors, and the continuation rule on the patient's answers to
the hand-written training questions) is measured by ``benchmarks/patient_real.py``; a nearest-example MiniLM
fallback for facts no rule matches, and a logistic regression on MiniLM embeddings plus the rule tags, were tried
and did not beat the rules.

The categories are used by :class:`~promed.patient.fact.FactPatient` to answer broad questions ("What did the
examination show?") with the facts of the section asked about (:mod:`promed.patient.intent`).
"""

from __future__ import annotations

import functools
import re

from promed.types import Case

CATEGORIES: tuple[str, ...] = (
    "demographics", "hpi", "past_history", "medications", "allergies", "family", "social", "ros",
    "vital_signs", "examination", "labs", "imaging", "other_tests", "treatment",
)
CATEGORY_HELP: dict[str, str] = {
    "demographics": "age, sex, who the patient is and where they present",
    "hpi": "history of present illness: the complaint, its onset, course and character, symptoms now",
    "past_history": "past medical, surgical, obstetric and psychiatric history, prior episodes, vaccinations",
    "medications": "drugs the patient takes (current or recent), contraception",
    "allergies": "allergies",
    "family": "family history",
    "social": "smoking, alcohol, drugs, occupation, sexual history, living situation, travel, diet, exercise",
    "ros": "review of systems: pertinent negatives and symptoms of other systems",
    "vital_signs": "temperature, pulse, blood pressure, respirations, oxygen saturation, measured weight/BMI",
    "examination": "physical examination findings, general appearance, mental status",
    "labs": "laboratory results: blood, urine, CSF, cultures, serology, blood gases",
    "imaging": "X-ray, CT, MRI, ultrasound, echocardiography, angiography",
    "other_tests": "ECG, biopsy and pathology, endoscopy, spirometry, EEG, other procedures' results",
    "treatment": "treatment given so far in this episode and its effect",
}
DEFAULT_CATEGORY = "hpi"


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(parts), re.IGNORECASE)


_RELATIVE = (r"(?:mother|father|sister|brother|sibling|siblings|parents?|grandmother|grandfather|grandparents?|aunt|"
             r"uncle|cousin|twin|family)")

# (category, pattern) in precedence order; the first match wins.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("demographics", _rx(r"^(?:a|an) \d+[- ](?:year|month|week|day)s?[- ]old\b[^.]*\b(?:comes|presents|is brought|"
                         r"visits|is seen)\b[^.]*\bfor (?:a |an |her |his )?(?:routine|annual|yearly|prenatal|well|"
                         r"follow-up|health maintenance|check|scheduled)",
                         r"^(?:a|an) \d+[- ](?:year|month|week|day)s?[- ]old\b[^.]*\bis brought to [^.]*\bby (?:her|his|"
                         r"a|the) \w+\.?$")),
    ("past_history", _rx(r"\b(?:past |prior |previous )?medical history\b", r"\b(?:otherwise|previously) healthy\b",
                         r"\bno (?:significant )?(?:past )?medical history\b", r"\bhas (?:a history of )?(?:\w+ ){0,3}"
                         r"(?:disorder|disease|syndrome)\b(?![^.]*\b(?:for|since) the past\b)")),
    ("labs", _rx(r"\bblood gas", r"\bp[ao]?CO2\b", r"\bp[ao]?O2\b", r"\bHCO3", r"\bbase excess\b",
                 r"\bpathogen", r"\bcolonies\b", r"\bagar\b", r"\bneutrophils\b", r"\blymphocytes\b",
                 r"\beosinophils\b", r"\bmyeloblasts\b", r"\bblasts\b", r"\bisolate[ds]?\b", r"\borganisms?\b")),
    ("allergies", _rx(r"\ballerg", r"\banaphyla")),
    ("family", _rx(r"family history", rf"\b{_RELATIVE}(?:'s|’s)?\s+(?:\w+\s+)?(?:has|had|have|died|was diagnosed|"
                   rf"suffers?|suffered|passed away|history)\b", r"\bfamily members?\b[^.]*\b(?:has|had|have)\b",
                   r"\b(?:mother|father|sister|brother|aunt|uncle|grandmother|grandfather|cousin)\b[^.]*"
                   r"\b(?:cancer|disease|syndrome|diabetes|hypertension|disorder|infarction|stroke)\b",
                   r"\b(?:son|daughter|child|children)\s+(?:\w+\s+)?(?:has|had|have)\s+(?:\w+\s+)?similar\b")),
    ("vital_signs", _rx(r"\btemperature\b(?! sensation)", r"\bblood pressure\b", r"\bpulse\b(?!\s+oximetry shows? (?:no|an?))",
                        r"\bheart rate\b", r"\brespirat(?:ions|ory rate)\b", r"\b\d+\s*/\s*min\b",
                        r"\boxygen saturation\b", r"\bO2 sat", r"\bSpO2\b", r"\bpulse oximetry\b",
                        r"\bBMI\b", r"\bbody mass index\b", r"\bweighs?\b", r"\bweighed\b", r"\btall\b", r"\bheight\b", r"\bkg/m", r"°\s*[CF]\b", r"\bfebrile\b",
                        r"\bvital signs?\b", r"\bvitals\b", r"\bmm\s*Hg\b(?![^.]*\b(?:PaO2|PaCO2|pCO2|pO2|"
                        r"pressure gradient|venous pressure|wedge))")),
    ("imaging", _rx(r"x-?rays?\b", r"\bradiograph", r"\bCT\b", r"\bcomputed tomograph", r"\bMRI\b",
                    r"\bmagnetic resonance", r"\bultraso", r"\bsonograph", r"\bechocardiog", r"\bangiogra",
                    r"\bscan\b", r"\bscans\b", r"\bimaging\b", r"\bmammogra", r"\bfluoroscop", r"\bdoppler\b",
                    r"\bCXR\b", r"\bcholangiopancreatograph", r"\bPET\b", r"\bDEXA\b", r"\bscintigra",
                    r"\bventilation[- ]perfusion\b", r"\bV/Q\b", r"\bpyelogra", r"\bcystourethrogra",
                    r"\bswallow study\b", r"\bbarium\b")),
    ("other_tests", _rx(r"\bECG\b", r"\bEKG\b", r"\belectrocardiog", r"\bbiops", r"\bhistolog", r"\bpatholog",
                        r"\bendoscop", r"\bcolonoscop", r"\bbronchoscop", r"\bcystoscop", r"\blaparoscop",
                        r"\bspirometr", r"\bpulmonary function", r"\bFEV1", r"\bFVC\b", r"\bEEG\b", r"\belectroencephalog", r"\bEMG\b",
                        r"\belectromyog", r"\bnerve conduction", r"\bstress test", r"\bHolter\b",
                        r"\btilt[- ]table\b", r"\baudiometr", r"\bsleep study\b", r"\bpolysomnog", r"\bFNA\b",
                        r"\bfine[- ]needle", r"\baspirat(?:e|ion)\b[^.]*\b(?:shows?|reveals?)", r"\bsmear\b", r"\bbone marrow\b", r"\bmarrow aspirat",
                        r"\bmicroscop", r"\bcytolog", r"\bgenetic (?:testing|analysis)", r"\bkaryotyp",
                        r"\bmanometr", r"\bTzanck\b", r"\bKOH\b", r"\bskin test\b", r"\bPPD\b")),
    ("labs", _rx(r"\blab(?:oratory|s)?\b", r"\bserum\b", r"\bplasma\b", r"\burin(?:e|alysis)\b[^.]*"
                 r"\b(?:shows?|reveals?|positive|negative|level|test|osmolality|sodium|protein|specific)",
                 r"\burinalysis\b", r"\bCSF\b", r"\bcerebrospinal\b", r"\blumbar puncture\b", r"\bspinal tap\b",
                 r"\bhemoglobin\b", r"\bhematocrit\b",
                 r"\bleukocyte", r"\bWBC\b", r"\bwhite (?:blood )?cell count", r"\bplatelet", r"\bsodium\b",
                 r"\bpotassium\b", r"\bchloride\b", r"\bbicarbonate\b", r"\bcreatinine\b", r"\bglucose\b",
                 r"\bBUN\b", r"\burea\b", r"\bcalcium\b", r"\bbilirubin\b", r"\balbumin\b", r"\bferritin\b",
                 r"\b(?:AST|ALT|ALP|LDH|TSH|INR|PTT|ESR|CRP|HbA1c|hCG|PSA|MCV|IgE|IgG|IgM|IgA|ANA|PaO2|PaCO2)\b",
                 r"\baminotransferase", r"\bphosphatase\b", r"\bprothrombin\b", r"\bthromboplastin\b",
                 r"\bmg/d[lL]\b", r"\bmEq/L\b", r"\bg/d[lL]\b", r"\bmmol/L\b", r"\bμmol", r"\bµmol", r"/mm3\b",
                 r"/mm\^?3", r"/μL\b", r"/µL\b", r"\bU/L\b", r"\bIU/", r"\bng/m[lL]\b", r"\bpg/m[lL]\b",
                 r"\bμg/d", r"\bmIU", r"\bculture", r"\btit(?:er|re)s?\b", r"\bantibod", r"\bantigen\b",
                 r"\bassay\b", r"\bPCR\b", r"\bGram stain", r"\bblood gas", r"\bpH\b", r"\blevels?\b[^.]*"
                 r"\b(?:is|are|was|were|of)\b[^.]*\d", r"\bcount\b", r"\btests? (?:is|are|was|were|shows?|"
                 r"reveals?)\b[^.]*\b(?:positive|negative)", r"\b(?:positive|negative) for\b",
                 r"\bblood (?:tests?|work|studies|smear)\b", r"\bstool (?:guaiac|test|studies|culture)\b",
                 r"\bguaiac", r"\bfecal occult", r"\bserolog", r"\belectrolyte", r"\bcomplete blood count\b",
                 r"\bCBC\b", r"\bmetabolic panel\b", r"\blipid\b", r"\bcholesterol\b", r"\btriglyceride",
                 r"\bhormone\b[^.]*\b(?:level|is|was)\b", r"\bconcentration\b", r"\bpmol", r"\bnmol",
                 r"\bT[34]\b", r"\bD-dimer\b", r"\bblood ?work\b", r"\bsample\b")),
    ("treatment", _rx(r"\b(?:was|were|is|has been|had been) (?:started|treated|given|administered|placed|"
                      r"resuscitated|intubated|managed|initiated|begun)\b",
                      r"\b(?:was|is) prescribed\b", r"\breceived\b", r"\bwas put on\b",
                      r"\btreatment (?:with|is|was|has)\b", r"\bafter (?:treatment|administration|receiving|"
                      r"being given|starting)\b", r"\bin the emergency department\b[^.]*\b(?:given|treated)\b",
                      r"\bresponds? to\b", r"\bimproved (?:with|after)\b", r"\bwas begun\b",
                      r"\bunderwent\b[^.]*\b(?:today|this|hospital|emergency)\b", r"\brefuses\b[^.]*\btreatment",
                      r"\bdespite\b[^.]*\b(?:treatment|therapy)\b", r"\b(?:is|was) prescribed\b",
                      r"\bundergoes\b", r"\bis discharged\b", r"\bwas discharged\b", r"\bfollowing the "
                      r"(?:therapy|treatment|procedure)\b", r"\b(?:is|was) (?:immediately )?(?:stopped|discontinued)\b",
                      r"\bstarted (?:the )?(?:patient|him|her) on\b", r"\bis (?:intubated|begun|started|given|"
                      r"administered|treated)\b")),
    ("medications", _rx(r"\bmedications?\b", r"\bmedicines?\b", r"\btakes\b", r"\btaking\b", r"\btook\b",
                        r"\buses? (?:an? )?\w*\s*inhaler", r"\binhaler\b", r"\bcurrently on\b",
                        r"\b(?:oral )?contracepti", r"\bbirth control\b", r"\bsupplements?\b", r"\bvitamins?\b",
                        r"\bmg\b[^.]*\b(?:daily|twice|once|per day|bid|tid|qd)\b", r"\btherapy with\b",
                        r"\bdrug regimen\b", r"\bpills?\b", r"\bprescription\b", r"\binsulin\b", r"\bstatin\b",
                        r"\bover-the-counter\b", r"\bhas been on\b")),
    ("social", _rx(r"\bsmok", r"\bcigarette", r"\bpack[- ]years?\b", r"\btobacco\b", r"\bvap(?:e|es|ing)\b",
                   r"\balcohol", r"\bdrinks?\b", r"\bdrinking\b", r"\bbeers?\b", r"\bwine\b", r"\billicit\b",
                   r"\bcocaine\b", r"\bheroin\b", r"\bmarijuana\b", r"\bcannabis\b", r"\bmethamphetamine\b",
                   r"\brecreational\b", r"\bintravenous drug", r"\bIV drug", r"\binjection drug", r"\bworks?\b",
                   r"\bworked\b", r"\boccupation", r"\bemployed\b", r"\bunemployed\b", r"\bjob\b", r"\bcareer\b",
                   r"\bretired\b", r"\bstudent\b", r"\blives\b", r"\bliving\b", r"\bmarried\b", r"\bdivorced\b",
                   r"\bwidow", r"\bsexual(?:ly)? (?:active|partners?|history|intercourse|activity)\b",
                   r"\bpartners?\b", r"\bcondoms?\b", r"\btravel", r"\btrip\b", r"\bvacation\b", r"\bcamping\b",
                   r"\bhiking\b", r"\bhiker\b", r"\bavid\b", r"\bhoneymoon\b", r"\brelationship\b",
                   r"\baccompanied by\b", r"\bboyfriend\b", r"\bgirlfriend\b", r"\bhusband\b", r"\bwife\b",
                   r"\bneighbou?r\b", r"\bfriends?\b", r"\bdiet\b", r"\beats?\b", r"\bvegan\b", r"\bvegetarian\b", r"\bexercis",
                   r"\bruns? \d", r"\bmarathon", r"\bhomeless", r"\bincarcerat", r"\bprison\b", r"\bmilitary\b",
                   r"\bveteran\b", r"\bimmigrat", r"\bemigrat", r"\bpets?\b", r"\bcats?\b", r"\bdogs?\b",
                   r"\bfarm", r"\b(?:truck |bus |taxi )?driver\b", r"\bworker\b", r"\bteacher\b",
                   r"\bmechanic\b", r"\bengineer\b", r"\bsoldier\b", r"\bschool\b", r"\bdaycare\b", r"\bcollege\b", r"\buniversity\b")),
    ("examination", _rx(r"\bexam(?:ination)?s?\b", r"\bexamined\b", r"\bon (?:palpation|auscultation|percussion|"
                        r"inspection)\b", r"\bauscultat", r"\bpalpat", r"\bpercuss", r"\btender", r"\bmurmur",
                        r"\brales\b", r"\bcrackles\b", r"\bwheez", r"\brhonchi\b", r"\bbruit", r"\bedema\b",
                        r"\breflex", r"\bpupil", r"\bappears?\b", r"\blooks?\b", r"\bis (?:alert|oriented|"
                        r"lethargic|somnolent|obtunded|afebrile|pale|jaundiced|diaphoretic|cachectic|"
                        r"well-appearing|ill-appearing|obese|in (?:no|mild|moderate|severe) distress)\b",
                        r"\boriented\b", r"\bmucous membranes\b", r"\bpalpable\b", r"\bnontender\b",
                        r"\bdistended\b", r"\bsounds\b", r"\bstrength\b", r"\bsensation\b", r"\bgait\b",
                        r"\bnystagmus\b", r"\bfundoscop", r"\bophthalmoscop", r"\botoscop", r"\bspeculum\b",
                        r"\bis noted\b", r"\bare noted\b", r"\bis seen\b", r"\bare seen\b", r"\bis present\b",
                        r"\bare present\b", r"\bis observed\b", r"\bshows?\b", r"\breveals?\b", r"\bhis skin\b",
                        r"\bher skin\b", r"\bmental status\b", r"\baffect\b", r"\bApgar\b", r"\bpercentile\b",
                        r"\bcapillary refill\b", r"\bturgor\b", r"\bhepatomegaly\b", r"\bsplenomegaly\b",
                        r"\blymphadenopathy\b", r"\bjugular venous\b", r"\bneck stiffness\b", r"\bnuchal\b",
                        r"\b(?:Babinski|Romberg|Murphy|McBurney|Kernig|Brudzinski|Tinel|Phalen)",
                        r"\b(?:was|were) noted\b", r"\bcan be (?:seen|felt|heard)\b", r"\bfeels? (?:cold|warm|hot|"
                        r"firm|soft|hard|boggy|nodular)\b", r"\bcostal margin\b", r"\btremor\b[^.]*\bpalms\b",
                        r"\bbruises?\b", r"\bimpaired\b", r"\bptosis\b", r"\bunresponsive\b", r"\bstimuli\b",
                        r"\bjugular\b", r"\beye contact\b", r"\bblanch", r"\bpale when pressed\b",
                        r"\bextensor surface", r"\bflexor surface", r"\bpatch(?:es)?\b", r"\bplaques?\b",
                        r"\bpapules?\b", r"\bmacules?\b", r"\bvesicles?\b", r"\bnodules?\b",
                        r"\bwhen standing without support\b", r"\bsomnolent\b", r"\bresponds to\b")),
    ("hpi", _rx(r"\b\d+[- ](?:hour|day|week|month|year)s?[- ](?:long )?history of\b",
                r"\b(?:over|for|during|in|within) the (?:past|last) (?:\d+|few|several|couple|one|two|three|four|five|"
                r"six|seven|eight|nine|ten|year|month|week|day|hour|night)",
                r"\bis (?:at )?\d+ weeks'? (?:pregnant|gestation|of gestation)",
                r"\b(?:a|an|one|two|three|several|few)[- ](?:hour|day|week|month|year)s?[- ]history of\b")),
    ("past_history", _rx(r"\bhistory of\b", r"\bmedical history\b", r"\bpast\b", r"\bpreviously\b",
                         r"\bprevious\b", r"\bprior\b", r"\bdiagnosed\b", r"\bsurgery\b", r"\bsurgical\b",
                         r"\boperation\b", r"\bunderwent\b", r"\bhospitali[sz]", r"\bvaccin", r"\bimmuniz",
                         r"\bimmunis", r"\bgravida\b", r"\bpara\b", r"\bG\d+P\d+", r"\bpregnanc", r"\bmiscarriage",
                         r"\bdelivered\b", r"\bdelivery\b", r"\bmenarche\b", r"\bmenstrual\b", r"\bmenses\b",
                         r"\bmenopause\b", r"\bchildhood\b", r"\bdevelopmental\b", r"\bmilestones\b",
                         r"\byears ago\b", r"\bas a child\b", r"\bchronic\b", r"\bhas (?:type [12] )?"
                         r"(?:diabetes|hypertension|asthma|HIV|hyperlipidemia|hypothyroidism|epilepsy|"
                         r"depression|schizophrenia|bipolar|COPD|coronary|cirrhosis|lupus|obesity)",
                         r"\bwell-controlled\b", r"\bpoorly controlled\b", r"\bbirth\b", r"\bborn\b",
                         r"\bgestation", r"\bprenatal\b")),
    ("demographics", _rx(r"\b\d+[- ](?:year|month|week|day|hour)s?[- ]old\b", r"^(?:the )?(?:patient|he|she) is "
                         r"(?:a |an )?(?:male|female|man|woman|boy|girl|infant)\b", r"\b(?:presents?|presented|"
                         r"brought|comes|came|visits|is admitted|was admitted|is seen|arrives)\b[^.]*\b(?:to|at|"
                         r"in)\b[^.]*\b(?:physician|doctor|clinic|office|emergency|hospital|department|"
                         r"pediatrician|provider|ED|ER)\b", r"^(?:the )?(?:patient|infant|child|newborn) is "
                         r"(?:male|female)\b", r"\bage\b")),
    ("ros", _rx(r"\b(?:denies|denied|deny)\b")),
)


def fact_category(text: str) -> str:
    """The clinical category of one fact by the rules alone, out of context (one of :data:`CATEGORIES`; no rule:
    ``hpi``); :func:`case_categories` also reads the fact before it."""
    return _rule_category(text) or DEFAULT_CATEGORY


@functools.lru_cache(maxsize=131072)
def _rule_category(text: str) -> str | None:
    t = " ".join(text.split())
    for category, pattern in _RULES:
        if pattern.search(t):
            if category == "demographics" and _COMPLAINT.search(t):
                return "hpi"  # "A 28-year-old woman presents with palpitations": the complaint is the new content
            return category
    return None


_COMPLAINT = re.compile(r"\b(?:with|because|due to|complain\w*|for|after|of)\b\s+\S+", re.IGNORECASE)


def case_categories(case: Case) -> tuple[str, ...]:
    """The category of every fact of ``case``, in fact order (cached by the facts' texts)."""
    return _categories(tuple(f.text for f in case.facts))


# Sections a vignette lists as a run of findings: a fact no rule tags, right after one of these, continues it
# ("Examination shows a small jaw." "The newborn has low-set ears."; "An ECG shows ..." "The QRS interval is ...").
CONTINUED: frozenset[str] = frozenset({"examination", "labs", "imaging", "other_tests"})


@functools.lru_cache(maxsize=65536)
def _categories(texts: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for t in texts:
        rule = _rule_category(t)
        out.append(rule or (out[-1] if out and out[-1] in CONTINUED else DEFAULT_CATEGORY))
    return tuple(out)
