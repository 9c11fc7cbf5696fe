"""A fixed workflow for small models (Agentless-like): reproduce -> locate -> edit -> validate.

A 0.5B-1.5B model in a free loop rarely runs the failing command on its own, and reads the same
file again instead of editing it. With `--workflow fix` (or `auto`, which picks it when the task
asks for a change and the repository has a command that fails), the agent itself runs the command
the task names (else the test suite), reads the files the failure and the task point at, and
then asks the model for edits only; after each edit it runs the command again and feeds the
result back, and once it passes the model writes the answer. The agent's own steps go through
the same tools, permissions and events as the model's calls, and sit in the conversation as the
agent's calls, so the model sees a worked pattern. When edits keep failing, the free loop takes
over. `free` is the plain loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.backends.base import ToolCall, TurnOptions
from agent.core.permissions import DENIED

if TYPE_CHECKING:
    from agent.core.loop import Agent

WORKFLOWS = ("auto", "fix", "free")
# the edit stage's tools; the agent has read what the failure points at, and a small model offered
# read_file reads it again
EDIT_TOOLS = frozenset({"edit_file", "write_file"})
MAX_EDIT_ROUNDS = 4  # failed validations before the free loop takes over
MAX_LOCATED_FILES = 3
COMMAND_WORDS = ("pytest", "python", "python3", "npm", "make", "cargo", "go", "node", "bash", "sh", "./")
_BACKTICKED = re.compile(r"`([^`\n]+)`")
_PATH = re.compile(r"[\w./-]+\.[A-Za-z]{1,4}\b")
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.MULTILINE)


def find_command(task: str, root: Path) -> str | None:
    """The command that shows the problem: one the task names in backticks, else the test suite
    when the repository has Python tests; None when there is neither."""
    for snippet in _BACKTICKED.findall(task):
        words = snippet.split()
        if words and words[0].startswith(COMMAND_WORDS):
            return "python -m pytest -q" if words == ["pytest"] else snippet
    if any(root.glob("test_*.py")) or any(root.glob("tests/**/test_*.py")) or any(root.glob("*_test.py")):
        return "python -m pytest -q"
    return None


def is_question(task: str) -> bool:
    return "?" in task


def located_files(task: str, output: str, root: Path) -> list[str]:
    """Repository files the task and the failure point at, most relevant first: code before tests,
    the task's own mentions before the failure's, then what the failing tests import."""
    mentioned: list[str] = []
    for text in (task, output):
        for match in _PATH.findall(text):
            relative = _inside(root, match)
            if relative and relative not in mentioned:
                mentioned.append(relative)
    for test in [p for p in mentioned if _is_test(p)]:
        for module in _imported_modules(root / test):
            candidate = _inside(root, module.replace(".", "/") + ".py")
            if candidate and candidate not in mentioned:
                mentioned.append(candidate)
    code = [p for p in mentioned if not _is_test(p)]
    tests = [p for p in mentioned if _is_test(p)]
    return (code + tests)[:MAX_LOCATED_FILES]


def _inside(root: Path, name: str) -> str | None:
    path = Path(name)
    candidates = [path] if path.is_absolute() else [root / path]
    if not path.is_absolute() and "/" not in name:
        candidates += sorted(root.glob(f"*/{name}"))[:1]
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
            relative = resolved.relative_to(root.resolve())
        except (OSError, ValueError):
            continue
        if resolved.is_file() and ".git" not in relative.parts:
            return relative.as_posix()
    return None


def _is_test(path: str) -> bool:
    name = Path(path).name
    return name.startswith("test_") or name.endswith("_test.py") or "tests" in Path(path).parts


def _imported_modules(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [a or b for a, b in _IMPORT.findall(text)]


@dataclass
class FixWorkflow:
    """The stages: reproduce and locate happen in start(); then `edit` (the model may only
    edit) and validation after each turn that wrote; `answer` once the command passes; `free`
    when the model is on its own."""

    command: str
    stage: str = "edit"
    failed_validations: int = 0
    tools_offered: frozenset[str] = field(default_factory=frozenset)
    checked_state: str = ""  # the workspace state the command last ran in

    def start(self, agent: Agent, task: str, force: bool) -> None:
        self.tools_offered = frozenset(agent.env.tools)
        output, failed = self._check(agent, agent.workspace_state())
        if output.startswith(DENIED):
            self.stage = "free"  # the command may not run here (ask mode, headless): no way to validate
            return
        if not failed and not force:
            self.stage = "free"  # nothing to reproduce: the task is not a fix
            return
        # the code to change is read last, so it is what the model saw most recently
        for path in reversed(located_files(task, output, agent.env.workspace.root)):
            agent.act("read_file", {"path": path})

    def turn_options(self) -> TurnOptions | None:
        if self.stage == "edit":
            return TurnOptions(require_call=True, avoid_tools=self.tools_offered - EDIT_TOOLS)
        if self.stage == "answer":
            return TurnOptions(avoid_tools=self.tools_offered)
        return None

    def after_turn(self, agent: Agent, calls: list[ToolCall]) -> None:
        """Validate after a turn whose edits changed the workspace."""
        if self.stage != "edit" or not any(call.name in EDIT_TOOLS for call in calls):
            return
        state = agent.workspace_state()
        if state == self.checked_state:
            return  # the edits failed or changed nothing: the model sees why in their results
        _, failed = self._check(agent, state)
        if not failed:
            self.stage = "answer"
            return
        self.failed_validations += 1
        if self.failed_validations >= MAX_EDIT_ROUNDS:
            self.stage = "free"

    def _check(self, agent: Agent, state: str) -> tuple[str, bool]:
        """Run the command in the workspace `state` the caller has just read."""
        self.checked_state = state
        return agent.act("shell", {"command": self.command})


def choose_workflow(name: str, task: str, root: Path) -> FixWorkflow | None:
    """The workflow for a task: None for the free loop."""
    if name not in WORKFLOWS:
        raise ValueError(f"unknown workflow '{name}'; use one of {', '.join(WORKFLOWS)}")
    if name == "free" or (name == "auto" and is_question(task)):
        return None
    command = find_command(task, root)
    return FixWorkflow(command) if command else None
