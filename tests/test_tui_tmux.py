"""The real `agent` command in a real terminal (tmux), used as a person would: type a task,
approve the edit, read the screen, check the file, quit."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time

import pytest

from tests.support.tui_support import CALC, call, make_repo, write_script

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (.ci/run installs it; apt-get install tmux)")


class Tmux:
    def __init__(self, socket: str):
        self.socket = socket

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "agent")

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"'{text}' did not appear within {timeout} s; the screen shows:\n{self.screen()}")


@pytest.fixture
def tmux(tmp_path):
    server = Tmux(f"mtp-agent-test-{tmp_path.name}")
    yield server
    subprocess.run(["tmux", "-L", server.socket, "kill-server"], capture_output=True)


def test_agent_in_a_terminal_edits_a_file_after_approval(tmp_path, tmux):
    repo = make_repo(tmp_path / "project")
    script = write_script(tmp_path / "demo.jsonl", [
        {"text": "I'll fix the sign in `add`.", "tool_calls": [call("edit_file", path="calc.py", old_string="a - b", new_string="a + b")]},
        {"text": "Fixed: **add** now adds.", "delay": 0.01},
    ])
    env = {"MTP_AGENT_SESSIONS": tmp_path / "sessions", "XDG_CONFIG_HOME": tmp_path / "config", "TERM": "xterm-256color"}
    command = (" ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items())
               + f" {shlex.quote(sys.executable)} -m agent --backend scripted --script {shlex.quote(str(script))}")
    # a shell first, then the command typed into it: the terminal has its final size when the app starts
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "agent", "-x", "120", "-y", "40", "-c", str(repo),
         "env PS1='$ ' bash --norc --noprofile")
    tmux("send-keys", "-t", "agent", "-l", f"env {command}")
    tmux("send-keys", "-t", "agent", "Enter")

    tmux.wait_for("Message the agent")
    assert "ask" in tmux.screen() and "main" in tmux.screen(), "the status line shows the mode and the branch"
    tmux("send-keys", "-t", "agent", "-l", "Please fix add")
    tmux.wait_for("Please fix add")
    tmux("send-keys", "-t", "agent", "Enter")
    screen = tmux.wait_for("Allow edit_file")
    assert "+    return a + b" in screen and "-    return a - b" in screen, "the diff is shown before the edit"
    assert (repo / "calc.py").read_text() == CALC
    tmux("send-keys", "-t", "agent", "y")
    screen = tmux.wait_for("now adds")
    assert "✓ edit_file calc.py" in screen and "main*" in screen, "the block shows success, the status a dirty tree"
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    tmux("send-keys", "-t", "agent", "C-c")
    tmux.wait_for("$ ")  # back at the shell prompt
    assert "Traceback" not in tmux.screen()
