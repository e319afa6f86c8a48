"""``promed view`` without a browser: every route through FastAPI's TestClient over a small real evaluation run.

The run is made once per module by the library (:func:`promed.eval.evaluate.run_eval`, six SynthClinic cases, three
cheap doctors, SIG on); tests that damage files work on a copy. What is checked: the numbers the pages show are the
run's (summary.json, the transcripts, the Shapley cache), the viewer never writes into a run, a torn or malformed
file is a message and not a crash, and nothing outside a run directory is ever served.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from promed.cli import app as cli_app
from promed.config import EvalConfig
from promed.data.sources import DataConfig
from promed.doctor.policy import case_message
from promed.eval.evaluate import run_eval
from promed.types import DoctorView
from promed.view.app import create_app
from promed.view.consultations import parse_case_message
from promed.view.curves import Chart, Series, charts_from_history, line_chart_svg
from promed.patient.guard import REFUSAL, adversarial_questions, is_safe
from promed.view.files import confined, read_jsonl_lines
from promed.view.live import LiveDesk
from promed.view.session import REDACTION_NOTE, Clinic
from promed.view.posterior import posterior_chart
from promed.view.runs import discover
from promed.view.store import Messages, RunStore
from promed.view.server import bind, is_loopback

DOCTORS = ("reactive", "random-3", "greedy-eig")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("view") / "eval"
    run_eval(EvalConfig(data=DataConfig(limit=6), doctors=DOCTORS, out=out), progress=False)
    return out


@pytest.fixture
def copy(run_dir, tmp_path) -> Path:
    """A copy of the run that a test may damage."""
    return Path(shutil.copytree(run_dir, tmp_path / "eval"))


def client(*dirs: Path) -> TestClient:
    return TestClient(create_app(discover(list(dirs))), base_url="http://127.0.0.1", raise_server_exceptions=False)


def text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def records(run: Path, doctor: str) -> list[dict]:
    return [json.loads(x) for x in (run / "transcripts" / f"{doctor}.jsonl").read_text().splitlines()]


def asking_record(run: Path) -> dict:
    """A greedy-eig consultation in which some question revealed a fact (so it has Shapley values and SIG)."""
    return next(r for r in records(run, "greedy-eig") if any(t["new"] for t in r["turns"]))


# ---- pages over a finished run ------------------------------------------------------------------------------------


def test_summary_shows_each_doctor_from_summary_json(run_dir):
    r = client(run_dir).get("/")
    assert r.status_code == 200
    summary = json.loads((run_dir / "summary.json").read_text())
    page = text(r.text)
    for name in DOCTORS:
        m = summary[name]
        assert f'href="/r/0/d/{name}"' in r.text
        assert f"{name} {m['accuracy']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}] {m['mean_questions']:.2f}" in page
        assert f"{m['mean_sig']:.3f}" in page
    assert "Problems" not in page and 'class="sortable summary"' in r.text
    assert 'src="/static/view.js"' in r.text and "http" not in r.text.split("<body>")[0]  # nothing from a CDN


def test_static_assets_are_served_locally(run_dir):
    c = client(run_dir)
    assert "makeSortable" in c.get("/static/view.js").text
    assert ".sig-bar" in c.get("/static/style.css").text


def test_case_list_has_every_consultation_with_filter_data(run_dir):
    r = client(run_dir).get("/r/0/d/greedy-eig")
    assert r.status_code == 200
    recs = records(run_dir, "greedy-eig")
    rows = re.findall(r'<tr data-correct="(\w+)" data-questions="(\d+)"', r.text)
    assert [(("right" if x["correct"] else "wrong"), str(len(x["turns"]))) for x in recs] == rows
    for x in recs:
        assert f'/r/0/d/greedy-eig/c/{x["id"]}"' in r.text


def test_consultation_shows_turns_sig_bars_and_shapley_ranking(run_dir):
    rec = asking_record(run_dir)
    r = client(run_dir).get(f"/r/0/d/greedy-eig/c/{rec['id']}")
    assert r.status_code == 200
    page = text(r.text)
    for k, t in enumerate(rec["turns"], 1):
        assert f"Q{k} {t['question']}" in page and t["reply"] in page
        assert f"SIG {t['sig']:.3f}" in page
    bars = [float(w) for w in re.findall(r'class="sig-bar" style="width: ([\d.]+)%"', r.text)]
    assert len(bars) == len(rec["turns"]) and max(bars) == pytest.approx(100.0)
    shap = next(json.loads(x) for x in (run_dir / "shapley.jsonl").read_text().splitlines()
                if json.loads(x)["id"] == rec["id"])
    ranked = [int(i) for i in re.findall(r'<tr class="[^"]*" data-fact="(\d+)"', r.text)]
    assert ranked == sorted(range(len(shap["facts"])), key=lambda i: -shap["phi"][i])
    found = {i for t in rec["turns"] for i in t["revealed"]}
    marked = {int(i) for i in re.findall(r'<tr class="found" data-fact="(\d+)"', r.text)}
    assert marked == found
    assert f"gold: {rec['gold']}" in page
    line = 1 + [x["id"] for x in records(run_dir, "greedy-eig")].index(rec["id"])
    assert f"Record: transcripts/greedy-eig.jsonl, line {line} of {run_dir}." in page


def test_posterior_chart_on_synthclinic(run_dir, copy):
    rec = asking_record(run_dir)
    c = client(run_dir)
    page = c.get(f"/r/0/d/greedy-eig/c/{rec['id']}").text
    src = unescape(re.search(r'<img src="([^"]+)"', page).group(1))
    svg = c.get(src)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.count("<polyline") == 4 and "(gold)" in svg.text
    # the numbers: one point per question plus the start, a distribution over the options at each point, and
    # the last point is the exact posterior given every fact the consultation revealed
    store = RunStore(discover([run_dir]))
    run = store.runs[0]
    cons = store.consultation(run, "greedy-eig", rec["id"], 0, Messages())
    case = store.synthclinic_case(run, cons)
    chart = posterior_chart(case, cons.transcript, store.synthclinic.scorer)
    assert all(len(s.points) == len(rec["turns"]) + 1 for s in chart.series)
    for k in range(len(rec["turns"]) + 1):
        assert sum(s.points[k][1] for s in chart.series) == pytest.approx(1.0)
    known = sorted({i for t in rec["turns"] for i in t["revealed"]})
    final = store.synthclinic.scorer.probs([case.query(known)])[0]
    assert [s.points[-1][1] for s in chart.series] == pytest.approx(list(final))
    # a run over other data has no chart
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["config"]["data"]["data"] = "cases.jsonl"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert "<img" not in client(copy).get(f"/r/0/d/greedy-eig/c/{rec['id']}").text
    assert client(copy).get(src).status_code == 404


def test_compare_puts_two_doctors_on_one_case(run_dir):
    rec = asking_record(run_dir)
    r = client(run_dir).get(f"/r/0/compare?case={rec['id']}&a=greedy-eig&b=random-3")
    assert r.status_code == 200
    assert r.text.count('<article class="consultation"') == 2
    assert 'data-doctor="greedy-eig"' in r.text and 'data-doctor="random-3"' in r.text
    header = r.text.split('<table class="ranking">')[1].split("</thead>")[0]
    assert "greedy-eig" in header and "random-3" in header


def test_run_files_are_served_but_nothing_outside_the_run(run_dir, tmp_path):
    c = client(run_dir)
    assert c.get("/r/0/files/table.md").text == (run_dir / "table.md").read_text()
    outside = tmp_path / "secret.txt"
    outside.write_text("TOP-SECRET")
    (run_dir / "link.txt").symlink_to(outside)
    try:
        for path in ("%2e%2e/%2e%2e/etc/passwd", "..%2fmanifest.json", "transcripts/%2e%2e/%2e%2e/secret.txt",
                     "%2fetc%2fpasswd", "link.txt", "transcripts"):
            r = c.get(f"/r/0/files/{path}")
            assert r.status_code == 404, path
            assert "TOP-SECRET" not in r.text and "root:" not in r.text
            assert "only files inside the run directory are served" in text(r.text)
    finally:
        (run_dir / "link.txt").unlink()
    assert confined(run_dir / "transcripts", "../table.md") is None  # exists, but outside that root
    assert confined(run_dir, "/etc/passwd") is None and confined(run_dir, "") is None
    assert confined(run_dir, "transcripts/../table.md") == (run_dir / "table.md").resolve()


def test_unknown_things_are_404_pages_naming_them(run_dir):
    c = client(run_dir)
    for url, words in (("/r/7/curves", "no run '7'"), ("/r/0/d/nobody", "no transcripts for doctor 'nobody'"),
                       ("/r/0/d/greedy-eig/c/no-such-case", "no consultation of case 'no-such-case'"),
                       ("/nowhere", "no page at /nowhere")):
        r = c.get(url)
        assert r.status_code == 404 and words in text(r.text) and "<html" in r.text
    r = c.get("/r/0/d/greedy-eig/c/x?sample=abc")
    assert r.status_code == 400 and "sample" in text(r.text)


def test_a_bug_is_a_500_page_not_a_blank_one(run_dir, monkeypatch):
    import promed.view.app as view_app

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(view_app, "consultation_view", broken)
    rec = asking_record(run_dir)
    r = client(run_dir).get(f"/r/0/d/greedy-eig/c/{rec['id']}")
    assert r.status_code == 500 and "internal error while building this page: RuntimeError: boom" in text(r.text)


def test_foreign_host_header_is_refused(run_dir):
    c = TestClient(create_app(discover([run_dir])), base_url="http://evil.example")
    assert c.get("/").status_code == 400


# ---- runs still being written, damaged runs ------------------------------------------------------------------------


def test_torn_last_line_is_skipped_and_the_file_is_left_alone(copy):
    path = copy / "transcripts" / "greedy-eig.jsonl"
    n = len(records(copy, "greedy-eig"))
    (copy / "summary.json").unlink()  # a run still being written has no summary yet
    torn = path.read_text() + '{"id": "sc-test-99999", "turns": [{"quest'
    path.write_text(torn)
    c = client(copy)
    r = c.get("/r/0/d/greedy-eig")
    assert r.status_code == 200 and len(re.findall(r"<tr data-correct", r.text)) == n
    assert "last line is incomplete" in text(r.text)
    assert path.read_text() == torn  # the viewer never repairs (writes) a run's files
    assert "transcripts so far" in text(c.get("/").text)
    (copy / "transcripts" / "random-3.jsonl").unlink()  # a doctor the run has not reached yet
    assert "random-3 no complete record yet no transcripts yet" in text(c.get("/").text)
    # the record completes: the next request shows it
    path.write_text(torn.rsplit("\n", 1)[0] + "\n" + json.dumps({**records(copy, "reactive")[0], "id": "late"}) + "\n")
    assert len(re.findall(r"<tr data-correct", c.get("/r/0/d/greedy-eig").text)) == n + 1


def test_sampled_groups_are_reachable_and_keyed_by_sample(copy):
    recs = records(copy, "random-3")
    lines = [json.dumps({**r, "sample": k}) for r in recs for k in (0, 1)]
    (copy / "transcripts" / "random-3.samples.jsonl").write_text("\n".join(lines) + "\n")
    c = client(copy)
    assert 'href="/r/0/d/random-3.samples">samples</a>' in c.get("/").text
    r = c.get("/r/0/d/random-3.samples")
    assert len(re.findall(r"<tr data-correct", r.text)) == 2 * len(recs)
    assert f'/c/{recs[0]["id"]}?sample=1"' in r.text
    assert c.get(f"/r/0/d/random-3.samples/c/{recs[0]['id']}?sample=1").status_code == 200
    assert c.get(f"/r/0/d/random-3.samples/c/{recs[0]['id']}?sample=2").status_code == 404


def test_summary_without_summary_json_is_computed_like_promed_eval(run_dir, copy):
    (copy / "summary.json").unlink()
    page = text(client(copy).get("/").text)
    summary = json.loads((run_dir / "summary.json").read_text())
    for name in DOCTORS:
        m = summary[name]
        assert (f"{name} {m['accuracy']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}] {m['mean_questions']:.2f} "
                f"{m['fact_recall']:.3f} {m['mean_sig']:.3f} {m['total_sig']:.3f}") in page


def test_malformed_lines_and_files_are_messages_not_crashes(copy):
    path = copy / "transcripts" / "random-3.jsonl"
    lines = path.read_text().splitlines()
    bad = json.loads(lines[1])
    del bad["turns"]
    lines[0] = "{not json"
    lines[1] = json.dumps(bad)
    path.write_text("\n".join(lines) + "\n")
    (copy / "summary.json").write_text("{broken")
    (copy / "shapley.jsonl").write_text('{"id": "x"}\n')
    c = client(copy)
    summary = c.get("/")
    assert summary.status_code == 200
    assert f"{copy / 'summary.json'}: not valid JSON" in text(summary.text)
    r = c.get("/r/0/d/random-3")
    assert r.status_code == 200
    page = text(r.text)
    assert f"{path}:1: not valid JSON" in page and f"{path}:2: missing field 'turns'" in page
    assert len(re.findall(r"<tr data-correct", r.text)) == len(lines) - 2
    cid = json.loads(lines[2])["id"]
    r = c.get(f"/r/0/d/random-3/c/{cid}")
    assert r.status_code == 200 and "shapley.jsonl:1: Shapley record 'x': missing field" in text(r.text)
    assert text(r.text).count(f"{path}:1: not valid JSON") == 1  # said once, though the page reads the file twice


def test_a_file_that_is_not_text_is_named(copy):
    (copy / "transcripts" / "reactive.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    r = client(copy).get("/r/0/d/reactive")
    assert r.status_code == 200 and "reactive.jsonl: not UTF-8 text" in text(r.text)


def test_missing_transcripts_and_shapley_are_explained(copy):
    (copy / "shapley.jsonl").unlink()
    rec = asking_record(copy)
    r = client(copy).get(f"/r/0/d/greedy-eig/c/{rec['id']}")
    assert r.status_code == 200 and "no Shapley values for case" in text(r.text)
    shutil.rmtree(copy / "transcripts")
    page = text(client(copy).get("/").text)
    assert "greedy-eig" in page  # the summary still lists the doctors; their rows just have no link


def test_shapley_values_come_from_a_sig_run_over_the_same_data(run_dir, copy, tmp_path):
    sig = tmp_path / "sig"
    sig.mkdir()
    (copy / "shapley.jsonl").rename(sig / "shapley.jsonl")
    manifest = json.loads((copy / "manifest.json").read_text())
    (sig / "manifest.json").write_text(json.dumps({"stage": "sig", "data_fingerprint": manifest["data_fingerprint"]}))
    rec = asking_record(copy)
    r = client(copy, sig).get(f"/r/0/d/greedy-eig/c/{rec['id']}")
    assert 'class="found"' in r.text and "no Shapley values" not in r.text
    (sig / "manifest.json").write_text(json.dumps({"stage": "sig", "data_fingerprint": "other data"}))
    assert "no Shapley values" in text(client(copy, sig).get(f"/r/0/d/greedy-eig/c/{rec['id']}").text)


def test_escapes_what_the_doctor_wrote(copy):
    path = copy / "transcripts" / "greedy-eig.jsonl"
    recs = records(copy, "greedy-eig")
    recs[0]["turns"] = [{"question": "<script>alert(1)</script>", "reply": "no", "revealed": [], "new": [],
                         "sig": 0.0, "weights": []}]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = client(copy).get(f"/r/0/d/greedy-eig/c/{recs[0]['id']}")
    assert "<script>alert" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


# ---- training curves ----------------------------------------------------------------------------------------------


def test_curves_from_a_training_log(tmp_path):
    run = tmp_path / "sft"
    run.mkdir()
    history = [{"step": s, "loss": 2.0 / s, "learning_rate": 1e-3 * (1 - s / 10), "epoch": s / 5} for s in range(1, 6)]
    history += [{"step": 5, "eval_loss": 0.9}, {"step": 10, "eval_loss": 0.7}]
    (run / "train_log.json").write_text(json.dumps({"log_history": history}))
    r = client(run).get("/r/0/curves")
    assert r.status_code == 200
    assert r.text.count("<svg") == 2 and 'data-series="loss"' in r.text and 'data-series="eval_loss"' in r.text
    assert 'data-series="epoch"' not in r.text
    (run / "train_log.json").write_text("{")
    r = client(run).get("/r/0/curves")
    assert r.status_code == 200 and "train_log.json: not valid JSON" in text(r.text)


def test_curves_of_a_run_still_training_come_from_its_latest_checkpoint(tmp_path):
    run = tmp_path / "sft"
    for step in (2, 10):
        ck = run / "checkpoints" / f"checkpoint-{step}"
        ck.mkdir(parents=True)
        (ck / "trainer_state.json").write_text(json.dumps({"log_history": [{"step": s, "loss": 1.0 / s}
                                                                           for s in range(1, step + 1)]}))
    page = client(run).get("/r/0/curves").text
    assert "checkpoint-10" in page and page.count("<svg") == 1


def test_curves_of_a_grpo_run_still_training_come_from_its_step_log(tmp_path):
    run = tmp_path / "grpo"
    run.mkdir()
    lines = [json.dumps({"step": s, "reward": 0.1 * s, "promed/accuracy": 0.5}) for s in (1, 2, 3)]
    (run / "log.jsonl").write_text("\n".join(lines) + "\n" + '{"step": 4, "rew')
    page = client(run).get("/r/0/curves").text
    assert 'data-series="reward"' in page and 'data-series="promed/accuracy"' in page and "step log" in page


def test_chart_geometry_stays_inside_the_plot():
    chart = Chart("loss", (Series("loss", ((0, 3.0), (5, 1.0), (10, 0.5))),))
    svg = line_chart_svg(chart, width=300, height=200)
    pts = [tuple(map(float, p.split(","))) for p in re.search(r'points="([^"]+)"', svg).group(1).split()]
    assert len(pts) == 3 and all(0 <= x <= 300 and 0 <= y <= 200 for x, y in pts)
    assert pts[0][1] < pts[1][1] < pts[2][1]  # a larger loss is drawn higher (smaller y)
    assert pts[0][0] < pts[1][0] < pts[2][0]
    assert charts_from_history([{"step": 1, "loss": 1.0}]) == ()  # one point is not a curve


# ---- reading back, discovery, the command -------------------------------------------------------------------------


def test_case_message_reads_back(case):
    view = DoctorView(case.id, case.initial, case.question, case.options, (), (case.facts[1],), 3)
    parsed = parse_case_message(case_message(view))
    assert parsed.initial == case.initial and parsed.question == case.question
    assert parsed.given == (case.facts[1].text,)
    assert parsed.options == tuple((o.letter, o.text) for o in case.options)


def test_jsonl_reader_tolerates_a_torn_tail(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n{"a"')
    read = read_jsonl_lines(p)
    assert [r for _, r in read.records] == [{"a": 1}, {"a": 2}] and read.torn and not read.problems
    p.write_text('{"a": 1}\n[oops\n{"a": 3}\n')
    read = read_jsonl_lines(p)
    assert [n for n, _ in read.records] == [1, 3] and len(read.problems) == 1 and not read.torn


def test_discovery_finds_nested_runs_and_names_bad_dirs(run_dir, tmp_path):
    outer = tmp_path / "stage1"
    shutil.copytree(run_dir, outer / "eval")
    (outer / "manifest.json").write_text("{}")
    runs = discover([outer])
    assert [r.label for r in runs] == [str(outer), f"{outer}/eval"]
    empty = tmp_path / "empty"
    empty.mkdir()
    for bad, words in ((tmp_path / "missing", "no such run directory"), (outer / "manifest.json", "not a directory"),
                       (empty, "not a promed run directory")):
        with pytest.raises(ValueError, match=words):
            discover([bad])


def test_command_exits_2_naming_a_bad_run_dir(tmp_path):
    res = CliRunner().invoke(cli_app, ["view", str(tmp_path / "nope")])
    assert res.exit_code == 2 and f"{tmp_path / 'nope'}: no such run directory" in res.output
    res = CliRunner().invoke(cli_app, ["view", str(tmp_path), "--port", "70000"])
    assert res.exit_code == 2 and "--port" in res.output


def test_bind_names_a_taken_port_and_gives_a_tcp_socket():
    first = bind("127.0.0.1", 0)
    assert first.proto == socket.IPPROTO_TCP  # so that asyncio sets TCP_NODELAY (no 40 ms delayed-ACK stalls)
    try:
        with pytest.raises(ValueError, match=f"--port {first.getsockname()[1]}"):
            bind("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("0.0.0.0")


# ---- live consultations (promed view --live) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def live() -> tuple[TestClient, LiveDesk]:
    desk = LiveDesk(Clinic(doctor="random-3"))  # as `promed view --live --doctor random-3`
    app = create_app([], live=desk)
    return TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False), desk


def start(c: TestClient, case_id: str, **form) -> str:
    r = c.post("/live/start", data={"case": case_id, **form}, follow_redirects=False)
    assert r.status_code == 303
    return r.headers["location"]


def test_live_consultation_three_questions_then_an_answer(live, run_dir):
    c, desk = live
    assert "sc-test-00000" in c.get("/live").text
    url = start(c, "sc-test-00000")
    case = desk.case("sc-test-00000")
    questions = ("Do you have abdominal pain?", "Do you feel too hot when others are comfortable?",
                 "Do you have abdominal pain?")  # the last repeats the first: it reveals nothing new, earns 0
    for q in questions:
        assert c.post(url + "/ask", data={"question": q}, follow_redirects=False).status_code == 303
    r = c.get(url)
    page = text(r.text)
    assert all(f"Q{k} {q}" in page for k, q in enumerate(questions, 1)) and "(2 left)" in page
    mine = desk.yours(desk.session(url.rsplit("/", 1)[1])).transcript
    assert [t.question for t in mine.turns] == list(questions)
    assert mine.turns[0].sig > 0 and mine.turns[2].sig == 0.0 and mine.turns[2].new == ()
    for t in mine.turns:
        assert f"SIG {t.sig:.3f}" in page
    told = {i for t in mine.turns for i in t.revealed}
    hidden = [f.text for f in case.facts if f.id not in told]
    assert hidden and not any(h in page for h in hidden)  # unrevealed facts stay hidden until the answer
    assert "gold" not in page and "Shapley" not in page
    assert r.text.count("<polyline") == len(case.options)  # the posterior, folded away, with no option marked gold

    r = c.post(url + "/answer", data={"letter": case.answer})
    page = text(r.text)
    assert r.status_code == 200 and f"You answered {case.answer} : right" in page
    assert 'data-doctor="you"' in r.text and 'data-doctor="greedy-eig"' in r.text
    assert len(re.findall(r'data-fact="\d+"', r.text)) == case.n_facts
    # greedy-eig here is the evaluation's greedy-eig: same questions, same SIG as in the eval run
    rec = next(x for x in records(run_dir, "greedy-eig") if x["id"] == case.id)
    base = desk.baseline(desk.session(url.rsplit("/", 1)[1])).transcript
    assert [(t.question, t.sig) for t in base.turns] == [(t["question"], pytest.approx(t["sig"]))
                                                        for t in rec["turns"]]
    assert "this consultation is over" in text(c.post(url + "/ask", data={"question": "More?"}).text)


def test_live_patient_never_leaks_the_options_or_answer(live):
    c, desk = live
    case = desk.case("sc-test-00001")
    attacks = adversarial_questions(case)
    for chunk in range(0, len(attacks), desk.env.max_questions):
        url = start(c, case.id)
        for q in attacks[chunk:chunk + desk.env.max_questions]:
            c.post(url + "/ask", data={"question": q})
        tr = desk.yours(desk.session(url.rsplit("/", 1)[1])).transcript
        assert all(is_safe(case, t.reply) for t in tr.turns)
        replies = " ".join(re.findall(r'<div class="reply">(.*?)</div>', c.get(url).text))
        assert replies and not any(o.text.lower() in unescape(replies).lower() for o in case.options)


def test_live_refusals_are_messages(live):
    c, _ = live
    url = start(c, "sc-test-00002")
    assert "type a question first" in text(c.post(url + "/ask", data={"question": "  "}).text)
    assert "choose one of the options" in text(c.post(url + "/answer", data={"letter": "Z"}).text)
    assert c.get("/live/s/no-such-session").status_code == 404
    r = c.post("/live/start", data={"case": "nope"})
    assert r.status_code == 404 and "no SynthClinic test case 'nope'" in text(r.text)


def test_live_doctor_compared_with_the_given_doctor(live, run_dir):
    """With --doctor random-3, your answer is followed by greedy-eig and random-3 on the same case, side by side;
    random-3 is the evaluation's (same questions and SIG as in the run)."""
    c, desk = live
    url = start(c, "sc-test-00003")
    c.post(url + "/ask", data={"question": "Do you have a fever?"})
    r = c.post(url + "/answer", data={"letter": "B"})
    assert r.status_code == 200 and 'class="three-col"' in r.text
    assert re.findall(r'data-doctor="([^"]+)"', r.text) == ["you", "greedy-eig", "random-3"]
    session = desk.session(url.rsplit("/", 1)[1])
    others = dict(desk.others(session))
    page = text(r.text)
    for name in ("greedy-eig", "random-3"):
        tr = others[name].transcript
        rec = next(x for x in records(run_dir, name) if x["id"] == "sc-test-00003")
        assert [(t.question, t.revealed) for t in tr.turns] == [(t["question"], tuple(t["revealed"]))
                                                               for t in rec["turns"]]
        assert [t.sig for t in tr.turns] == pytest.approx([t["sig"] for t in rec["turns"]])
        assert f"{name} answered {tr.answer} after {tr.n_questions} questions" in page
    assert len(re.findall(r"<th>(you|greedy-eig|random-3)</th>", r.text)) == 3  # one ranking column per doctor


def test_live_patient_role_replies_that_state_the_facts_give_greedy_eigs_consultation(live):
    """You are the patient and reply what the simulated patient would (its facts, verbatim; "I don't know" where it
    refuses): the matcher finds exactly those facts, so greedy-eig asks, learns and answers as it does in the
    evaluation; the page shows your script, each reply's covered facts, then the verdict and each question's SIG."""
    c, desk = live
    case = desk.case("sc-test-00000")
    assert "be the patient" in c.get("/live").text and '<option value="random-3">' in c.get("/live").text
    url = start(c, case.id, role="patient", doctor="greedy-eig")
    session = desk.session(url.rsplit("/", 1)[1])
    page = text(c.get(url).text)
    assert "you are the patient, greedy-eig is the doctor" in page and "Your script" in page
    assert all(f.text in page for f in case.facts) and f"greedy-eig asks: {session.consult.pending}" in page
    expected = []
    while not session.done:
        reply, ids = desk.clinic.patient().reply([case], [session.consult.pending])[0]
        expected.append(ids)
        r = c.post(url + "/reply", data={"reply": "I don't know." if reply == REFUSAL else reply})
        assert r.status_code == 200
    theirs = desk.yours(session).transcript
    assert [t.revealed for t in theirs.turns] == expected and any(expected)
    base = desk.clinic.run_doctor("greedy-eig", case)
    assert [t.question for t in theirs.turns] == [t.question for t in base.turns] and theirs.answer == base.answer
    assert [t.sig for t in theirs.turns] == pytest.approx([t.sig for t in base.turns])
    page = text(r.text)
    verdict = "right" if theirs.correct else "wrong"
    assert (f"greedy-eig answered {theirs.answer} after {theirs.n_questions} questions: {verdict} · gold: "
            f"{case.answer}") in page
    for t in theirs.turns:
        assert f"SIG {t.sig:.3f}" in page
    covered = {i for t in theirs.turns for i in t.revealed}
    assert len(re.findall(r'<li class="covered', r.text)) == len(covered)
    assert "table" in r.text and 'class="ranking"' in r.text
    assert "this consultation is over" in text(c.post(url + "/reply", data={"reply": "More?"}).text)


def test_live_patient_role_cuts_a_reply_that_names_an_option(live):
    c, desk = live
    case = desk.case("sc-test-00000")
    gold = case.option(case.answer).text
    url = start(c, case.id, role="patient", doctor="random-3")
    assert "type a reply first" in text(c.post(url + "/reply", data={"reply": "   "}).text)
    r = c.post(url + "/reply", data={"reply": f"I read online that it is {gold}. I have abdominal pain."})
    page = text(r.text)
    assert f"The guard cut 1 of your replies ({REDACTION_NOTE})" in page
    assert "the doctor read “I have abdominal pain.”" in page
    replies = unescape(" ".join(re.findall(r'<div class="reply">(.*?)</div>', r.text)))
    assert "I have abdominal pain." in replies and gold.lower() not in replies.lower()
    tr = desk.yours(desk.session(url.rsplit("/", 1)[1])).transcript
    pain = next(f.id for f in case.facts if f.text == "She reports abdominal pain.")
    assert tr.turns[0].reply == "I have abdominal pain." and tr.turns[0].revealed == (pain,)
    assert "this consultation is in the patient role" in text(c.post(url + "/ask", data={"question": "Hi?"}).text)


def test_live_patient_role_offers_only_the_listed_doctors(live):
    c, _ = live
    r = c.post("/live/start", data={"case": "sc-test-00000", "role": "patient", "doctor": "llm:/etc"})
    assert r.status_code == 404 and "doctor 'llm:/etc' is not offered here" in text(r.text)
    r = c.post("/live/start", data={"case": "sc-test-00000", "role": "nurse"})
    assert r.status_code == 404 and "no role 'nurse'" in text(r.text)


def test_view_doctor_needs_live():
    res = CliRunner().invoke(cli_app, ["view", "--doctor", "random-3"])
    assert res.exit_code == 2 and "--doctor is for live consultations: add --live" in res.output
