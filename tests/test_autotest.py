"""Validated edits in the free loop (issue 23 item 4, as Aider's --auto-test): after a turn that
edits files, the agent runs the task's command or the tests, and the model reads the result."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.core.locate import TEST_COMMAND
from agent.core.loop import Limits
from support.git_support import committed_project
from support.scripted_agent import run_scripted

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
WRONG_EDIT = {"tool_calls": [{"name": "edit_file", "arguments": {"path": "calc.py", "old_string": "a - b",
                                                                   "new_string": "a * b"}}]}
RIGHT_EDIT = {"tool_calls": [{"name": "edit_file", "arguments": {"path": "calc.py", "old_string": "a * b",
                                                                   "new_string": "a + b"}}]}
READ = {"tool_calls": [{"name": "read_file", "arguments": {"path": "calc.py"}}]}
DONE = {"text": "Fixed: add() adds."}


@pytest.fixture
def repo(tmp_path) -> Path:
    return committed_project(tmp_path / "project", {"calc.py": CALC, "test_calc.py": TEST})


def agent_commands(events: list) -> list[str]:
    return [e.arguments["command"] for e in events
            if type(e).__name__ == "ToolCallEvent" and e.name == "shell" and e.id.startswith("agent_")]


def run(root: Path, turns: list[dict], limits: Limits | None = None, mode: str = "yolo",
        task: str = "add() is wrong. Fix calc.py.", allow: tuple[str, ...] = ()):
    return run_scripted(root, turns, task, limits or Limits(workflow="free"), mode=mode, allow=allow)


def test_each_edit_is_followed_by_the_tests_and_the_model_reads_their_result(repo):
    _, backend, events, result = run(repo, [WRONG_EDIT, READ, RIGHT_EDIT, DONE])
    assert result.status == "done" and "a + b" in (repo / "calc.py").read_text()
    assert agent_commands(events) == [TEST_COMMAND, TEST_COMMAND]  # after each edit; not after the read
    after_wrong, after_right = backend.requests[1], backend.requests[3]
    assert "assert 6 == 5" in after_wrong[-1]["content"] and after_wrong[-1]["role"] == "tool"
    assert "1 passed" in after_right[-1]["content"]


def test_the_command_the_task_names_is_the_one_run(repo):
    (repo / "show.py").write_text("from calc import add\nprint(add(2, 3))\n")
    _, backend, events, _ = run(repo, [WRONG_EDIT, DONE], task="`python show.py` prints -1. Fix calc.py.")
    assert agent_commands(events) == ["python show.py"] and "6" in backend.requests[1][-1]["content"]


def test_a_turn_without_an_edit_runs_nothing(repo):
    _, _, events, _ = run(repo, [READ, DONE])
    assert agent_commands(events) == []


def test_it_can_be_turned_off(repo):
    _, _, events, _ = run(repo, [WRONG_EDIT, DONE], limits=Limits(workflow="free", auto_test=False))
    assert agent_commands(events) == []


def test_it_runs_only_where_the_command_may_run_without_asking(repo):
    _, backend, events, _ = run(repo, [WRONG_EDIT, RIGHT_EDIT, DONE], mode="accept-edits")  # commands need approval
    assert agent_commands(events) == [] and "a + b" in (repo / "calc.py").read_text()
    assert not any(type(e).__name__ == "PermissionEvent" for e in events)  # nobody asked, nothing refused
    (repo / "calc.py").write_text(CALC)
    _, _, events, _ = run(repo, [WRONG_EDIT, DONE], mode="accept-edits", allow=("shell(python -m pytest *)",))
    assert agent_commands(events) == [TEST_COMMAND]


def test_an_edit_that_changed_nothing_runs_nothing(repo):
    refused = {"tool_calls": [{"name": "write_file", "arguments": {"path": "../outside.py", "content": "x = 1\n"}}]}
    missed = {"tool_calls": [{"name": "edit_file", "arguments": {"path": "calc.py", "old_string": "not there",
                                                                  "new_string": "a + b"}}]}
    _, _, events, _ = run(repo, [refused, missed, DONE])
    assert agent_commands(events) == []


def test_a_file_written_again_as_it_was_is_not_tested_again(repo):
    same = {"tool_calls": [{"name": "write_file", "arguments": {"path": "calc.py", "content": CALC.replace("-", "*")}}]}
    _, _, events, _ = run(repo, [WRONG_EDIT, same, DONE])
    assert agent_commands(events) == [TEST_COMMAND]  # the write left the files as they were tested
