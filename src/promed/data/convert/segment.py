"""Rule-based atomic facts: a vignette split into an initial statement and one-finding facts, no model.

What: sentences -> clauses -> list items, with the rules medical text needs:

* **Sentences** (:mod:`promed.data.convert.sentences`): never ended inside a number (``38.9``), after an
  abbreviation or inside brackets; table cell separators and line breaks end them.
* **Clauses** split at ``;`` and at a conjunction (``and``, ``but``, ``while``, ``whereas``) that starts a new
  clause: followed by a subject (``she``, ``the patient``, ``there``), a finite verb (``is``, ``has``,
  ``denies``, ``reports``, a past tense ``-ed`` form) or a vital sign (``and pulse is 90/min``). A conjunction
  that joins two findings inside one phrase (``nausea and vomiting``, ``bounding and irregular``, ``inflammation
  and pain in the right knee``) does *not* split: measured on MediQ's facts (``benchmarks/convert_mediq.py``,
  ``and_split``), splitting every ``and`` loses F1, because writers of atomic facts keep such pairs together.
* **List items** split at top-level commas (never inside brackets, quotes or numbers such as ``15,000``), then
  pieces are merged back where a comma did not separate findings: an introductory phrase (``On examination,``,
  ``Over the past month,``) joins the item after it; a bare value (``temperature, 36.7°C``) and a fragment with no
  content word join the item before it. So ``Temperature is 37°C, pulse 90/min, blood pressure 120/80 mm Hg``
  gives one fact per vital sign.
* **Participial complaints** split off the presentation: ``presents to the clinic complaining of X`` and
  ``... is brought ... because of X`` give the presentation and the complaint as two facts; so does a ``with a
  history of X`` modifier in front of the verb.
* **Pertinent negatives** are kept and, in a negated list, the negation is carried to every item: ``denies
  fever, chills, or night sweats`` -> ``denies fever`` / ``denies chills`` / ``denies night sweats``
  (``negated_lists="keep"`` keeps the list as one fact instead).

Every fact is a rewrite of the vignette that only drops words, or repeats words of its own sentence (a carried
negation); :func:`promed.data.convert.words.grounding` is 1.0 for each, which the converter checks.

The **initial statement** (what the doctor sees at turn 0: demographics and chief complaint) is the first clause
of the first sentence; its facts are returned apart (``initial_facts``) and are not hidden facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from promed.data.convert.sentences import depth as _depth
from promed.data.convert.sentences import split_sentences, split_values
from promed.data.convert.sentences import top_level_split as _top_level_split

# ---- word classes -------------------------------------------------------------------------------------------

_SUBJECTS = r"(?:he|she|they|it|i|we|there|his|her|their|its|this|these|the|both|each|patient|no)"
_VERBS = (
    r"(?:is|was|are|were|has|had|have|does|did|do|can|could|will|would|may|might|should|must|reports?|reported|"
    r"denies|denied|complains?|complained|notes?|noted|states?|stated|says|said|describes?|described|appears?|"
    r"appeared|shows?|showed|reveals?|revealed|demonstrates?|demonstrated|undergoes|underwent|takes?|took|drinks?|"
    r"drank|smokes?|smoked|uses?|used|works?|worked|lives?|lived|feels?|felt|becomes?|became|remains?|remained|"
    r"develops?|developed|experiences?|experienced|presents?|presented|returns?|returned|receives?|received|"
    r"admits?|admitted|endorses?|endorsed|exhibits?|exhibited|begins?|began|started|starts?|stopped|stops?|"
    r"gets?|got|goes|went|comes?|came|sleeps?|slept|eats?|ate|walks?|walked|lost|gained|gives?|gave|"
    r"recalls?|recalled|mentions?|mentioned|explains?|explained|tells?|told|shares?|sees?|saw|finds?|found|"
    r"orders?|ordered|suspects?|suspected|recommends?|recommended|prescribes?|prescribed|performs?|performed|"
    r"confirms?|confirmed|\w+ed)"
)
_VITALS = (r"(?:pulse|blood pressure|bp|temperature|temp|respirations?|respiratory rate|heart rate|hr|rr|"
           r"oxygen saturation|o2 saturation|spo2|saturation|bmi|body mass index|weight|height)")
_NOT_VERBS_ED = frozenset("red bed shed need speed bleed breed feed seed hundred tired bloodshot limited "
                          "increased decreased elevated raised reduced diminished depressed distended enlarged "
                          "swollen dilated inflamed associated related unrelated sustained "
                          "localized generalized sexually".split())
_CLAUSE_START = re.compile(rf"^(?:(?:{_SUBJECTS}|{_VERBS})\b|(?:(?:a|an|the|her|his|their) )?{_VITALS}\b"
                           r"(?=\s*(?:is|was|are|were|of|at|:|\d)))",
                           re.IGNORECASE)
_CONJ_SPLIT = re.compile(r"\s+(?:and|but|while|whereas|although|though|yet)\s+(?=\S)", re.IGNORECASE)
_NUMBER = re.compile(r"\d")
_RELATIVE = re.compile(r"^(?:which|who|whom|whose|where)\b", re.IGNORECASE)

# phrases that only introduce what follows (``On examination,``): merged into the next item
_INTRO = re.compile(
    r"^(?:on|at|in|during|after|upon|over|for|since|when|while|before|despite|following|within|throughout|"
    r"because|although|though|as|currently|today|yesterday|recently|however|also|otherwise|additionally|further|"
    r"furthermore|moreover|then|now|initially|subsequently|later|overall|meanwhile|of note|in addition|"
    r"previously|eventually|afterwards|thereafter|ultimately|finally|otherwise|unfortunately|fortunately|"
    r"(?:\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|several|few|a few|many) "
    r"(?:minutes?|hours?|days?|weeks?|months?|years?) (?:ago|later|earlier|prior|after|before|into))\b",
    re.IGNORECASE)
_NEGATION = re.compile(
    r"\b(?:denies|denied|deny|denying|no|not|without|negative for|absence of|absent|never|none)\b"
    r"(?:\s+(?:any|a|an|history of|personal history of|family history of|recent|known|significant|other))*",
    re.IGNORECASE)
_PRESENTATION_SPLIT = re.compile(
    r"(?:,\s*|\s+)(?=(?:complaining|complains|with complaints|because|due to|for evaluation of|reporting)\b)",
    re.IGNORECASE)
_PRESENTS = re.compile(r"\b(?:presents?|presented|comes?|came|brought|admitted|visits?|visited|arrives?|arrived|"
                       r"evaluated|seen|returns?|returned|referred)\b", re.IGNORECASE)
_HISTORY_MODIFIER = re.compile(
    r"\s+(with (?:a |an )?(?:[\w-]+ ){0,3}(?:history|hx) of .+?)\s+(?=(?:presents|presented|comes|came|is|was|"
    r"visits|reports|complains|develops|returns|arrives|has)\b)", re.IGNORECASE)


@dataclass(frozen=True)
class RuleSettings:
    """Switches of the rule fact writer (defaults: the best measured on MediQ's dev half; see BENCHMARKS.md)."""

    split_lists: str = field(default="findings", metadata={
        "help": "Comma lists: findings (an item becomes its own fact when it has its own verb or value, or more "
                "than short_item words; short noun items stay with the item before), all (every item), or none "
                "(one fact per clause)."})
    short_item: int = field(default=3, metadata={
        "help": "With split_lists=findings: items of at most this many words (no verb, no value) stay joined."})
    and_split: str = field(default="clause", metadata={
        "help": "Split at 'and'/'but': clause (only where a new clause or vital sign starts), all, or none."})
    negated_lists: str = field(default="keep", metadata={
        "help": "Negated lists ('denies fever, chills, or night sweats'): distribute (one negated fact per "
                "item) or keep (one fact)."})
    split_demographics: bool = field(default=True, metadata={
        "help": "Give the first sentence's subject ('A 21-year-old sexually active male') its own fact when it "
                "states an age."})
    join_relative: bool = field(default=False, metadata={
        "help": "A comma-separated relative clause (', which resolved without treatment') stays with its item."})
    split_presentation: bool = field(default=False, metadata={
        "help": "Split 'presents ... complaining of X' / 'with a history of X' into separate facts."})

    def __post_init__(self) -> None:
        from promed.errors import InputError

        if self.split_lists not in ("findings", "all", "none"):
            raise InputError(f"split_lists must be findings, all or none, got {self.split_lists!r}")
        if self.and_split not in ("clause", "all", "none"):
            raise InputError(f"and_split must be clause, all or none, got {self.and_split!r}")
        if self.negated_lists not in ("distribute", "keep"):
            raise InputError(f"negated_lists must be distribute or keep, got {self.negated_lists!r}")


@dataclass(frozen=True)
class Segmentation:
    """A vignette as an initial statement (with the facts it holds) and hidden atomic facts."""

    initial: str
    initial_facts: tuple[str, ...]
    facts: tuple[str, ...]

    @property
    def all_facts(self) -> tuple[str, ...]:
        return self.initial_facts + self.facts


# ---- clauses and list items ---------------------------------------------------------------------------------


def _starts_clause(rest: str) -> bool:
    m = _CLAUSE_START.match(rest)
    if not m:
        return False
    word = m.group(0).lower()
    return not (word.endswith("ed") and word in _NOT_VERBS_ED)


def _split_conj(text: str, mode: str) -> list[str]:
    """Split at conjunctions: where a new clause starts (``clause``), at every one (``all``), or never."""
    if mode == "none":
        return [text]
    pieces, start = [], 0
    for m in _CONJ_SPLIT.finditer(text):
        if _depth(text, m.start()) or text[:m.start()].count('"') % 2:
            continue
        left, rest = text[start:m.start()], text[m.end():]
        if mode == "clause":
            values = bool(_NUMBER.search(" ".join(left.split()[-3:]))) and \
                bool(_NUMBER.search(" ".join(rest.split()[:4]))) and not left.rstrip()[-1:].isdigit()
            if not (_starts_clause(rest) or values):
                continue
        if not left.strip():
            continue
        pieces.append(left)
        start = m.end()
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


_LEAD = re.compile(r"^(?:and|or|but|also|then|and then|as well as|nor)\s+", re.IGNORECASE)


def _clean(text: str) -> str:
    text = text.strip(" ,;:-")
    prev = None
    while prev != text:
        prev = text
        text = _LEAD.sub("", text).strip(" ,;:")
    if text.endswith((".", "?", "!")) and not text.endswith(("e.g.", "i.e.")):
        text = text[:-1].rstrip()
    return text


def _has_content(text: str) -> bool:
    from promed.data.convert.words import content_words

    return bool(content_words(text))


def _is_value(text: str) -> bool:
    """A bare value continuing the previous item (``36.7°C (98.0°F)``, ``126/74 mm Hg``)."""
    return bool(re.match(r"^[<>≤≥~]?\s*\d", text)) and len(re.findall(r"[A-Za-z]{4,}", text)) <= 1


def _list_items(clause: str, settings: RuleSettings) -> list[str]:
    """A clause's list items, merged back where a comma did not separate findings, negation carried."""
    raw = _top_level_split(clause, ",") if settings.split_lists != "none" else [clause]
    raw = [v for piece in raw for v in split_values(piece)]
    merged: list[str] = []
    leads: list[str] = []  # the conjunction each item started with ("or "), restored when items are rejoined
    carry = ""
    for piece in raw:
        lead = m.group(0) if (m := _LEAD.match(piece.strip())) else ""
        piece = _clean(piece) if not carry else piece.strip()
        if not piece:
            continue
        if carry:
            piece, carry = f"{carry}, {piece}", ""
        if merged and (_is_value(piece) or not _has_content(piece) or
                       (settings.join_relative and _RELATIVE.match(piece))):
            merged[-1] = f"{merged[-1]}, {piece}"
            continue
        if _INTRO.match(piece) and not _starts_clause_inside(piece):
            carry = piece
            continue
        merged.append(piece)
        leads.append(lead)
    if carry:
        if merged:
            merged[-1] = f"{merged[-1]}, {carry}"
        else:
            merged.append(carry)
            leads.append("")
    merged, leads = _merge_adjectives(merged, leads)
    if len(merged) > 1 and settings.negated_lists == "keep" and _NEGATION.search(merged[0]):
        return [_rejoin(merged, leads)]
    if len(merged) > 1 and settings.negated_lists == "distribute" and _NEGATION.search(merged[0]):
        return _carry_negation(merged)
    if settings.split_lists == "findings":
        merged = _join_short(merged, leads, settings.short_item)
    return merged


def _rejoin(items: list[str], leads: list[str]) -> str:
    """Items joined back with their commas and conjunctions (``fever, chills, or night sweats``)."""
    return ", ".join(lead + item if k else item for k, (item, lead) in enumerate(zip(items, leads)))


def _join_short(items: list[str], leads: list[str], short: int) -> list[str]:
    """Short noun items (``chills``, ``night sweats``) rejoin the item before them: writers of atomic facts keep
    ``fever, chills, and night sweats`` together, but give each vital sign, lab value or clause its own fact."""
    out = [items[0]]
    for item, lead in zip(items[1:], leads[1:]):
        own = _starts_clause(item) or _NUMBER.search(item) or re.search(rf"\b{_VERBS}\b", item, re.IGNORECASE)
        if not own and len(item.split()) <= short:
            out[-1] = f"{out[-1]}, {lead}{item}"
        else:
            out.append(item)
    return out


_ADJ_SUFFIX = re.compile(r"(?:ous|ive|ic|ful|less|able|ible|ish|ular|ated|oid|al)$", re.IGNORECASE)
_ADJ_WORDS = frozenset("""large small big tiny thin thick firm soft hard tender nontender non-tender mobile fixed warm
    hot cold cool dry moist red pale dark bright round oval smooth rough irregular regular multiple several few
    bilateral unilateral deep shallow dull sharp severe mild moderate mild-to-moderate painless painful confused
    disoriented swollen enlarged raised flat white yellow green brown black blue grey gray pink purple scaly itchy
    warty crusty bloody fatty dusky hazy waxy shiny rubbery doughy greasy foul-smelling well-circumscribed
    well-demarcated ill-defined poorly-defined new old recent acute chronic""".split())
_ADJ_NOT = frozenset("""hospital interval signal animal arrival removal trial total clinic topic music logic
    arsenal capital festival journal mineral portal medical surgical critical physical hormonal""".split())


def _adjective(word: str) -> bool:
    w = word.lower().strip(".,;:()")
    return w in _ADJ_WORDS or (bool(_ADJ_SUFFIX.search(w)) and w not in _ADJ_NOT and len(w) > 4)


def _merge_adjectives(items: list[str], leads: list[str]) -> tuple[list[str], list[str]]:
    """Undo comma splits inside an attributive adjective list (``a large, non-tender, mobile mass``): an item that
    ends with an adjective joins the item after it when that one is a noun phrase of two or more words (a
    predicative list, ``pale, diaphoretic, and confused``, stays split)."""
    out: list[str] = []
    out_leads: list[str] = []
    for item, lead in zip(reversed(items), reversed(leads)):
        if out and _adjective(item.split()[-1]) and len(out[-1].split()) >= 2 and not _starts_clause(out[-1]) \
                and not _adjective(out[-1].split()[-1]) and not _NUMBER.search(item):
            out[-1] = f"{item}, {out_leads[-1]}{out[-1]}"
            out_leads[-1] = lead
        else:
            out.append(item)
            out_leads.append(lead)
    return out[::-1], out_leads[::-1]


def _starts_clause_inside(piece: str) -> bool:
    """An introductory-looking piece that holds a whole clause (``After the fever she developed a rash``)."""
    words = piece.split()
    return any(_starts_clause(" ".join(words[i:])) and words[i].lower() not in ("the", "this", "these", "no")
               for i in range(1, len(words))) and len(words) > 6


def _carry_negation(items: list[str]) -> list[str]:
    """``["She denies fever", "chills", "or night sweats"]`` -> ``[..., "denies chills", "denies night sweats"]``:
    the negation of a list's first item carried to the later items that have no verb of their own."""
    m = _NEGATION.search(items[0])
    if not m:
        return items
    head = items[0][m.start():m.end()]
    out = [items[0]]
    for item in items[1:]:
        if _starts_clause(item) or _NEGATION.match(item) or re.search(rf"\b{_VERBS}\b", item, re.IGNORECASE):
            return out + items[len(out):]
        out.append(f"{head} {item}")
    return out


def _presentation(clause: str, settings: RuleSettings) -> list[str]:
    """Split a presentation from its complaint and a ``with a history of`` modifier (module docstring)."""
    if not settings.split_presentation:
        return [clause]
    pieces = []
    m = _HISTORY_MODIFIER.search(clause)
    if m and _depth(clause, m.start()) == 0:
        pieces.append(m.group(1))
        clause = clause[:m.start()] + " " + clause[m.end():]
    parts = re.split(_PRESENTATION_SPLIT, clause, maxsplit=1)
    if len(parts) == 2 and _PRESENTS.search(parts[0]) and _has_content(parts[0]) and _has_content(parts[1]) \
            and len(parts[0].split()) >= 3:
        return [parts[0]] + pieces + [parts[1]]
    return [clause] + pieces


_PRONOUN_SUBJECT = re.compile(r"^(?:he|she|they|it|i|we|the patient)\b(?=\s)", re.IGNORECASE)
_VERB_START = re.compile(rf"^{_VERBS}\b")


def _clauses(sentence: str, settings: RuleSettings) -> list[str]:
    """A sentence's clauses; a clause that starts with its verb (``..., but does not drink alcohol``) gets the
    sentence's pronoun subject back (``She does not drink alcohol``)."""
    sentence = _clean(sentence)
    out = []
    subject = m.group(0) if (m := _PRONOUN_SUBJECT.match(sentence)) else ""
    for part in _top_level_split(sentence, ";"):
        for piece in _split_conj(part, settings.and_split):
            # ", but" / ", and she" leave a trailing comma on the left piece
            piece = _clean(piece)
            if piece and out and subject and _VERB_START.match(piece):
                piece = f"{subject.lower() if subject.lower() != 'i' else 'I'} {piece}"
            if piece:
                out.append(piece)
    return out


def _finish(text: str) -> str:
    text = re.sub(r"\s+", " ", _clean(text))
    if not text:
        return ""
    return text[0].upper() + text[1:] + "."


def clause_facts(clause: str, settings: RuleSettings) -> list[str]:
    """The atomic facts of one clause."""
    facts = []
    for piece in _presentation(clause, settings):
        for item in _list_items(piece, settings):
            fact = _finish(item)
            if fact and _has_content(fact):
                facts.append(fact)
    return facts


_AGE = re.compile(r"\b\d+(?:-| )(?:year|month|week|day)s?(?:-| )old\b", re.IGNORECASE)
_MAIN_VERB = re.compile(r"\s(?=(?:presents?|presented|comes|came|is|was|has|had|reports|complains|develops|visits|"
                        r"arrives|returns|undergoes|experiences|needs|seeks|calls|consults)\b)", re.IGNORECASE)


def _demographics(clause: str) -> tuple[str, str]:
    """``A 21-year-old male complains of fever`` -> (``A 21-year-old male``, ``complains of fever``): the subject
    of the first clause, when it states an age, and the rest; else ``("", clause)``."""
    m = _MAIN_VERB.search(clause)
    if not m or not _AGE.search(clause[:m.start()]) or _depth(clause, m.start()):
        return "", clause
    head, rest = clause[:m.start()].strip(" ,"), clause[m.end():].strip()
    return (head, rest) if _has_content(rest) else ("", clause)


def rule_facts(vignette: str, settings: RuleSettings = RuleSettings()) -> Segmentation:
    """Segment a vignette (without its question stem) into the initial statement and atomic facts."""
    sentences = split_sentences(vignette)
    if not sentences:
        return Segmentation("", (), ())
    first = _clauses(sentences[0], settings)
    initial = _finish(first[0]) if first else ""
    initial_facts: tuple[str, ...] = ()
    if first:
        head, rest = _demographics(first[0]) if settings.split_demographics else ("", first[0])
        initial_facts = ((_finish(head),) if head else ()) + tuple(clause_facts(rest, settings))
    facts: list[str] = []
    for clause in first[1:]:
        facts.extend(clause_facts(clause, settings))
    for sentence in sentences[1:]:
        for clause in _clauses(sentence, settings):
            facts.extend(clause_facts(clause, settings))
    return Segmentation(initial, initial_facts, tuple(facts))
