"""The OpenAI chat-completions wire format: our messages as the server wants them, and the
server's Server-Sent Events, streamed tool-call fragments and error bodies read back."""

from __future__ import annotations

import http.client
import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

from agent.backends.base import Message, ModelError

CHARS_PER_TOKEN = 3.5


@dataclass
class PendingCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


# -- messages -----------------------------------------------------------------------------------

def to_wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Our neutral messages as the OpenAI chat format, without our private keys (raw, reasoning)."""
    wire = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for number, call in enumerate(message["tool_calls"]):
                arguments = call.get("arguments")
                calls.append({"id": call.get("id") or f"call_{number}", "type": "function",
                              "function": {"name": call.get("name"),
                                           "arguments": arguments if isinstance(arguments, str)
                                           else json.dumps(arguments or {}, ensure_ascii=False)}})
            wire.append({"role": "assistant", "content": content or None, "tool_calls": calls})
        elif role == "tool":
            wire.append({"role": "tool", "tool_call_id": message.get("tool_call_id", ""),
                         "content": content if content is not None else ""})
        else:
            wire.append({"role": role, "content": content if content is not None else ""})
    return wire


def hermes_text(name: str, arguments_json: str) -> str:
    """A call whose arguments did not parse, in Hermes form with the arguments exactly as sent."""
    return f'<tool_call>\n{{"name": {json.dumps(name)}, "arguments": {arguments_json or "{}"}}}\n</tool_call>'


def add_call_fragment(calls: list[PendingCall], fragment: dict[str, Any], position: int) -> None:
    """Merge one streamed tool-call fragment. Fragments carry an index; some servers omit it and
    send each call whole, so an unseen id starts a new call."""
    call_id = fragment.get("id") or ""
    index = fragment.get("index")
    if not isinstance(index, int):
        known = [i for i, c in enumerate(calls) if call_id and c.id == call_id]
        index = known[0] if known else (len(calls) if call_id or not calls else len(calls) - 1)
    while len(calls) <= index:
        calls.append(PendingCall())
    pending = calls[index]
    if call_id and not pending.id:
        pending.id = call_id
    function = fragment.get("function") or {}
    name = function.get("name")
    if name and name != pending.name:
        pending.name = name if not pending.name else pending.name + name
    arguments = function.get("arguments")
    if isinstance(arguments, dict):
        arguments = json.dumps(arguments, ensure_ascii=False)
    if arguments:
        pending.arguments.append(arguments)


def parse_arguments(text: str) -> tuple[dict[str, Any], str | None]:
    if not text.strip():
        return {}, None
    try:
        value = json.loads(text)
        if isinstance(value, str):  # some models encode the arguments twice
            value = json.loads(value)
    except json.JSONDecodeError as e:
        return {}, f"{e.msg} at character {e.pos}"
    if not isinstance(value, dict):
        return {}, f"expected an object, got {type(value).__name__}"
    return value, None


# -- the stream ---------------------------------------------------------------------------------

DONE: Any = object()


def sse_events(resp: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    """The JSON payloads of a Server-Sent Events stream, then DONE at `data: [DONE]`. Each data line
    is usually a whole event; lines that are not are joined until the blank line that ends the event."""
    pending: list[str] = []

    def decode(data: str) -> dict[str, Any]:
        try:
            value = json.loads(data)
        except json.JSONDecodeError:
            raise ModelError(f"the model server sent an event that is not JSON: {truncate(data, 200)}") from None
        return value if isinstance(value, dict) else {}

    while True:
        line = resp.readline()
        if not line:
            break
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        if not text:
            if pending:
                data, pending = "\n".join(pending), []
                yield DONE if data.strip() == "[DONE]" else decode(data)
            continue
        if text.startswith(":"):
            continue  # comment / keepalive
        field_name, _, value = text.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field_name == "error":  # llama-server reports some failures this way
            yield {"error": error_detail(value)}
        elif field_name == "data":
            if not pending and value.strip() == "[DONE]":
                yield DONE
            elif not pending and is_json(value):
                yield decode(value)
            else:
                pending.append(value)
    if pending:
        data = "\n".join(pending)
        yield DONE if data.strip() == "[DONE]" else decode(data)


def as_chunk(completion: Any) -> dict[str, Any]:
    """A whole (non-streamed) chat completion, shaped like one streamed chunk."""
    if not isinstance(completion, dict):
        return {}
    choices = []
    for choice in completion.get("choices") or []:
        message = choice.get("message") or {}
        delta = dict(message)
        delta["tool_calls"] = [dict(call, index=i) for i, call in enumerate(message.get("tool_calls") or [])]
        choices.append({"delta": delta, "finish_reason": choice.get("finish_reason") or "stop"})
    return {"choices": choices, "usage": completion.get("usage"), "error": completion.get("error")}


def is_json(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except json.JSONDecodeError:
        return False


# -- small helpers ------------------------------------------------------------------------------

def model_entry(listing: Any, model: str) -> dict[str, Any] | None:
    if not isinstance(listing, dict) or not isinstance(listing.get("data"), list):
        return None
    entries = [e for e in listing["data"] if isinstance(e, dict)]
    for entry in entries:
        if entry.get("id") == model:
            return entry
    return entries[0] if len(entries) == 1 else None


def positive_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def server_message(body: bytes) -> str:
    return one_line(error_detail(body.decode("utf-8", errors="replace").strip()))


def error_detail(text: str) -> str:
    """The human part of an error body: error.message, error, message or detail, else the text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return truncate(text, 300)
    if isinstance(value, dict):
        error = value.get("error")
        if isinstance(error, dict) and error.get("message"):
            return truncate(str(error["message"]), 300)
        for candidate in (error, value.get("message"), value.get("detail")):
            if candidate:
                return truncate(candidate if isinstance(candidate, str) else json.dumps(candidate), 300)
    return truncate(text, 300)


def os_error(error: BaseException) -> str:
    return one_line(getattr(error, "strerror", None) or str(error) or type(error).__name__)


def one_line(text: str) -> str:
    return " ".join(text.split())


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


# -- token estimates ----------------------------------------------------------------------------

class LazyEncoding:
    """tiktoken's o200k_base (or cl100k_base) if it can be had quickly. tiktoken downloads the
    encoding on first use, so load it in the background and never wait long for it."""

    def __init__(self) -> None:
        self.encoding: Any = None
        self._loader: threading.Thread | None = None

    def get(self, wait: float = 2.0) -> Any:
        if self._loader is None:
            self._loader = threading.Thread(target=self._load, name="tiktoken-encoding", daemon=True)
            self._loader.start()
            self._loader.join(wait)
        return self.encoding

    def _load(self) -> None:
        try:
            import tiktoken
        except ImportError:
            return
        for name in ("o200k_base", "cl100k_base"):
            try:
                self.encoding = tiktoken.get_encoding(name)
                return
            except Exception:
                continue


ENCODING = LazyEncoding()


def estimate_tokens(text: str) -> int:
    encoding = ENCODING.get()
    if encoding is not None:
        return len(encoding.encode(text, disallowed_special=()))
    return math.ceil(len(text) / CHARS_PER_TOKEN)
