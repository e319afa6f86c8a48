"""The routes of live consultations (``promed view --live``; the engine is :mod:`promed.view.live`)::

    GET  /live                      pick a SynthClinic case and a role (and, as the patient, the doctor)
    POST /live/start                case=<id>&role=doctor|patient&doctor=<name> -> a new consultation (303 to its page)
    GET  /live/s/{sid}              the consultation, in its role
    POST /live/s/{sid}/ask          doctor role: question=<text>
    POST /live/s/{sid}/answer       doctor role: letter=<A..>; the page then shows the verdict and, side by side, the
                                    comparison doctors (greedy-eig, and --doctor) on the same case
    POST /live/s/{sid}/reply        patient role: reply=<text> to the doctor's pending question; when the doctor has
                                    answered, the page shows its answer against the gold and the SIG of its questions

Forms are posted as ``application/x-www-form-urlencoded`` and read with the standard library (no multipart parser
dependency); each POST redirects to the page (post/redirect/get), with a message in the query when an input was
refused. The models run in the thread pool, never on the event loop.
"""

from __future__ import annotations

from typing import Callable
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from promed.view.curves import line_chart_svg
from promed.view.live import YOU, LiveDesk, LiveSession
from promed.view.pages import consultation_view, fact_texts, page_sig_max, shapley_ranking
from promed.view.session import MAX_REPLY_CHARS, REDACTION_NOTE
from promed.view.store import Messages

CASES_LISTED = 100


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body).items()}


def add_live_routes(app: FastAPI, page: Callable[..., HTMLResponse], desk: LiveDesk) -> None:
    """Register the live routes on ``app``; ``page(request, template, msgs, **ctx)`` renders a page."""

    @app.get("/live", response_class=HTMLResponse)
    async def pick(request: Request):
        cases = await run_in_threadpool(desk.cases)
        return page(request, "live_pick.html", Messages(), cases=cases[:CASES_LISTED], total=len(cases),
                    split=desk.split, doctors=desk.clinic.patient_doctors, comparisons=desk.clinic.comparisons)

    @app.post("/live/start")
    async def start(request: Request):
        form = await _form(request)
        session = await run_in_threadpool(desk.start, form.get("case", "").strip(),
                                          form.get("role", "doctor").strip(), form.get("doctor", "").strip())
        return RedirectResponse(f"/live/s/{session.sid}", status_code=303)

    @app.get("/live/s/{sid}", response_class=HTMLResponse)
    async def consult(request: Request, sid: str, msg: str = ""):
        session = desk.session(sid)
        msgs = Messages(problems=[msg] if msg else [])
        build = _doctor_page if session.role == "doctor" else _patient_page
        ctx = await run_in_threadpool(build, desk, session)
        template = "live.html" if session.role == "doctor" else "live_patient.html"
        return page(request, template, msgs, problems_title="Not done", **ctx)

    @app.post("/live/s/{sid}/ask")
    async def ask(request: Request, sid: str):
        form = await _form(request)
        problem = await run_in_threadpool(desk.ask, sid, form.get("question", ""))
        return _back(sid, problem)

    @app.post("/live/s/{sid}/answer")
    async def answer(request: Request, sid: str):
        form = await _form(request)
        problem = await run_in_threadpool(desk.answer, sid, form.get("letter", ""))
        return _back(sid, problem)

    @app.post("/live/s/{sid}/reply")
    async def reply(request: Request, sid: str):
        form = await _form(request)
        problem = await run_in_threadpool(desk.reply, sid, form.get("reply", ""))
        return _back(sid, problem)


def _doctor_page(desk: LiveDesk, session: LiveSession) -> dict:
    """You are the doctor: your consultation; once you answered, the comparison doctors beside it."""
    yours = desk.yours(session)
    chart = desk.posterior(session)
    ctx = {"session": session, "left": desk.questions_left(session), "views": [], "ranking": (), "shapley": None,
           "posterior": line_chart_svg(chart, xlabel="questions asked", y_range=(0.0, 1.0)), "problems": []}
    if session.done:
        named = [(YOU, yours), *desk.others(session)]
        shap = desk.shapley(session.case)
        sig_max = page_sig_max([c for _, c in named])
        ctx["views"] = [consultation_view(name, "", c, fact_texts(c, shap), sig_max) for name, c in named]
        ctx.update(shapley=shap, ranking=shapley_ranking(shap, [c for _, c in named]),
                   problems=session.consult.problems)
    else:
        # only the facts the replies revealed are named; the others stay hidden until the answer
        told = {i: session.case.facts[i].text for t in yours.transcript.turns for i in t.revealed}
        ctx["views"] = [consultation_view(YOU, "", yours, told, page_sig_max([yours]))]
    return ctx


def _patient_page(desk: LiveDesk, session: LiveSession) -> dict:
    """You are the patient: the doctor's consultation (the replies as it read them, the facts each covered), your
    script with the covered facts marked, the replies the guard cut; once it answered, its verdict and SIG."""
    theirs = desk.yours(session)
    consult = session.consult
    texts = {f.id: f.text for f in session.case.facts}  # your script: you know every fact
    covered = {i for n in consult.notes for i in n.covered}
    redactions = [(k, n) for k, n in enumerate(consult.notes, 1) if n.redacted]
    ctx = {"session": session, "doctor": consult.doctor, "left": desk.questions_left(session),
           "pending": consult.pending, "script": consult.script(), "covered": covered, "redactions": redactions,
           "redaction_note": REDACTION_NOTE, "max_reply": MAX_REPLY_CHARS, "ranking": (), "shapley": None,
           "posterior": ""}
    ctx["view"] = consultation_view(consult.doctor, "", theirs, texts, page_sig_max([theirs]))
    if session.done:
        shap = desk.shapley(session.case)
        chart = desk.posterior(session)
        ctx.update(shapley=shap, ranking=shapley_ranking(shap, [theirs]),
                   posterior=line_chart_svg(chart, xlabel="questions asked", y_range=(0.0, 1.0)))
    return ctx


def _back(sid: str, problem: str | None) -> RedirectResponse:
    return RedirectResponse(f"/live/s/{sid}" + (f"?msg={quote(problem)}" if problem else ""), status_code=303)
