"""How a headless run reports itself: `--output-format text|json|stream-json`.

Events are plain dicts with a "type": init, assistant, text_delta, tool_call, tool_result,
permission, format_error, checkpoint, compaction, stats, and one final result. Progress goes to
stderr and the final answer to stdout; stream-json writes every event (but the per-token
text_delta) to stdout as one JSON object per line.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

FORMATS = ("text", "json", "stream-json")


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TextOutput:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None):
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self._said = ""  # the model's latest text: progress if tool calls follow, else the answer

    def __call__(self, event: dict[str, Any]) -> None:
        kind, err = event["type"], self.err
        if kind not in ("assistant", "stats", "text_delta", "result") and self._said:
            print(self._said, file=err)
            self._said = ""
        if kind == "init":
            print(f"session {event['session_id']} · {event['backend']} {event['model']} · {event['permission_mode']} mode", file=err)
        elif kind == "assistant":
            self._said = event["text"]
        elif kind == "tool_call":
            args = ", ".join(f"{k}={_short(v, 60)}" for k, v in event["arguments"].items())
            print(f"→ {event['name']}({args})", file=err)
        elif kind == "tool_result":
            first = event["output"].strip().splitlines()[:1]
            print(f"  {'✗' if event['is_error'] else '✓'} {_short(first[0] if first else '', 100)}", file=err)
        elif kind in ("format_error", "permission") and event.get("decision", "deny") == "deny":
            print(f"  ! {event.get('error') or event.get('reason')}", file=err)
        elif kind == "compaction":
            print(f"  (compacted the conversation: {event['tokens_before']} -> {event['tokens_after']} tokens)", file=err)
        elif kind == "result":
            if event["status"] == "done":
                print(event["answer"], file=self.out)
            else:
                if self._said:
                    print(self._said, file=err)
                print(f"agent: {event['status']}: {event['error']}", file=err)
            self._said = ""
            print(f"[{event['turns']} turns, {event['prompt_tokens']} prompt tokens ({event['reused_prompt_tokens']} reused), "
                  f"{event['generated_tokens']} generated, {event['duration_seconds']:.1f} s]", file=err)
        err.flush()


class JsonOutput:
    """One JSON object at the end: the result event."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] == "result":
            print(json.dumps(event, ensure_ascii=False), file=self.out, flush=True)


class StreamJsonOutput:
    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] != "text_delta":
            print(json.dumps(event, ensure_ascii=False), file=self.out, flush=True)


def make_output(name: str):
    return {"text": TextOutput, "json": JsonOutput, "stream-json": StreamJsonOutput}[name]()
