"""The viewer's web app: routes that turn run files into pages (:func:`create_app`).

Why FastAPI (on Starlette) with Jinja2 templates rather than a library made for ML demos (Gradio, Streamlit): the
pages are plain documents over files, which templates render in a few milliseconds with no client framework; every
asset is a file of this package served by the app itself (the viewer works offline, nothing comes from a CDN);
we decide exactly which paths are served (only the given runs, through :func:`promed.view.files.confined`); and
FastAPI's ``TestClient`` exercises every route in-process without a browser. Demo frameworks bring their own
front-end bundle, a websocket protocol and an event loop model, for little we would use.

Routes (``rid`` is a run's key, ``key`` a doctor's transcript file stem)::

    /                                       every run: the doctors' summary (sortable), the run's files
    /r/{rid}/d/{key}                        a doctor's consultations, with filters
    /r/{rid}/d/{key}/c/{case}?sample=k      one consultation beside the case's facts ranked by Shapley value
    /r/{rid}/posterior.svg?key=..&case=..   on SynthClinic: the exact posterior of each option after each question
    /r/{rid}/compare?case=...&a=..&b=..     two doctors on the same case, side by side
    /r/{rid}/curves                         training curves (SVG drawn here)
    /r/{rid}/files/{path}                   a file of the run (figures, tables), confined to the run's directory
    /static/{path}                          this package's CSS and JavaScript
    /live...                                with ``live``: consultations in the browser (promed.view.live_routes)

Every failure becomes a page: an unknown run, doctor, case or file is a 404 page naming it; problems in the files
are listed on the page that read them; anything unexpected is a 500 page with the error, never a blank page.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from promed.sig.cache import ShapleyRecord
from promed.view.consultations import Consultation
from promed.view.curves import find_log, line_chart_svg
from promed.view.files import confined
from promed.view.pages import RankedFact, consultation_view, fact_texts, page_sig_max, shapley_ranking
from promed.view.posterior import posterior_chart, synthclinic_source
from promed.view.runs import RunDir
from promed.view.store import Messages, NotFound, RunStore

if TYPE_CHECKING:  # the live engine (data, patient, doctors) is imported only when live consultations are on
    from promed.view.live import LiveDesk

HERE = Path(__file__).resolve().parent
LOOPBACK_HOSTS = ["127.0.0.1", "localhost"]


def create_app(runs: list[RunDir], allowed_hosts: list[str] | None = None, live: LiveDesk | None = None) -> FastAPI:
    """The app over ``runs``. ``allowed_hosts``: the ``Host`` headers accepted (default: loopback names only, which
    stops a web page from reaching the viewer through DNS rebinding); ``["*"]`` when serving the network.
    ``live``: also serve live consultations (:mod:`promed.view.live_routes`)."""
    store = RunStore(runs)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["fmt"] = lambda x, nd=3: "-" if x is None else f"{x:.{nd}f}"
    for name in templates.env.list_templates():  # compiled now: a page's first view does not pay for it
        templates.env.get_template(name)
    app = FastAPI(title="ProMed viewer", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK_HOSTS)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page(request: Request, name: str, msgs: Messages, status: int = 200, **ctx) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"runs": store.runs, "live": live is not None,
                                                          "msgs": msgs, **ctx}, status_code=status)

    def error_page(request: Request, status: int, message: str) -> HTMLResponse:
        try:
            return page(request, "error.html", Messages(), status, code=status, message=message)
        except Exception:  # noqa: BLE001 - the templates themselves failed: still say what happened
            return PlainTextResponse(f"{status}: {message}", status_code=status)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, err: NotFound):
        return error_page(request, 404, str(err))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, err: RequestValidationError):
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in err.errors())
        return error_page(request, 400, f"bad request: {where}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        detail = err.detail if err.status_code != 404 else f"no page at {request.url.path}"
        return error_page(request, err.status_code, str(detail))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception):
        return error_page(request, 500, f"internal error while building this page: {type(err).__name__}: {err}")

    @app.get("/", response_class=HTMLResponse)
    def summary(request: Request):
        sections = []
        for run in store.runs:  # each run's problems are shown in its own section
            msgs = Messages()
            rows, other = store.summary(run, msgs)
            sections.append({"run": run, "stage": store.stage(run, msgs), "rows": rows, "other": other,
                             "files": store.files(run), "curves": find_log(run.path) is not None,
                             "shapley": run.file("shapley.jsonl").is_file(), "msgs": msgs})
        return page(request, "summary.html", Messages(), sections=sections)

    @app.get("/r/{rid}", include_in_schema=False)
    def run_home(rid: str):
        store.run(rid)
        return RedirectResponse(f"/#run-{rid}")

    @app.get("/r/{rid}/d/{key}", response_class=HTMLResponse)
    def cases(request: Request, rid: str, key: str):
        run, msgs = store.run(rid), Messages()
        recs = store.records(run, key, msgs)
        cons = list(recs.consultations.values())
        max_q = max([c.transcript.n_questions for c in cons] + [0])
        return page(request, "cases.html", msgs, run=run, key=key, doctor=recs.name, cons=cons, max_q=max_q,
                    samples=recs.has_samples)

    @app.get("/r/{rid}/d/{key}/c/{case_id:path}", response_class=HTMLResponse)
    def consultation(request: Request, rid: str, key: str, case_id: str, sample: int = 0):
        run, msgs = store.run(rid), Messages()
        c = store.consultation(run, key, case_id, sample, msgs)
        recs = store.records(run, key, msgs)
        shap = store.shapley(run, msgs).records.get(case_id)
        view = consultation_view(recs.name, key, c, fact_texts(c, shap), page_sig_max([c]))
        others = [k for k in store.doctor_files(run) if k != key]
        posterior = (f"/r/{rid}/posterior.svg?{urlencode({'key': key, 'case': case_id, 'sample': sample})}"
                     if synthclinic_source(store.manifest(run, Messages())) else "")
        return page(request, "consultation.html", msgs, run=run, views=[view], shapley=_usable(shap, c, msgs),
                    ranking=_ranking(shap, [c]), others=others, sample=sample, posterior=posterior,
                    source=f"{recs.path.relative_to(run.path)}, line {c.line}")

    @app.get("/r/{rid}/posterior.svg")
    def posterior_svg(rid: str, key: str, case: str, sample: int = 0):
        run, msgs = store.run(rid), Messages()
        c = store.consultation(run, key, case, sample, msgs)
        chart = posterior_chart(store.synthclinic_case(run, c), c.transcript, store.synthclinic.scorer)
        return Response(line_chart_svg(chart, xlabel="questions asked", y_range=(0.0, 1.0)),
                        media_type="image/svg+xml")

    @app.get("/r/{rid}/compare", response_class=HTMLResponse)
    def compare(request: Request, rid: str, case: str, a: str, b: str, sample: int = 0):
        run, msgs = store.run(rid), Messages()
        pair = [store.consultation(run, k, case, sample, msgs) for k in (a, b)]
        shap = store.shapley(run, msgs).records.get(case)
        sig_max = page_sig_max(pair)
        views = [consultation_view(store.records(run, k, msgs).name, k, c, fact_texts(c, shap), sig_max)
                 for k, c in zip((a, b), pair)]
        return page(request, "compare.html", msgs, run=run, views=views, shapley=_usable(shap, pair[0], msgs),
                    ranking=_ranking(shap, pair), doctors=list(store.doctor_files(run)), case=case,
                    sample=sample)

    @app.get("/r/{rid}/curves", response_class=HTMLResponse)
    def curves(request: Request, rid: str):
        run, msgs = store.run(rid), Messages()
        found = store.curves(run, msgs)
        if found is None and not msgs.problems:
            msgs.note(f"{run.label}: no training log (train_log.json, log.jsonl or "
                              "checkpoints/*/trainer_state.json)")
        svgs = [line_chart_svg(ch) for ch in found.charts] if found else []
        return page(request, "curves.html", msgs, run=run, found=found, svgs=svgs)

    @app.get("/r/{rid}/files/{path:path}")
    def run_file(rid: str, path: str):
        run = store.run(rid)
        target = confined(run.path, path)
        if target is None:
            raise NotFound(f"no file {path!r} in run {run.label} (only files inside the run directory are served)")
        return FileResponse(target)

    if live is not None:
        from promed.view.live_routes import add_live_routes

        add_live_routes(app, page, live)
    return app


def _usable(shap: ShapleyRecord | None, c: Consultation, msgs: Messages) -> ShapleyRecord | None:
    """The Shapley record if it belongs to this case (same number of facts), else ``None`` with a note why."""
    if shap is None:
        msgs.note(f"no Shapley values for case {c.transcript.case_id!r} in this run or in a given run with the "
                          "same data (promed eval computes them only for cases where a question revealed a fact; "
                          "promed sig computes them for every case: pass its directory too)")
        return None
    if shap.n_facts != c.n_facts:
        msgs.problem(f"the Shapley record of case {c.transcript.case_id!r} has {shap.n_facts} facts, the "
                             f"consultation's case {c.n_facts}: not the same case; ranking not shown")
        return None
    return shap


def _ranking(shap: ShapleyRecord | None, consultations: list[Consultation]) -> tuple[RankedFact, ...]:
    if shap is None or any(shap.n_facts != c.n_facts for c in consultations):
        return ()
    return shapley_ranking(shap, consultations)
