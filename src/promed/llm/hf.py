"""Hugging Face transformers backend: any causal LM (hub id, local checkpoint dir, GGUF file), generation and
fast option scoring.

* ``generate`` renders each chat with the tokenizer's chat template when it has one, else with the plain fallback
  :func:`render_plain` (``System: ...\\nUser: ...\\nAssistant:``; Gemma 3 270M base GGUF carries no template),
  and decodes a left-padded batch greedily (``temperature == 0``) or by sampling. It returns
  :class:`promed.types.Generation` objects: the sampled ids (cut at a stop string on a token boundary, so that
  ``text == decode(token_ids)``; ending with the end-of-turn id when the model emitted it) and each id's
  log-probability under the sampling distribution (logits / temperature, before top-p truncation, as TRL
  computes it; the plain logits when greedy). Sampling draws every row from its own random stream (seeded
  per chat from ``Sampling.seeds``), so a chat's sample does not depend on the other chats in the batch: the
  choice is made in a logits processor (:class:`promed.llm.sampling.RowSampler`) under greedy decoding, which keeps
  ``model.generate``'s batching and caching. The draw runs on the model's device, batched (inverse CDF with one
  pre-drawn uniform per row and step); no vocabulary-sized tensor is copied to the host.
* ``score_options`` computes ``log P(option | prompt)`` summed over the option's tokens, then a softmax over the
  prompt's options. It is built for many prompts sharing a long prefix (one case scored with many fact subsets):
  see :mod:`promed.llm.packed_scoring` for the prefix-reuse algorithm (shared prefix run once, suffixes packed as
  a token trie with tree attention).

Generation never reads or changes the process's global torch RNG state.

A backend built around a model it did not load (``HFBackend(model, tokenizer)``, e.g. a policy being trained)
leaves the model's device, dtype and train/eval mode as they were (it switches to eval mode only for the duration
of a call and restores the mode after) and always serves the model's current weights.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from promed.errors import InputError
from promed.llm.packed_scoring import (
    PackedCheck,
    Runner,
    build_rows,
    head_supported,
    packed_check,
    score_rows_naive,
    score_rows_packed,
)
from promed.llm.base import ContextLengthError
from promed.llm.sampling import RowSampler, row_seed
from promed.types import Chat, Generation, Sampling


@dataclass(frozen=True)
class HFOptions:
    """Options of :class:`HFBackend` (``load_llm(spec, **options)`` passes them through)."""

    device: str = field(default="auto", metadata={"help": "torch device; 'auto' = cuda if available else cpu."})
    dtype: str = field(
        default="auto",
        metadata={"help": "float32 | bfloat16 | float16 | auto (float32 on cpu, bfloat16 on cuda)."},
    )
    gen_batch_size: int = field(default=16, metadata={"help": "Sequences per generate() call (a chat's n samples are "
                                                              "n sequences); beam search: chats per call."})
    chunk_tokens: int = field(
        default=1024, metadata={"help": "Most suffix-trie tokens packed into one scoring forward pass."}
    )
    min_shared_prefix: int = field(
        default=16, metadata={"help": "Prompts sharing at least this many leading tokens share one prefix KV cache."}
    )
    reuse_prefix: bool = field(default=True, metadata={"help": "Score with shared-prefix KV reuse (else naive)."})
    gguf_cache_dir: str = field(
        default="~/.cache/promed/gguf",
        metadata={"help": "Where GGUF files converted to a transformers checkpoint are kept ('' = no cache)."},
    )


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise InputError(f"unknown dtype {dtype!r}: expected float32, bfloat16, float16 or auto") from None


def render_plain(chat: Chat) -> str:
    """Plain-text chat rendering for tokenizers without a chat template (e.g. base models).

    Each message becomes ``<Role>: <content>`` on its own line(s) (roles capitalised: System, User, Assistant),
    and the text ends with ``Assistant:`` so the model continues as the assistant.
    A message whose content already starts with whitespace (a model's own output after ``Assistant:``) is
    appended without another space, so the rendering of a chat that includes a doctor's output extends the
    prompt the doctor saw plus that output.
    """
    lines = [f"{m['role'].capitalize()}:{'' if m['content'][:1].isspace() else ' '}{m['content']}" for m in chat]
    return "\n".join(lines + ["Assistant:"])


class HFBackend:
    """An :class:`promed.llm.base.LLM` over a transformers causal LM and its tokenizer.

    Build it from loaded objects (``HFBackend(model, tokenizer, name=...)``: the model is used as it is, on its
    device, in its dtype, and its train/eval mode is restored after every call) or with :meth:`from_pretrained`
    (``owned=True``: the backend moves and casts the model it loaded as ``options`` say).
    """

    supports_beams = True

    def __init__(self, model, tokenizer, *, name: str, options: HFOptions = HFOptions(), owned: bool = False):
        self.name = name
        self.options = options
        self.owned = owned
        if owned:
            self.device = resolve_device(options.device)
            self.dtype = resolve_dtype(options.dtype, self.device)
            self.model = model.to(device=self.device, dtype=self.dtype).eval()
        else:
            param = next(model.parameters())
            self.device, self.dtype, self.model = param.device, param.dtype, model
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.eos_ids = _eos_ids(model, tokenizer)
        self._runner: Runner | None = None  # scoring forward passes (self-checks run once, on first use)
        # the packed-scoring self-check's outcome (None until the first scoring call): ok = the fast path is used
        self.packed_status: PackedCheck | None = None

    @classmethod
    def from_pretrained(cls, path_or_id: str, *, gguf_file: str | None = None, name: str | None = None,
                        options: HFOptions = HFOptions()) -> "HFBackend":
        """Load a model + tokenizer from a hub id or a local directory (``gguf_file`` = a GGUF file in it)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = resolve_device(options.device)
        kw = {"gguf_file": gguf_file} if gguf_file else {}
        tok = AutoTokenizer.from_pretrained(path_or_id, **kw)
        model = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=resolve_dtype(options.dtype, device), **kw)
        return cls(model, tok, name=name or path_or_id, options=options, owned=True)

    @classmethod
    def from_gguf(cls, path: str | Path, *, name: str | None = None, options: HFOptions = HFOptions()) -> "HFBackend":
        """Load a GGUF file (transformers dequantizes it to float32).

        Reading GGUF metadata is slow (Gemma's 262k-token vocabulary is parsed token by token, and transformers
        reads it three times: tokenizer, config, weights), so the converted checkpoint is saved once under
        ``options.gguf_cache_dir`` (keyed by the file's size and first/last MiB) and loaded from there afterwards.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        cache = _gguf_cache_dir(path, options.gguf_cache_dir)
        if cache is not None and (cache / _CACHE_DONE).is_file():
            return cls.from_pretrained(str(cache), name=name or str(path), options=options)
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        if cache is not None:
            _save_converted(model, tok, cache)
        return cls(model, tok, name=name or str(path), options=options, owned=True)

    def __repr__(self) -> str:
        return f"HFBackend(name={self.name!r}, device={self.device}, dtype={self.dtype})"

    # ---- generation -----------------------------------------------------------------------------------------

    def render(self, chat: Chat) -> str:
        """The prompt text for ``chat`` (chat template with generation prompt, else :func:`render_plain`)."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return render_plain(chat)

    def encode_prompt(self, chat: Chat) -> list[int]:
        """The token ids of the prompt for ``chat``, exactly as generate() feeds them to the model."""
        # A chat template writes its own BOS, so special tokens are only added to the plain fallback.
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        return self.tokenizer(self.render(chat), add_special_tokens=not templated)["input_ids"]

    @property
    def max_context(self) -> int:
        """The most tokens the model takes (its ``max_position_embeddings``; 0 when unknown)."""
        cfg = getattr(self.model, "config", None)
        cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        return int(getattr(cfg, "max_position_embeddings", 0) or 0)

    def load_weights(self, model) -> None:
        """Serve ``model``'s weights from now on (a model object: used as is; a state dict: copied in)."""
        if isinstance(model, dict):
            self.model.load_state_dict(model)
        else:
            self.model = model
            self._runner = None

    def generate(self, chats: Sequence[Chat], sampling: Sampling = Sampling()) -> list[Generation]:
        """``sampling.n`` generations per chat, chat-major: ``[c0s0, c0s1, ..., c1s0, ...]``.

        Generation ends at the model's end-of-sequence / end-of-turn ids or, on a token boundary, at the first token
        that completes a stop string (that token is kept, so the text includes the stop string). ``sampling.beams
        > 1`` (temperature 0 only) runs beam search of that width and returns each chat's ``n`` best beams, most
        likely first (their ``logprobs`` are ``None``: beam search is an evaluation-time decoding rule).
        """
        beam = sampling.beams > 1
        if beam and (sampling.temperature > 0 or sampling.n > sampling.beams):
            raise ValueError("beam search needs temperature 0 and n <= beams")
        if sampling.seeds and len(sampling.seeds) != len(chats):
            raise ValueError(f"got {len(sampling.seeds)} seeds for {len(chats)} chats")
        copies = 1 if beam else sampling.n
        prompts = [self.encode_prompt(c) for c in chats]  # each chat once; its copies share the ids
        limit = self.max_context
        for j, e in enumerate(prompts):
            if limit and len(e) + sampling.max_new_tokens > limit:
                raise ContextLengthError(f"{self.name}: chat {j} has {len(e):,} prompt tokens; with "
                                         f"{sampling.max_new_tokens} new tokens that exceeds the model's context of "
                                         f"{limit:,}", index=j, length=len(e), limit=limit)
        encoded = [e for e in prompts for _ in range(copies)]
        row_seeds = [row_seed(sampling, i, k) for i in range(len(chats)) for k in range(copies)]
        out: list[Generation] = []
        with self._serving(), torch.inference_mode():
            bs = self.options.gen_batch_size  # chats per call (beam search runs beams x that many rows)
            for start in range(0, len(encoded), bs):
                out.extend(self._generate_batch(encoded[start : start + bs], sampling, row_seeds[start : start + bs]))
        return out

    def _generate_batch(self, encoded: list[list[int]], sampling: Sampling, seeds: list[int]) -> list[Generation]:
        from transformers import LogitsProcessorList

        pad = self.tokenizer.pad_token_id
        width = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for i, e in enumerate(encoded):  # left padding: every row ends at the same column
            ids[i, width - len(e) :] = torch.tensor(e)
            mask[i, width - len(e) :] = 1
        kwargs = dict(max_new_tokens=sampling.max_new_tokens, pad_token_id=pad, eos_token_id=self.eos_ids,
                      do_sample=False, temperature=None, top_p=None, top_k=None)
        sampler = None
        if sampling.beams > 1:
            kwargs.update(num_beams=sampling.beams, num_return_sequences=sampling.n)
        else:
            sampler = RowSampler(seeds, sampling.temperature, sampling.top_p, self.device,
                                 steps=sampling.max_new_tokens)
            kwargs.update(logits_processor=LogitsProcessorList([sampler]))
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        gen = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs)
        new = gen[:, width:].tolist()
        logps = sampler.logprob_table() if sampler is not None else None
        out = []
        for r, row in enumerate(new):
            cut, reason = self._cut(row, sampling.stop)
            toks = tuple(int(t) for t in row[:cut])
            lp = tuple(float(x) for x in logps[r][:cut]) if logps is not None else None
            text = self.tokenizer.decode(list(toks), skip_special_tokens=True)
            out.append(Generation(text=text, token_ids=toks, logprobs=lp, finish_reason=reason))
        return out

    def _cut(self, row: list[int], stop: Sequence[str]) -> tuple[int, str]:
        """Where a generated row ends: after the first end-of-turn id or the token completing a stop string."""
        eos = set(self.eos_ids)
        end = next((j + 1 for j, t in enumerate(row) if t in eos), None)
        body = row[: end if end is not None else len(row)]
        stops = [x for x in stop if x]
        if stops and any(x in self.tokenizer.decode(body, skip_special_tokens=True) for x in stops):
            for j in range(len(body)):
                if any(x in self.tokenizer.decode(body[: j + 1], skip_special_tokens=True) for x in stops):
                    return j + 1, "stop"
        if end is not None:
            return end, "stop"
        return len(row), "length"

    @contextmanager
    def _serving(self):
        """Eval mode for one call (restored after), and the global torch RNG left untouched."""
        was_training = self.model.training
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        self.model.eval()
        try:
            with torch.random.fork_rng(devices=devices):
                yield
        finally:
            if was_training:
                self.model.train()

    # ---- scoring --------------------------------------------------------------------------------------------

    def score_options(self, prompts: Sequence[str], options: Sequence[Sequence[str]], *,
                      reuse_prefix: bool | None = None) -> list[np.ndarray]:
        """Per prompt, P(option | prompt) normalised over that prompt's options.

        ``options`` holds one list of candidate continuations per prompt, or a single list used for every prompt.
        ``reuse_prefix=False`` selects the naive path (one sequence per forward pass), for comparison.
        """
        return [_softmax(lp) for lp in self.option_log_likelihoods(prompts, options, reuse_prefix=reuse_prefix)]

    def option_log_likelihoods(self, prompts: Sequence[str], options: Sequence[Sequence[str]], *,
                               reuse_prefix: bool | None = None) -> list[np.ndarray]:
        """Unnormalised ``log P(option | prompt)`` (summed over the option's tokens), one array per prompt."""
        reuse = self.options.reuse_prefix if reuse_prefix is None else reuse_prefix
        rows, n_opts = build_rows(self.tokenizer, prompts, options)
        limit = self.max_context
        for row in rows:
            if limit and len(row.ids) > limit:
                i = row.targets[0][0]
                raise ContextLengthError(f"{self.name}: prompt {i} has {len(row.ids):,} tokens, more than the model's "
                                         f"context of {limit:,}", index=i, length=len(row.ids), limit=limit)
        with self._serving(), torch.inference_mode():
            if self._runner is None:
                self._runner = Runner(self.model, self.device, head_supported(self.model, self.device))
                self.packed_status = packed_check(self._runner)
                if not self.packed_status.ok:
                    warnings.warn(f"{self.name}: packed prefix scoring is not supported by this model's forward "
                                  f"(largest difference to the naive path {self.packed_status.max_abs_diff:.3g} "
                                  f"in {self.dtype}); scoring one sequence per forward pass", stacklevel=2)
            if reuse and self.packed_status.ok:
                scores = score_rows_packed(self._runner, rows, min_shared=self.options.min_shared_prefix,
                                           chunk_tokens=self.options.chunk_tokens)
            else:
                scores = score_rows_naive(self._runner, rows)
        out = [np.zeros(k) for k in n_opts]
        for row, row_scores in zip(rows, scores):
            for (i, j, _), value in zip(row.targets, row_scores):
                out[i][j] = value
        return out


_CACHE_DONE = "promed-complete"


def _gguf_cache_dir(path: Path, root: str) -> Path | None:
    if not root:
        return None
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    return Path(root).expanduser() / f"{path.stem}-{h.hexdigest()[:16]}"


def _save_converted(model, tokenizer, target: Path) -> None:
    """Save a GGUF-loaded model + tokenizer as a plain float32 checkpoint (atomically: temp dir, then rename)."""
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    try:
        model.hf_quantizer = None  # the weights are already dequantized; the GGUF "quantizer" only blocks saving
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _CACHE_DONE).write_text("converted from GGUF by promed\n")
        if target.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except OSError as e:
        warnings.warn(f"could not cache the converted GGUF checkpoint in {target}: {e}", stacklevel=3)
        shutil.rmtree(tmp, ignore_errors=True)


def _softmax(logp: np.ndarray) -> np.ndarray:
    z = np.exp(logp - logp.max())
    return z / z.sum()


def _eos_ids(model, tokenizer) -> list[int]:
    ids: set[int] = set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (gen_eos, getattr(model.config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(int(v) for v in value)
    for tok in ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>"):
        tid = tokenizer.convert_tokens_to_ids(tok) if tok in tokenizer.get_vocab() else None
        if tid is not None:
            ids.add(int(tid))
    return sorted(ids)
