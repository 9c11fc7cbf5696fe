"""The agent loop on the scripted backend, headless and in yolo mode, with its events collected."""

from __future__ import annotations

from pathlib import Path

from agent.backends.scripted import ScriptedBackend
from agent.core.environment import Environment
from agent.core.loop import Agent, Limits, RunResult
from agent.core.permissions import Permissions
from agent.core.session import Session
from agent.tools import TOOLS
from agent.tools.base import Workspace


def run_scripted(root: Path, turns: list[dict], task: str, limits: Limits, mode: str = "yolo",
                 allow: tuple[str, ...] = ()) -> tuple[Agent, ScriptedBackend, list, RunResult]:
    backend = ScriptedBackend(turns)
    events: list = []
    env = Environment(TOOLS, Workspace(root), Permissions.from_settings(mode, list(allow), []), approver=None)
    agent = Agent(backend, env, Session.create(root, {"backend": "scripted", "model": "script"}), events.append, limits)
    return agent, backend, events, agent.run(task)
