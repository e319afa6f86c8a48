"""One entry point for cases: the SynthClinic generator or a JSONL file, chosen by :class:`DataConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field

from promed.data.cases import LoadResult, load_cases

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DataConfig:
    """Which cases to use (``--data``, ``--split``, ``--limit``, ``--initial``, ``--data-seed``)."""

    data: str = field(default="synthclinic", metadata={"help": "'synthclinic' or a JSONL file (MediQ or generic "
                                                               "format)."})
    split: str = field(default="test", metadata={"help": "SynthClinic split: train, val or test."})
    limit: int | None = field(default=None, metadata={"help": "Use at most this many cases."})
    initial: str = field(
        default="first-sentence",
        metadata={"help": "Initial information for MediQ files: first-sentence or first-half-facts."},
    )
    data_seed: int = field(default=0, metadata={"help": "SynthClinic generator seed (0 = the standard benchmark)."})


def load_data(cfg: DataConfig) -> LoadResult:
    """Cases for ``cfg``: ``synthclinic`` generates the split deterministically; anything else is a JSONL file."""
    if cfg.data == "synthclinic":
        if cfg.split not in SPLITS:
            raise ValueError(f"unknown split {cfg.split!r}; choose from {', '.join(SPLITS)}")
        from promed.data.synthclinic import generate_cases

        return LoadResult(generate_cases(cfg.split, cfg.limit, seed=cfg.data_seed))
    return load_cases(cfg.data, initial=cfg.initial, limit=cfg.limit)
