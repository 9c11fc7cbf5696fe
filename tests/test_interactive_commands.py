"""Commands that wait for a terminal are refused before they run, naming the tool to use."""

from __future__ import annotations

import pytest

from agent.tools import TOOLS, run_tool
from agent.tools.base import Workspace
from agent.tools.interactive import interactive_reason


@pytest.mark.parametrize("command, hint", [
    ("vim calc.py", "edit_file"),
    ("nano calc.py", "edit_file"),
    ("/usr/bin/vi calc.py", "edit_file"),
    ("sudo nano /etc/hosts", "edit_file"),
    ("EDITOR=x emacs notes.txt", "edit_file"),
    ("cd src && vim main.py", "edit_file"),
    ("pytest -q; vim calc.py", "edit_file"),
    ("git log | less", "read_file"),
    ("less README.md", "read_file"),
    ("top", "no terminal"),
    ("timeout 10 htop", "no terminal"),
    ("ssh host", "no terminal"),
    ("python", "-c"),
    ("python3 -i", "-c"),
    ("ipython", "-c"),
    ("node", "-c"),
])
def test_interactive_commands_are_refused_with_what_to_use(command, hint):
    reason = interactive_reason(command)
    assert reason is not None and hint in reason


@pytest.mark.parametrize("command", [
    "python -m pytest -q", "python3 script.py", "python -c 'print(1)'", "python < input.py", "node app.js",
    "echo vim", "grep -rn less src/", "git commit -m 'use vim'", "cat calc.py", "ls -la", "python --version",
    "echo 'unbalanced", "", "echo 'print(1)' | python", "python3 <<< 'print(1)'",
])
def test_commands_that_print_and_exit_run(command):
    assert interactive_reason(command) is None


def test_the_shell_tool_refuses_without_running(tmp_path):
    result = run_tool(TOOLS["shell"], Workspace(tmp_path), {"command": "touch ran.txt; vim ran.txt"})
    assert result.is_error and result.output.startswith("not run: 'vim' is an interactive editor")
    assert not (tmp_path / "ran.txt").exists()
