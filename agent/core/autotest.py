"""Validated edits in the free loop, as Aider's --auto-test: after a turn in which the model changed
files, the agent runs the command the task names (else the project's tests) and the model reads the
result at the start of its next turn, without having to think of running it. A small model rarely
runs the tests after an edit on its own and answers "fixed" with the tests still failing.

It runs only where the command may run without asking — yolo, or an allow rule such as
`shell(python -m pytest *)` — so nobody is asked to approve the tests after every edit, and a
run in ask mode gets no refusals in its conversation. The call itself goes through the tools and
their permissions like any other. `--no-auto-test` or `[agent] auto_test = false` turns it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.backends.base import ToolCall
from agent.core.locate import find_command

if TYPE_CHECKING:
    from agent.core.loop import Agent


@dataclass
class AutoTest:
    command: str | None
    enabled: bool = True
    tested_state: str = ""  # the workspace the command last ran in (or the task began in): not run for it

    @classmethod
    def for_task(cls, task: str, root: Path, state: str) -> AutoTest:
        """`state`: the workspace as the task found it; an edit that was refused or failed leaves it so."""
        return cls(find_command(task, root), tested_state=state)

    def after_turn(self, agent: Agent, calls: list[ToolCall]) -> None:
        """Run the command when one of this turn's calls edited a file and the files are not as
        they were when it last ran."""
        if not self.enabled or self.command is None:
            return
        if not any(c.name in agent.env.tools and agent.env.tools[c.name].access == "edit" for c in calls):
            return
        arguments = {"command": self.command}
        if not agent.may_act_unasked("shell", arguments):
            self.enabled = False
            return
        state = agent.workspace_state()
        if state == self.tested_state:
            return
        self.tested_state = state
        agent.act("shell", arguments)
