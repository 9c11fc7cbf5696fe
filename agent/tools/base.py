"""What every tool shares: the workspace guard, results, errors, and the Tool record."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from agent.prompts import load_prompt

Access = Literal["read", "edit", "exec"]


class ToolError(Exception):
    """A tool could not do what was asked. The message goes back to the model as the result, so
    it says what happened and what to do instead."""


@dataclass
class ToolResult:
    output: str  # what the model sees
    is_error: bool = False
    data: dict[str, Any] = field(default_factory=dict)  # structured extras for events and the UI (exit_code, ...)


@dataclass
class Workspace:
    """Where tools run: the repository root, plus the line back to whoever watches them. Every
    path a tool touches must resolve inside the root (after following symlinks), and nothing
    under .git/ may be written."""

    root: Path
    attribution: str = "mtp-agent"  # who to credit in commit trailers, e.g. "mtp-agent:SmolLM2-135M"
    network: str = "auto"  # whether commands that need the network may run: auto, on, off (tools/network.py)
    # set when the user interrupts: a long-running tool stops and returns what it has
    cancel: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    # live output of a running tool (shell), for a UI; called from the tool's reader thread
    on_output: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()

    def resolve(self, path: str, write: bool = False) -> Path:
        if not path or "\x00" in path:
            raise ToolError("the path is empty or contains a NUL byte")
        candidate = Path(os.path.expanduser(path))
        if not candidate.is_absolute():
            candidate = self.root / candidate
        resolved = candidate.resolve()  # follows symlinks, including a final symlink to outside
        if resolved != self.root and self.root not in resolved.parents:
            raise ToolError(f"'{path}' resolves to {resolved}, outside the workspace {self.root}; only files inside it can be used")
        relative = resolved.relative_to(self.root)
        if write and relative.parts[:1] == (".git",):
            raise ToolError(f"'{path}' is inside .git/; the repository's internals are never written by tools")
        return resolved

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() or "."


@dataclass(frozen=True)
class Tool:
    name: str
    function: Callable[..., ToolResult]  # called as function(workspace, **arguments)
    parameters: dict[str, Any]  # JSON schema of the arguments
    access: Access  # what permission modes look at: read-only, file edits, or running things
    subject: str | None = None  # the argument that permission patterns match, e.g. "path" or "command"
    # for edit tools: the unified diff the call would apply, computed without writing (shown at approval)
    preview: Callable[..., str] | None = None

    @property
    def description(self) -> str:
        return load_prompt(f"tools/{self.name}.md").strip()

    def spec(self) -> dict[str, Any]:
        """The tool as models see it (OpenAI function-calling shape). Every token of it is in each
        prompt, so what the model cannot use is left out: `additionalProperties: false` (arguments
        are checked against `parameters`, and the embedded backend's grammar closes the objects)
        and an empty `required`."""
        shown = {k: v for k, v in self.parameters.items() if k != "additionalProperties" and v != []}
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": shown}}

    def __call__(self, workspace: Workspace, arguments: dict[str, Any]) -> ToolResult:
        return self.function(workspace, **arguments)


def schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
