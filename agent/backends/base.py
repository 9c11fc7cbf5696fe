"""The small protocol every model backend speaks, and what a model turn returns."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Protocol

# A conversation message, provider-neutral (OpenAI-like), JSON-serialisable:
#   {"role": "system" | "user" | "assistant" | "tool", "content": str, ...}
# assistant messages may add "tool_calls": [{"id", "name", "arguments"}], "raw" (the exact text the
# model produced, tool-call markup included) and "reasoning"; tool messages add "tool_call_id" and "name".
Message = dict[str, Any]


class ModelError(Exception):
    """The model could not produce a turn (server error, stall, lost connection, broken script)."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class TurnSampling:
    """Sampling for one turn instead of the backend's own (the turn after a steered repeat)."""

    temperature: float
    top_p: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class Reply:
    """A turn answered in a fixed shape instead of in prose or calls (a workflow's question):
    `text`, prose without calls or code; `code`, one fenced block in `language`; `json`, one JSON
    value matching `schema`. `max_tokens` bounds the turn (None: the backend's bound)."""

    kind: str  # "text", "code" or "json"
    language: str = ""
    schema: dict[str, Any] | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("text", "code", "json"):
            raise ValueError(f"a reply is 'text', 'code' or 'json', not '{self.kind}'")
        if self.kind == "json" and self.schema is None:
            raise ValueError("a json reply needs a schema")


@dataclass(frozen=True)
class TurnOptions:
    """What one turn asks of the backend beyond the conversation (each where the backend can)."""

    sampling: TurnSampling | None = None  # instead of the backend's own (the turn after a steered repeat)
    require_call: bool = False  # a tool call, not an answer (OpenAI's tool_choice "required")
    avoid_tools: frozenset[str] = frozenset()  # offered (the prompt stays the same) but not callable this turn
    reply: Reply | None = None  # the turn's shape, no calls (the prompt's tools stay, for the cache)
    stop: tuple[str, ...] = ()  # the text ends before the first of these (a client's `stop`)
    # the reply ends as soon as this holds of its text so far (asked where a line ends), and counts
    # as cut at its bound (finish_reason "length"): a workflow's guard against a model running on
    stop_when: Callable[[str], bool] | None = None


def ends_here(options: TurnOptions, text: str, delta: str) -> bool:
    """Whether the turn's `stop_when` ends the reply now that `delta` brought its text to `text`."""
    return options.stop_when is not None and "\n" in delta and options.stop_when(text)


@dataclass
class TurnStats:
    prompt_tokens: int = 0
    reused_prompt_tokens: int = 0  # prompt prefix served from the KV cache (embedded) or reported cached (server)
    generated_tokens: int = 0
    prefill_seconds: float = 0.0  # computing the prompt (a server: until the first token arrives)
    decode_seconds: float = 0.0  # the generated tokens after the first, which came with the prefill
    seconds: float = 0.0  # the whole turn
    drafted_tokens: int = 0  # speculative decoding (embedded backend), all drafters
    accepted_tokens: int = 0
    mtp_drafted_tokens: int = 0  # of which by the MTP head (the rest: prompt lookup)
    mtp_accepted_tokens: int = 0

    def add(self, other: "TurnStats") -> None:
        """Sum another turn into this one (a run's totals)."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class ModelTurn:
    text: str  # what the model said, tool-call markup removed
    tool_calls: list[ToolCall] = field(default_factory=list)
    raw: str = ""  # the model's exact output
    reasoning: str = ""
    format_error: str | None = None  # set when the output tried to call a tool but could not be parsed
    finish_reason: str = "stop"  # "stop", "length", "tool_calls"
    stats: TurnStats = field(default_factory=TurnStats)


class Backend(Protocol):
    name: str  # "embedded", "openai", "scripted"
    model: str  # what the model is called, for events and sessions
    context_window: int  # tokens the model can see at once

    def complete(self, messages: list[Message], tools: list[dict[str, Any]],
                 on_text: Callable[[str], None] | None = None,
                 on_progress: Callable[[int, int], None] | None = None,
                 max_tokens: int | None = None, options: TurnOptions = TurnOptions()) -> ModelTurn:
        """One model turn for the conversation so far. `tools` are OpenAI-style function specs.
        `on_text` receives text deltas as they stream, `on_progress(done, total)` the prompt's
        prefill where the backend computes it. Either may raise to stop the turn (an interrupt),
        and the exception passes through. `max_tokens` caps this turn's answer (None: the
        backend's own limit); `options` bend this one turn (sampling, a required call, tools to
        avoid). Raises ModelError."""
        ...

    def count_tokens(self, messages: list[Message], tools: list[dict[str, Any]]) -> int:
        """How many tokens the next request would take."""
        ...
