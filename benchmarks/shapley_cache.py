"""Shapley cache speed: opening a large cache, looking cases up, appending new records.

A cache file with ``--records`` records (default 10,000) is written through the real write path
(:meth:`ShapleyCache.get` on synthetic cases with 8-16 facts, a trivially cheap additive value function and the
permutation estimator at its default budget, so the records have the size of real ones). Then, timed:

* fill - computing and writing the ``--records`` records into an empty file;
* load - opening the cache on that file (repair + parse + validate every line);
* lookups - ``--lookups`` ``has`` and as many ``get`` calls on cached cases (each hashes the case's content);
* append - ``--append`` new records computed and appended through ``get``.

For comparison, the old write path (a new :class:`~promed.io.JsonlAppender` per computed record, whose
constructor repairs - reads and parses - the whole file, so n records cost O(n^2)) appends ``--old-empty`` of the
new records to an empty file and ``--old-full`` of them to a copy of the full file (each record then costs a parse
of the whole file, so the default is small; 0 skips either), beside the new path doing the same. CPU times are
reported beside wall times (the machine is shared).

    python benchmarks/shapley_cache.py [--records 10000] [--lookups 10000] [--append 2000] [--old-empty 2000]
                                       [--old-full 200]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from promed.io import JsonlAppender
from promed.sig.cache import EstimatorChoice, ShapleyCache, ShapleyRecord
from promed.types import Case, Fact, Option

CHOICE = EstimatorChoice("permutation")  # default budget 10 n: a cheap estimate whose record has the real shape


class AdditiveValue:
    """v(S) = 0.2 + sum_{i in S} 0.05 / (i + 1): nothing to score, so the timings are the cache's own."""

    id = "additive:p"

    def v(self, case: Case, subsets) -> np.ndarray:
        return np.array([0.2 + sum(0.05 / (i + 1) for i in s) for s in subsets])


class PerRecordAppenderCache(ShapleyCache):
    """The old write path: a new JsonlAppender (which repairs, i.e. reads and parses, the whole file) per record."""

    def _append(self, rec: ShapleyRecord) -> None:
        with JsonlAppender(self.path) as sink:
            sink.write(rec.to_json())


def make_case(i: int) -> Case:
    n = 8 + i % 9
    facts = tuple(Fact(j, f"Finding {j} of case {i}: the patient reports symptom number {j} for {j + 1} days.")
                  for j in range(n))
    options = tuple(Option(letter, f"Disease {letter}{i % 44}") for letter in "ABCD")
    return Case(id=f"bench-{i}", initial=f"A {20 + i % 60}-year-old presents with complaint {i % 97}.", facts=facts,
                question="Which of the following is the most likely diagnosis?", options=options,
                answer="ABCD"[i % 4], source="benchmark")


def timed(fn) -> tuple[object, float, float]:
    """(result, wall s, CPU s)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def fill(cache: ShapleyCache, cases: list[Case]) -> None:
    with cache:
        for case in cases:
            cache.get(case)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000, help="records in the cache file")
    ap.add_argument("--lookups", type=int, default=10_000, help="has() calls, and as many get() calls, timed")
    ap.add_argument("--append", type=int, default=2_000, help="new records appended through get(), timed")
    ap.add_argument("--old-empty", type=int, default=2_000, help="records the old path appends to an empty file")
    ap.add_argument("--old-full", type=int, default=200, help="records the old path appends to the full file")
    args = ap.parse_args()
    if max(args.old_empty, args.old_full) > args.append:
        ap.error("--old-empty and --old-full take some of the --append new records: at most --append")

    cases = [make_case(i) for i in range(args.records)]
    new = [make_case(args.records + i) for i in range(args.append)]
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shapley.jsonl"
        _, w, c = timed(lambda: fill(ShapleyCache(AdditiveValue(), CHOICE, path), cases))
        rows.append((f"fill: compute + write {args.records:,} records (empty file)", w, c))
        size_mb = path.stat().st_size / 2**20
        shutil.copy(path, Path(tmp) / "full.jsonl")  # the file before the timed appends

        cache, w, c = timed(lambda: ShapleyCache(AdditiveValue(), CHOICE, path))
        assert len(cache) == args.records
        rows.append((f"load: open the cache ({args.records:,} records, {size_mb:.1f} MiB)", w, c))
        probe = [cases[i % len(cases)] for i in range(args.lookups)]
        hits, w, c = timed(lambda: sum(cache.has(k) for k in probe))
        assert hits == args.lookups
        rows.append((f"lookups: {args.lookups:,} has()", w, c))
        _, w, c = timed(lambda: [cache.get(k) for k in probe])
        rows.append((f"lookups: {args.lookups:,} get()", w, c))
        _, w, c = timed(lambda: fill(cache, new))
        rows.append((f"append: {args.append:,} new records through get() (onto the loaded file)", w, c))

        full = Path(tmp) / "full.jsonl"
        runs = [("an empty file", args.old_empty, None), (f"the {args.records:,}-record file", args.old_full, full)]
        for label, n, start in runs:
            for name, cls in (("old", PerRecordAppenderCache), ("new", ShapleyCache)) if n else ():
                target = Path(tmp) / f"{name}-{n}.jsonl"
                target.unlink(missing_ok=True)
                if start is not None:
                    shutil.copy(start, target)
                _, w, c = timed(lambda cls=cls, target=target, n=n: fill(cls(AdditiveValue(), CHOICE, target), new[:n]))
                rows.append((f"{name} path: {n:,} records through get() onto {label}", w, c))

    width = max(len(r[0]) for r in rows)
    print(f"{'operation':<{width}}  {'wall s':>8}  {'CPU s':>8}")
    for name, w, c in rows:
        print(f"{name:<{width}}  {w:8.3f}  {c:8.3f}")


if __name__ == "__main__":
    main()
