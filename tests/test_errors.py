"""Errors that tell bugs from bad input (ARCHITECTURE.md, Errors): only :class:`promed.errors.InputError` exits 2.

A ``KeyError``, ``IndexError`` or plain ``ValueError`` raised deep inside a stage is a bug: one ``internal error``
line and exit 1, and ``promed --debug`` shows its traceback. These run the real command in a subprocess (the
traceback is the interpreter's own), with the fault planted in the library before the CLI starts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from promed.errors import InputError

PLANT = """
import sys
import promed.sig.cache as cache

def broken(self, case):
    raise {exc}("planted fault")

cache.ShapleyCache.get = broken
from promed.cli import app
sys.argv = ["promed", *sys.argv[1:]]
app()
"""


def _promed(args: list[str], plant: str | None = None, **kw) -> subprocess.CompletedProcess:
    code = PLANT.format(exc=plant) if plant else "from promed.cli import app; app(prog_name='promed')"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, **kw)


@pytest.mark.parametrize("exc", ["KeyError", "IndexError", "ValueError"])
def test_a_bug_inside_a_stage_exits_1_and_debug_shows_its_traceback(tmp_path: Path, exc: str):
    args = ["sig", "--limit", "1", "--no-progress", "--out", str(tmp_path / "s")]
    res = _promed(args, plant=exc)
    assert res.returncode == 1, res.stderr
    message = repr("planted fault") if exc == "KeyError" else "planted fault"  # str(KeyError) quotes its key
    assert res.stderr.strip().splitlines() == [f"error: internal error: {exc}: {message} "
                                               "(run with --debug for the traceback)"]
    res = _promed(["--debug", *args[:-1], str(tmp_path / "d")], plant=exc)
    assert res.returncode == 1
    assert "Traceback (most recent call last)" in res.stderr and f"{exc}: " in res.stderr
    assert "in broken" in res.stderr  # the frame of the fault itself


def test_bad_input_still_exits_2_with_one_line(tmp_path: Path):
    res = _promed(["sig", "--limit", "0", "--out", str(tmp_path / "s")])
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == ["error: --limit must be >= 1, got 0 (leave it out for every case)"]
    assert not (tmp_path / "s").exists()


def test_input_error_is_a_value_error_but_not_the_reverse():
    assert issubclass(InputError, ValueError) and not issubclass(ValueError, InputError)
    from promed.cliopts import INPUT_ERRORS

    assert INPUT_ERRORS == (InputError,)


@pytest.mark.parametrize("command", ["run", "grpo", "eval"])
def test_help_into_a_closed_pipe_prints_no_error(command: str):
    """``promed run --help | head -30``: the reader closes the pipe early; no error line, no traceback."""
    res = subprocess.run(f"'{sys.executable}' -m promed {command} --help | head -30", shell=True,
                         capture_output=True, text=True, timeout=120)
    assert "Usage: promed" in res.stdout and len(res.stdout.splitlines()) <= 30
    assert res.stderr == ""


def test_sft_with_an_untrainable_model_writes_nothing(tmp_path: Path):
    train = tmp_path / "t.jsonl"
    train.write_text('{"id": "a", "messages": [{"role": "user", "content": "Case."}, '
                     '{"role": "assistant", "content": "ANSWER: A"}]}\n')
    res = _promed(["sft", "--model", "tiny", "--train", str(train), "--out", str(tmp_path / "d")])
    assert res.returncode == 2 and "cannot train it" in res.stderr
    assert not (tmp_path / "d").exists()
