"""What the agent's tool calls run against (mini-swe-agent's environment): the tools, the workspace
they act on, the permission rules, and who approves a call the rules leave open."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.backends.base import ToolCall
from agent.core.permissions import Approver, Permissions
from agent.tools.base import Tool, ToolError, Workspace


@dataclass
class Environment:
    tools: dict[str, Tool]
    workspace: Workspace
    permissions: Permissions
    approver: Approver | None = None  # None: nobody can approve (a headless run), so "ask" means deny

    def tool_specs(self) -> list[dict[str, Any]]:
        return [tool.spec() for tool in self.tools.values()]

    def preview(self, call: ToolCall) -> str | None:
        """The unified diff an edit would apply, computed once for the event and the approval."""
        tool = self.tools.get(call.name)
        if tool is None or tool.preview is None:
            return None
        try:
            return tool.preview(self.workspace, **call.arguments)
        except (ToolError, OSError, TypeError):
            return None  # the call itself will report what is wrong
