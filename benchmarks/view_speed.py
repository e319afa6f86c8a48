"""Speed of ``promed view``: start-up and page times on a run of 500 cases x 7 doctors (issue 13's targets: start in
under 3 s, one consultation page in under 300 ms).

    python benchmarks/view_speed.py [--run runs/eval] [--pages 20]

The run is the README's main job (``promed eval --doctor reactive,full-info,random-3,random-5,abstain-numeric,
abstain-scale,greedy-eig --out RUN``: SynthClinic's 500 test cases, SIG on); it is made first if ``RUN`` has no
``summary.json`` (about a minute on a CPU). The viewer is started as the real command; start-up is the time from
launching the process to the first complete summary page. Then, for one doctor, the first consultation page (which
parses that doctor's 500 transcripts and the Shapley cache: the cold case) and ``--pages`` further consultation pages
of other cases (warm: files cached by stamp), the SynthClinic posterior chart (an image of the consultation page,
fetched on its own), and the case list and the side-by-side page once each.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

DOCTORS = "reactive,full-info,random-3,random-5,abstain-numeric,abstain-scale,greedy-eig"


def ensure_run(run: Path) -> None:
    if (run / "summary.json").is_file():
        return
    print(f"making the run: promed eval --doctor {DOCTORS} --out {run}", flush=True)
    subprocess.run([sys.executable, "-m", "promed", "eval", "--doctor", DOCTORS, "--out", str(run),
                    "--no-progress"], check=True, stdout=subprocess.DEVNULL)


def timed_get(conn: http.client.HTTPConnection, url: str) -> float:
    """Seconds to fetch ``url`` completely over a kept-alive connection, as a browser fetches pages."""
    t0 = time.perf_counter()
    conn.request("GET", url)
    r = conn.getresponse()
    r.read()
    dt = time.perf_counter() - t0
    if r.status != 200:
        raise SystemExit(f"{url}: HTTP {r.status}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("runs/eval"))
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--doctor", default="greedy-eig")
    args = ap.parse_args()
    ensure_run(args.run)
    ids = [json.loads(x)["id"] for x in (args.run / "transcripts" / f"{args.doctor}.jsonl").read_text().splitlines()]
    n_docs = len(list((args.run / "transcripts").glob("*.jsonl")))

    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "promed", "view", str(args.run), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        while url is None:
            line = proc.stdout.readline()
            if not line:
                raise SystemExit("promed view exited before serving")
            if m := re.search(r"serving on (http://\S+)", line):
                url = m.group(1)
        where = urlsplit(url)
        client = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        summary = timed_get(client, "/")
        startup = time.perf_counter() - t0
        cold = timed_get(client, f"/r/0/d/{args.doctor}/c/{ids[0]}")
        warm = [timed_get(client, f"/r/0/d/{args.doctor}/c/{cid}") for cid in ids[1:1 + args.pages]]
        # the posterior chart (its own request): the last case regenerates the whole split, later ones reuse it
        post_last = timed_get(client, f"/r/0/posterior.svg?key={args.doctor}&case={ids[-1]}")
        post_next = timed_get(client, f"/r/0/posterior.svg?key={args.doctor}&case={ids[1]}")
        cases = timed_get(client, f"/r/0/d/{args.doctor}")
        compare = timed_get(client, f"/r/0/compare?case={ids[0]}&a={args.doctor}&b=random-5")
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"run: {args.run} ({len(ids)} cases x {n_docs} doctors)")
    print(f"start-up to the first summary page: {startup:.2f} s (the summary request itself {summary * 1000:.0f} ms)")
    print(f"consultation page, first (parses the doctor's transcripts and the Shapley cache): {cold * 1000:.0f} ms")
    print(f"consultation page, next {len(warm)}: median {statistics.median(warm) * 1000:.0f} ms, "
          f"max {max(warm) * 1000:.0f} ms")
    print(f"posterior chart: first, of the last case (regenerates the split): {post_last * 1000:.0f} ms; "
          f"then {post_next * 1000:.0f} ms")
    print(f"case list ({len(ids)} rows): {cases * 1000:.0f} ms; side by side (second doctor cold): "
          f"{compare * 1000:.0f} ms")


if __name__ == "__main__":
    main()
