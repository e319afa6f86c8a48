"""Chat JSONL loading/validation and the doctor-only loss mask (promed.train.data)."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from promed.llm.hf import render_plain
from promed.train.data import (
    IGNORE_INDEX,
    PLAIN_CHAT_TEMPLATE,
    ChatExample,
    DataError,
    load_chat_jsonl,
    tokenize_with_mask,
    write_chat_jsonl,
)
from promed.train.small_model import CHAT_TEMPLATE, SmallModelConfig, build_tokenizer

WORDS = "fever cough pain rash three days she he reports denies have you had any recently yes no the a".split()


def _conv(rng: random.Random, n_q: int, answer: str = "C") -> list[dict]:
    def sent(k):
        return " ".join(rng.choice(WORDS) for _ in range(k))

    msgs = [{"role": "system", "content": "You are a doctor. " + sent(5)},
            {"role": "user", "content": "Case: " + sent(12) + " Options: A. x B. y C. z D. w"}]
    for _ in range(n_q):
        msgs.append({"role": "assistant", "content": "ASK: " + sent(rng.randint(1, 6)) + "?"})
        msgs.append({"role": "user", "content": sent(rng.randint(1, 8))})
    msgs.append({"role": "assistant", "content": f"ANSWER: {answer}"})
    return msgs


@pytest.fixture(scope="module")
def tok():
    rng = random.Random(0)
    texts = [m["content"] for _ in range(30) for m in _conv(rng, 3)]
    return build_tokenizer(texts, SmallModelConfig(vocab_size=300))


def _runs(tokenizer, ids, labels) -> list[str]:
    """Decoded maximal runs of in-loss tokens."""
    return [tokenizer.decode([i for i, _ in grp], skip_special_tokens=False)
            for keep, grp in itertools.groupby(zip(ids, labels), key=lambda t: t[1] != IGNORE_INDEX) if keep]


# ---- loading and validation ------------------------------------------------------------------------------------


def test_roundtrip_and_optional_fields(tmp_path):
    rng = random.Random(1)
    exs = [ChatExample(id="a", messages=tuple(_conv(rng, 2)), sig=(0.5, 0.0), reward=1.25),
           ChatExample(id="b", messages=tuple(_conv(rng, 0)))]
    path = write_chat_jsonl(exs, tmp_path / "t.jsonl")
    path.write_text(path.read_text() + "\n\n")  # blank lines are skipped
    assert load_chat_jsonl(path) == exs


def _write_lines(tmp_path, lines):
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


GOOD = json.dumps({"id": "ok", "messages": [{"role": "user", "content": "hi"},
                                            {"role": "assistant", "content": "ANSWER: A"}]})


@pytest.mark.parametrize(
    "line, field",
    [
        ('{"id": "x", "messages": [', "<line>"),
        ('[1, 2]', "<record>"),
        ('{"messages": [{"role": "assistant", "content": "ANSWER: A"}]}', "id"),
        ('{"id": 7, "messages": [{"role": "assistant", "content": "ANSWER: A"}]}', "id"),
        ('{"id": "x"}', "messages"),
        ('{"id": "x", "messages": []}', "messages"),
        ('{"id": "x", "messages": ["hi"]}', "messages[0]"),
        ('{"id": "x", "messages": [{"role": "doctor", "content": "ASK: a?"}]}', "messages[0].role"),
        ('{"id": "x", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": 3}]}',
         "messages[1].content"),
        ('{"id": "x", "messages": [{"role": "user", "content": "a"}]}', "messages"),
        ('{"id": "x", "messages": [{"role": "assistant", "content": "A"}], "sig": [0.1, "big"]}', "sig"),
        ('{"id": "x", "messages": [{"role": "assistant", "content": "A"}], "reward": "high"}', "reward"),
        ('{"id": "x", "messages": [{"role": "assistant", "content": "A"}], "reward": true}', "reward"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, line, field):
    path = _write_lines(tmp_path, [GOOD, "", line])
    with pytest.raises(DataError) as ei:
        load_chat_jsonl(path)
    msg = str(ei.value)
    assert f"{path}:3:" in msg and f"field '{field}'" in msg, msg
    assert isinstance(ei.value, ValueError)


def test_missing_or_empty_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        load_chat_jsonl(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no records"):
        load_chat_jsonl(tmp_path / "empty.jsonl")


# ---- the loss mask ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_mask_covers_exactly_the_assistant_turns(tok, seed):
    rng = random.Random(seed)
    msgs = _conv(rng, rng.randint(0, 5), answer=rng.choice("ABCD"))
    ids, labels = tokenize_with_mask(msgs, tok)
    assert len(ids) == len(labels)
    assert all(lab in (IGNORE_INDEX, i) for i, lab in zip(ids, labels))
    # every doctor turn, with its end-of-turn token, and nothing else
    assert _runs(tok, ids, labels) == [m["content"] + "<|end|>" for m in msgs if m["role"] == "assistant"]
    # and the input is exactly the chat-template rendering
    assert tok.decode(ids, skip_special_tokens=False) == tok.apply_chat_template(msgs, tokenize=False)


def test_small_template_leaves_out_the_fixed_system_instruction(tok):
    msgs = _conv(random.Random(9), 2)
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert msgs[0]["content"] not in text and "<|system|>" not in text
    assert text == tok.apply_chat_template(msgs[1:], tokenize=False)  # same as the conversation without it
    assert text.startswith("<|bos|><|user|>Case: ")


def test_mask_end_token_is_eos_and_unicode_content(tok):
    msgs = [{"role": "user", "content": "Fièvre? 😷 naïve résumé"},
            {"role": "assistant", "content": "ASK: Avez-vous de la fièvre ? 🤒"},
            {"role": "user", "content": "oui"},
            {"role": "assistant", "content": ""}]
    ids, labels = tokenize_with_mask(msgs, tok)
    assert _runs(tok, ids, labels) == ["ASK: Avez-vous de la fièvre ? 🤒<|end|>", "<|end|>"]
    assert labels[-1] == tok.eos_token_id  # the model learns to stop


def test_conversation_opening_with_the_doctor(tok):
    msgs = [{"role": "assistant", "content": "ASK: Where does it hurt?"}, {"role": "user", "content": "Here."},
            {"role": "assistant", "content": "ANSWER: B"}]
    ids, labels = tokenize_with_mask(msgs, tok)
    assert _runs(tok, ids, labels) == ["ASK: Where does it hurt?<|end|>", "ANSWER: B<|end|>"]
    assert labels[0] == IGNORE_INDEX  # BOS and the assistant header are prompt, not doctor output


def test_truncation_keeps_the_start(tok):
    msgs = _conv(random.Random(3), 5)
    ids, labels = tokenize_with_mask(msgs, tok)
    n = len(ids) - 7
    tids, tlabels = tokenize_with_mask(msgs, tok, max_len=n)
    assert len(tids) == n and tids == ids[:n] and tlabels == labels[:n]
    assert tokenize_with_mask(msgs, tok, max_len=10_000) == (ids, labels)


def test_mask_with_other_templates(tok):
    """A ChatML (Qwen-style) template whose markers are plain text for this vocabulary, and the plain fallback."""
    chatml = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
              "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    msgs = _conv(random.Random(4), 2)
    doctor = [m["content"] for m in msgs if m["role"] == "assistant"]
    try:
        tok.chat_template = chatml
        ids, labels = tokenize_with_mask(msgs, tok)
        assert _runs(tok, ids, labels) == [d + "<|im_end|>\n" for d in doctor]
        tok.chat_template = PLAIN_CHAT_TEMPLATE
        ids, labels = tokenize_with_mask(msgs, tok)
        assert _runs(tok, ids, labels) == [" " + d + "<|end|>" for d in doctor]
        prompt = tok.apply_chat_template(msgs[:2], tokenize=False, add_generation_prompt=True)
        assert prompt == tok.bos_token + render_plain(msgs[:2])  # same prompt as the HF backend's fallback
    finally:
        tok.chat_template = CHAT_TEMPLATE


def test_template_that_rewrites_history_is_refused(tok):
    try:
        tok.chat_template = ("{% for m in messages %}{% if loop.last %}[last]{% endif %}{{ m['content'] }}"
                             "{% endfor %}")
        with pytest.raises(DataError, match="cannot locate"):
            tokenize_with_mask(_conv(random.Random(5), 1), tok)
    finally:
        tok.chat_template = CHAT_TEMPLATE
