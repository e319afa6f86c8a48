"""A tiny in-process causal LM for tests and examples (``load_llm("tiny")``).

What: a byte-level BPE tokenizer trained in-process on a small built-in clinical text (so any input text can be
encoded, nothing is downloaded), with special tokens and a simple chat template, and a ~140k-parameter Gemma 3
text model with deterministic seeded initialisation, wrapped in :class:`promed.llm.hf.HFBackend`.

Why Gemma 3: it is the architecture of our default real model (Gemma 3 270M), including its hybrid
sliding-window / full attention layers. The tiny model uses a sliding window of 16 tokens, so every test of the
prefix-reuse scorer on ordinary prompts also exercises the sliding-window cache path, exactly as Gemma does on
long prompts. The weights are random: outputs are gibberish but deterministic for a given seed.

Building it takes well under a second and touches no global RNG state (``torch.random.fork_rng``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

TINY_CORPUS = """\
A 45-year-old man comes to the emergency department because of chest pain for two hours.
A 21-year-old woman complains of fever, pain during urination and inflammation of the right knee.
The patient has a history of hypertension and type 2 diabetes mellitus. He smokes one pack of cigarettes daily.
Physical examination shows tenderness over the right lower quadrant. Her temperature is 38.5 C.
Pulse is 110/min, respirations are 22/min, and blood pressure is 90/60 mm Hg.
Laboratory studies show a leukocyte count of 15,000/mm3 and a hemoglobin of 9 g/dL.
Which of the following is the most likely diagnosis? Which of the following is the most appropriate next step?
Answer: A. Answer: B. Answer: C. Answer: D. Options: A, B, C, D.
The doctor asks: do you have a cough? The patient says: yes, I have had a cough for three days.
Do you have any allergies? No, I do not. Have you travelled recently? I returned from abroad last week.
ASK: When did the pain start? ANSWER: C
System: you are a careful doctor. User: hello. Assistant: how can I help you today?
"""

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>")

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""Jinja chat template of the tiny tokenizer: ``<|role|>\\ncontent<|end|>`` per message; ``<|end|>`` ends a turn."""


@dataclass(frozen=True)
class TinyConfig:
    """Shape of the tiny model (defaults: ~140k parameters)."""

    vocab_size: int = field(default=512, metadata={"help": "BPE vocabulary size (incl. 256 bytes + specials)."})
    hidden_size: int = field(default=64, metadata={"help": "Model width."})
    layers: int = field(default=2, metadata={"help": "Decoder layers: alternating sliding-window / full attention."})
    heads: int = field(default=4, metadata={"help": "Attention heads (1 key/value head, as Gemma 3 270M)."})
    sliding_window: int = field(default=16, metadata={"help": "Sliding window of the sliding-attention layers."})
    seed: int = field(default=0, metadata={"help": "Seed of the weight initialisation."})


def build_tiny_tokenizer(vocab_size: int = 512):
    """A ``PreTrainedTokenizerFast`` with byte-level BPE trained on :data:`TINY_CORPUS` and :data:`CHAT_TEMPLATE`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TINY_CORPUS.splitlines(), trainer=trainer)
    from tokenizers.processors import TemplateProcessing

    bos_id = tok.token_to_id("<bos>")
    tok.post_processor = TemplateProcessing(single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos_id)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        additional_special_tokens=list(SPECIAL_TOKENS[3:]),
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(vocab_size: int, config: TinyConfig = TinyConfig(), *, pad_token_id: int = 0,
                     bos_token_id: int = 1, eos_token_id: int | list[int] = 2):
    """A randomly initialised Gemma 3 text model of the given shape, seeded without touching global RNG state."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    layer_types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(config.layers)]
    cfg = Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=2 * config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=1,
        head_dim=config.hidden_size // config.heads,
        sliding_window=config.sliding_window,
        layer_types=layer_types,
        max_position_embeddings=4096,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = Gemma3ForCausalLM(cfg)
        # Gemma's default init (std 0.02) gives almost uniform next-token distributions; a wider, untied output
        # head (logit std ~2) gives the tiny model distinct preferences and varied samples.
        with torch.no_grad():
            model.lm_head.weight.normal_(0.0, 0.25)
    model.eval()
    return model


def load_tiny(config: TinyConfig = TinyConfig(), name: str = "tiny", options=None):
    """The tiny LM as an :class:`~promed.llm.hf.HFBackend` (default options: CPU, float32)."""
    from promed.llm.hf import HFBackend, HFOptions

    tok = build_tiny_tokenizer(config.vocab_size)
    ids = tok.convert_tokens_to_ids
    model = build_tiny_model(
        len(tok),
        config,
        pad_token_id=ids("<pad>"),
        bos_token_id=ids("<bos>"),
        eos_token_id=[ids("<eos>"), ids("<|end|>")],
    )
    if options is None or options == HFOptions():
        options = HFOptions(device="cpu", dtype="float32")
    return HFBackend(model, tok, name=name, options=options, owned=True)
