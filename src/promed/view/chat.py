"""``promed chat``: a live consultation in the terminal, in either role (rich output; works over SSH, no browser).

* ``--role doctor`` (the default): you see the initial statement, the question and the options; type a question
  (the simulated patient replies with the facts it reveals and the question's SIG), ``posterior`` to see
  SynthClinic's exact posterior of each option after each question (a hint), or ``answer C``. Then your result is
  set against greedy-eig's, and ``--doctor``'s if it is another, on the same case.
* ``--role patient``: a doctor (``--doctor``, default greedy-eig) asks; you reply in your own words from your script
  (the case's facts, shown at the start; ``script`` shows it again). Each reply shows the facts of your script it
  covered; a sentence naming an option or an answer letter is removed before the doctor reads it, and the reply
  says so. When the doctor answers: its answer against the gold, and the SIG of each of its questions.

``quit`` (or end of input: Ctrl-D) ends the consultation cleanly, ``help`` lists the commands. The session logic is
:mod:`promed.view.session`, the same as the browser's; this module only reads lines and prints. The input and output
streams are parameters (:func:`run_chat`), so a test drives a whole consultation through a string.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from promed.types import Case, Transcript
from promed.view.config import ChatConfig
from promed.view.posterior import posterior_chart
from promed.view.session import REDACTION_NOTE, YOU, Clinic, DoctorSession, PatientSession, Refused

QUIT = frozenset({"quit", "exit", "q", ":q"})
_ANSWER = re.compile(r"^\s*answer\s*[:=]?\s*\(?([A-Za-z])\)?\.?\s*$", re.IGNORECASE)
DOCTOR_HELP = ("Type a question for the patient; 'answer C' to give your final answer; 'posterior' for the exact "
               "posterior of each option so far (a hint); 'quit' to stop.")
PATIENT_HELP = ("Type your reply to the doctor's question, in full sentences (the facts a reply covers are found from "
                "the reply alone, never from the question: say \"Yes, my belly hurts\", not just \"Yes\"); "
                "'script' shows your script again; 'quit' to stop. Do not name an option or an answer letter: "
                "such sentences are removed before the doctor reads your reply.")


def run_chat(cfg: ChatConfig, inp: TextIO | None = None, out: TextIO | None = None, clinic: Clinic | None = None,
             width: int | None = None) -> DoctorSession | PatientSession:
    """One consultation in ``cfg.role``, reading lines from ``inp`` (default stdin) and printing to ``out`` (default
    stdout). ``clinic``: reuse built models (its split, doctor and seed are then the clinic's). Returns the session,
    finished or left unfinished by ``quit`` / end of input."""
    clinic = clinic or Clinic(cfg.split, cfg.doctor, seed=cfg.seed)
    console = Console(file=out or sys.stdout, highlight=False, width=width)
    chat = TerminalChat(console, inp or sys.stdin)
    if cfg.role == "doctor":
        for name in clinic.comparisons:  # a doctor that cannot be built fails now, not after the consultation
            clinic.entry(name)
        return chat.as_doctor(clinic.as_doctor(cfg.case))
    return chat.as_patient(clinic.as_patient(cfg.case, cfg.doctor))


class TerminalChat:
    """Reads commands, drives a session, prints what happened."""

    def __init__(self, console: Console, inp: TextIO):
        self.console, self.inp = console, inp

    # ---- the two roles ------------------------------------------------------------------------------------------

    def as_doctor(self, s: DoctorSession) -> DoctorSession:
        self.heading(f"Case {s.case.id}: you are the doctor ({s.questions_left} questions)")
        self.show_case(s.case)
        self.say(("How to: ", "bold"), DOCTOR_HELP)
        while not s.done:
            line = self.read(f"you ({s.questions_left} left)> ")
            if line is None or line.strip().lower() in QUIT:
                return self.left(s)
            cmd = line.strip()
            if not cmd:
                continue
            if cmd.lower() in ("help", "?"):
                self.say(DOCTOR_HELP)
                continue
            if cmd.lower() == "posterior":
                self.posterior(s, s.transcript(), gold=False)
                continue
            try:
                if m := _ANSWER.match(cmd):
                    s.answer(m.group(1))
                    break
                turn = s.ask(cmd)
            except Refused as err:
                self.say((f"not asked: {err}", "red"))
                continue
            self.say(("Patient: ", "bold"), turn.reply)
            self.facts(s.case, turn.revealed, turn.new, "revealed", "no fact revealed")
            self.say((f"SIG {turn.sig:.3f}", "yellow"), f"  ({s.questions_left} questions left)")
        self.doctor_result(s)
        return s

    def as_patient(self, s: PatientSession) -> PatientSession:
        self.heading(f"Case {s.case.id}: you are the patient; {s.doctor} is the doctor")
        self.say("The doctor sees:")
        self.show_case(s.case)
        self.script(s)
        self.say(("How to: ", "bold"), PATIENT_HELP)
        while not s.done:
            self.say((f"{s.doctor}: ", "bold cyan"), s.pending or "")
            while True:
                line = self.read("you> ")
                if line is None or line.strip().lower() in QUIT:
                    return self.left(s)
                cmd = line.strip()
                if cmd.lower() in ("help", "?"):
                    self.say(PATIENT_HELP)
                elif cmd.lower() == "script":
                    self.script(s)
                elif cmd:
                    break
            try:
                note = s.reply(cmd)
            except Refused as err:
                self.say((f"not taken: {err}", "red"))
                continue
            if note.redacted:
                self.say(("the guard cut your reply: ", "red"), f"{REDACTION_NOTE}; the doctor read: \"{note.seen}\"")
            self.facts(s.case, note.covered, None, "covered", "covered no fact of your script")
        self.patient_result(s)
        return s

    # ---- what is printed ------------------------------------------------------------------------------------------

    def doctor_result(self, s: DoctorSession) -> None:
        case, yours = s.case, s.transcript()
        self.heading("Result")
        self.verdict("You", yours, case)
        rows = [(YOU, yours), *s.others.items()]
        table = Table(title=f"{case.id}: you and the other doctors on the same case")
        for col in ("doctor", "answer", "verdict", "questions", "facts found", "total SIG"):
            table.add_column(col)
        for name, tr in rows:
            table.add_row(name, tr.answer or "-", "right" if tr.correct else "wrong", str(tr.n_questions),
                          str(len(tr.known)), f"{sum(t.sig or 0.0 for t in tr.turns):.3f}")
        self.console.print(table)
        for name, tr in s.others.items():
            self.turns_table(f"{name}'s questions", tr, case)
        for problem in s.problems:
            self.say((problem, "red"))
        self.posterior(s, yours, gold=True)

    def patient_result(self, s: PatientSession) -> None:
        tr = s.transcript()
        self.heading("Result")
        self.verdict(s.doctor, tr, s.case, after=True)
        if tr.invalid:
            self.say((f"{s.doctor} wrote {tr.invalid} unreadable output(s) (neither ASK: nor ANSWER:)", "red"))
        if tr.turns:
            self.turns_table(f"{s.doctor}'s questions and the facts your replies covered", tr, s.case)

    def verdict(self, who: str, tr: Transcript, case: Case, after: bool = False) -> None:
        forced = " (forced by the environment)" if tr.forced else ""
        asked = f" after {tr.n_questions} questions" if after else ""
        self.say((f"{who} answered {tr.answer} ({_option(case, tr.answer)}){forced}{asked}: ", "bold"),
                 ("right" if tr.correct else "wrong", "green" if tr.correct else "red"),
                 f". Gold: {case.answer} ({_option(case, case.answer)}).")

    def turns_table(self, title: str, tr: Transcript, case: Case) -> None:
        table = Table(title=title)
        for col in ("Q", "question", "reply (as the doctor read it)", "facts", "SIG"):
            table.add_column(col)
        for k, t in enumerate(tr.turns, 1):
            facts = "; ".join(f"{i}: {case.facts[i].text}" for i in t.revealed) or "-"
            table.add_row(f"Q{k}", t.question, t.reply, facts, f"{t.sig or 0.0:.3f}")
        self.console.print(table)

    def posterior(self, s: DoctorSession, tr: Transcript, gold: bool) -> None:
        """SynthClinic's exact posterior of each option after 0, 1, ... questions (a small table)."""
        chart = posterior_chart(s.case, tr, s.clinic.scorer(), mark_gold=gold)
        table = Table(title="exact posterior of each option after each question")
        table.add_column("after")
        for series in chart.series:
            table.add_column(series.name, justify="right")
        for k in range(len(chart.series[0].points)):
            table.add_row(f"Q{k}" if k else "start", *(f"{s.points[k][1]:.3f}" for s in chart.series))
        self.console.print(table)

    def script(self, s: PatientSession) -> None:
        table = Table(title="Your script (what is true of you; the doctor does not see it)")
        table.add_column("fact")
        table.add_column("text")
        for line in s.script():
            table.add_row(str(line.id), line.text + ("" if line.sayable else "  (names an option: never revealed)"))
        self.console.print(table)

    def show_case(self, case: Case) -> None:
        self.say(("Patient: ", "bold"), case.initial)
        self.say((case.question, "bold"))
        for o in case.options:
            self.say(f"  {o.letter}. {o.text}")

    def facts(self, case: Case, ids, new, verb: str, none: str) -> None:
        if not ids:
            self.say((f"  {none}", "dim"))
        for i in ids:
            known = "" if new is None or i in new else " (known already)"
            self.say((f"  {verb} ", "green"), f"fact {i}: {case.facts[i].text}{known}")

    def left(self, s: DoctorSession | PatientSession) -> DoctorSession | PatientSession:
        self.say(("consultation left unfinished", "dim"))
        return s

    # ---- plumbing ---------------------------------------------------------------------------------------------------

    def heading(self, text: str) -> None:
        self.console.rule(Text(text, style="bold"))

    def say(self, *parts) -> None:
        """One line; parts are plain strings or (text, style) pairs, never parsed as markup (replies are text)."""
        self.console.print(Text.assemble(*parts), soft_wrap=True)

    def read(self, prompt: str) -> str | None:
        """A line from the input, ``None`` at its end (Ctrl-D)."""
        try:
            if self.inp is sys.stdin and sys.stdin.isatty():
                return self.console.input(prompt)  # line editing where the terminal offers it
            self.console.print(prompt, end="", markup=False, highlight=False)
            line = self.inp.readline()
        except (EOFError, KeyboardInterrupt):  # Ctrl-D, Ctrl-C: end cleanly
            line = ""
        if not line:
            self.console.print()
            return None
        line = line.rstrip("\r\n")
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)  # echoed: piped input shows too
        return line


def _option(case: Case, letter: str | None) -> str:
    return next((o.text for o in case.options if o.letter == letter), "none")
