"""One entry point for cases: the SynthClinic generator or a JSONL file, chosen by :class:`DataConfig`.

:class:`DataConfig` checks its values when it is built (a bad ``--limit`` or ``--split`` is an input error that
names the option, raised before a command loads or writes anything); :func:`load_data` raises
:class:`promed.data.cases.DataError` for bad files.

Splits: SynthClinic generates its ``train``, ``val`` and ``test`` splits (``all`` is the three in that order); a
file is split by content hash or by its records' own ``split`` field (:mod:`promed.data.splits`), with the
proportions ``val_share`` and ``test_share``. :meth:`DataConfig.check_given` refuses options that cannot apply to
the source (``--initial`` for SynthClinic, ``--data-seed`` for a file); only the caller knows which options the user
gave (the CLI calls it with the options given on the command line), so a value equal to the default, or one set by
a shared ``--config`` section, is not checked.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from promed.data.cases import INITIAL_PROTOCOLS, LoadResult, load_cases, split_lines
from promed.data.splits import DEFAULT_SHARES, SPLIT_CHOICES, SPLITS, SplitShares
from promed.errors import InputError

__all__ = ["SPLITS", "SPLIT_CHOICES", "DataConfig", "load_data", "write_split_files"]

SPLIT_HELP = ("Which cases: train, val, test or all. SynthClinic: its generated splits (all: the three in turn); "
              "a file: by content hash (--val-share, --test-share) or each record's own 'split' field.")


@dataclass(frozen=True)
class DataConfig:
    """Which cases to use (``--data``, ``--split``, ``--limit``, ``--initial``, ``--data-seed``)."""

    data: str = field(default="synthclinic", metadata={"help": "'synthclinic' or a JSONL file (MediQ or generic "
                                                               "format)."})
    split: str = field(default="test", metadata={"help": SPLIT_HELP})
    limit: int | None = field(default=None, metadata={"help": "Use at most this many cases (of the split)."})
    initial: str = field(
        default="first-sentence",
        metadata={"help": "Initial information for MediQ files: first-sentence or first-half-facts."},
    )
    data_seed: int = field(default=0, metadata={"help": "SynthClinic generator seed (0 = the standard benchmark)."})
    val_share: float = field(default=0.1, metadata={"help": "Files: the share of cases in the val split (by content "
                                                            "hash; records with a 'split' field keep theirs)."})
    test_share: float = field(default=0.1, metadata={"help": "Files: the share of cases in the test split (by "
                                                             "content hash; train gets the rest)."})

    def __post_init__(self) -> None:
        if not isinstance(self.data, str) or not self.data.strip():
            raise InputError(f"--data must be 'synthclinic' or a JSONL file, got {self.data!r}")
        if self.split not in SPLIT_CHOICES:
            raise InputError(f"--split: unknown split {self.split!r}; choose from {', '.join(SPLIT_CHOICES)}")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"--limit must be >= 1, got {self.limit} (leave it out for every case)")
        if self.initial not in INITIAL_PROTOCOLS:
            raise InputError(f"--initial must be {' or '.join(INITIAL_PROTOCOLS)}, got {self.initial!r}")
        if self.data_seed < 0:
            raise InputError(f"--data-seed must be >= 0, got {self.data_seed}")
        SplitShares(self.val_share, self.test_share)  # validates the shares

    @property
    def synthetic(self) -> bool:
        return self.data == "synthclinic"

    @property
    def shares(self) -> SplitShares:
        return SplitShares(self.val_share, self.test_share)

    def unbound_fields(self) -> tuple[str, ...]:
        """Settings that cannot change which cases are read, left out of run manifests (:func:`promed.io.manifest`):
        SynthClinic's splits are generated, so the shares do not apply (and SynthClinic runs made before the shares
        existed still resume). For a file they bind: a run made before files were split is refused."""
        return ("val_share", "test_share") if self.synthetic else ()

    def check_given(self, given: Collection[str]) -> None:
        """Refuse the options in ``given`` (field names) that cannot apply to this source: an input error, never
        ignored. SynthClinic has no initial-information protocol and no share settings; a file has no seed."""
        if self.synthetic:
            bad = [f for f in ("initial", "val_share", "test_share") if f in given]
            why = "it applies to files only (SynthClinic generates its splits and its initial statements)"
        else:
            bad = [f for f in ("data_seed",) if f in given]
            why = "it seeds the SynthClinic generator and does nothing for a file"
        if bad:
            raise InputError(f"--{bad[0].replace('_', '-')} cannot be used with --data {self.data}: {why}")


def load_data(cfg: DataConfig) -> LoadResult:
    """Cases for ``cfg``: ``synthclinic`` generates the split deterministically; anything else is a JSONL file."""
    if cfg.synthetic:
        from promed.data.synthclinic import DEFAULT_SIZES, generate_cases

        if cfg.split != "all":
            return LoadResult(generate_cases(cfg.split, cfg.limit, seed=cfg.data_seed))
        cases = []
        for split in SPLITS:  # each split at its own size; --limit cuts the concatenation
            n = DEFAULT_SIZES[split] if cfg.limit is None else min(DEFAULT_SIZES[split], cfg.limit - len(cases))
            cases += generate_cases(split, n, seed=cfg.data_seed) if n > 0 else []
        return LoadResult(cases)
    return load_cases(cfg.data, initial=cfg.initial, limit=cfg.limit, split=cfg.split, shares=cfg.shares)


def write_synthclinic(cfg: DataConfig, out: str | Path) -> int:
    """``promed data synthclinic``: the cases of ``cfg`` (SynthClinic) as generic JSONL, each record with its
    ``split`` field, so that reading the file back with another ``--split`` finds none of them. Returns the count."""
    from promed.data.cases import write_cases

    if not cfg.synthetic:
        raise InputError(f"promed data synthclinic writes SynthClinic cases, not {cfg.data!r}")
    cases = load_data(cfg).cases
    if cfg.split != "all":
        splits = dict.fromkeys((c.id for c in cases), cfg.split)
    else:  # ids are sc-<split>-<n>: the generator's own split of each case
        splits = {c.id: next(s for s in SPLITS if c.id.startswith(f"sc-{s}-")) for c in cases}
    write_cases(cases, out, splits)
    return len(cases)


def write_split_files(path: str | Path, out: str | Path,
                      shares: SplitShares = DEFAULT_SHARES) -> tuple[dict[str, int], dict[str, int]]:
    """``promed data split``: ``out/train.jsonl``, ``out/val.jsonl``, ``out/test.jsonl`` holding the file's usable
    records verbatim, each in its split (so ``--split test`` on ``out/test.jsonl`` keeps every case). Returns the
    counts per split and the unusable records left out, by reason. The whole file is validated and ``out`` checked
    before the first file is written; each file is written atomically (temp file + rename)."""
    from promed.io import atomic_write_lines, check_out_dir

    lines, skipped = split_lines(path, shares)
    out = Path(out)
    check_out_dir(out)
    targets = {s: out / f"{s}.jsonl" for s in SPLITS}
    for target in targets.values():
        if target.is_dir():
            raise InputError(f"--out {out}: {target} is a directory")
        if target.exists() and target.resolve() == Path(path).resolve():
            raise InputError(f"--out {out}: {target} is the input file; choose another --out")
    for split, target in targets.items():
        atomic_write_lines(target, lines[split])
    return {s: len(lines[s]) for s in SPLITS}, skipped

