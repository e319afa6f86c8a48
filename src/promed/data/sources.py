"""One entry point for cases: the SynthClinic generator or a JSONL file, chosen by :class:`DataConfig`.

:class:`DataConfig` checks its values when it is built (a bad ``--limit`` or ``--split`` is an input error that
names the option, raised before a command loads or writes anything); :func:`load_data` raises
:class:`promed.data.cases.DataError` for bad files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from promed.data.cases import INITIAL_PROTOCOLS, LoadResult, load_cases

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

    def __post_init__(self) -> None:
        if not isinstance(self.data, str) or not self.data.strip():
            raise ValueError(f"--data must be 'synthclinic' or a JSONL file, got {self.data!r}")
        if self.split not in SPLITS:
            raise ValueError(f"--split: unknown split {self.split!r}; choose from {', '.join(SPLITS)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit} (leave it out for every case)")
        if self.initial not in INITIAL_PROTOCOLS:
            raise ValueError(f"--initial must be {' or '.join(INITIAL_PROTOCOLS)}, got {self.initial!r}")
        if self.data_seed < 0:
            raise ValueError(f"--data-seed must be >= 0, got {self.data_seed}")


def load_data(cfg: DataConfig) -> LoadResult:
    """Cases for ``cfg``: ``synthclinic`` generates the split deterministically; anything else is a JSONL file."""
    if cfg.data == "synthclinic":
        from promed.data.synthclinic import generate_cases

        return LoadResult(generate_cases(cfg.split, cfg.limit, seed=cfg.data_seed))
    return load_cases(cfg.data, initial=cfg.initial, limit=cfg.limit)
