"""Stage 1 supervised fine-tuning of the doctor on MCTS trajectories (loss on doctor turns only).

:func:`run_sft` trains any causal LM on a chat JSONL file (see :mod:`promed.train.data`) with TRL's ``SFTTrainer``
(full fine-tuning, or LoRA through peft) and writes to ``out_dir``:

* the final model + tokenizer (with its chat template), loadable by ``AutoModelForCausalLM.from_pretrained`` /
  ``AutoTokenizer.from_pretrained`` and by the ``hf:<out_dir>`` backend. With LoRA the adapter is merged into the
  base weights before saving (``merge_lora=True``), so evaluation never needs peft; ``merge_lora=False`` saves the
  adapter only (``adapter_config.json``; load with peft).
* ``checkpoints/checkpoint-<step>/``: Trainer checkpoints (model/adapter, optimizer, scheduler, RNG, data position)
  every ``save_steps`` and at the last step. With ``resume`` a rerun continues from the latest one.
* ``loss.png`` (training loss, and eval loss if any, per step) and ``train_log.json`` (config, summary, the
  Trainer's log history, library versions).
* ``base/`` for ``model="synthclinic-small"``: the tokenizer + untrained model built from the trajectories' own
  texts (:func:`promed.train.small_model.build_small_doctor`); reused on resume so the vocabulary never changes.

Design choice: the dataset handed to ``SFTTrainer`` is **pre-tokenized** (``input_ids`` + ``labels`` with ``-100``
off the doctor's tokens, built by :func:`promed.train.data.tokenize_with_mask`) rather than a ``messages`` column
with ``assistant_only_loss=True``. TRL documents this seam (a ``labels`` column is used as is); it works for every
chat template, including those without ``{% generation %}`` markers (most hub templates) and our own custom
tokenizer, and the mask is checked by our tests (decode the unmasked tokens, compare with the doctor turns).

Models without a chat template (base models such as Gemma 3 270M GGUF) get
:data:`promed.train.data.PLAIN_CHAT_TEMPLATE` (the HF backend's plain ``Role: content`` layout, with the EOS token
closing each assistant turn); it is saved with the checkpoint, so the trained model stops after one doctor turn.

GPU: bf16 autocast when CUDA supports it (``bf16=None``), LoRA bases loaded in bf16 there, optional gradient
checkpointing; device placement is the Trainer's (``accelerate launch`` for several GPUs; only the main process
writes the final files).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from promed.data.lineage import Lineage, model_lineage, read_lineage, write_lineage
from promed.train.data import ChatExample, DataError, example_texts, load_chat_jsonl, tokenize_with_mask
from promed.train.hf_training import (bf16_enabled, checkpointing_kwargs, load_model, plot_losses,
                                      save_and_stop_callbacks, save_final, torch_threads, write_log)
from promed.train.small_model import SmallModelConfig, build_small_doctor

SMALL_SPEC = "synthclinic-small"


@dataclass(frozen=True)
class SFTRunConfig:
    """Stage 1 SFT settings. Defaults suit the CPU ``synthclinic-small`` run; see ``configs/`` for a 7B preset."""

    model: str = field(
        default=SMALL_SPEC,
        metadata={"help": "Model to fine-tune: synthclinic-small (built from the trajectories), hf:<id or path>, "
                  "gguf:<file> or gemma-270m."},
    )
    small: SmallModelConfig = field(
        default_factory=SmallModelConfig, metadata={"help": "Tokenizer/model size for synthclinic-small."}
    )
    lora: bool = field(default=False, metadata={"help": "Train LoRA adapters instead of all weights (merged into "
                                                        "the base at the end unless merge_lora is false)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch."})
    lora_target_modules: tuple[str, ...] = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        metadata={"help": "Module names that get adapters (Llama/Qwen/Gemma naming)."},
    )
    merge_lora: bool = field(
        default=True, metadata={"help": "Merge the adapter into the base before the final save (plain HF model)."}
    )
    learning_rate: float | None = field(
        default=None,
        metadata={"help": "Peak learning rate; unset: 2e-3 for synthclinic-small (trained from scratch), 2e-4 with "
                  "LoRA, 2e-5 for full fine-tuning of a pretrained model."},
    )
    lr_scheduler: str = field(default="cosine", metadata={"help": "transformers scheduler name (cosine, linear, ...)."})
    warmup: float = field(default=0.05, metadata={"help": "Warmup: fraction of total steps if < 1, else steps."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    epochs: float = field(
        default=3.0, metadata={"help": "Passes over the training set (the Stage 1 preset trains synthclinic-small for "
                               "5 at batch 16: BENCHMARKS.md)."}
    )
    max_steps: int = field(default=-1, metadata={"help": "If > 0, total optimizer steps (overrides epochs)."})
    batch_size: int = field(default=8, metadata={"help": "Sequences per device per forward pass."})
    grad_accum: int = field(default=1, metadata={"help": "Gradient accumulation steps per optimizer step."})
    max_len: int = field(
        default=1024, metadata={"help": "Max tokens per conversation; longer ones keep their start (later turns cut)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for initialisation, data order and dropout."})
    save_steps: int = field(default=200, metadata={"help": "Checkpoint every this many optimizer steps."})
    save_total_limit: int = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    logging_steps: int = field(default=10, metadata={"help": "Log (and record) the training loss every N steps."})
    eval_steps: int | None = field(default=None, metadata={"help": "Eval-loss interval (None: save_steps)."})
    resume: bool = field(
        default=True,
        metadata={"help": "Continue from the latest checkpoint in out_dir/checkpoints if any; False deletes old "
                  "checkpoints and starts over."},
    )
    stop_after_steps: int | None = field(
        default=None,
        metadata={"help": "Checkpoint and stop after this many steps, as if interrupted (time-boxed runs, tests); "
                  "the schedule is still planned for the whole run."},
    )
    bf16: bool | None = field(default=None, metadata={"help": "bf16 autocast; None: on when CUDA supports bf16."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Trade compute for activation memory."})
    progress_bar: bool = field(default=True, metadata={"help": "Show the Trainer's progress bar."})
    num_threads: int | None = field(
        default=None,
        metadata={"help": "torch CPU threads while training (restored afterwards). None: at most 2 for "
                  "synthclinic-small without CUDA (its tiny matmuls gain 1.4x from a second thread on an idle "
                  "2-core CPU, and lose up to 15x when the cores are busy), else torch's setting."},
    )


@dataclass(frozen=True)
class SFTResult:
    """What :func:`run_sft` did.

    ``model_dir`` is ``out_dir`` (final model) when ``completed``, else the last checkpoint; ``steps`` the optimizer
    steps done in total (resumed runs included); ``losses[i]`` the mean training loss over doctor tokens logged at
    step ``loss_steps[i]``; ``eval_loss`` the final eval loss (with ``eval_path``); ``wall_s`` this call's time;
    ``n_truncated`` / ``n_dropped`` the conversations cut at ``max_len`` / left without doctor tokens by the cut.
    """

    model_dir: Path
    completed: bool
    steps: int
    loss_steps: tuple[int, ...]
    losses: tuple[float, ...]
    eval_loss: float | None
    wall_s: float
    n_examples: int
    n_truncated: int
    n_dropped: int
    resumed_from: Path | None


def resolved_learning_rate(cfg: SFTRunConfig) -> float:
    if cfg.learning_rate is not None:
        return cfg.learning_rate
    if cfg.model == SMALL_SPEC:
        return 2e-3
    return 2e-4 if cfg.lora else 2e-5


def load_base(cfg: SFTRunConfig, out_dir: Path, train: list[ChatExample]):
    """(model, tokenizer) to fine-tune, per ``cfg.model``; gives template-less tokenizers the plain template."""
    dtype = torch.bfloat16 if (cfg.lora and bf16_enabled(cfg.bf16)) else torch.float32
    if cfg.model != SMALL_SPEC:
        return load_model(cfg.model, dtype)
    base = out_dir / "base"
    if not (cfg.resume and (base / "config.json").exists() and (base / "tokenizer.json").exists()):
        build_small_doctor(example_texts(train), base, cfg.small)
    return load_model(f"hf:{base}", dtype)


def build_dataset(examples: list[ChatExample], tokenizer, max_len: int):
    """Pre-tokenized ``datasets.Dataset`` (input_ids, labels); drops conversations left without doctor tokens by
    truncation. Returns (dataset, n_truncated, n_dropped)."""
    from datasets import Dataset

    ids_col: list[list[int]] = []
    lab_col: list[list[int]] = []
    n_trunc = n_drop = 0
    for ex in examples:
        try:
            ids, labels = tokenize_with_mask(ex.messages, tokenizer, max_len=None)
        except DataError as e:
            raise DataError(f"example {ex.id!r}: {e}") from e
        if len(ids) > max_len:
            n_trunc += 1
            ids, labels = ids[:max_len], labels[:max_len]
        if all(lab == -100 for lab in labels):
            n_drop += 1
            continue
        ids_col.append(ids)
        lab_col.append(labels)
    if not ids_col:
        raise DataError(f"no example has doctor tokens within max_len={max_len}")
    return Dataset.from_dict({"input_ids": ids_col, "labels": lab_col}), n_trunc, n_drop


def run_sft(train_path: str | Path, out_dir: str | Path, cfg: SFTRunConfig = SFTRunConfig(),
            eval_path: str | Path | None = None) -> SFTResult:
    """Fine-tune ``cfg.model`` on the doctor turns of ``train_path`` (chat JSONL); see the module docstring."""

    n = cfg.num_threads
    if n is None and cfg.model == SMALL_SPEC and not torch.cuda.is_available():
        n = min(2, torch.get_num_threads())
    with torch_threads(n):
        return _run(Path(train_path), Path(out_dir), cfg, Path(eval_path) if eval_path is not None else None)


def _run(train_path: Path, out: Path, cfg: SFTRunConfig, eval_path: Path | None) -> SFTResult:
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTTrainer

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    train = load_chat_jsonl(train_path)
    lineage = (read_lineage(train_path) or Lineage()).union(model_lineage(cfg.model))
    if lineage.fingerprints:  # what the trajectories' search and the base model learned from (promed.data.lineage)
        write_lineage(out, lineage)
    evals = load_chat_jsonl(eval_path) if eval_path is not None else None

    resume_from = get_last_checkpoint(str(ckpt_dir)) if (cfg.resume and ckpt_dir.is_dir()) else None
    if not cfg.resume and ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)

    model, tokenizer = load_base(cfg, out, train)
    train_ds, n_trunc, n_drop = build_dataset(train, tokenizer, cfg.max_len)
    eval_ds = build_dataset(evals, tokenizer, cfg.max_len)[0] if evals else None
    trainer = SFTTrainer(
        model=model,
        args=make_trainer_args(cfg, ckpt_dir, has_eval=eval_ds is not None),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=make_lora_config(cfg) if cfg.lora else None,
        callbacks=save_and_stop_callbacks(cfg.stop_after_steps),
    )
    if trainer.train_dataset[0]["labels"] != train_ds[0]["labels"]:  # our masks must reach the loss untouched
        raise RuntimeError("this TRL version rebuilt the labels of the pre-tokenized dataset; use trl>=1.0")
    trainer.train(resume_from_checkpoint=resume_from)
    state = trainer.state
    completed = state.global_step >= state.max_steps
    eval_loss = float(trainer.evaluate()["eval_loss"]) if (eval_ds is not None and completed) else None

    history = list(state.log_history)
    loss_pts = [(int(h["step"]), float(h["loss"])) for h in history if "loss" in h]
    eval_pts = [(int(h["step"]), float(h["eval_loss"])) for h in history if "eval_loss" in h]
    main = trainer.is_world_process_zero()
    if main:
        if completed:
            save_final(trainer, tokenizer, out, merge=cfg.lora and cfg.merge_lora)
        plot_losses(loss_pts, eval_pts, out / "loss.png")
    result = SFTResult(
        model_dir=out if completed else Path(get_last_checkpoint(str(ckpt_dir)) or ckpt_dir),
        completed=completed,
        steps=int(state.global_step),
        loss_steps=tuple(s for s, _ in loss_pts),
        losses=tuple(v for _, v in loss_pts),
        eval_loss=eval_loss,
        wall_s=round(time.perf_counter() - t0, 3),
        n_examples=len(train_ds),
        n_truncated=n_trunc,
        n_dropped=n_drop,
        resumed_from=Path(resume_from) if resume_from else None,
    )
    if main:
        write_log(out / "train_log.json", cfg, result, history)
    return result


def make_trainer_args(cfg: SFTRunConfig, ckpt_dir: Path, has_eval: bool):
    """TRL ``SFTConfig`` for ``cfg`` (TRL's own defaults for bf16 and gradient checkpointing are overridden)."""
    from trl import SFTConfig

    bf16 = bf16_enabled(cfg.bf16)
    return SFTConfig(
        output_dir=str(ckpt_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=resolved_learning_rate(cfg),
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup,
        weight_decay=cfg.weight_decay,
        max_length=cfg.max_len,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=(cfg.eval_steps or cfg.save_steps) if has_eval else None,
        bf16=bf16,
        fp16=False,
        # bf16 without CUDA is CPU autocast, which the Trainer only allows with use_cpu (not set otherwise: it would
        # also turn off Apple's MPS)
        **({"use_cpu": True} if bf16 and not torch.cuda.is_available() else {}),
        report_to="none",
        disable_tqdm=not cfg.progress_bar,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        **checkpointing_kwargs(SFTConfig, cfg.gradient_checkpointing),
    )


def make_lora_config(cfg: SFTRunConfig):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.lora_target_modules), task_type="CAUSAL_LM")
