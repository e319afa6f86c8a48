"""Lay and clinical words for the same finding, so that "Any fever?" finds "She is afebrile." and "Are your eyes
bulging?" finds "No exophthalmos was noted."

What: :func:`expand_question` appends, to a doctor's question, the clinical terms of the lay words it uses (and the
lay words of the clinical terms): a question that says "tummy" also says "abdomen", one that says "breathing tests"
also says "spirometry, pulmonary function". :class:`~promed.patient.fact.FactPatient` embeds both the question and
its expansion and keeps the higher similarity for each fact, so an expansion can only add matches; a fact that
contains one of the question's glossary terms word for word (:func:`term_pattern`) also gets a small bonus
(``FactPatientConfig.term_bonus``).

Why a hand-written glossary: MiniLM places "fever" and "temperature 38.1 C" or "thyroid" and "goiter" far apart;
clinicians and vignettes use different registers. The entries are general history-taking vocabulary written from
clinical knowledge (not from any evaluation question); ``benchmarks/patient_real.py`` measures the patient with
and without it (``FactPatientConfig.glossary``).
"""

from __future__ import annotations

import functools
import re

# (pattern over the question, terms appended). Patterns are case-insensitive and matched on word boundaries.
GLOSSARY: tuple[tuple[str, str], ...] = (
    (r"fevers?|feverish|temperature|running a temp", "fever, temperature, febrile, afebrile"),
    (r"breath(?:ing)? (?:fast|rate)|how fast .* breathing|breathing rate", "respirations, respiratory rate per min"),
    (r"heart ?rate|pulse|heart (?:racing|pounding)", "pulse per min, heart rate, palpitations"),
    (r"blood pressure|bp", "blood pressure mm Hg, hypertension, hypotension"),
    (r"oxygen|sats?", "oxygen saturation, pulse oximetry"),
    (r"weigh|how heavy|weight", "weight kg, body mass index"),
    (r"how tall|height", "height cm, percentile"),
    (r"tumm(?:y|ies)|belly|stomach", "abdomen, abdominal, epigastric"),
    (r"pee|peeing|urinat\w*|water ?works", "urine, urination, dysuria, urinary"),
    (r"poo|poop|bowel movements?|stools?", "stool, bowel, diarrhea, constipation, feces"),
    (r"throw(?:ing)? up|thrown up|vomit\w*|sick to your stomach", "vomiting, emesis, nausea"),
    (r"short of breath|breathless|out of breath|trouble breathing|hard to breathe", "dyspnea, shortness of breath"),
    (r"cough\w*", "cough, sputum"),
    (r"coughing up blood", "hemoptysis"),
    (r"blood in (?:your|the|his|her) (?:stool|poo|bowel)", "hematochezia, melena, guaiac, fecal occult blood"),
    (r"blood in (?:your|the|his|her) (?:urine|pee)", "hematuria"),
    (r"nosebleeds?", "epistaxis"), (r"bruis\w*", "bruises, ecchymoses, petechiae, purpura"),
    (r"dizz\w*|spinning|room spin", "dizziness, vertigo, lightheaded"),
    (r"faint\w*|pass(?:ed)? out|black(?:ed)? out", "syncope, loss of consciousness"),
    (r"confus\w*|know where (?:you|he|she) (?:is|are)|disoriented", "oriented, orientation, confusion, alert"),
    (r"seeing things|hearing (?:things|voices)|voices", "hallucinations, psychosis"),
    (r"eyes? bulg\w*|bulging eyes?|eyes? (?:stick|sticking|popping) out", "exophthalmos, proptosis"),
    (r"yellow\w* (?:skin|eyes)|skin .*yellow|eyes .*yellow", "jaundice, icterus, scleral icterus"),
    (r"thyroid|neck swelling|lump in (?:your|the) neck", "thyroid, goiter, neck mass, nodule"),
    (r"swollen (?:legs|ankles|feet)|(?:legs|ankles|feet) swollen|swelling in (?:your|the) (?:legs|ankles|feet)",
     "edema, pitting edema"),
    (r"sex (?:hurt|painful)|pain(?:ful)? (?:during|with) sex|hurt(?:s)? during sex", "dyspareunia"),
    (r"periods?|menstrua\w*|menses", "menses, menstruation, menstrual cycle, amenorrhea"),
    (r"pregnan\w*|been pregnant|babies|children have you had", "gravida, para, G P, pregnancies, gestation"),
    (r"blood thinners?", "anticoagulant, warfarin, heparin, aspirin"),
    (r"water pills?", "diuretic, hydrochlorothiazide, furosemide"),
    (r"sugar|diabet\w*", "diabetes mellitus, glucose, HbA1c, insulin"),
    (r"high blood pressure", "hypertension"), (r"heart attack", "myocardial infarction"),
    (r"stroke", "cerebrovascular accident, stroke"), (r"cancer|tumou?r", "cancer, malignancy, carcinoma, tumor"),
    (r"breathing tests?|lung (?:function )?tests?|blow(?:ing)? into", "spirometry, pulmonary function, FEV1, FVC"),
    (r"heart tracing|heart (?:test|rhythm strip)", "ECG, electrocardiogram"),
    (r"heart (?:scan|ultrasound)", "echocardiography"),
    (r"skin test|tb test|tuberculosis test", "PPD, tuberculin skin test, induration"),
    (r"ace level|ace\b", "angiotensin converting enzyme"),
    (r"blood count|anemi\w*|iron", "hemoglobin, hematocrit, anemia, ferritin"),
    (r"kidneys?", "renal, creatinine, BUN"), (r"liver", "hepatic, AST, ALT, bilirubin, hepatomegaly"),
    (r"spleen", "splenomegaly"), (r"glands?|lymph nodes?", "lymphadenopathy, lymph nodes"),
    (r"rash|spots?|skin (?:changes|lesions?)", "rash, lesion, macules, papules, erythema"),
    (r"itch\w*", "pruritus, itching"), (r"numb\w*|tingl\w*|pins and needles", "numbness, paresthesia, sensation"),
    (r"weak\w*", "weakness, strength"), (r"shak\w*|trembl\w*", "tremor"),
    (r"fits?|seizures?|convuls\w*", "seizure, convulsion"),
    (r"memory|forget\w*", "memory, recall, amnesia, dementia"),
    (r"mood|sad|feeling (?:down|low)|depress\w*", "mood, depressed, affect"),
    (r"sleep\w*", "sleep, insomnia, hypersomnia"), (r"appetite|eating", "appetite, anorexia, diet, eats"),
    (r"smok\w*|cigarettes?", "smoking, cigarettes, pack-years, tobacco"),
    (r"drink\w*|alcohol|booze", "alcohol, drinks, beer, wine"),
    (r"drugs?|cocaine|heroin|weed|marijuana", "illicit drugs, substance use, cocaine, heroin, marijuana"),
    (r"school|work\w*|job|occupation", "works as, occupation, student, employed"),
    (r"who (?:is|came) (?:here )?with you|came with you|accompan\w*", "accompanied by, brought by"),
    (r"outdoors|hik\w*|camp\w*|woods|garden\w*", "hiking, camping, outdoors, tick"),
    (r"travel\w*|trip|abroad", "travel, returned from, trip"),
    (r"vaccin\w*|shots|immuni[sz]\w*", "vaccinations, immunizations, up to date"),
    (r"operations?|surger\w*", "surgery, underwent, resection, -ectomy"),
    (r"how (?:long|many days|many weeks)|when did .* (?:start|begin)|since when", "started, ago, history of, for the "
                                                                                     "past, duration"),
    (r"how long .* last|each (?:episode|spell|attack)", "episodes last minutes seconds hours"),
    (r"what (?:brings|brought|sets) .* (?:on|off)|triggers?|sets? (?:it|them) off|worse when",
     "triggered by, occurs after, worsens with, precipitated by"),
    (r"worr\w*|anxi\w*|nervous|mind at night|racing thoughts", "worrying, anxiety, worries"),
    (r"antibiotics?", "antibiotic, amoxicillin, erythromycin, penicillin, received"),
    (r"painkillers?|pain medic\w*", "analgesic, ibuprofen, acetaminophen, opioid"),
    (r"reflexes", "reflexes, deep tendon reflexes"),
    (r"short-?sighted|near-?sighted", "myopia"), (r"long-?sighted|far-?sighted", "hyperopia"),
    (r"eyesight|vision|see (?:clearly|well)", "vision, visual acuity, blurred vision"),
    (r"double vision|seeing double", "diplopia"), (r"ringing in (?:your|the) ears?", "tinnitus"),
    (r"hearing", "hearing loss, whispered words, Rinne, Weber, tuning fork"),
    (r"gullet|food ?pipe", "esophagus, esophageal"),
    (r"camera test|scope test|tube with a camera", "endoscopy, colonoscopy, bronchoscopy"),
    (r"run ?down|worn out|tired|exhausted|no energy", "fatigue, tiredness, lethargy, weakness"),
    (r"heartburn|acid (?:reflux|coming up)", "reflux, GERD, dyspepsia, heartburn"),
    (r"runny nose|stuffy nose|blocked nose", "rhinorrhea, nasal congestion"),
    (r"sore throat", "pharyngitis, sore throat"), (r"black (?:stools?|poo)|tarry", "melena"),
    (r"(?:water|urine|bladder) infection", "urinary tract infection, UTI, cystitis"),
    (r"chest infection", "pneumonia, bronchitis, respiratory infection"),
    (r"ear infection", "otitis media, ear infection"),
    (r"colds?|flu", "upper respiratory tract infection, viral infection, influenza"),
    (r"lumps?", "mass, nodule, swelling, lump"), (r"joints?", "arthralgia, joint pain, arthritis"),
    (r"muscles? (?:ache|pain|hurt)", "myalgia"),
    (r"trouble swallowing|hard to swallow|food (?:gets )?stuck", "dysphagia"),
    (r"hurts? to swallow|painful swallowing", "odynophagia"),
    (r"voice|hoarse|raspy", "hoarseness, dysphonia, voice"), (r"whistl\w*|wheez\w*", "wheezing, wheezes"),
    (r"sweats?|sweating", "diaphoresis, night sweats, sweating"), (r"thirst\w*", "polydipsia, thirst"),
    (r"peeing (?:a lot|more)|urinating (?:a lot|more)|passing (?:a lot of )?urine", "polyuria, urinary frequency"),
    (r"gain(?:ed)? weight|put on weight|pounds have you put on", "weight gain, gained"),
    (r"period pain|painful periods", "dysmenorrhea"), (r"heavy periods", "menorrhagia"),
    (r"stiff neck|neck (?:is )?stiff", "nuchal rigidity, meningismus, neck stiffness"),
    (r"bleeding gums|gums bleed\w*", "gingival bleeding, bleeding gums"),
    (r"curv\w* of (?:the|his|her|your) spine|hunched", "scoliosis, kyphosis, kyphoscoliosis"),
    (r"check-?ups?|antenatal", "prenatal care, antenatal visits"),
    (r"how bad|scale of (?:one|1) to (?:ten|10)|how severe", "severity, out of 10"),
    (r"belly fluid|fluid in (?:your|the|his|her) belly", "ascites, ascitic fluid, paracentesis"),
    (r"spinal tap", "lumbar puncture, cerebrospinal fluid, CSF"),
    (r"keep up|exercise tolerance|climb stairs", "activities, exercise tolerance, stairs"),
)
_COMPILED = tuple((re.compile(rf"\b(?:{p})\b", re.IGNORECASE), terms) for p, terms in GLOSSARY)


@functools.lru_cache(maxsize=65536)
def _matched(question: str) -> tuple[str, ...]:
    """The term strings of the glossary entries whose pattern ``question`` matches, in glossary order."""
    return tuple(dict.fromkeys(terms for pattern, terms in _COMPILED if pattern.search(question)))


@functools.lru_cache(maxsize=65536)
def glossary_terms(question: str) -> tuple[str, ...]:
    """The glossary terms of the words ``question`` uses (lower case, de-duplicated, in glossary order)."""
    return tuple(dict.fromkeys(t.strip().lower() for terms in _matched(question) for t in terms.split(",")
                               if len(t.strip()) >= 3))


@functools.lru_cache(maxsize=65536)
def term_pattern(question: str) -> re.Pattern[str] | None:
    """One pattern matching any of the question's glossary terms on word boundaries (``None``: no terms)."""
    terms = glossary_terms(question)
    if not terms:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)) + r")",
                      re.IGNORECASE)


@functools.lru_cache(maxsize=65536)
def expand_question(question: str) -> str:
    """``question`` followed by the glossary terms of the words it uses; ``question`` itself when none apply."""
    terms = _matched(question)
    return f"{question.strip()} ({'; '.join(terms)})" if terms else question.strip()
