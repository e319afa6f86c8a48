"""Figures (matplotlib, PNG): where a picture says more than a table.

* :func:`plot_accuracy_vs_questions` - each doctor as a point (mean questions, accuracy, 95% CI); written by
  ``promed eval`` as ``accuracy_vs_questions.png``.
* :func:`plot_case_sig` - one case: its facts ranked by Shapley value (bars coloured by whether the consultation
  revealed them) beside the transcript, each question marked with its SIG; written by ``promed figure``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from promed.errors import InputError
from promed.eval.metrics import Metrics


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def label_positions(results: dict[str, Metrics], dx: float = 0.9, dy: float = 0.045,
                    step_pt: float = 10.0) -> dict[str, tuple[float, float, float]]:
    """Where each doctor's label goes: at its point, pushed up (in points) past the labels of nearby points so
    that doctors with (nearly) the same accuracy and questions stay readable. Pure: (x, y, extra offset)."""
    placed: list[tuple[float, float, float]] = []
    out = {}
    for name, m in sorted(results.items(), key=lambda kv: (kv[1].accuracy, kv[1].mean_questions)):
        x, y, off = m.mean_questions, m.accuracy, 0.0
        while any(abs(x - px) < dx and abs(y + off * dy / step_pt - (py + po * dy / step_pt)) < dy
                  for px, py, po in placed):
            off += step_pt
        placed.append((x, y, off))
        out[name] = (x, y, off)
    return out


def plot_accuracy_vs_questions(results: dict[str, Metrics], path: Path, title: str = "") -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, m in results.items():
        lo, hi = m.ci95
        ax.errorbar(m.mean_questions, m.accuracy, yerr=[[m.accuracy - lo], [hi - m.accuracy]], fmt="o", capsize=3)
    for name, (x, y, dy) in label_positions(results).items():
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4 + dy), fontsize=8)
    ax.set_xlabel("questions asked per consultation")
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title or "Accuracy vs questions asked")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_case_sig(facts: list[str], phi: list[float], turns: list[dict], path: Path, title: str = "",
                  weights: list[float] | None = None) -> None:
    """``turns``: transcript turn records (``question``, ``reply``, ``new``, ``sig``) as written by ``promed eval``."""
    plt = _plt()
    revealed_at = {i: k for k, t in enumerate(turns) for i in t["new"]}
    order = sorted(range(len(facts)), key=lambda i: phi[i])
    h = max(4.0, 0.42 * len(facts) + 1.5)
    fig, (ax, tx) = plt.subplots(1, 2, figsize=(16, h), gridspec_kw={"width_ratios": [1, 1]}, layout="constrained")
    colors = ["tab:orange" if i in revealed_at else "tab:gray" for i in order]
    ax.barh(range(len(order)), [phi[i] for i in order], color=colors)
    labels = []
    for i in order:
        tag = f"[Q{revealed_at[i] + 1}] " if i in revealed_at else ""
        labels.append(tag + textwrap.shorten(facts[i], 62, placeholder="..."))
    ax.set_yticks(range(len(order)), labels, fontsize=7.5)
    ax.axvline(0, color="black", lw=0.7)
    ax.set_xlabel("Shapley value of the fact (contribution to P(gold option))")
    ax.set_title("Facts ranked by Shapley value (orange: revealed; [Qk]: by question k)", fontsize=9)

    tx.axis("off")
    tx.set_title("Consultation: each question's SIG", fontsize=9)
    y, step = 1.0, 1.0 / max(6, 2.2 * len(turns) + 1)
    max_sig = max([t.get("sig") or 0.0 for t in turns] + [1e-9])
    for k, t in enumerate(turns):
        sig = t.get("sig") or 0.0
        tx.add_patch(plt.Rectangle((0.0, y - 0.6 * step), 0.18 * sig / max_sig, 0.5 * step, color="tab:orange",
                                   transform=tx.transAxes, clip_on=False))
        tx.text(0.0, y + 0.05 * step, f"Q{k + 1}  SIG {sig:.3f}", transform=tx.transAxes, fontsize=8,
                fontweight="bold", va="bottom")
        tx.text(0.21, y, textwrap.shorten("Doctor: " + t["question"], 90, placeholder="..."),
                transform=tx.transAxes, fontsize=8, va="top")
        tx.text(0.21, y - 0.45 * step, textwrap.shorten("Patient: " + t["reply"], 90, placeholder="..."),
                transform=tx.transAxes, fontsize=8, va="top", color="dimgray")
        y -= 1.2 * step
    if not turns:
        tx.text(0.0, 0.9, "(no questions asked)", transform=tx.transAxes, fontsize=9)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def case_figure_from_run(run_dir: Path, doctor: str, case_id: str | None, out: Path) -> str:
    """Draw :func:`plot_case_sig` for one case of a ``promed eval`` run (its transcripts and Shapley cache).

    Returns the case id drawn: ``case_id``, or by default the first case by id among those the run has Shapley
    values for (an evaluation computes them only for cases where some question revealed a fact).
    """
    from promed.io import read_jsonl, safe_name
    from promed.sig.cache import read_shapley

    tpath = Path(run_dir) / "transcripts" / f"{safe_name(doctor)}.jsonl"
    spath = Path(run_dir) / "shapley.jsonl"
    if not tpath.exists():
        raise InputError(f"{tpath}: no transcripts for doctor {doctor!r} in {run_dir}")
    if not spath.exists():
        raise InputError(f"{spath}: no Shapley cache (run promed eval with --sig)")
    shapley = {s.id: s for s in read_shapley(spath)}
    recs = [r for r in read_jsonl(tpath) if (r["id"] == case_id if case_id is not None else r["id"] in shapley)
            and r.get("sample", 0) == 0]
    if not recs:
        if case_id is None:
            raise InputError(f"{spath}: no case of doctor {doctor!r} has Shapley values (no question revealed a "
                              "fact); pass --case, after computing its values with promed sig")
        raise InputError(f"case {case_id!r} is not in {tpath}")
    rec = min(recs, key=lambda r: r["id"])
    if rec["id"] not in shapley:
        raise InputError(f"case {rec['id']!r} has no Shapley values in {spath} (no question of this run revealed "
                          "a fact in it; promed sig computes them for every case)")
    s = shapley[rec["id"]]
    verdict = "correct" if rec["correct"] else "wrong"
    title = (f"{rec['id']} - doctor {doctor}: answered {rec['answer']} (gold {rec['gold']}, {verdict}); "
             f"v(empty) = {s.v_empty:.2f}, v(all) = {s.v_full:.2f}")
    plot_case_sig(list(s.facts), list(s.phi), rec["turns"], Path(out), title=title)
    return rec["id"]
