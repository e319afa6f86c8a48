"""Stage 0's training: build (or reuse) ``synthclinic-small`` and train it on the packed answer branches.

Training is Stage 1's SFT machinery composed, not re-written: the ``synthclinic-small`` builder whose BPE tokenizer
is trained on the examples' texts, TRL's ``SFTTrainer`` with SFT's trainer settings (:func:`sft_config`), the shared
checkpoint, save and log helpers (:mod:`promed.train.hf_training`). Two things differ from ``run_sft``: the labels
(answer turns only, packed branches whose trainer computes the logits of the answer tokens only:
:func:`promed.train.branches.branch_trainer_class`), and the examples, generated in memory from the config
(deterministic, so a resumed run sees the same data), batched by length, and handed to the trainer as they are
(TRL's dataset preparation is skipped: it would only copy ``input_ids`` into a ``labels`` column the loss never
reads).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from promed.train.hf_training import torch_threads, write_log
from promed.train.pretrain.config import PretrainConfig
from promed.train.pretrain.examples import pretraining_examples
from promed.train.pretrain.tokens import build_dataset
from promed.train.sft import SMALL_SPEC, SFTResult, SFTRunConfig
from promed.types import Case

__all__ = ["TOKENIZER_EXAMPLES", "PretrainResult", "run_pretrain", "sft_config"]


def sft_config(cfg: PretrainConfig) -> SFTRunConfig:
    """Stage 1's SFT settings that run this pretraining (``synthclinic-small`` built from the examples)."""
    return SFTRunConfig(
        model=SMALL_SPEC, small=cfg.small, learning_rate=cfg.learning_rate, lr_scheduler=cfg.lr_scheduler,
        warmup=cfg.warmup, weight_decay=cfg.weight_decay, epochs=cfg.epochs, max_steps=cfg.max_steps,
        batch_size=cfg.batch_size, max_len=cfg.max_len, seed=cfg.seed, save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, logging_steps=cfg.logging_steps, resume=cfg.resume,
        stop_after_steps=cfg.stop_after_steps, progress_bar=cfg.progress_bar, num_threads=cfg.num_threads,
        bf16=cfg.bf16,
    )


@dataclass(frozen=True)
class PretrainResult:
    """What :func:`run_pretrain` did: SFT's result fields (``model_dir`` is ``out`` once completed, else the last
    checkpoint), the data time (generation + rendering + tokenization) and the model's size."""

    sft: SFTResult
    data_s: float
    n_params: int


TOKENIZER_EXAMPLES = 4000  # examples whose texts train the BPE vocabulary (more change nothing but the time)


def run_pretrain(cfg: PretrainConfig, out: str | Path | None = None,
                 cases: Sequence[Case] | None = None) -> PretrainResult:
    """Generate the examples, build (or reuse, on resume) ``synthclinic-small`` under ``out/base`` and train it with
    TRL's SFTTrainer; resumes from the latest checkpoint in ``out/checkpoints``. See the module docstring.

    ``cases`` replaces the generated train-split cases (toy rules in tests; ``cfg.cases`` is then ignored)."""
    import torch

    n = cfg.num_threads
    if n is None and not torch.cuda.is_available():
        n = min(2, torch.get_num_threads())
    with torch_threads(n):
        return _run(cfg, Path(cfg.out if out is None else out), cases)


def _run(cfg: PretrainConfig, out: Path, cases: Sequence[Case] | None) -> PretrainResult:
    import shutil

    import torch

    from transformers.trainer_utils import get_last_checkpoint

    from promed.train.hf_training import plot_losses, save_and_stop_callbacks, save_final
    from promed.train.sft import load_base, make_trainer_args
    from promed.train.small_model import n_params

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    scfg = sft_config(cfg)
    resume_from = get_last_checkpoint(str(ckpt_dir)) if (cfg.resume and ckpt_dir.is_dir()) else None
    if not cfg.resume and ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)

    from promed.data.lineage import lineage_of_cases, write_lineage
    from promed.train.pretrain.examples import pretraining_cases

    label = "pretrain: synthclinic train" + ("" if cases is not None else f", data seed {cfg.data_seed}")
    cases = pretraining_cases(cfg) if cases is None else cases
    write_lineage(out, lineage_of_cases(cases, label))  # the contamination guard's record (promed.data.lineage)
    examples = pretraining_examples(cfg, cases)
    model, tokenizer = load_base(scfg, out, [e.chat for e in examples[:TOKENIZER_EXAMPLES]])  # reused on resume
    soft = cfg.labels == "soft"
    train_ds, n_drop = build_dataset(examples, tokenizer, cfg.max_len, soft=soft, every_turn=cfg.answer_every_turn,
                                     workers=cfg.data_workers or torch.get_num_threads())
    data_s = time.perf_counter() - t0
    args = make_trainer_args(scfg, ckpt_dir, has_eval=False)
    # A packed row's branches make it longer than the positions it spans (build_dataset bounds those by max_len);
    # TRL's truncation at max_length would cut its input_ids and leave the branch columns whole.
    args.max_length = None
    # The rows are tokenized and bounded already: TRL's preparation would only add a "labels" copy of input_ids
    # that the branch loss never reads (~10 s and the memory of a second token column for the default run).
    args.dataset_kwargs = {**(args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    if cfg.group_by_length:
        args.train_sampling_strategy = "group_by_length"  # lengths from the dataset's "length" column
    from promed.train.branches import BranchCollator, branch_trainer_class

    trainer = branch_trainer_class()(model=model, args=args, train_dataset=train_ds, processing_class=tokenizer,
                                     callbacks=save_and_stop_callbacks(scfg.stop_after_steps),
                                     data_collator=BranchCollator(tokenizer.pad_token_id))
    if trainer.train_dataset[0]["targets"] != train_ds[0]["targets"]:  # our masks must reach the loss untouched
        raise RuntimeError("this TRL version rebuilt the labels of the pre-tokenized dataset; use trl>=1.0")
    trainer.train(resume_from_checkpoint=resume_from)
    state = trainer.state
    completed = state.global_step >= state.max_steps
    history = list(state.log_history)
    loss_pts = [(int(h["step"]), float(h["loss"])) for h in history if "loss" in h]
    if completed:
        save_final(trainer, tokenizer, out, merge=False)
    plot_losses(loss_pts, [], out / "loss.png", title="Stage 0 pretraining")
    res = SFTResult(
        model_dir=out if completed else Path(get_last_checkpoint(str(ckpt_dir)) or ckpt_dir), completed=completed,
        steps=int(state.global_step), loss_steps=tuple(s for s, _ in loss_pts), losses=tuple(v for _, v in loss_pts),
        eval_loss=None, wall_s=round(time.perf_counter() - t0, 3), n_examples=len(train_ds), n_truncated=n_drop,
        n_dropped=n_drop, resumed_from=Path(resume_from) if resume_from else None,
    )
    result = PretrainResult(sft=res, data_s=round(data_s, 3), n_params=n_params(model))
    write_log(out / "train_log.json", cfg, result, history)
    return result
