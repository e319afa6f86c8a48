"""Chat-format trajectory datasets for supervised fine-tuning, with doctor-only loss masks.

Stage 1 writes its best trajectories as JSONL, one consultation a line, in the Hugging Face chat format::

    {"id": "sc-train-00001",
     "messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "<case, options>"},
                  {"role": "assistant", "content": "ASK: Have you had a fever?"},
                  {"role": "user", "content": "She reports a fever for three days."}, ...,
                  {"role": "assistant", "content": "ANSWER: C"}],
     "sig": [0.21, 0.0], "reward": 1.37}

``sig`` (one SIG value per question) and ``reward`` are optional and carried along for analysis; SFT ignores them.

:func:`load_chat_jsonl` reads and validates such a file; every problem raises :class:`DataError` naming the file,
the line and the field (the CLI reports it with exit code 2). :func:`tokenize_with_mask` renders one conversation
with the tokenizer's chat template and returns ``(input_ids, labels)`` where ``labels`` is ``-100`` everywhere
except on the doctor's (assistant) tokens, including each assistant turn's end-of-turn token, so the model learns
both what to say and when to stop.

How assistant spans are found: the conversation is rendered once as text; for each assistant message ``i`` the
span starts where ``render(messages[:i], add_generation_prompt=True)`` ends and stops where
``render(messages[:i+1])`` ends (checked to be prefixes of the full rendering). Tokens are mapped to characters with
the fast tokenizer's offset mapping, and a token is in the loss when it *starts* inside a span. This works for any
chat template whose renderings of prefixes are prefixes of the whole (true for ChatML, Llama 3, Gemma, Qwen 2.5 and
our own ``synthclinic-small`` template); templates that rewrite earlier turns (e.g. strip reasoning from history)
raise :class:`DataError` rather than train on a silently wrong mask.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from promed.errors import InputError
from promed.types import Message

ROLES = ("system", "user", "assistant")
IGNORE_INDEX = -100

# For tokenizers without a chat template (base models). The same layout as the HF backend's plain rendering
# (``promed.llm.hf.render_plain``: "System: ...\nUser: ...\nAssistant:"), with BOS first and the EOS token closing
# each assistant turn so that a fine-tuned model stops after one doctor turn. The newline opens the next message
# rather than closing the previous one, so it never falls inside an assistant span.
PLAIN_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if not loop.first %}{{ '\\n' }}{% endif %}"
    "{{ message['role'] | capitalize }}:"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %} {{ message['content'] }}{{ eos_token }}{% endgeneration %}"
    "{% else %} {{ message['content'] }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{% if messages %}{{ '\\n' }}{% endif %}Assistant:{% endif %}"
)


class DataError(InputError):
    """A malformed training file or conversation; the message names file, line and field."""


@dataclass(frozen=True)
class ChatExample:
    """One training conversation: ``messages`` in the HF chat format, plus optional per-question SIG values and
    the trajectory's total reward (both unused by SFT)."""

    id: str
    messages: tuple[Message, ...]
    sig: tuple[float, ...] | None = None
    reward: float | None = None

    def to_json(self) -> dict:
        rec: dict = {"id": self.id, "messages": [dict(m) for m in self.messages]}
        if self.sig is not None:
            rec["sig"] = list(self.sig)
        if self.reward is not None:
            rec["reward"] = self.reward
        return rec


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def parse_chat_record(rec: object, where: str) -> ChatExample:
    """Validate one decoded JSON record; ``where`` (e.g. ``"data.jsonl:3"``) prefixes every error message."""

    def fail(fld: str, msg: str) -> DataError:
        return DataError(f"{where}: field '{fld}': {msg}")

    if not isinstance(rec, dict):
        raise fail("<record>", f"expected a JSON object, got {type(rec).__name__}")
    rid = rec.get("id")
    if "id" not in rec:
        raise fail("id", "missing")
    if not isinstance(rid, str) or not rid:
        raise fail("id", f"expected a non-empty string, got {rid!r}")
    msgs = rec.get("messages")
    if "messages" not in rec:
        raise fail("messages", "missing")
    if not isinstance(msgs, list) or not msgs:
        raise fail("messages", "expected a non-empty list of {role, content} objects")
    out: list[Message] = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise fail(f"messages[{i}]", f"expected an object, got {type(m).__name__}")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise fail(f"messages[{i}].role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise fail(f"messages[{i}].content", f"expected a string, got {type(content).__name__}")
        out.append(Message(role=role, content=content))
    if not any(m["role"] == "assistant" for m in out):
        raise fail("messages", "no assistant (doctor) turn to train on")
    sig = rec.get("sig")
    if sig is not None:
        if not isinstance(sig, list) or not all(_is_number(x) for x in sig):
            raise fail("sig", "expected a list of finite numbers")
        sig = tuple(float(x) for x in sig)
    reward = rec.get("reward")
    if reward is not None:
        if not _is_number(reward):
            raise fail("reward", f"expected a finite number, got {reward!r}")
        reward = float(reward)
    return ChatExample(id=rid, messages=tuple(out), sig=sig, reward=reward)


def load_chat_jsonl(path: str | Path) -> list[ChatExample]:
    """Read and validate a chat-format JSONL file. Blank lines are skipped; extra fields are ignored; ids may repeat
    (Stage 1 exports several ranked trajectories of one case under the case's id)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read: {e}") from e
    examples: list[ChatExample] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: field '<line>': invalid JSON: {e.msg} (column {e.colno})") from e
        examples.append(parse_chat_record(rec, where))
    if not examples:
        raise DataError(f"{path}: no records")
    return examples


def write_chat_jsonl(examples: Sequence[ChatExample], path: str | Path) -> Path:
    """Write examples as chat JSONL atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(ex.to_json(), ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def _render(tokenizer, messages: Sequence[Message], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        [dict(m) for m in messages], tokenize=False, add_generation_prompt=add_generation_prompt
    )


def ensure_chat_template(tokenizer) -> bool:
    """Give ``tokenizer`` :data:`PLAIN_CHAT_TEMPLATE` if it has no chat template; return whether it did."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    return True


def _preamble(tokenizer, first: Message) -> str:
    """What a template renders before the content of an opening assistant message (BOS, assistant header):
    transformers refuses to render an empty conversation, so the content is replaced by a sentinel."""
    sentinel = "\x00PROMED-SENTINEL\x00"
    text = _render(tokenizer, [Message(role=first["role"], content=sentinel)])
    cut = text.find(sentinel)
    if cut < 0:
        raise DataError("chat template drops the content of an opening assistant message")
    return text[:cut]


def assistant_char_spans(messages: Sequence[Message], tokenizer,
                         last_only: bool = False) -> tuple[str, list[tuple[int, int]]]:
    """The full rendering of ``messages`` and the ``[start, end)`` character span of each assistant turn (content
    plus end-of-turn marker); ``last_only``: of the last assistant turn only (two renders fewer per other turn)."""
    full = _render(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or (last_only and i != last):
            continue
        before = _render(tokenizer, messages[:i], add_generation_prompt=True) if i else _preamble(tokenizer, m)
        upto = full if i == len(messages) - 1 else _render(tokenizer, messages[: i + 1])
        if not full.startswith(before) or not full.startswith(upto) or len(upto) < len(before):
            raise DataError(
                f"chat template renders message {i} differently inside the whole conversation than as a prefix; "
                "cannot locate the assistant turns for the loss mask"
            )
        spans.append((len(before), len(upto)))
    return full, spans


def tokenize_with_mask(
    messages: Sequence[Message], tokenizer, max_len: int | None = None, last_only: bool = False
) -> tuple[list[int], list[int]]:
    """Tokenize a conversation with the chat template; ``labels`` copy ``input_ids`` on assistant tokens (and their
    end-of-turn token) and are ``-100`` elsewhere; ``last_only``: on the last assistant turn only. Sequences longer
    than ``max_len`` keep their start (the case description); later turns are cut. Requires a fast tokenizer
    (offset mapping)."""
    full, spans = assistant_char_spans(messages, tokenizer, last_only=last_only)
    # The template already carries BOS etc., so no special tokens are added on top.
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    offsets = enc["offset_mapping"]
    labels = [IGNORE_INDEX] * len(ids)
    k = 0
    for j, (start, _end) in enumerate(offsets):
        while k < len(spans) and start >= spans[k][1]:
            k += 1
        if k < len(spans) and spans[k][0] <= start < spans[k][1]:
            labels[j] = ids[j]
    if max_len is not None and len(ids) > max_len:
        ids, labels = ids[:max_len], labels[:max_len]
    return ids, labels


def example_texts(examples: Sequence[ChatExample]) -> list[str]:
    """The message contents of ``examples`` that the ``synthclinic-small`` chat template renders (the corpus its
    tokenizer is built from): system messages are left out, as the template leaves them out, so the vocabulary
    depends only on what the model reads and writes, not on the wording of an instruction it never sees."""
    return [m["content"] for ex in examples for m in ex.messages if m["role"] != "system"]
