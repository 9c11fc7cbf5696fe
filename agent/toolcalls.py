"""Tool calls in model text: parsing what local models write, tolerantly."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.backends.base import ToolCall


@dataclass
class ParsedOutput:
    text: str  # the visible answer, tool-call markup and <think> blocks removed
    reasoning: str = ""  # the content of <think>...</think>, if any
    calls: list[ToolCall] = field(default_factory=list)
    error: str | None = None  # set when the text tries to call a tool but it cannot be parsed


def parse_tool_calls(text: str, tool_names: set[str] | None = None) -> ParsedOutput:
    raise NotImplementedError
