"""One entry point for cases: the SynthClinic generator or a JSONL file."""

from __future__ import annotations

from promed.config import DataConfig
from promed.data.cases import LoadResult, load_cases

SPLITS = ("train", "val", "test")


def load_data(cfg: DataConfig) -> LoadResult:
    """Cases for ``cfg``: ``synthclinic`` generates the split deterministically; anything else is a JSONL file."""
    if cfg.data == "synthclinic":
        if cfg.split not in SPLITS:
            raise ValueError(f"unknown split {cfg.split!r}; choose from {', '.join(SPLITS)}")
        from promed.data.synthclinic import generate_cases

        return LoadResult(generate_cases(cfg.split, cfg.limit, seed=cfg.data_seed))
    return load_cases(cfg.data, initial=cfg.initial, limit=cfg.limit)
