"""What a model or a server writes never breaks the run or its session (issue 19 item 2): text
that is not valid Unicode is stored escaped and printed escaped, and the session stays resumable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.core.events import json_line
from agent.core.session import Session
from support.git_support import committed_project

SURROGATE = "bad \ud800 text"


@pytest.fixture
def repo(tmp_path) -> Path:
    return committed_project(tmp_path / "project", {"a.txt": "a\n"})


def agent(root: Path, turns: list[dict], *flags: str) -> subprocess.CompletedProcess:
    script = root.parent / "turns.jsonl"
    script.write_text("".join(json.dumps(t) + "\n" for t in turns))  # json.dumps escapes the surrogate
    env = {**os.environ, "MTP_AGENT_SESSIONS": str(root.parent / "sessions")}
    return subprocess.run([sys.executable, "-m", "agent", "run", "--backend", "scripted", "--script", str(script),
                           "--permission-mode", "yolo", *flags], cwd=root, env=env, capture_output=True, timeout=60)


@pytest.mark.parametrize("output_format", ["text", "json", "stream-json"])
def test_a_lone_surrogate_from_the_model_is_printed_and_stored_escaped(repo, output_format):
    turns = [{"text": SURROGATE, "tool_calls": [{"name": "write_file", "arguments": {"path": "b.txt", "content": SURROGATE}}]},
             {"text": SURROGATE}]
    done = agent(repo, turns, "--prompt", "go", "--output-format", output_format)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr and b"\\ud800" in done.stdout
    resumed = agent(repo, [{"text": "fine"}], "--prompt", "again", "--continue", "--output-format", "json")
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["answer"] == "fine"


def test_json_lines_stay_readable_and_escape_only_when_they_must():
    assert json_line({"t": "héllo"}) == '{"t": "héllo"}'
    assert json_line({"t": SURROGATE}) == '{"t": "bad \\ud800 text"}' and json.loads(json_line({"t": SURROGATE}))["t"] == SURROGATE


def test_a_session_with_a_damaged_byte_still_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("MTP_AGENT_SESSIONS", str(tmp_path / "sessions"))
    session = Session.create(tmp_path, {"backend": "scripted"})
    session.add_message({"role": "user", "content": "fix it"})
    session.add_message({"role": "assistant", "content": SURROGATE})
    data = bytearray(session.path.read_bytes())
    data[data.index(b"fix")] = 0xFF  # one byte flipped on disk
    session.path.write_bytes(bytes(data))
    loaded = Session.load(tmp_path, session.id)
    assert loaded.messages[1]["content"] == SURROGATE and loaded.messages[0]["content"].endswith("ix it")
    with session.path.open("a", encoding="utf-8") as f:
        f.write('{"type": "message", "message": {"role": "assistant", "content": "cut sh')  # a crash mid-write
    assert len(Session.load(tmp_path, session.id).messages) == 2


def test_a_tool_argument_that_is_not_valid_unicode_is_sent_back_not_run(tmp_path):
    from agent.tools import TOOLS, run_tool
    from agent.tools.base import Workspace

    result = run_tool(TOOLS["write_file"], Workspace(tmp_path), {"path": "b.txt", "content": SURROGATE})
    assert result.is_error and "not valid Unicode (a lone surrogate at character 4)" in result.output
    assert not (tmp_path / "b.txt").exists()


def test_tool_call_json_nested_thousands_deep_is_a_format_error():
    from agent.core.toolcalls import parse_tool_calls

    deep = '<tool_call>{"name": "read_file", "arguments": {"path": ' + "[" * 100000 + "]" * 100000 + "}}</tool_call>"
    parsed = parse_tool_calls(deep, {"read_file"})
    assert not parsed.calls and "nested too deep" in parsed.error


def test_thousands_of_calls_in_one_turn_parse_in_linear_time_and_are_refused(repo):
    import time

    from agent.core.toolcalls import parse_tool_calls

    many = '<tool_call>{"name": "read_file", "arguments": {"path": "a.txt"}}</tool_call>' * 20000
    start = time.monotonic()
    assert len(parse_tool_calls(many, {"read_file"}).calls) == 20000
    assert time.monotonic() - start < 5  # was quadratic: 100,000 calls took 104 s
    turns = [{"tool_calls": [{"name": "read_file", "arguments": {"path": "a.txt"}}] * 40}, {"text": "done"}]
    done = agent(repo, turns, "--prompt", "go", "--output-format", "stream-json")
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e for e in events if e["type"] == "format_error"][0]["error"].startswith("40 tool calls in one turn")
    assert not [e for e in events if e["type"] == "tool_result"] and events[-1]["status"] == "done"
