"""One question to the model, no tools: what the commit-message writer and the reviewer share."""

from __future__ import annotations

import threading

from agent.backends.base import Backend, ModelError
from agent.hooks.secrets import redact_text


class Cancelled(Exception):
    """The caller's time budget ran out while the model was answering."""


def ask(backend: Backend, system: str, user: str, max_tokens: int, cancel: threading.Event | None = None) -> str:
    """The model's answer (reasoning left out, secrets redacted, a line cut by the token limit
    dropped). Raises ModelError, Cancelled."""
    def check(*_: object) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled

    turn = backend.complete([{"role": "system", "content": system}, {"role": "user", "content": user}], [],
                            on_text=check, on_progress=check, max_tokens=max_tokens)
    text = turn.text
    if turn.finish_reason == "length" and "\n" in text.strip():
        text = text.strip().rsplit("\n", 1)[0]  # the line the limit cut short says half a thing
    return redact_text(text)


def diff_budget_chars(backend: Backend, system: str, sample: str, answer_tokens: int) -> int:
    """How many characters of diff fit in one request beside the system prompt and the answer.
    Characters per token are measured on `sample` (a piece of the diff itself)."""
    empty = backend.count_tokens([{"role": "system", "content": system}, {"role": "user", "content": ""}], [])
    room = backend.context_window - empty - answer_tokens - 64  # 64: the request's own wording
    if room < 256:
        raise ModelError(f"the model's context ({backend.context_window} tokens) has no room for a diff beside the prompt")
    sample = sample[:20_000] or "x"
    tokens = backend.count_tokens([{"role": "user", "content": sample}], []) - \
        backend.count_tokens([{"role": "user", "content": ""}], [])
    chars_per_token = len(sample) / max(tokens, 1)
    return int(room * chars_per_token * 0.95)
