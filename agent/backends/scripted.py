"""A backend that replays model turns from a file: for tests and demos.

The file is JSON Lines (or one JSON array); each entry is one model turn:
    {"text": "I'll look.", "tool_calls": [{"name": "read_file", "arguments": {"path": "a.py"}}]}
    {"raw": "<tool_call>{\"name\": \"shell\", ...}</tool_call>"}   # parsed like a local model's output
    {"text": "partial ans", "error": "connection reset"}            # streams the text, then fails
    {"text": "slow", "delay": 0.05}                                  # seconds between streamed words
    {"text": "typing...", "interrupt": true}                          # as if the user pressed Ctrl-C
    {"text": "long prompt", "prefill": [8192, 0.05]}                   # reports prefill progress: tokens, seconds per chunk
    {"text": "cut sho", "finish_reason": "length"}                     # as if the token limit stopped it
    {"text": "timed", "timing": [0.5, 2.0]}                            # the stats' prefill and decode seconds
Lines starting with # are comments. Running out of turns is a model failure.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Callable

from agent.errors import AgentError
from agent.core.toolcalls import parse_tool_calls
from agent.backends.base import Message, ModelError, ModelTurn, ToolCall, TurnOptions, TurnStats, ends_here


def load_script(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise AgentError(f"cannot read the script {path}: {e.strerror}") from e
    stripped = text.strip()
    try:
        if stripped.startswith("["):
            turns = json.loads(stripped)
        else:
            turns = [json.loads(line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    except json.JSONDecodeError as e:
        raise AgentError(f"the script {path} is not JSON Lines: {e}") from e
    if not all(isinstance(t, dict) for t in turns):
        raise AgentError(f"every turn in {path} must be a JSON object")
    return turns


PREFILL_CHUNK = 2048  # as the engine computes a prompt (inference.generate)


class ScriptedBackend:
    name = "scripted"

    def __init__(self, turns: list[dict[str, Any]], model: str = "scripted", context_window: int = 32768):
        self.turns = list(turns)
        self.model = model
        self.context_window = context_window
        self.requests: list[list[Message]] = []  # what the agent sent, for tests
        self.max_tokens_requested: list[int | None] = []  # each request's max_tokens, for tests
        self.options_requested: list[TurnOptions] = []  # each request's turn options, for tests
        self.tools_requested: list[list[str]] = []  # the names of each request's tools, for tests

    @classmethod
    def from_file(cls, path: Path, context_window: int = 32768) -> "ScriptedBackend":
        return cls(load_script(path), model=f"script:{path.name}", context_window=context_window)

    @staticmethod
    def _prefill(total: int, seconds_per_chunk: float, on_progress: Callable[[int, int], None] | None) -> None:
        for done in range(PREFILL_CHUNK, int(total) + PREFILL_CHUNK, PREFILL_CHUNK):
            time.sleep(float(seconds_per_chunk))
            if on_progress:
                on_progress(min(done, int(total)), int(total))

    def count_tokens(self, messages: list[Message], tools: list[dict[str, Any]]) -> int:
        return len(json.dumps(messages)) // 4 + len(json.dumps(tools)) // 4

    def complete(self, messages: list[Message], tools: list[dict[str, Any]],
                 on_text: Callable[[str], None] | None = None,
                 on_progress: Callable[[int, int], None] | None = None,
                 max_tokens: int | None = None, options: TurnOptions = TurnOptions()) -> ModelTurn:
        self.requests.append([dict(m) for m in messages])
        self.max_tokens_requested.append(max_tokens)
        self.options_requested.append(options)
        self.tools_requested.append([t["function"]["name"] for t in tools])
        if not self.turns:
            raise ModelError("the script has no more turns")
        spec = self.turns.pop(0)
        start = time.perf_counter()
        raw = spec.get("raw", spec.get("text", ""))
        if spec.get("prefill"):
            self._prefill(*spec["prefill"], on_progress=on_progress)
        streamed, halted = "", False
        for piece in re.findall(r"\S+\s*|\s+", raw):
            if spec.get("delay"):
                time.sleep(float(spec["delay"]))
            if on_text:
                on_text(piece)
            streamed += piece
            if ends_here(options, streamed, piece):
                raw, halted = streamed, True  # as a model would, the script stops where the turn ends it
                break
        if spec.get("interrupt"):
            raise KeyboardInterrupt
        if "error" in spec:
            raise ModelError(str(spec["error"]))
        names = {t["function"]["name"] for t in tools}
        if "raw" in spec or halted:
            parsed = parse_tool_calls(raw, names)
            text, calls, reasoning, error = parsed.text, parsed.calls, parsed.reasoning, parsed.error
        else:
            text, reasoning, error = spec.get("text", ""), spec.get("reasoning", ""), None
            calls = [ToolCall(c.get("id", f"call_{i}"), c["name"], c.get("arguments", {}))
                     for i, c in enumerate(spec.get("tool_calls", []), 1)]
        prefill_seconds, decode_seconds = spec.get("timing", (0.0, 0.0))  # nothing is computed: 0 unless scripted
        stats = TurnStats(prompt_tokens=self.count_tokens(messages, tools), generated_tokens=max(len(raw) // 4, 1),
                          prefill_seconds=float(prefill_seconds), decode_seconds=float(decode_seconds),
                          seconds=time.perf_counter() - start)
        return ModelTurn(text=text, tool_calls=calls, raw=raw, reasoning=reasoning, format_error=error,
                         finish_reason="length" if halted else spec.get("finish_reason", "tool_calls" if calls else "stop"),
                         stats=stats)
