"""Helpers for driving the TUI in tests: a small git project, a scripted model, and waiting for
the app to reach a state."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Callable

from textual.widgets import Markdown, Static

from agent.frontends.interactive import InteractiveSession
from agent.core.setup import RunSettings
from agent.frontends.tui.app import AgentApp
from agent.frontends.tui.widgets import Notice, ToolBlock

CALC = "def add(a, b):\n    return a - b\n"
SIZE = (110, 40)


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "calc.py").write_text(CALC)
    (root / "README.md").write_text("# calc\n")
    (root / "src").mkdir()
    (root / "src" / "calculator_app.py").write_text("print('hi')\n")
    for cmd in (["init", "-q", "-b", "main"], ["config", "user.name", "Test"], ["config", "user.email", "test@example.com"],
                ["add", "-A"], ["commit", "-qm", "initial"]):
        subprocess.run(["git", *cmd], cwd=root, check=True)
    return root


def write_script(path: Path, turns: list[dict]) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in turns))
    return path


def call(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def make_app(repo: Path, turns: list[dict], script_name: str | None = None, **settings) -> AgentApp:
    script = write_script(repo.parent / (script_name or f"script-{time.monotonic_ns()}.jsonl"), turns)
    app = AgentApp()
    app.attach(InteractiveSession(RunSettings(backend="scripted", script=script, **settings), repo, app.post_event, app.ask))
    return app


def play(app: AgentApp, steps, size: tuple[int, int] = SIZE) -> None:
    """Run the app headless, do `steps(pilot)`, and close it."""

    async def session() -> None:
        async with app.run_test(size=size) as pilot:
            await steps(pilot)

    asyncio.run(session())


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; transcript:\n{transcript_text(pilot.app)}")
        await asyncio.sleep(0.02)  # not pilot.pause: it waits for the message queue to drain, i.e. the whole stream


async def idle(pilot, timeout: float = 10.0) -> None:
    """Until the running task (and any queued ones) ended and the UI caught up."""
    await wait_for(pilot, lambda: not pilot.app.busy, timeout, "the task to end")
    await pilot.pause(0.05)


async def key(pilot, *keys: str) -> None:
    """Press keys without waiting for the app to go idle (pilot.press waits until a streaming
    answer is over, which hides everything that happens during it)."""
    for name in keys:
        pilot.app.simulate_key(name)
        await asyncio.sleep(0.03)


async def type_and_send(pilot, text: str) -> None:
    prompt = pilot.app.query_one("#prompt")
    prompt.text = text
    prompt.move_cursor(prompt.document.end)
    await key(pilot, "enter")


def transcript_text(app: AgentApp) -> str:
    """What the transcript says, block by block, as plain text."""
    parts = []
    for widget in app.query("#transcript > *"):
        if isinstance(widget, ToolBlock):
            parts.append(f"[{widget.state}] {widget.tool_name} {widget.arguments} :: {widget.output_text}")
        elif isinstance(widget, Notice):
            parts.append(widget.plain)
        elif hasattr(widget, "answer_text"):
            parts.append(f"{widget.thought and '(thinking: ' + widget.thought + ') '}{widget.answer_text}")
        elif isinstance(widget, Markdown):
            parts.append(widget.source)
        elif isinstance(widget, Static):
            parts.append(str(widget.render()))
    return "\n".join(parts)


def status_text(app: AgentApp) -> str:
    return str(app.query_one("#status").render())
