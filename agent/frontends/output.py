"""How a headless run reports itself: `--output-format text|json|stream-json`.

Progress goes to stderr and the final answer to stdout; stream-json writes every event (but the
per-token text_delta) to stdout as one JSON object per line, the event's `as_dict()`.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from agent.core.events import (AssistantEvent, CompactionEvent, Event, EventSink, FormatErrorEvent, InitEvent, json_line,
                               PermissionEvent, ResultEvent, StatsEvent, TextDeltaEvent, ToolCallEvent, ToolResultEvent)

FORMATS = ("text", "json", "stream-json")


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TextOutput:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None):
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self._said = ""  # the model's latest text: progress if tool calls follow, else the answer

    def __call__(self, event: Event) -> None:
        err = self.err
        if not isinstance(event, (AssistantEvent, StatsEvent, TextDeltaEvent, ResultEvent)) and self._said:
            print(self._said, file=err)
            self._said = ""
        match event:
            case InitEvent():
                print(f"session {event.session_id} · {event.backend} {event.model} · {event.permission_mode} mode", file=err)
            case AssistantEvent():
                self._said = event.text
            case ToolCallEvent():
                args = ", ".join(f"{k}={_short(v, 60)}" for k, v in event.arguments.items())
                print(f"→ {event.name}({args})", file=err)
            case ToolResultEvent():
                first = event.output.strip().splitlines()[:1]
                print(f"  {'✗' if event.is_error else '✓'} {_short(first[0] if first else '', 100)}", file=err)
            case FormatErrorEvent():
                print(f"  ! {event.error}", file=err)
            case PermissionEvent(decision="deny"):
                print(f"  ! {event.reason}", file=err)
            case CompactionEvent():
                print(f"  (compacted the conversation: {event.tokens_before} -> {event.tokens_after} tokens)", file=err)
            case ResultEvent():
                self._result(event)
        err.flush()

    def _result(self, event: ResultEvent) -> None:
        if event.status == "done":
            print(event.answer, file=self.out)
        else:
            if self._said:
                print(self._said, file=self.err)
            print(f"agent: {event.status}: {event.error}", file=self.err)
        self._said = ""
        t = event.totals
        print(f"[{event.turns} turns, {t.prompt_tokens} prompt tokens ({t.reused_prompt_tokens} reused), "
              f"{t.generated_tokens} generated, {event.duration_seconds:.1f} s]", file=self.err)


class JsonOutput:
    """One JSON object at the end: the result event."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def __call__(self, event: Event) -> None:
        if isinstance(event, ResultEvent):
            print(json_line(event.as_dict()), file=self.out, flush=True)


class StreamJsonOutput:
    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def __call__(self, event: Event) -> None:
        if not isinstance(event, TextDeltaEvent):
            print(json_line(event.as_dict()), file=self.out, flush=True)


def make_output(name: str) -> EventSink:
    return {"text": TextOutput, "json": JsonOutput, "stream-json": StreamJsonOutput}[name]()
