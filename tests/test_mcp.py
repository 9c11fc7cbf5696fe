"""The MCP client (issue 18): a real MCP server written with the official SDK, over stdio and over
streamable HTTP on loopback; its tools offered as server__tool, every call through the permissions,
errors shown like other tools', a server that fails to start costing one line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from agent.errors import AgentError
from agent.frontends.cli import main
from agent.tools.mcp_client import servers_from_config
from support.git_support import committed_project
from support.mcp_demo import http_app
from support.serve_support import serving_app

DEMO = Path(__file__).parent / "support" / "mcp_demo.py"


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    root = committed_project(tmp_path / "project", {"a.txt": "a\n"})
    monkeypatch.chdir(root)
    return root


def user_config(text: str) -> None:
    (Path(os.environ["MTP_AGENT_CONFIG_DIR"]) / "config.toml").write_text(text)


STDIO = f'[mcp.servers.demo]\ncommand = [{json.dumps(sys.executable)}, {json.dumps(str(DEMO))}]\n'


def run(repo: Path, capsys, calls: list[tuple[str, dict]], *flags: str) -> tuple[int, list[dict], str]:
    script = repo.parent / "turns.jsonl"
    turns = [{"tool_calls": [{"name": name, "arguments": arguments} for name, arguments in calls]}, {"text": "done"}]
    script.write_text("".join(json.dumps(t) + "\n" for t in turns))
    code = main(["run", "--backend", "scripted", "--script", str(script), "--prompt", "go",
                 "--output-format", "stream-json", *flags])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines() if line.strip()], captured.err


def results(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "tool_result"]


def test_a_stdio_servers_tools_run_through_the_permissions(repo, capsys):
    user_config(STDIO)
    code, events, _ = run(repo, capsys, [("demo__add", {"a": 2, "b": 3}), ("demo__shout", {"text": "hi"})],
                          "--permission-mode", "ask", "--allow", "mcp(demo__add)")
    assert code == 0 and {"demo__add", "demo__shout", "demo__broken"} <= set(events[0]["tools"])
    added, shouted = results(events)
    assert added["output"] == "5" and not added["is_error"]
    assert shouted["is_error"] and shouted["output"].startswith("permission denied:")  # headless ask: not allowed


def test_errors_and_deny_rules_show_like_other_tools(repo, capsys):
    user_config(STDIO)
    _, events, _ = run(repo, capsys, [("demo__broken", {}), ("demo__add", {"a": "x"}), ("demo__shout", {"text": "no"})],
                       "--permission-mode", "yolo", "--deny", "mcp(demo__shout)")
    broken, bad_arguments, denied = results(events)
    assert broken["is_error"] and "broken" in broken["output"]
    assert bad_arguments["is_error"] and "was not run" in bad_arguments["output"]  # checked against the server's schema
    assert denied["is_error"] and "mcp(demo__shout)" in denied["output"]


def test_a_streamable_http_server(repo, capsys):
    with serving_app(http_app()) as root:
        user_config(f'[mcp.servers.web]\nurl = "{root}/mcp"\n')
        code, events, _ = run(repo, capsys, [("web__add", {"a": 40, "b": 2})], "--permission-mode", "yolo")
    assert code == 0 and results(events)[0]["output"] == "42"


def test_a_server_that_fails_to_start_costs_one_line(repo, capsys):
    user_config(STDIO + '[mcp.servers.ghost]\ncommand = ["/nonexistent/mcp-server"]\n')
    code, events, err = run(repo, capsys, [("demo__add", {"a": 1, "b": 1})], "--permission-mode", "yolo")
    assert code == 0 and results(events)[0]["output"] == "2"
    lines = [line for line in err.splitlines() if "ghost" in line]
    assert len(lines) == 1 and "did not start" in lines[0] and "Traceback" not in err


def test_a_repositorys_own_mcp_servers_need_trust(repo, capsys):
    (repo / ".mtp-agent").mkdir()
    (repo / ".mtp-agent" / "config.toml").write_text(STDIO)
    code, events, err = run(repo, capsys, [], "--permission-mode", "yolo")
    assert "demo__add" not in events[0]["tools"] and "mcp.servers = ['demo']" in err
    code, events, _ = run(repo, capsys, [], "--permission-mode", "yolo", "--trust-project")
    assert "demo__add" in events[0]["tools"]


@pytest.mark.parametrize(("table", "message"), [
    ({"servers": {"x": {}}}, "needs either command"),
    ({"servers": {"x": {"command": ["a"], "url": "http://b"}}}, "needs either command"),
    ({"servers": {"x": {"command": "a", "port": 1}}}, "unknown keys ['port']"),
    ({"servers": {"a__b": {"command": "a"}}}, "no '__'"),
])
def test_bad_server_settings_name_the_server(table, message):
    with pytest.raises(AgentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        servers_from_config(table)
