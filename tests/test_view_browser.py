"""``promed view`` in a real headless browser: Debian's Chromium driven by Playwright (the system browser, nothing
downloaded). ``.ci/run`` installs both; without them these tests skip and say which is missing.

The viewer runs as the real command (``python -m promed view RUN BAD_RUN --port 0 --live``) over a small
evaluation made by the library, next to a copy of it with damaged files. With ``PROMED_SCREENSHOTS=DIR`` the tests
also save the main pages as PNG files there (``PROMED_SCREENSHOTS=docs/img`` made the ones the README shows).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promed.config import EvalConfig
from promed.data.sources import DataConfig
from promed.eval.evaluate import run_eval

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
SHOTS = os.environ.get("PROMED_SCREENSHOTS")


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (it is in the dev extra: pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    return sync_playwright


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    _playwright()  # skip before spending time on the run
    root = tmp_path_factory.mktemp("browser")
    good = root / "eval"
    run_eval(EvalConfig(data=DataConfig(limit=6), doctors=("reactive", "random-3", "greedy-eig"), out=good),
             progress=False)
    bad = Path(shutil.copytree(good, root / "damaged"))
    path = bad / "transcripts" / "random-3.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["{oops", *lines[1:]]) + "\n")
    (bad / "summary.json").write_text("{broken")
    return good, bad


@pytest.fixture(scope="module")
def server(runs):
    """The viewer as a subprocess; yields its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "promed", "view", str(runs[0]), str(runs[1]), "--port", "0",
                             "--live"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url, seen, deadline = None, [], time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if m := re.search(r"serving on (http://\S+)", line):
            url = m.group(1)
    if url is None:
        proc.kill()
        pytest.fail("promed view did not start:\n" + "".join(seen))
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _playwright()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield pg
    pg.close()


def shot(page, name: str, selector: str = "") -> None:
    """Save a screenshot of the page (or of the element ``selector``) when ``PROMED_SCREENSHOTS`` names a folder."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        (page.locator(selector) if selector else page).screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def column(page, table: str, index: int) -> list[str]:
    return page.locator(f"{table} tbody tr:visible td:nth-child({index})").all_inner_texts()


def test_summary_sorts_then_leads_to_a_consultation(page, server, runs):
    page.goto(server)
    table = "#run-0 table.summary"
    assert column(page, table, 1) == ["reactive", "random-3", "greedy-eig"]
    shot(page, "viewer-summary", "#run-0")
    page.click(f"{table} th:has-text('accuracy')")
    acc = [float(x) for x in column(page, table, 2)]
    assert acc == sorted(acc)
    page.click(f"{table} th:has-text('accuracy')")
    assert [float(x) for x in column(page, table, 2)] == sorted(acc, reverse=True)

    page.click(f"{table} a:has-text('greedy-eig')")
    page.wait_for_url("**/r/0/d/greedy-eig")
    recs = [json.loads(x) for x in (runs[0] / "transcripts" / "greedy-eig.jsonl").read_text().splitlines()]
    assert page.inner_text("#count") == f"showing {len(recs)} of {len(recs)}"
    page.select_option("select[name=verdict]", "wrong")
    wrong = [r["id"] for r in recs if not r["correct"]]
    assert column(page, "#cases", 1) == wrong
    page.select_option("select[name=verdict]", "")
    rec = next(r for r in recs if any(t["new"] for t in r["turns"]))
    page.fill("input[name=text]", rec["id"])
    assert column(page, "#cases", 1) == [rec["id"]]
    shot(page, "viewer-cases")

    page.click(f"#cases a:has-text('{rec['id']}')")
    page.wait_for_url(f"**/c/{rec['id']}")
    posterior = page.locator("figure.posterior img")
    posterior.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=posterior.element_handle())
    turns = page.locator("li.turn")
    assert turns.count() == len(rec["turns"])
    for k, t in enumerate(rec["turns"]):
        assert t["question"] in turns.nth(k).inner_text()
        assert t["reply"] in turns.nth(k).inner_text()
    widths = [page.locator(".sig-bar").nth(k).bounding_box()["width"] for k in range(len(rec["turns"]))]
    best = max(range(len(widths)), key=lambda k: rec["turns"][k]["sig"])
    assert widths[best] > 50 and all(w <= widths[best] + 0.5 for w in widths)
    phis = [float(x) for x in page.locator("table.ranking .phi-value").all_inner_texts()]
    assert phis == sorted(phis, reverse=True) and len(phis) == rec["n_facts"]
    revealed = {i for t in rec["turns"] for i in t["revealed"]}
    assert page.locator("table.ranking tr.found").count() == len(revealed)
    assert all(m.startswith("Q") for m in page.locator("table.ranking tr.found td.mark").all_inner_texts())
    shot(page, "viewer-consultation")

    page.select_option("select[name=b]", "random-3")
    page.click("button:has-text('side by side')")
    page.wait_for_url("**/compare?**")
    assert page.locator("article.consultation").count() == 2
    assert page.locator("article.consultation h2").all_inner_texts()[1].startswith("random-3")
    shot(page, "viewer-compare")


def test_a_damaged_run_shows_its_problems(page, server, runs):
    page.goto(server + "#run-1")
    assert page.locator("#run-0 section.problems").count() == 0  # each run's problems stay in its section
    problems = page.locator("#run-1 section.problems")
    assert problems.is_visible() and "summary.json: not valid JSON" in problems.inner_text()
    page.goto(server + "r/1/d/random-3")
    assert "random-3.jsonl:1: not valid JSON" in page.locator("section.problems").inner_text()
    n = len((runs[1] / "transcripts" / "random-3.jsonl").read_text().splitlines())
    assert page.locator("#cases tbody tr").count() == n - 1


def test_paths_outside_a_run_are_refused(page, server):
    for path in ("r/0/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "r/0/files/..%2f..%2fmanifest.json"):
        resp = page.goto(server + path)
        assert resp.status == 404
        assert "root:" not in page.content()
        assert page.locator("h1.error-title").inner_text().startswith("404")
    assert page.goto(server + "r/0/files/table.md").status == 200


def test_live_consultation_as_the_doctor(page, server):
    page.goto(server)
    page.click("a.live-link")
    page.wait_for_url("**/live")
    page.click("tr:has-text('sc-test-00000') button:has-text('consult')")
    page.wait_for_url("**/live/s/**")
    questions = ("Do you have abdominal pain?", "Do you feel too hot when others are comfortable?",
                 "Do your hands shake or tremble?")
    for k, q in enumerate(questions, 1):
        page.fill("#question", q)
        page.click("#ask button")
        page.wait_for_selector(f"li.turn:nth-child({k})", timeout=60_000)
    turns = page.locator("li.turn")
    assert turns.count() == 3 and "(2 left)" in page.inner_text("#ask")
    for k, q in enumerate(questions):
        assert q in turns.nth(k).locator(".q").inner_text()
    sigs = [float(x.split()[1]) for x in page.locator(".sig-label").all_inner_texts()]
    assert sigs[0] > 0 and page.locator("table.ranking").count() == 0  # no ranking (no hidden facts) before the answer
    assert "She reports abdominal pain." in turns.nth(0).inner_text()
    assert not page.locator("details.posterior svg").is_visible()  # a hint: folded away until asked for
    page.click("details.posterior summary")
    assert page.locator("details.posterior svg polyline").count() == 4
    shot(page, "viewer-live")
    page.click("#answer button:has-text('A. ')")
    page.wait_for_selector(".live-verdict")
    assert "You answered A" in page.inner_text(".live-verdict")
    assert page.locator("article.consultation").count() == 2
    assert page.locator("table.ranking tbody tr").count() > 0
    shot(page, "viewer-live-result")


def test_live_consultation_as_the_patient(page, server):
    page.goto(server + "live")
    page.fill("#start input[name=case]", "sc-test-00000")
    page.select_option("#start select[name=role]", "patient")
    page.select_option("#start select[name=doctor]", "greedy-eig")
    with page.expect_navigation():
        page.click("#start button")
    assert "you are the patient, greedy-eig is the doctor" in page.inner_text("h1")
    assert page.locator(".script li").count() == 10 and page.inner_text("#pending").endswith("?")
    replies = ("Yes, I have had abdominal pain.", "I think it is Graves disease. My heart races sometimes.")
    for reply in replies:
        page.fill("#reply-text", reply)
        with page.expect_navigation():
            page.click("#reply button")
    turns = page.locator("li.turn")
    assert turns.count() == 2
    assert "fact 4: She reports abdominal pain." in turns.nth(0).locator(".revealed").inner_text()
    assert "fact 1: She reports episodes of a racing, pounding heartbeat." in turns.nth(1).inner_text()
    assert "Graves" not in turns.nth(1).locator(".reply").inner_text()  # the guard cut the sentence naming it
    assert "The guard cut 1 of your replies" in page.inner_text(".redactions")
    assert [" ".join(x.split()) for x in page.locator(".script li.covered").all_inner_texts()] == [
        "She reports episodes of a racing, pounding heartbeat. covered", "She reports abdominal pain. covered"]
    shot(page, "viewer-live-patient")
    for _ in range(5):  # reply until the doctor answers (its budget is 5 questions)
        if page.locator("#reply").count() == 0:
            break
        page.fill("#reply-text", "No, I have not noticed that.")
        with page.expect_navigation():
            page.click("#reply button")
    verdict = page.inner_text(".live-verdict")
    assert "greedy-eig answered" in verdict and "gold: A" in verdict
    n = page.locator("li.turn").count()
    assert page.locator(".sig-label").count() == n and page.locator("table.ranking tbody tr").count() == 10
