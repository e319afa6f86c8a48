"""The Shapley cache (promed.sig.cache): one read of its file per run, typed records, resumption, no leaked handle."""

from __future__ import annotations

import builtins
import gc
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from promed.sig.cache import EstimatorChoice, ShapleyCache, ShapleyRecord, read_shapley
from promed.types import Case, Fact, Option

CONTRACT = ["id", "facts", "phi", "v_empty", "v_full", "stderr", "n_evals", "hash", "scorer", "estimator", "seconds"]


class AdditiveValue:
    """v(S) = 0.1 + sum_{i in S} w_i with w_i = (i + 1) / 100: an additive game, so phi_i = w_i exactly."""

    id = "additive:p"

    def __init__(self):
        self.calls = 0

    def v(self, case: Case, subsets) -> np.ndarray:
        self.calls += 1
        return np.array([0.1 + sum((i + 1) / 100 for i in s) for s in subsets])


def make_case(i: int, n_facts: int = 4) -> Case:
    return Case(id=f"c{i}", initial=f"case {i}", facts=tuple(Fact(j, f"fact {j} of case {i}") for j in range(n_facts)),
                question="Diagnosis?", options=(Option("A", "a"), Option("B", "b")), answer="A")


@pytest.fixture
def count_opens(monkeypatch):
    """Counts the opens of one file by mode: ``counts = count_opens(path)`` -> {"r": .., "a": .., "w": ..}."""
    real = io.open
    watched: dict[str, dict[str, int]] = {}

    def counting_open(file, mode="r", *args, **kw):
        key = str(file)
        if key in watched:
            watched[key][mode[0]] = watched[key].get(mode[0], 0) + 1
        return real(file, mode, *args, **kw)

    monkeypatch.setattr(io, "open", counting_open)
    monkeypatch.setattr(builtins, "open", counting_open)

    def watch(path: Path) -> dict[str, int]:
        return watched.setdefault(str(path), {})

    return watch


def test_cache_reads_its_file_once_per_run_and_appends_through_one_handle(tmp_path, count_opens):
    path = tmp_path / "shapley.jsonl"
    with ShapleyCache(AdditiveValue(), EstimatorChoice("exact"), path) as first:
        for i in range(5):
            first.get(make_case(i))
    opens = count_opens(path)
    with ShapleyCache(AdditiveValue(), EstimatorChoice("exact"), path) as cache:
        assert len(cache) == 5 and opens.get("r", 0) == 1  # repaired and read in one pass
        for i in range(55):
            cache.get(make_case(i))
        assert opens.get("r", 0) == 1  # 50 computed records: no further read of the file ...
        assert opens.get("a", 0) == 1  # ... and one append handle
    assert opens.get("w", 0) == 0
    assert len(path.read_text().splitlines()) == 55


def test_cache_without_new_records_opens_no_write_handle(tmp_path, count_opens):
    path = tmp_path / "shapley.jsonl"
    with ShapleyCache(AdditiveValue(), EstimatorChoice("exact"), path) as c:
        c.get(make_case(0))
    opens = count_opens(path)
    with ShapleyCache(AdditiveValue(), EstimatorChoice("exact"), path) as c:
        c.get(make_case(0))
    assert opens.get("a", 0) == 0


def test_cached_values_are_exact_and_resumed_without_recomputation(tmp_path):
    path = tmp_path / "shapley.jsonl"
    value = AdditiveValue()
    with ShapleyCache(value, EstimatorChoice("exact"), path) as cache:
        recs = [cache.get(make_case(i, n_facts=i % 5)) for i in range(10)]
    for i, rec in enumerate(recs):
        assert isinstance(rec, ShapleyRecord) and rec.id == f"c{i}" and rec.n_facts == i % 5
        np.testing.assert_allclose(rec.phi_array, [(j + 1) / 100 for j in range(i % 5)], atol=1e-12)
        assert rec.v_empty == pytest.approx(0.1) and abs(rec.efficiency_gap) < 1e-12
    calls = value.calls
    with ShapleyCache(value, EstimatorChoice("exact"), path) as again:
        assert all(again.has(make_case(i, n_facts=i % 5)) for i in range(10))
        assert [again.get(make_case(i, n_facts=i % 5)) for i in range(10)] == recs
        np.testing.assert_allclose(again.phi(make_case(3, n_facts=3)), [0.01, 0.02, 0.03])
    assert value.calls == calls  # nothing recomputed
    # another estimator setting is another key: computed anew, appended to the same file
    with ShapleyCache(value, EstimatorChoice("permutation", 20), path) as other:
        assert not other.has(make_case(4, n_facts=4))
        other.get(make_case(4, n_facts=4))
    assert len(read_shapley(path)) == 11


def test_line_format_is_the_promed_sig_contract(tmp_path):
    path = tmp_path / "shapley.jsonl"
    with ShapleyCache(AdditiveValue(), EstimatorChoice("exact"), path) as cache:
        rec = cache.get(make_case(0))
    line = json.loads(path.read_text().splitlines()[0])
    assert list(line) == CONTRACT
    assert line["phi"] == list(rec.phi) and line["stderr"] == [0.0] * 4 and line["scorer"] == "additive:p"
    assert line["estimator"] == "exact" and line["hash"] == make_case(0).content_hash()


def test_partial_last_line_is_dropped_and_the_run_resumes(tmp_path):
    path = tmp_path / "shapley.jsonl"
    with ShapleyCache(AdditiveValue(), EstimatorChoice("exact"), path) as cache:
        cache.get(make_case(0))
    with path.open("a") as fh:
        fh.write('{"id": "c1", "facts": ["trunc')  # a crash in mid-write
    with ShapleyCache(AdditiveValue(), EstimatorChoice("exact"), path) as cache:
        assert len(cache) == 1
        cache.get(make_case(1))
    assert [r.id for r in read_shapley(path)] == ["c0", "c1"]


def test_an_unclosed_cache_closes_its_handle_when_collected(tmp_path):
    cache = ShapleyCache(AdditiveValue(), EstimatorChoice("exact"), tmp_path / "shapley.jsonl")
    cache.get(make_case(0))
    fh = cache._sink._fh
    assert not fh.closed
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del cache
        gc.collect()
    assert fh.closed


def test_close_is_idempotent_and_a_closed_cache_reopens_on_write(tmp_path):
    path = tmp_path / "shapley.jsonl"
    cache = ShapleyCache(AdditiveValue(), EstimatorChoice("exact"), path)
    cache.close()
    cache.get(make_case(0))
    cache.close()
    cache.close()
    cache.get(make_case(1))
    cache.close()
    assert [r.id for r in read_shapley(path)] == ["c0", "c1"]


def test_memory_only_cache_writes_nothing(tmp_path):
    cache = ShapleyCache(AdditiveValue(), EstimatorChoice("exact"))
    assert cache.get(make_case(0)) is cache.get(make_case(0))
    cache.close()
    assert list(tmp_path.iterdir()) == []


# ---- ShapleyRecord ---------------------------------------------------------------------------------------------

RECORD = {"id": "c7", "facts": ["fever", "no rash"], "phi": [0.25, -0.05], "v_empty": 0.3, "v_full": 0.5,
          "stderr": [0.01, None], "n_evals": 4, "hash": "0123abcd", "scorer": "bayes:p", "estimator": "kernel@8",
          "seconds": 0.0012}


def test_record_round_trip():
    rec = ShapleyRecord.from_json(RECORD)
    assert rec.to_json() == RECORD and list(rec.to_json()) == CONTRACT
    assert ShapleyRecord.from_json(json.loads(json.dumps(rec.to_json()))) == rec
    assert rec.key == ("0123abcd", "bayes:p", "kernel@8") and rec.phi == (0.25, -0.05)
    assert rec.efficiency_gap == pytest.approx(0.0)
    assert ShapleyRecord.from_json({**RECORD, "extra": 1}) == rec  # unknown fields are ignored
    with pytest.raises(AttributeError):
        rec.phi = (0.0, 0.0)  # frozen


@pytest.mark.parametrize("field,bad", [
    ("id", 7), ("facts", "fever"), ("facts", [1, 2]), ("phi", [0.1, "x"]), ("phi", [0.1]), ("v_empty", None),
    ("v_full", "0.5"), ("stderr", [0.1, "?"]), ("stderr", [0.1]), ("n_evals", 2.5), ("n_evals", -1),
    ("n_evals", True), ("hash", None), ("scorer", 1), ("estimator", ["exact"]), ("seconds", "fast"),
])
def test_bad_record_names_the_field(field, bad):
    with pytest.raises(ValueError, match=f"'{field}'"):
        ShapleyRecord.from_json({**RECORD, field: bad})


@pytest.mark.parametrize("field", CONTRACT)
def test_missing_field_is_named(field):
    with pytest.raises(ValueError, match=f"missing field '{field}'"):
        ShapleyRecord.from_json({k: v for k, v in RECORD.items() if k != field})


def test_read_shapley_names_file_and_line(tmp_path):
    path = tmp_path / "shapley.jsonl"
    path.write_text(json.dumps(RECORD) + "\n" + json.dumps({**RECORD, "v_full": "high"}) + "\n")
    with pytest.raises(ValueError, match=r"shapley.jsonl:2: .*'v_full'"):
        read_shapley(path)
    assert read_shapley(tmp_path / "missing.jsonl") == []


def test_load_jsonl_repairs_and_reads_in_one_pass(tmp_path):
    from promed.io import load_jsonl, read_jsonl, repair_jsonl

    path = tmp_path / "out.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3')
    assert load_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert path.read_text() == '{"a": 1}\n{"a": 2}\n' and repair_jsonl(path) == 2
    assert load_jsonl(path) == list(read_jsonl(path)) and load_jsonl(tmp_path / "none.jsonl") == []
