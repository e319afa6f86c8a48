"""Hugging Face transformers backend: any causal LM (hub id, local checkpoint dir, GGUF file), generation and
fast option scoring.

* ``generate`` renders each chat with the tokenizer's chat template when it has one, else with the plain fallback
  :func:`render_plain` (``System: ...\\nUser: ...\\nAssistant:``; Gemma 3 270M base GGUF carries no template),
  and decodes a left-padded batch greedily (``temperature == 0``) or by sampling seeded from ``Sampling.seed``.
* ``score_options`` computes ``log P(option | prompt)`` summed over the option's tokens, then a softmax over the
  prompt's options. It is built for many prompts sharing a long prefix (one case scored with many fact subsets):
  see :func:`score_rows_with_prefix` for the prefix-reuse algorithm.

Deviation from a bare ``model.generate``: the RNG used for sampling is forked (``torch.random.fork_rng``) and seeded
per call, so generation never reads or changes the process's global torch RNG state.
"""

from __future__ import annotations

import copy
import hashlib
import os
import secrets
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from promed.types import Chat, Sampling


@dataclass(frozen=True)
class HFOptions:
    """Options of :class:`HFBackend` (``load_llm(spec, **options)`` passes them through)."""

    device: str = field(default="auto", metadata={"help": "torch device; 'auto' = cuda if available else cpu."})
    dtype: str = field(
        default="auto",
        metadata={"help": "float32 | bfloat16 | float16 | auto (float32 on cpu, bfloat16 on cuda)."},
    )
    gen_batch_size: int = field(default=16, metadata={"help": "Chats per generate() forward batch."})
    score_batch_size: int = field(default=32, metadata={"help": "Suffix rows per scoring forward pass."})
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
        raise ValueError(f"unknown dtype {dtype!r}: expected float32, bfloat16, float16 or auto") from None


def render_plain(chat: Chat) -> str:
    """Plain-text chat rendering for tokenizers without a chat template (e.g. base models).

    Each message becomes ``<Role>: <content>`` on its own line(s) (roles capitalised: System, User, Assistant),
    and the text ends with ``Assistant:`` so the model continues as the assistant.
    """
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in chat]
    return "\n".join(lines + ["Assistant:"])


class HFBackend:
    """An :class:`promed.llm.base.LLM` over a transformers causal LM and its tokenizer.

    Build it from loaded objects (``HFBackend(model, tokenizer, name=...)``) or with :meth:`from_pretrained`.
    """

    def __init__(self, model, tokenizer, *, name: str, options: HFOptions = HFOptions()):
        self.name = name
        self.options = options
        self.device = resolve_device(options.device)
        self.dtype = resolve_dtype(options.dtype, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.eos_ids = _eos_ids(model, tokenizer)
        self._head_ok: bool | None = None  # whether base model + lm_head reproduces the logits (checked once)

    @classmethod
    def from_pretrained(cls, path_or_id: str, *, gguf_file: str | None = None, name: str | None = None,
                        options: HFOptions = HFOptions()) -> "HFBackend":
        """Load a model + tokenizer from a hub id or a local directory (``gguf_file`` = a GGUF file in it)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = resolve_device(options.device)
        kw = {"gguf_file": gguf_file} if gguf_file else {}
        tok = AutoTokenizer.from_pretrained(path_or_id, **kw)
        model = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=resolve_dtype(options.dtype, device), **kw)
        return cls(model, tok, name=name or path_or_id, options=options)

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
        return cls(model, tok, name=name or str(path), options=options)

    def __repr__(self) -> str:
        return f"HFBackend(name={self.name!r}, device={self.device}, dtype={self.dtype})"

    # ---- generation -----------------------------------------------------------------------------------------

    def render(self, chat: Chat) -> str:
        """The prompt text for ``chat`` (chat template with generation prompt, else :func:`render_plain`)."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return render_plain(chat)

    def _encode_rendered(self, chat: Chat) -> list[int]:
        # A chat template writes its own BOS, so special tokens are only added to the plain fallback.
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        return self.tokenizer(self.render(chat), add_special_tokens=not templated)["input_ids"]

    def generate(self, chats: Sequence[Chat], sampling: Sampling = Sampling()) -> list[str]:
        """One completion per chat (``sampling.n`` per chat, chat-major: ``[c0s0, c0s1, ..., c1s0, ...]``).

        Stop strings are applied to the decoded text (the stop string itself is removed); generation also ends at
        the model's end-of-sequence / end-of-turn tokens.
        """
        encoded = [self._encode_rendered(c) for c in chats for _ in range(sampling.n)]
        seed = sampling.seed if sampling.seed is not None else secrets.randbits(63)
        out: list[str] = []
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            bs = self.options.gen_batch_size
            for start in range(0, len(encoded), bs):
                out.extend(self._generate_batch(encoded[start : start + bs], sampling))
        return out

    def _generate_batch(self, encoded: list[list[int]], sampling: Sampling) -> list[str]:
        pad = self.tokenizer.pad_token_id
        width = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for i, e in enumerate(encoded):  # left padding: every row ends at the same column
            ids[i, width - len(e) :] = torch.tensor(e)
            mask[i, width - len(e) :] = 1
        kwargs = dict(max_new_tokens=sampling.max_new_tokens, pad_token_id=pad, eos_token_id=self.eos_ids)
        if sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        gen = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs)
        texts = self.tokenizer.batch_decode(gen[:, width:], skip_special_tokens=True)
        return [_cut_at_stop(t, sampling.stop) for t in texts]

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
        if self._head_ok is None:
            self._head_ok = _check_head(self.model, self.device)
        runner = _Runner(self.model, self.device, self.tokenizer.pad_token_id, self._head_ok)
        with torch.inference_mode():
            if reuse:
                scores = score_rows_with_prefix(runner, rows, self.options.score_batch_size,
                                                self.options.min_shared_prefix)
            else:
                scores = [runner.run([r], 0, None)[0] for r in rows]
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


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


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


# ---- option scoring with shared-prefix KV reuse ---------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One sequence fed to the model for scoring.

    ``ids`` are the tokens fed; the next-token distribution at position ``start`` (the last prompt token) scores
    the first token of every target; a target ``(prompt index, option index, continuation tokens)`` with k tokens
    reads positions ``start .. start + k - 1`` (its tokens after the first are part of ``ids``).
    """

    ids: tuple[int, ...]
    start: int
    targets: tuple[tuple[int, int, tuple[int, ...]], ...]


def build_rows(tokenizer, prompts: Sequence[str], options: Sequence[Sequence[str]]) -> tuple[list[Row], list[int]]:
    """Tokenize prompts and continuations into :class:`Row` s; also return the option count per prompt.

    Tokenization boundary: the continuation's tokens are those of ``tokenize(prompt + option)`` after the prompt's
    own tokens, when the prompt's tokens are a prefix of the joint tokenization; otherwise (the option merges with
    the prompt's last token) the option is tokenized on its own and appended. A prompt whose options are all single
    tokens needs one row (one forward position); otherwise each option gets its own row.
    """
    if len(options) == 1 and len(prompts) != 1:
        options = [options[0]] * len(prompts)
    if len(options) != len(prompts):
        raise ValueError(f"got {len(options)} option lists for {len(prompts)} prompts (expected 1 or one each)")
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    joint_texts = [p + o for p, opts in zip(prompts, options) for o in opts]
    joint_ids = iter(tokenizer(joint_texts)["input_ids"]) if joint_texts else iter(())
    rows: list[Row] = []
    for i, (p_ids, opts) in enumerate(zip(prompt_ids, options)):
        if not opts:
            raise ValueError(f"prompt {i} has no options")
        if not p_ids:
            raise ValueError(f"prompt {i} tokenizes to nothing; scoring needs at least one prompt token")
        conts = []
        for opt in opts:
            joint = next(joint_ids)
            if joint[: len(p_ids)] == p_ids and len(joint) > len(p_ids):
                cont = joint[len(p_ids) :]
            else:
                cont = tokenizer(opt, add_special_tokens=False)["input_ids"]
            if not cont:
                raise ValueError(f"option {opt!r} of prompt {i} tokenizes to nothing")
            conts.append(tuple(cont))
        start = len(p_ids) - 1
        if all(len(c) == 1 for c in conts):
            rows.append(Row(tuple(p_ids), start, tuple((i, j, c) for j, c in enumerate(conts))))
        else:
            rows.extend(Row(tuple(p_ids) + c[:-1], start, ((i, j, c),)) for j, c in enumerate(conts))
    return rows, [len(o) for o in options]


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    k = 0
    while k < n and a[k] == b[k]:
        k += 1
    return k


def score_rows_with_prefix(runner: "_Runner", rows: list[Row], batch_size: int, min_shared: int) -> list[list[float]]:
    """Score rows, running each shared token prefix once and reusing its KV cache for the rows' suffixes.

    Algorithm: sort rows lexicographically by tokens; greedily group neighbours whose longest common prefix (LCP)
    with the group is at least ``min_shared`` tokens. For a group, the prefix length is
    ``L = min(group LCP, min row start)`` (each row must still compute its scored positions); the prefix is run once
    (batch 1), its cache is expanded to the chunk size, and the suffixes run in right-padded chunks (sorted by
    length to limit padding) with attention mask ``[1]*L + suffix mask`` and positions ``L, L+1, ...``. Right
    padding keeps every row's real tokens contiguous after the prefix, so sliding-window layers see exactly the
    same keys as in an unpadded single-sequence pass. Rows without a useful shared prefix are batched without cache.
    """
    order = sorted(range(len(rows)), key=lambda k: rows[k].ids)
    groups: list[tuple[list[int], int]] = []
    for k in order:
        if groups:
            members, lcp = groups[-1]
            shared = _lcp(rows[members[0]].ids[:lcp], rows[k].ids)
            if shared >= min_shared:
                members.append(k)
                groups[-1] = (members, shared)
                continue
        groups.append(([k], len(rows[k].ids)))
    results: list[list[float] | None] = [None] * len(rows)
    loose: list[int] = []
    for members, lcp in groups:
        prefix_len = min(lcp, min(rows[k].start for k in members))
        if len(members) == 1 or prefix_len < max(min_shared, 1):
            loose.extend(members)
            continue
        cache = runner.prefix(rows[members[0]].ids[:prefix_len])
        _run_chunks(runner, rows, members, prefix_len, cache, batch_size, results)
    _run_chunks(runner, rows, loose, 0, None, batch_size, results)
    return results  # type: ignore[return-value]


def _run_chunks(runner, rows, members, prefix_len, cache, batch_size, results) -> None:
    members = sorted(members, key=lambda k: len(rows[k].ids))
    for s in range(0, len(members), batch_size):
        chunk = members[s : s + batch_size]
        for k, value in zip(chunk, runner.run([rows[k] for k in chunk], prefix_len, cache)):
            results[k] = value


class _Runner:
    """Forward passes for scoring: the prefix pass and padded suffix passes that read only the needed positions."""

    def __init__(self, model, device, pad_id: int, head_ok: bool):
        self.model, self.device, self.pad_id, self.head_ok = model, device, pad_id, head_ok
        self.base = model.base_model
        self.head = model.get_output_embeddings()
        self.softcap = getattr(model.config, "final_logit_softcapping", None)

    def prefix(self, ids: Sequence[int]):
        x = torch.tensor([list(ids)], device=self.device)
        return self.base(input_ids=x, use_cache=True).past_key_values

    def run(self, rows: Sequence[Row], prefix_len: int, cache) -> list[list[float]]:
        """Summed log-likelihood of every target of every row; rows share the first ``prefix_len`` tokens."""
        b = len(rows)
        width = max(len(r.ids) for r in rows) - prefix_len
        ids = torch.full((b, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((b, prefix_len + width), dtype=torch.long)
        mask[:, :prefix_len] = 1
        for i, r in enumerate(rows):  # right padding: [prefix | suffix | pad]
            ids[i, : len(r.ids) - prefix_len] = torch.tensor(r.ids[prefix_len:])
            mask[i, prefix_len : len(r.ids)] = 1
        pos = torch.arange(prefix_len, prefix_len + width).expand(b, width)
        past = None
        if cache is not None:
            past = copy.deepcopy(cache)
            past.batch_repeat_interleave(b)
        # the positions to read: for each row, start .. start + longest continuation - 1 (suffix coordinates)
        n_read = [max(len(t[2]) for t in r.targets) for r in rows]
        sel_b = torch.tensor([i for i, n in enumerate(n_read) for _ in range(n)], device=self.device)
        sel_t = torch.tensor([r.start - prefix_len + k for r, n in zip(rows, n_read) for k in range(n)],
                             device=self.device)
        kwargs = dict(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                      position_ids=pos.to(self.device), past_key_values=past, use_cache=past is not None)
        if self.head_ok:
            hidden = self.base(**kwargs).last_hidden_state[sel_b, sel_t]  # [n_read_total, d]
            logits = self.head(hidden)
            if self.softcap:
                logits = torch.tanh(logits / self.softcap) * self.softcap
        else:
            logits = self.model(**kwargs).logits[sel_b, sel_t]
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()  # [n_read_total, vocab]
        out: list[list[float]] = []
        offset = 0
        for r, n in zip(rows, n_read):
            out.append([float(sum(logp[offset + k, tok] for k, tok in enumerate(cont))) for _, _, cont in r.targets])
            offset += n
        return out


def _check_head(model, device) -> bool:
    """Whether ``lm_head(base(x))`` (+ Gemma-style soft-capping) reproduces ``model(x).logits``.

    Reading only the needed positions through the head saves a full-vocabulary projection per token; models with
    other output transforms fail this check and are scored through ``model(...).logits`` instead.
    """
    x = torch.tensor([[1, 2, 3, 4]], device=device) % model.config.vocab_size
    with torch.inference_mode():
        ref = model(input_ids=x).logits.float()
        hidden = model.base_model(input_ids=x).last_hidden_state
        logits = model.get_output_embeddings()(hidden)
        cap = getattr(model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
    return bool(torch.allclose(ref, logits.float(), atol=1e-3, rtol=1e-3))
