"""Result tables: markdown for ``table.md`` and a rich table for the terminal; ``promed patient``'s table."""

from __future__ import annotations

from promed.eval.metrics import Metrics
from promed.eval.patient_metrics import PatientScores

COLUMNS = ("doctor", "accuracy", "95% CI", "questions", "fact recall", "SIG/question", "SIG total",
           "invalid", "truncated", "n")


SAMPLED_COLUMNS = ("sampled acc", "pass@G")
PATIENT_COLUMNS = ("kind", "questions", "labelled", "precision", "recall", "F1", "unanswerable",
                   "refused (unanswerable)", "answered")


def _sampled(results: dict[str, Metrics]) -> bool:
    return any(m.sampled_accuracy is not None for m in results.values())


def _columns(results: dict[str, Metrics]) -> tuple[str, ...]:
    return COLUMNS[:3] + SAMPLED_COLUMNS + COLUMNS[3:] if _sampled(results) else COLUMNS


def _row(name: str, m: Metrics, sampled: bool = False) -> list[str]:
    sig = "-" if m.mean_sig is None else f"{m.mean_sig:.3f}"
    tot = "-" if m.total_sig is None else f"{m.total_sig:.3f}"
    extra = []
    if sampled:
        extra = ["-", "-"] if m.sampled_accuracy is None else [
            f"{m.sampled_accuracy:.3f}", f"{m.pass_at_k:.3f} (G={m.samples})"]
    if m.overlap:
        name = f"{name} (trained on {m.overlap} of these cases)"
    return [name, f"{m.accuracy:.3f}", f"[{m.ci95[0]:.3f}, {m.ci95[1]:.3f}]", *extra, f"{m.mean_questions:.2f}",
            f"{m.fact_recall:.3f}", sig, tot, f"{m.invalid_rate:.3f}", f"{m.truncated_rate:.3f}", str(m.n)]


def markdown_table(results: dict[str, Metrics]) -> str:
    cols, sampled = _columns(results), _sampled(results)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_row(name, m, sampled)) + " |" for name, m in results.items()]
    skipped = next(iter(results.values())).skipped if results else {}
    if skipped:
        lines.append("")
        lines.append("Skipped cases: " + ", ".join(f"{v} ({k})" for k, v in sorted(skipped.items())))
    return "\n".join(lines) + "\n"


def rich_table(results: dict[str, Metrics], title: str = ""):
    from rich.table import Table

    table = Table(title=title or None)
    for c in _columns(results):
        table.add_column(c, justify="left" if c == "doctor" else "right")
    for name, m in results.items():
        table.add_row(*_row(name, m, _sampled(results)))
    return table


def patient_rich_table(overall: PatientScores, by_kind: dict[str, PatientScores], title: str = ""):
    """``promed patient``'s table: one row for all questions, then one per kind (``-``: undefined)."""
    from rich.table import Table

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    table = Table(title=title or None)
    for c in PATIENT_COLUMNS:
        table.add_column(c, justify="left" if c == "kind" else "right")
    for name, s in (("all", overall), *by_kind.items()):
        table.add_row(name, str(s.n_questions), str(s.n_labelled), num(s.precision), num(s.recall), num(s.f1),
                      str(s.n_unanswerable), num(s.refusal_rate_unanswerable), num(s.answered_rate))
    return table
