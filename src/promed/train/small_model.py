"""The ``synthclinic-small`` doctor: a tokenizer and a tiny causal LM built from scratch on a text corpus.

SynthClinic is the exact test bench (see ``docs/design.md``); its doctor must train and run in minutes on a laptop
CPU, so it is a randomly initialised Llama-style decoder of about one million parameters with its own byte-level
BPE tokenizer, trained only by Stage 1 (SFT) and Stage 2 (GRPO). Everything it knows comes from those stages.

What :func:`build_small_doctor` writes to ``out_dir`` is a normal Hugging Face checkpoint:

* ``tokenizer.json`` + ``tokenizer_config.json`` + ``chat_template.jinja``: a ``PreTrainedTokenizerFast`` with
  special tokens ``<|bos|>``, ``<|end|>`` (end of turn, also the EOS token, so generation stops after one doctor
  turn), ``<|pad|>`` and the role markers ``<|system|>``, ``<|user|>``, ``<|assistant|>``.
* ``config.json`` + ``model.safetensors`` + ``generation_config.json``: a ``LlamaForCausalLM``.

so ``AutoTokenizer.from_pretrained(out_dir)`` / ``AutoModelForCausalLM.from_pretrained(out_dir)`` load it and
``tokenizer.apply_chat_template(messages, add_generation_prompt=True)`` renders a prompt for the next doctor turn.

The chat template renders ``<|bos|><|user|>...<|end|><|assistant|>ASK: ...<|end|>...`` with no extra whitespace. It
leaves out system messages: this model is trained from scratch on consultations that all carry the same fixed
instruction (``promed.doctor.policy.SYSTEM_PROMPT``), from which it can learn nothing, and that instruction would be
a quarter of every training sequence (74 of ~290 tokens), i.e. a quarter of the SFT compute. The template wraps each
assistant content plus its ``<|end|>`` in ``{% generation %}`` markers, so both our own mask builder
(:func:`promed.train.data.tokenize_with_mask`) and TRL's ``assistant_only_loss`` put the
end-of-turn token in the loss (the model learns to stop).

Byte-level BPE (not word-level) so that any text, including words never seen while building the vocabulary, can be
encoded without an unknown token. By default the text is first split into words (GPT-2's rule); with
``pretokenize="lines"`` merges may cross spaces inside a line's content while line breaks and line labels (``A. ``,
``- ``, ``ANSWER: ``) stay apart, so a SynthClinic fact or a diagnosis becomes one token, and a diagnosis is the
same token in the option list and in the answer turn (the model can point at an option). SynthClinic's texts come
from a finite set of templates, so this costs nothing there and shortens each consultation about threefold; words
learned the knowledge base faster per example (``promed.train.pretrain``, BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch

from promed.errors import InputError

BOS = "<|bos|>"
END = "<|end|>"
PAD = "<|pad|>"
ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
SPECIAL_TOKENS = (PAD, BOS, END, *ROLE_TOKENS.values())

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role: ' + message['role']) }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}"
    "{% elif message['role'] == 'system' %}"
    "{% else %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@dataclass(frozen=True)
class SmallModelConfig:
    """Size of the ``synthclinic-small`` tokenizer and model (defaults: about 1.1M parameters)."""

    vocab_size: int = field(
        default=2048,
        metadata={"help": "Target BPE vocabulary size incl. 256 byte tokens and special tokens (smaller if the "
                  "corpus has too few merges)."},
    )
    min_frequency: int = field(default=2, metadata={"help": "Minimum pair count for a BPE merge."})
    pretokenize: str = field(
        default="words",
        metadata={"help": "How text is split before BPE merges: words (GPT-2's rule: merges stay inside a word) or "
                  "lines (merges may cross spaces inside a line's content; line breaks and a line's label such as "
                  "'A. ', '- ', 'ANSWER: ' stay apart): a fact or a diagnosis becomes one token, the same in the "
                  "option list and in the answer. SynthClinic consultations are ~3x shorter (BENCHMARKS.md, "
                  "Pretraining)."},
    )
    hidden_size: int = field(default=128, metadata={"help": "Model width."})
    num_layers: int = field(default=4, metadata={"help": "Number of decoder layers."})
    num_heads: int = field(default=4, metadata={"help": "Attention heads (hidden_size must be divisible by it)."})
    num_kv_heads: int = field(default=4, metadata={"help": "Key/value heads (grouped-query attention if < num_heads)."})
    intermediate_size: int = field(default=384, metadata={"help": "MLP inner width."})
    max_position_embeddings: int = field(
        default=1024, metadata={"help": "Longest sequence the model supports (RoPE, so only a limit)."}
    )
    tie_embeddings: bool = field(default=True, metadata={"help": "Share input embedding and LM head weights."})
    seed: int = field(default=0, metadata={"help": "Seed for the weight initialisation."})


LINE_LABEL = r"\n|^[A-Z]\. |^- |^[A-Za-z][A-Za-z ]{0,20}: "
"""``pretokenize="lines"``: the pieces kept apart from a line's content (line breaks; an option's letter, a list
bullet, a label such as ``ANSWER: `` or ``Patient: ``; ``^`` matches at every line start)."""


def pre_tokenizer(kind: str):
    """The pre-tokenizer for ``SmallModelConfig.pretokenize`` (``words`` or ``lines``)."""
    from tokenizers import Regex, pre_tokenizers

    if kind == "words":
        return pre_tokenizers.ByteLevel(add_prefix_space=False)
    if kind == "lines":
        return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LINE_LABEL), behavior="isolated"),
                                        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    raise InputError(f"pretokenize must be words or lines, got {kind!r}")


def build_tokenizer(texts: Iterable[str], cfg: SmallModelConfig):
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it as a ``PreTrainedTokenizerFast`` with our chat
    template. Deterministic for a given corpus and config."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer(cfg.pretokenize)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=END,
        pad_token=PAD,
        additional_special_tokens=list(ROLE_TOKENS.values()),
        model_max_length=cfg.max_position_embeddings,
        padding_side="left",  # batched generation
        clean_up_tokenization_spaces=False,
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    return hf_tok


def build_model(tokenizer, cfg: SmallModelConfig):
    """A freshly initialised ``LlamaForCausalLM`` sized by ``cfg`` for ``tokenizer``'s vocabulary."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=cfg.tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
        torch.manual_seed(cfg.seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    return model


def build_small_doctor(texts: Iterable[str], out_dir: str | Path, cfg: SmallModelConfig | None = None) -> Path:
    """Build the ``synthclinic-small`` tokenizer (trained on ``texts``) and an untrained model; save both to
    ``out_dir`` and return it. ``texts`` is any corpus in the doctor's domain, e.g. all message contents of the
    Stage 1 trajectories or rendered SynthClinic cases."""
    cfg = cfg or SmallModelConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(texts, cfg)
    model = build_model(tokenizer, cfg)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    return out


def n_params(model) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
