"""The line REPL (`agent --plain`, or `agent` without a terminal) over the same session: a task,
an approval answered on the keyboard, commands, the ! escape, and leaving at end of input."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.tui_support import CALC, call, make_repo, write_script


def run_plain(tmp_path, turns: list[dict], lines: list[str], *flags: str) -> subprocess.CompletedProcess:
    repo = tmp_path / "project"
    if not repo.exists():
        make_repo(repo)
    script = write_script(tmp_path / "demo.jsonl", turns)
    env = {**os.environ, "MTP_AGENT_SESSIONS": str(tmp_path / "sessions"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "agent", "--backend", "scripted", "--script", str(script), *flags],
                          input="".join(line + "\n" for line in lines), capture_output=True, text=True, cwd=repo,
                          env=env, timeout=60)


def test_without_a_terminal_the_repl_runs_tasks_commands_and_approvals(tmp_path):
    turns = [{"text": "I'll fix it.", "tool_calls": [call("edit_file", path="calc.py", old_string="a - b", new_string="a + b")]},
             {"text": "Fixed add."}, {"text": "You ran echo."}]
    done = run_plain(tmp_path, turns, ["fix add", "y", "/mode plan", "!echo from-shell", "what did I run?", "/stats", "/quit"])
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "Allow edit_file?" in out and "+    return a + b" in out
    assert "[y] once · [a] always allow edit_file(calc.py) · [n] no:" in out  # brackets shown, not taken for markup
    assert (tmp_path / "project" / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert "Fixed add." in out and "permission mode: plan" in out and "from-shell" in out and "You ran echo." in out
    assert "model turns" in out


def test_plain_flag_and_a_denial_with_a_reason(tmp_path):
    turns = [{"tool_calls": [call("edit_file", path="calc.py", old_string="a - b", new_string="a * b")]}, {"text": "OK."}]
    done = run_plain(tmp_path, turns, ["fix add", "n", "keep subtraction"], "--plain")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "project" / "calc.py").read_text() == CALC
    assert "denied: the user declined: keep subtraction" in done.stdout and "OK." in done.stdout
