"""Training curves: series from a training run's logs, drawn as inline SVG on the server.

Sources, in order: ``train_log.json`` (written by ``promed sft`` / ``pretrain`` / ``grpo`` when training ends: the
Trainer's ``log_history``), else ``log.jsonl`` (``promed grpo``'s step records, appended while it trains; a torn last
line is skipped), else the ``trainer_state.json`` of the latest checkpoint (the same history, while a run is still
training or was interrupted). Every numeric key logged at two or more steps becomes a series; losses share one chart.

Why server-side SVG: no plotting library has to be shipped to the browser (the viewer works offline, with no CDN),
a chart is a few kilobytes of markup that the browser test can inspect, and :func:`line_chart_svg` is a pure
function of its numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

from promed.errors import InputError
from promed.view.files import read_json, read_jsonl_lines

NOT_SERIES = {"step", "epoch", "total_flos", "train_runtime", "train_samples_per_second", "train_steps_per_second",
              "eval_runtime", "eval_samples_per_second", "eval_steps_per_second"}
DOTS_UP_TO = 30
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Chart:
    title: str
    series: tuple[Series, ...]


@dataclass(frozen=True)
class Curves:
    """The charts of one run, the file they came from and a note on it (e.g. training still in progress)."""

    source: Path
    charts: tuple[Chart, ...]
    note: str = ""


def find_log(run: Path) -> tuple[Path, str] | None:
    """The log to draw from, with a note: ``train_log.json``, ``log.jsonl`` or the latest checkpoint's
    ``trainer_state.json``."""
    if (run / "train_log.json").is_file():
        return run / "train_log.json", ""
    if (run / "log.jsonl").is_file():
        return run / "log.jsonl", ("no train_log.json yet: drawn from the step log (training in progress, or "
                                   "interrupted)")
    states = [p for p in (run / "checkpoints").glob("checkpoint-*/trainer_state.json")]
    if not states:
        return None

    def step(p: Path) -> int:
        m = re.search(r"checkpoint-(\d+)$", p.parent.name)
        return int(m.group(1)) if m else -1

    latest = max(states, key=step)
    return latest, (f"no train_log.json yet: drawn from {latest.parent.name} (training in progress, or "
                    "interrupted)")


def charts_from_history(history: list) -> tuple[Chart, ...]:
    """Group a Trainer ``log_history`` (a list of dicts with ``step``) into charts: the losses together, then one
    chart per other numeric key. Entries without a numeric ``step`` are ignored."""
    series: dict[str, list[tuple[float, float]]] = {}
    for entry in history:
        if not isinstance(entry, dict) or not _number(entry.get("step")):
            continue
        for key, value in entry.items():
            if key not in NOT_SERIES and _number(value) and math.isfinite(value):
                series.setdefault(key, []).append((float(entry["step"]), float(value)))
    series = {k: v for k, v in series.items() if len(v) >= 2}
    losses = tuple(Series(k, tuple(v)) for k, v in series.items() if "loss" in k)
    charts = [Chart("loss", losses)] if losses else []
    charts += [Chart(k, (Series(k, tuple(v)),)) for k, v in series.items() if "loss" not in k]
    return tuple(charts)


def load_curves(run: Path) -> Curves | None:
    """The run's curves, ``None`` if it has no training log. Raises ValueError naming a malformed log."""
    found = find_log(run)
    if found is None:
        return None
    path, note = found
    if path.suffix == ".jsonl":
        read = read_jsonl_lines(path)
        if read.problems:
            note = "; ".join([note, *read.problems])
        return Curves(path, charts_from_history([rec for _, rec in read.records]), note)
    data = read_json(path)
    history = data.get("log_history") if isinstance(data, dict) else None
    if not isinstance(history, list):
        raise InputError(f"{path}: no 'log_history' list in it")
    return Curves(path, charts_from_history(history), note)


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def line_chart_svg(chart: Chart, width: int = 560, height: int = 260, xlabel: str = "step",
                   y_range: tuple[float, float] | None = None) -> str:
    """An SVG line chart of ``chart`` (axes with ticks, one coloured polyline per series, a legend); ``y_range``
    fixes the vertical axis (e.g. 0..1 for probabilities), else it spans the data. Series of a few points get a
    dot on each."""
    pts = [p for s in chart.series for p in s.points]
    legend = min(200, 8 + 7 * max([len(s.name) for s in chart.series] + [0]))  # right of the plot
    left, right, top, bottom = 56, max(12, legend), 26, 36
    w, h = width - left - right, height - top - bottom
    # styles are attributes, not CSS classes: the same SVG is inlined in pages and served alone as an image
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(chart.title)}" '
             'font-family="system-ui, sans-serif" font-size="11" fill="#1d232a">',
             f'<text x="{left}" y="16" font-weight="600" font-size="12">{escape(chart.title)}</text>']
    if not pts:
        parts.append(f'<text x="{left}" y="{top + h / 2}">no points</text></svg>')
        return "".join(parts)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = y_range or (min(p[1] for p in pts), max(p[1] for p in pts))
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * h

    parts.append(f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    for t in _ticks(y0, y1):
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#e5e5e5"/>'
                     f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for t in _ticks(x0, x1):
        parts.append(f'<text x="{sx(t):.1f}" y="{top + h + 14}" text-anchor="middle">{_fmt(t)}</text>')
    parts.append(f'<text x="{left + w / 2}" y="{height - 4}" text-anchor="middle">{escape(xlabel)}</text>')
    for i, s in enumerate(chart.series):
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s.points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.6" '
                     f'data-series="{escape(s.name)}"/>')
        if len(s.points) <= DOTS_UP_TO:
            parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.6" fill="{color}"/>' for x, y in s.points]
        parts.append(f'<text x="{left + w + 8}" y="{top + 10 + 14 * i}" fill="{color}">{escape(s.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
