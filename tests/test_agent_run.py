"""`agent run` end to end on the scripted backend, in temporary git repositories: the events, the
exit code and the files on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.frontends.cli import main
from support.git_support import init_and_commit

CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
TEST_CALC = "from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A small project with a failing test, as a git repository; sessions and config isolated."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "calc.py").write_text(CALC)
    (root / "test_calc.py").write_text(TEST_CALC)
    (root / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    init_and_commit(root)
    monkeypatch.setenv("MTP_AGENT_SESSIONS", str(tmp_path / "sessions"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(root)
    return root


def write_script(path: Path, turns: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(t) for t in turns) + "\n")
    return path


def call(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def run_agent(repo: Path, turns: list[dict], *extra: str, capsys) -> tuple[int, list[dict], str]:
    script = write_script(repo.parent / "script.jsonl", turns)
    code = main(["run", "--backend", "scripted", "--script", str(script), "--prompt", "Fix the failing test.",
                 "--output-format", "stream-json", *extra])
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    return code, events, captured.err


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_fix_a_failing_test(repo, capsys):
    pytest_cmd = f"{sys.executable} -m pytest -q test_calc.py"
    turns = [
        {"text": "Let me look at the code.", "tool_calls": [call("read_file", path="calc.py")]},
        {"tool_calls": [call("edit_file", path="calc.py", old_string="return a - b", new_string="return a + b")]},
        {"tool_calls": [call("shell", command=pytest_cmd)]},
        {"tool_calls": [call("git_commit", message="fix: add() adds", paths=["calc.py"])]},
        {"text": "Fixed add() and committed; both tests pass."},
    ]
    code, events, _ = run_agent(repo, turns, "--permission-mode", "accept-edits", "--allow", "shell(*pytest*)",
                                "--allow", "git_commit", capsys=capsys)
    assert code == 0
    assert events[0]["type"] == "init" and events[-1]["type"] == "result"
    result = events[-1]
    assert result["status"] == "done" and result["turns"] == 5 and "both tests pass" in result["answer"]
    results = of_type(events, "tool_result")
    # after the edit the agent ran the tests itself (auto-test: pytest is allowed), then the model did
    assert [r["name"] for r in results] == ["read_file", "edit_file", "shell", "shell", "git_commit"]
    assert results[2]["id"].startswith("agent_") and "2 passed" in results[2]["output"]
    assert not any(r["is_error"] for r in results)
    assert "2 passed" in results[3]["output"] and results[3]["data"]["exit_code"] == 0
    assert (repo / "calc.py").read_text() == CALC.replace("a - b", "a + b")
    log = git(repo, "log", "-1", "--format=%s%n%b")
    assert log.startswith("fix: add() adds") and "Assisted-by: mtp-agent:" in log
    assert git(repo, "status", "--porcelain") == ""


def test_edit_that_fails_to_match_then_recovers(repo, capsys):
    turns = [
        {"tool_calls": [call("edit_file", path="calc.py", old_string="return a-b", new_string="return a + b")]},
        {"tool_calls": [call("read_file", path="calc.py")]},
        {"tool_calls": [call("edit_file", path="calc.py", old_string="    return a - b", new_string="    return a + b")]},
        {"text": "Done."},
    ]
    code, events, _ = run_agent(repo, turns, "--permission-mode", "accept-edits", capsys=capsys)
    results = of_type(events, "tool_result")
    assert code == 0
    assert results[0]["is_error"] and "return a - b" in results[0]["output"]  # shows the closest lines
    assert not results[2]["is_error"]
    assert "return a + b" in (repo / "calc.py").read_text()


def test_ambiguous_edit_is_refused(repo, capsys):
    turns = [
        {"tool_calls": [call("edit_file", path="calc.py", old_string="(a, b):", new_string="(x, y):")]},
        {"text": "That matched twice, so nothing changed."},
    ]
    code, events, _ = run_agent(repo, turns, "--permission-mode", "accept-edits", capsys=capsys)
    result = of_type(events, "tool_result")[0]
    assert code == 0 and result["is_error"]
    assert "2" in result["output"] and "replace_all" in result["output"]
    assert (repo / "calc.py").read_text() == CALC


def test_denied_shell_command(repo, capsys):
    turns = [
        {"tool_calls": [call("shell", command="touch created-by-shell.txt")]},
        {"tool_calls": [call("shell", command="rm -rf calc.py")]},
        {"text": "I was not allowed to run those."},
    ]
    code, events, _ = run_agent(repo, turns, "--permission-mode", "yolo", "--deny", "shell(rm *)",
                                "--deny", "shell(touch *)", capsys=capsys)
    assert code == 0
    denials = of_type(events, "permission")
    assert [d["decision"] for d in denials] == ["deny", "deny"] and "shell(rm *)" in denials[1]["reason"]
    results = of_type(events, "tool_result")
    assert all(r["is_error"] and r["output"].startswith("permission denied") for r in results)
    assert (repo / "calc.py").exists() and not (repo / "created-by-shell.txt").exists()


def test_ask_mode_headless_denies_edits_with_a_reason(repo, capsys):
    turns = [{"tool_calls": [call("write_file", path="new.txt", content="x")]}, {"text": "ok"}]
    code, events, _ = run_agent(repo, turns, capsys=capsys)  # default mode: ask
    result = of_type(events, "tool_result")[0]
    assert code == 0 and result["is_error"] and "--allow" in result["output"]
    assert not (repo / "new.txt").exists()


def test_plan_mode_is_read_only(repo, capsys):
    turns = [{"tool_calls": [call("read_file", path="calc.py"), call("write_file", path="plan.txt", content="x")]},
             {"text": "Plan: change add()."}]
    code, events, _ = run_agent(repo, turns, "--permission-mode", "plan", "--allow", "write_file", capsys=capsys)
    results = of_type(events, "tool_result")
    assert code == 0 and not results[0]["is_error"] and "read-only" in results[1]["output"]
    assert not (repo / "plan.txt").exists()


def test_path_escapes_are_refused(repo, capsys):
    outside = repo.parent / "outside.txt"
    outside.write_text("secret")
    (repo / "link").symlink_to(outside)
    turns = [
        {"tool_calls": [call("read_file", path="../outside.txt")]},
        {"tool_calls": [call("read_file", path="/etc/passwd")]},
        {"tool_calls": [call("read_file", path="link")]},
        {"tool_calls": [call("write_file", path="link", content="pwned")]},
        {"tool_calls": [call("write_file", path=".git/hooks/pre-commit", content="#!/bin/sh\necho pwned")]},
        {"text": "All refused."},
    ]
    code, events, _ = run_agent(repo, turns, "--permission-mode", "yolo", capsys=capsys)
    results = of_type(events, "tool_result")
    assert code == 0 and len(results) == 5 and all(r["is_error"] for r in results)
    assert all("outside the workspace" in r["output"] for r in results[:4]) and ".git" in results[4]["output"]
    assert "secret" not in json.dumps(events) and "root:" not in json.dumps(events)
    assert outside.read_text() == "secret" and not (repo / ".git" / "hooks" / "pre-commit").exists()


def test_shell_timeout_kills_the_children(repo, capsys):
    marker = "303.456"
    turns = [{"tool_calls": [call("shell", command=f"sleep {marker} & sleep {marker} & wait", timeout=1)]},
             {"text": "It timed out."}]
    start = time.monotonic()
    code, events, _ = run_agent(repo, turns, "--permission-mode", "yolo", capsys=capsys)
    assert time.monotonic() - start < 30
    result = of_type(events, "tool_result")[0]
    assert code == 0 and result["data"]["timed_out"] and "timed out" in result["output"]
    time.sleep(0.5)
    alive = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout.split()
    assert alive == []


def test_ten_megabyte_output_is_capped(repo, capsys):
    command = f"{sys.executable} -c \"import sys; sys.stdout.write('x' * 10_000_000)\""
    turns = [{"tool_calls": [call("shell", command=command)]}, {"text": "Lots of x."}]
    code, events, _ = run_agent(repo, turns, "--permission-mode", "yolo", capsys=capsys)
    result = of_type(events, "tool_result")[0]
    assert code == 0 and result["data"]["output_bytes"] == 10_000_000
    session = next(Path(os.environ["MTP_AGENT_SESSIONS"]).rglob("*.jsonl"))
    tool_message = next(json.loads(line)["message"] for line in session.read_text().splitlines()
                        if json.loads(line).get("message", {}).get("role") == "tool")
    assert len(tool_message["content"]) < 100_000 and "omitted" in tool_message["content"]


def test_binary_file_read(repo, capsys):
    (repo / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    turns = [{"tool_calls": [call("read_file", path="image.png")]}, {"text": "It is binary."}]
    code, events, _ = run_agent(repo, turns, capsys=capsys)
    result = of_type(events, "tool_result")[0]
    assert code == 0 and result["is_error"] and "binary" in result["output"]
    assert "\x89PNG" not in result["output"]


def test_malformed_tool_call_gets_a_correction_then_three_end_the_run(repo, capsys):
    bad = {"raw": '<tool_call>{"name": "read_file", "arguments": {"path": calc.py}}</tool_call>'}
    good = {"raw": '<tool_call>{"name": "read_file", "arguments": {"path": "calc.py"}}</tool_call>'}
    code, events, _ = run_agent(repo, [bad, good, {"text": "Read it."}], capsys=capsys)
    assert code == 0 and len(of_type(events, "format_error")) == 1
    assert not of_type(events, "tool_result")[0]["is_error"]
    session = next(Path(os.environ["MTP_AGENT_SESSIONS"]).rglob("*.jsonl"))
    contents = [json.loads(line).get("message", {}).get("content", "") for line in session.read_text().splitlines()]
    assert any("read_file" in c and "<tool_call>" in c for c in contents)  # the correction shows the format
    code, events, err = run_agent(repo, [bad, bad, bad], capsys=capsys)
    assert code == 1 and events[-1]["status"] == "error" and "3 malformed tool calls" in events[-1]["error"]


FILE_AS_TOOL = '{"name": "test_calc.py", "arguments": {"path": "test_calc.py"}}'  # Qwen2.5-Coder-0.5B, verbatim shape
MALFORMED_TURNS = {
    "file as tool name": FILE_AS_TOOL,
    "file as tool name, fenced": f"I will look at the test.\n```json\n{FILE_AS_TOOL}\n```",
    "invented envelope": ('<tools>\n{"name": "read_file", "arguments": {"path": "calc.py"}}\n'
                          '{"name": "edit_file", "arguments": {"path": "calc.py", "old_string": "-", "new_string": "+"}}\n</tools>'),
    "tool schema": ('{"type": "function", "function": {"name": "add", "description": "Read a text file.", '
                    '"parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}'),
}


@pytest.mark.parametrize("raw", MALFORMED_TURNS.values(), ids=MALFORMED_TURNS.keys())
def test_malformed_shapes_get_a_correction_and_the_run_goes_on(repo, capsys, raw):
    good = {"raw": '<tool_call>{"name": "read_file", "arguments": {"path": "calc.py"}}</tool_call>'}
    code, events, _ = run_agent(repo, [{"raw": raw}, good, {"text": "add subtracts."}], capsys=capsys)
    assert code == 0 and events[-1]["answer"] == "add subtracts." and len(of_type(events, "format_error")) == 1
    assert [r["name"] for r in of_type(events, "tool_result")] == ["read_file"]  # nothing of the malformed turn ran
    assert CALC == (repo / "calc.py").read_text()


def test_file_name_as_tool_never_ends_as_done(repo, capsys):
    code, events, _ = run_agent(repo, [{"raw": FILE_AS_TOOL}], capsys=capsys)
    assert code != 0 and events[-1]["status"] != "done"
    code, events, _ = run_agent(repo, [{"raw": FILE_AS_TOOL}] * 3, capsys=capsys)
    assert code == 1 and events[-1]["status"] == "error" and "no tool named 'test_calc.py'" in events[-1]["error"]


def test_fenced_call_to_an_offered_tool_runs(repo, capsys):
    write = 'Writing the test.\n```json\n{"name": "write_file", "arguments": {"path": "test_new.py", "content": "X = 1\\n"}}\n```'
    code, events, _ = run_agent(repo, [{"raw": write}, {"text": "Wrote it."}], "--permission-mode", "yolo", capsys=capsys)
    assert code == 0 and not of_type(events, "format_error") and (repo / "test_new.py").read_text() == "X = 1\n"


@pytest.mark.parametrize("answer", [
    'The config is JSON: {"name": "calc", "version": 1}; the "name" field names the package.',
    'Here is an example config:\n```json\n{"name": "calc", "scripts": {"test": "pytest"}}\n```',
    "The fix:\n```python\ndef add(a, b):\n    return a + b\n```",
])
def test_answers_mentioning_json_or_code_are_done(repo, capsys, answer):
    code, events, _ = run_agent(repo, [{"raw": answer}], capsys=capsys)
    assert code == 0 and events[-1]["answer"] == answer and not of_type(events, "format_error")


def test_empty_final_turn_gets_one_nudge_then_fails(repo, capsys):
    code, events, _ = run_agent(repo, [{"raw": "<think>The test fails.</think>"}, {"text": "add subtracts."}], capsys=capsys)
    assert code == 0 and events[-1]["answer"] == "add subtracts." and len(of_type(events, "format_error")) == 1
    session = next(Path(os.environ["MTP_AGENT_SESSIONS"]).rglob("*.jsonl"))
    assert "no answer and no tool call, only reasoning" in session.read_text()
    code, events, _ = run_agent(repo, [{"text": ""}, {"raw": "<think>Still thinking.</think>\n"}], capsys=capsys)
    assert code == 1 and events[-1]["status"] == "error" and "without an answer" in events[-1]["error"]


def test_turn_cut_by_the_token_limit_is_not_done(repo, capsys):
    code, events, _ = run_agent(repo, [{"text": "The bug is in", "finish_reason": "length"}], capsys=capsys)
    assert code == 3 and events[-1]["status"] == "limit" and "token limit" in events[-1]["error"]
    cut_call = {"raw": '<tool_call>\n{"name": "write_file", "arguments": {"path": "calc.py", "content": "def add(a',
                "finish_reason": "length"}
    code, events, _ = run_agent(repo, [cut_call, {"raw": "<think>", "finish_reason": "length"}], capsys=capsys)
    assert code == 3 and len(of_type(events, "format_error")) == 1 and CALC == (repo / "calc.py").read_text()


def test_backend_failing_mid_stream_saves_a_resumable_session(repo, capsys):
    turns = [{"tool_calls": [call("read_file", path="calc.py")]},
             {"text": "The bug is in add", "error": "connection reset by peer"}]
    code, events, _ = run_agent(repo, turns, capsys=capsys)
    assert code == 1 and "connection reset" in events[-1]["error"]
    session_id = events[0]["session_id"]
    resumed = [{"text": "add() subtracts; it should add."}]
    code, events, _ = run_agent(repo, resumed, "--resume", session_id, capsys=capsys)
    assert code == 0 and events[0]["resumed"] and events[0]["session_id"] == session_id
    code, events, _ = run_agent(repo, [{"text": "Still here."}], "--continue", capsys=capsys)
    assert code == 0 and events[0]["session_id"] == session_id


def test_resumed_session_carries_the_history(repo, capsys, tmp_path):
    from agent.backends.scripted import ScriptedBackend
    from agent.core.setup import RunSettings
    from agent.frontends.run import run_task

    run_agent(repo, [{"tool_calls": [call("read_file", path="calc.py")]}, {"text": "Seen it."}], capsys=capsys)
    seen = []
    settings = RunSettings(backend="scripted", script=write_script(tmp_path / "s.jsonl", [{"text": "Still seen."}]),
                           continue_session=True)
    original = ScriptedBackend.complete

    def spy(self, messages, tools, *args, **kwargs):
        seen.append(list(messages))
        return original(self, messages, tools, *args, **kwargs)

    ScriptedBackend.complete = spy
    try:
        run_task(settings, "And now?", repo, lambda e: None)
    finally:
        ScriptedBackend.complete = original
    roles = [m["role"] for m in seen[0]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]


def test_turn_limit_and_repeated_calls(repo, capsys):
    loop = [{"tool_calls": [call("list_dir", path=".")]}] * 5
    code, events, _ = run_agent(repo, loop, "--max-turns", "2", capsys=capsys)
    assert code == 3 and events[-1]["status"] == "limit" and "--max-turns 2" in events[-1]["error"]
    code, events, _ = run_agent(repo, loop, capsys=capsys)
    assert code == 4 and events[-1]["status"] == "stuck" and "kept repeating" in events[-1]["error"]
    assert events[-1]["turns"] == 4  # one call that ran, three steered away


def test_undo_after_a_multi_file_edit(repo, capsys):
    (repo / "notes.txt").write_text("untracked notes\n")
    turns = [
        {"tool_calls": [call("edit_file", path="calc.py", old_string="a - b", new_string="a + b"),
                        call("write_file", path="pkg/new_module.py", content="X = 1\n"),
                        call("shell", command="git rm -q test_calc.py && echo more >> notes.txt")]},
        {"text": "Changed three files."},
    ]
    before = {p: p.read_bytes() for p in (repo / "calc.py", repo / "test_calc.py", repo / "notes.txt")}
    code, events, _ = run_agent(repo, turns, "--permission-mode", "yolo", capsys=capsys)
    assert code == 0 and len(of_type(events, "checkpoint")) == 1
    assert (repo / "pkg" / "new_module.py").exists() and not (repo / "test_calc.py").exists()
    assert main(["undo"]) == 0
    for path, content in before.items():
        assert path.read_bytes() == content
    assert not (repo / "pkg").exists()
    assert main(["undo"]) == 2  # nothing left to undo
    assert "nothing to undo" in capsys.readouterr().err.lower()


def test_bad_usage_exits_2(repo, capsys):
    assert main(["run", "--backend", "scripted", "--prompt", "x"]) == 2
    assert "--script" in capsys.readouterr().err
    assert main(["run", "--backend", "scripted", "--script", "missing.jsonl", "--prompt", "x"]) == 2
    assert main(["run", "--backend", "scripted", "--script", "x"]) == 2  # no task
    assert main(["run", "--resume", "nope", "--backend", "scripted", "--script", "x", "--prompt", "x"]) == 2
    (repo / ".mtp-agent").mkdir()
    (repo / ".mtp-agent" / "config.toml").write_text("[permissions\nmode = 1")
    assert main(["run", "--backend", "scripted", "--script", "x", "--prompt", "x"]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_text_output_puts_the_answer_on_stdout(repo, capsys):
    script = write_script(repo.parent / "t.jsonl", [{"tool_calls": [call("list_dir", path=".")]}, {"text": "The answer."}])
    assert main(["run", "--backend", "scripted", "--script", str(script), "--prompt", "hi"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "The answer." and "list_dir" in err and "turns" in err


def test_json_output_is_one_result_object(repo, capsys):
    script = write_script(repo.parent / "j.jsonl", [{"text": "Only this."}])
    assert main(["run", "--backend", "scripted", "--script", str(script), "--prompt", "hi", "--output-format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["type"] == "result" and result["answer"] == "Only this." and result["exit_code"] == 0
    assert {"turns", "prompt_tokens", "reused_prompt_tokens", "generated_tokens", "duration_seconds",
            "decode_tokens_per_second", "session_id"} <= set(result)


def test_project_config_sets_mode_and_rules_once_the_folder_is_trusted(repo, capsys):
    (repo / ".mtp-agent").mkdir()
    (repo / ".mtp-agent" / "config.toml").write_text('[permissions]\nmode = "yolo"\ndeny = ["write_file(secret/**)"]\n')
    turns = [{"tool_calls": [call("write_file", path="secret/key.txt", content="x"), call("write_file", path="ok.txt", content="y")]},
             {"text": "ok"}]
    code, events, _ = run_agent(repo, turns, "--trust-project", capsys=capsys)
    results = of_type(events, "tool_result")
    assert code == 0 and results[0]["is_error"] and not results[1]["is_error"]
    assert events[0]["permission_mode"] == "yolo" and (repo / "ok.txt").exists() and not (repo / "secret").exists()


def test_interrupt_exits_130_and_keeps_the_session_valid(repo, capsys):
    turns = [{"tool_calls": [call("read_file", path="calc.py")]}, {"text": "Thinking about", "interrupt": True}]
    code, events, _ = run_agent(repo, turns, capsys=capsys)
    assert code == 130 and events[-1]["status"] == "interrupted"
    code, events, _ = run_agent(repo, [{"text": "Resumed fine."}], "--continue", capsys=capsys)
    assert code == 0 and events[-1]["answer"] == "Resumed fine."


def compaction_run(repo: Path, turns: list[dict], window: int):
    """An agent with only read_file (a small tool list) on a small context window."""
    from agent.backends.scripted import ScriptedBackend
    from agent.core.environment import Environment
    from agent.core.loop import Agent, Limits
    from agent.core.permissions import Permissions
    from agent.core.session import Session
    from agent.tools import TOOLS
    from agent.tools.base import Workspace

    (repo / "big.txt").write_text("".join(f"line {i} of a long file\n" for i in range(400)))
    backend = ScriptedBackend(turns, context_window=window)
    events: list[dict] = []
    session = Session.create(repo, {})
    session.add_message({"role": "system", "content": "You are a test."})
    agent = Agent(backend, Environment({"read_file": TOOLS["read_file"]}, Workspace(repo), Permissions()), session,
                  lambda event: events.append(event.as_dict()), limits=Limits(reserve_tokens=500))
    result = agent.run("How long is big.txt?")
    return result, [e for e in events if e["type"] == "compaction"], backend, session


def big_read(start: int) -> dict:
    return {"tool_calls": [call("read_file", path="big.txt", offset=start, limit=100)]}


def small_read(start: int) -> dict:
    return {"tool_calls": [call("read_file", path="big.txt", offset=start, limit=1)]}


def test_compaction_first_elides_old_tool_outputs(repo):
    turns = [big_read(1)] + [small_read(i) for i in (101, 102, 103, 104)] + [big_read(200), {"text": "400 lines."}]
    result, compactions, backend, session = compaction_run(repo, turns, window=2400)
    assert result.status == "done" and result.answer == "400 lines."
    assert len(compactions) == 1 and compactions[0]["elided"] == 1 and not compactions[0]["summarized"]
    assert compactions[0]["tokens_after"] < compactions[0]["tokens_before"]
    last_request = json.dumps(backend.requests[-1])
    assert "line 250 of a long file" in last_request and "line 50 of a long file" not in last_request


def test_compaction_summarises_when_eliding_is_not_enough(repo):
    from agent.core.session import Session

    summary = "SUMMARY: read big.txt lines 1-200; nothing changed."
    turns = [big_read(1), big_read(101), {"text": summary}, {"text": "400 lines."}]
    result, compactions, backend, session = compaction_run(repo, turns, window=2400)
    assert result.status == "done" and result.answer == "400 lines."
    assert len(compactions) == 1 and compactions[0]["summarized"] and compactions[0]["elided"] == 0
    request = backend.requests[2]  # the summary request: the system prompt and one user message
    assert [m["role"] for m in request] == ["system", "user"] and "big.txt" in request[1]["content"]
    assert backend.count_tokens(request, []) < 2400  # compacted early enough that the request fits
    after = json.dumps(backend.requests[3])
    assert summary in after and "line 150 of a long file" in after and "line 50 of a long file" not in after
    assert Session.load(repo, session.id).messages == session.messages  # a resume sees the compacted history
