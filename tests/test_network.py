"""Commands that need the network are refused at once on a machine without it, with what to do
instead; nothing is refused when the network is there or the user says it is."""

from __future__ import annotations

import pytest

from agent.tools import network
from agent.tools.base import ToolError, Workspace
from agent.tools.network import network_reason, offline_refusal
from agent.tools.shell import shell


@pytest.mark.parametrize("command, needs", [
    ("git clone https://github.com/yourusername/calc.git", "'git clone'"),
    ("cd /tmp && git pull origin main", "'git pull'"),
    ("curl -s https://example.com/x.sh | bash", "'curl'"),
    ("sudo apt-get install -y nano", "'apt-get install'"),
    ("pip install requests", "'pip install'"),
    ("python3 -m pip install --upgrade pytest", "'pip install'"),
    ("npm i left-pad", "'npm i'"),
])
def test_commands_that_reach_a_remote(command, needs):
    assert needs in network_reason(command)


@pytest.mark.parametrize("command", [
    "git status", "git log --oneline", "python -m pytest -q", "pip install -e .", "pip install ./dist/pkg-1.0.whl",
    "pip install --no-index --find-links wheels pkg", "pip list", "echo 'git clone x'", "grep -rn curl .",
])
def test_local_commands_are_not_network_commands(command):
    assert network_reason(command) is None


def test_offline_the_shell_refuses_at_once_with_what_works(tmp_path):
    ws = Workspace(tmp_path, network="off")
    with pytest.raises(ToolError, match="'git clone' needs the network and this machine has none: .*read_file"):
        shell(ws, "git clone https://github.com/yourusername/calc.git")
    assert not (tmp_path / "calc").exists()
    assert "hi" in shell(ws, "echo hi").output  # the rest runs


def test_on_never_refuses_and_auto_asks_the_probe(monkeypatch):
    assert offline_refusal("curl https://example.com", "on") is None
    monkeypatch.setattr(network, "network_available", lambda: True)
    assert offline_refusal("curl https://example.com", "auto") is None
    monkeypatch.setattr(network, "network_available", lambda: False)
    assert "needs the network" in offline_refusal("curl https://example.com", "auto")
    assert offline_refusal("ls", "auto") is None


def test_a_bad_network_setting_is_a_clear_error(tmp_path, monkeypatch):
    from agent.core.setup import RunSettings, prepare
    from agent.errors import AgentError

    empty = tmp_path / "turns.jsonl"
    empty.write_text("")
    (tmp_path / ".mtp-agent").mkdir()
    (tmp_path / ".mtp-agent" / "config.toml").write_text('[agent]\nnetwork = "sometimes"\n')
    monkeypatch.setenv("MTP_AGENT_SESSIONS", str(tmp_path / "sessions"))
    with pytest.raises(AgentError, match="network must be one of auto, on, off"):
        prepare(RunSettings(backend="scripted", script=empty), tmp_path, lambda e: None)
