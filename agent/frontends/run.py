"""Headless `agent run`: one task through the loop, with no UI."""

from __future__ import annotations

import sys
from pathlib import Path

from agent.core.loop import EventSink, RunResult
from agent.core.permissions import Approver
from agent.core.setup import RunSettings, prepare
from agent.errors import AgentError


def run_task(settings: RunSettings, task: str, cwd: Path, on_event: EventSink, approver: Approver | None = None) -> RunResult:
    if not task.strip():
        raise AgentError("the task is empty; give a task file, '-' for stdin, or --prompt TEXT")
    agent, init = prepare(settings, cwd, on_event, approver)
    for warning in init.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    on_event(init)
    return agent.run(task)
