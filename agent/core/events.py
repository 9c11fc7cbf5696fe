"""What a run reports as it goes: one dataclass per event type. Front ends switch on the classes;
`as_dict()` is the event's stream-json object (docs/headless.md), which sessions also store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar

from agent.backends.base import TurnStats


def json_line(value: Any) -> str:
    """One JSON line as readable as it can be: non-ASCII text kept as is, unless the value holds
    text that is not valid Unicode (a lone surrogate from a model or a server), which is escaped."""
    line = json.dumps(value, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True)
    return line


def tokens_per_second(tokens: int, seconds: float) -> float:
    return tokens / seconds if tokens > 0 and seconds > 0 else 0.0


@dataclass(frozen=True)
class Event:
    """A field whose default is None is optional: `as_dict()` leaves it out while it is None."""

    type: ClassVar[str]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None or f.default is not None:
                out[f.name] = value
        return out


EventSink = Callable[[Event], None]


@dataclass(frozen=True)
class InitEvent(Event):
    type: ClassVar[str] = "init"
    session_id: str
    backend: str
    model: str
    root: str
    permission_mode: str
    tools: list[str]
    resumed: bool
    context_window: int
    warnings: list[str] = field(default_factory=list)  # settings left out, and why


@dataclass(frozen=True)
class PrefillProgressEvent(Event):
    type: ClassVar[str] = "prefill_progress"
    done: int
    total: int


@dataclass(frozen=True)
class TextDeltaEvent(Event):
    """Streamed model text; stream-json leaves it out."""

    type: ClassVar[str] = "text_delta"
    text: str


@dataclass(frozen=True)
class AssistantEvent(Event):
    type: ClassVar[str] = "assistant"
    turn: int
    text: str
    reasoning: str


@dataclass(frozen=True)
class StatsEvent(Event):
    type: ClassVar[str] = "stats"
    turn: int
    stats: TurnStats

    @property
    def prefill_tokens_per_second(self) -> float:
        s = self.stats
        return tokens_per_second(s.prompt_tokens - s.reused_prompt_tokens, s.prefill_seconds)

    @property
    def decode_tokens_per_second(self) -> float:
        # the first generated token comes with the prefill; each later one is decode
        return tokens_per_second(self.stats.generated_tokens - 1, self.stats.decode_seconds)

    def as_dict(self) -> dict[str, Any]:
        s = self.stats
        return {"type": self.type, "turn": self.turn, "prompt_tokens": s.prompt_tokens,
                "reused_prompt_tokens": s.reused_prompt_tokens, "generated_tokens": s.generated_tokens,
                "prefill_tokens_per_second": round(self.prefill_tokens_per_second, 2),
                "decode_tokens_per_second": round(self.decode_tokens_per_second, 2),
                "seconds": round(s.seconds, 2), "drafted_tokens": s.drafted_tokens, "accepted_tokens": s.accepted_tokens,
                "mtp_drafted_tokens": s.mtp_drafted_tokens, "mtp_accepted_tokens": s.mtp_accepted_tokens}


@dataclass(frozen=True)
class FormatErrorEvent(Event):
    type: ClassVar[str] = "format_error"
    turn: int
    error: str


@dataclass(frozen=True)
class ToolCallEvent(Event):
    type: ClassVar[str] = "tool_call"
    turn: int
    id: str
    name: str
    arguments: dict[str, Any]
    diff: str | None = None  # what an edit will change, when it is small enough to send


@dataclass(frozen=True)
class PermissionEvent(Event):
    type: ClassVar[str] = "permission"
    id: str
    name: str
    decision: str  # "allow" or "deny"
    reason: str


@dataclass(frozen=True)
class ToolOutputEvent(Event):
    """A running command's output as it comes (interactive front ends)."""

    type: ClassVar[str] = "tool_output"
    text: str


@dataclass(frozen=True)
class ToolResultEvent(Event):
    type: ClassVar[str] = "tool_result"
    turn: int
    id: str
    name: str
    is_error: bool
    output: str
    data: dict[str, Any]


@dataclass(frozen=True)
class CheckpointEvent(Event):
    """A snapshot `agent undo` restores: a ref and its label, or no ref and the error."""

    type: ClassVar[str] = "checkpoint"
    ref: str | None
    label: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class CompactionEvent(Event):
    type: ClassVar[str] = "compaction"
    elided: int
    summarized: bool
    tokens_before: int
    tokens_after: int


@dataclass(frozen=True)
class UserShellEvent(Event):
    """A `!command` the user ran; saved in the session only."""

    type: ClassVar[str] = "user_shell"
    command: str
    output: str


@dataclass(frozen=True)
class ResultEvent(Event):
    """The end of a run; the totals count that run's turns."""

    type: ClassVar[str] = "result"
    status: str  # done, error, limit, interrupted
    exit_code: int
    answer: str
    error: str
    turns: int
    session_id: str
    totals: TurnStats
    duration_seconds: float

    def as_dict(self) -> dict[str, Any]:
        t = self.totals
        computed = t.prompt_tokens - t.reused_prompt_tokens
        return {"type": self.type, "status": self.status, "exit_code": self.exit_code, "answer": self.answer,
                "error": self.error, "turns": self.turns, "session_id": self.session_id,
                "prompt_tokens": t.prompt_tokens, "reused_prompt_tokens": t.reused_prompt_tokens,
                "generated_tokens": t.generated_tokens, "drafted_tokens": t.drafted_tokens,
                "accepted_tokens": t.accepted_tokens, "mtp_drafted_tokens": t.mtp_drafted_tokens,
                "mtp_accepted_tokens": t.mtp_accepted_tokens, "duration_seconds": round(self.duration_seconds, 3),
                "prefill_tokens_per_second": round(tokens_per_second(computed, t.prefill_seconds), 2),
                "decode_tokens_per_second": round(tokens_per_second(t.generated_tokens - self.turns, t.decode_seconds), 2)}


EVENT_TYPES: dict[str, type[Event]] = {cls.type: cls for cls in (
    InitEvent, PrefillProgressEvent, TextDeltaEvent, AssistantEvent, StatsEvent, FormatErrorEvent, ToolCallEvent,
    PermissionEvent, ToolOutputEvent, ToolResultEvent, CheckpointEvent, CompactionEvent, UserShellEvent, ResultEvent)}
