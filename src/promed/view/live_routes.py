"""The routes of live consultations (``promed view --live``; the engine is :mod:`promed.view.live`)::

    GET  /live                      pick a SynthClinic case
    POST /live/start                case=<id> -> a new consultation (303 to its page)
    GET  /live/s/{sid}              the consultation: your questions, the replies, the facts and SIG they earned
    POST /live/s/{sid}/ask          question=<text>
    POST /live/s/{sid}/answer       letter=<A..>; the page then shows the verdict and greedy-eig on the same case

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
from promed.view.live import BASELINE, YOU, LiveDesk
from promed.view.pages import consultation_view, fact_texts, page_sig_max, shapley_ranking
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
                    split=desk.split)

    @app.post("/live/start")
    async def start(request: Request):
        form = await _form(request)
        session = await run_in_threadpool(desk.start, form.get("case", "").strip())
        return RedirectResponse(f"/live/s/{session.sid}", status_code=303)

    @app.get("/live/s/{sid}", response_class=HTMLResponse)
    async def consult(request: Request, sid: str, msg: str = ""):
        session = desk.session(sid)
        msgs = Messages(problems=[msg] if msg else [])
        yours = await run_in_threadpool(desk.yours, session)
        chart = await run_in_threadpool(desk.posterior, session)
        ctx = {"session": session, "left": desk.questions_left(session), "views": [], "ranking": (),
               "shapley": None, "posterior": line_chart_svg(chart, xlabel="questions asked", y_range=(0.0, 1.0))}
        if session.done:
            theirs = await run_in_threadpool(desk.baseline, session)
            pair = [c for c in (yours, theirs) if c is not None]
            shap = await run_in_threadpool(desk.shapley, session.case)
            sig_max = page_sig_max(pair)
            ctx["views"] = [consultation_view(name, "", c, fact_texts(c, shap), sig_max)
                            for name, c in zip((YOU, BASELINE), pair)]
            ctx.update(shapley=shap, ranking=shapley_ranking(shap, pair))
        else:
            # only the facts the replies revealed are named; the others stay hidden until the answer
            told = {i: session.case.facts[i].text for t in yours.transcript.turns for i in t.revealed}
            ctx["views"] = [consultation_view(YOU, "", yours, told, page_sig_max([yours]))]
        return page(request, "live.html", msgs, problems_title="Not done", **ctx)

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


def _back(sid: str, problem: str | None) -> RedirectResponse:
    return RedirectResponse(f"/live/s/{sid}" + (f"?msg={quote(problem)}" if problem else ""), status_code=303)
