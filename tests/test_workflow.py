"""The fix workflow: reproduce -> locate -> edit -> validate -> answer, back to edit when the
validation fails, the free loop when it keeps failing; `auto` leaves questions and passing
commands to the free loop."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.backends.base import TurnOptions
from agent.core.loop import Limits
from agent.core.workflow import (EDIT_TOOLS, MAX_EDIT_ROUNDS, choose_workflow, find_command, is_question,
                                 located_files)
from agent.tools import TOOLS
from support.git_support import init_and_commit
from support.scripted_agent import run_scripted

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
FIX = {"tool_calls": [{"name": "edit_file", "arguments": {"path": "calc.py", "old_string": "a - b",
                                                          "new_string": "a + b"}}]}
WRONG = {"tool_calls": [{"name": "edit_file", "arguments": {"path": "calc.py", "old_string": "a - b",
                                                            "new_string": "a * b"}}]}


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text(CALC)
    (root / "tests" / "test_calc.py").write_text(TEST)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    init_and_commit(root)
    monkeypatch.setenv("MTP_AGENT_SESSIONS", str(tmp_path / "sessions"))
    return root


def run(root: Path, turns: list[dict], task: str = "The tests fail. Fix calc.py.", workflow: str = "fix"):
    _, backend, events, result = run_scripted(root, turns, task, Limits(workflow=workflow, look_first=True))
    return result, backend, events


def calls(events: list) -> list[tuple[str, str]]:
    return [(e.id.split("_")[0], e.name) for e in events if type(e).__name__ == "ToolCallEvent"]


EDIT_ONLY = TurnOptions(require_call=True, avoid_tools=frozenset(TOOLS) - EDIT_TOOLS)
ANSWER = TurnOptions(avoid_tools=frozenset(TOOLS))


def test_reproduce_locate_edit_validate_answer(repo):
    result, backend, events = run(repo, [FIX, {"text": "Fixed add(); the tests pass."}])
    assert result.status == "done" and "a + b" in (repo / "calc.py").read_text()
    assert calls(events) == [("agent", "shell"), ("agent", "read_file"), ("agent", "read_file"),
                             ("call", "edit_file"), ("agent", "shell")]
    shells = [e for e in events if type(e).__name__ == "ToolResultEvent" and e.name == "shell"]
    assert shells[0].is_error and not shells[1].is_error  # failing before the edit, passing after
    assert backend.options_requested == [EDIT_ONLY, ANSWER]
    reads = [e.arguments["path"] for e in events if type(e).__name__ == "ToolCallEvent" and e.name == "read_file"]
    assert reads == ["tests/test_calc.py", "calc.py"]  # the code the failing test imports, read last


def test_a_failing_validation_goes_back_to_edit(repo):
    undo = {"tool_calls": [{"name": "edit_file", "arguments": {"path": "calc.py", "old_string": "a * b",
                                                               "new_string": "a + b"}}]}
    result, backend, events = run(repo, [WRONG, undo, {"text": "Fixed."}])
    assert result.status == "done"
    assert [name for _, name in calls(events)].count("shell") == 3  # reproduce, two validations
    assert backend.options_requested == [EDIT_ONLY, EDIT_ONLY, ANSWER]


def test_edits_that_change_nothing_are_not_validated(repo):
    miss = {"tool_calls": [{"name": "edit_file", "arguments": {"path": "calc.py", "old_string": "nope",
                                                               "new_string": "x"}}]}
    result, _, events = run(repo, [miss, FIX, {"text": "Fixed."}])
    assert result.status == "done"
    assert [name for _, name in calls(events)].count("shell") == 2


def test_when_validations_keep_failing_the_free_loop_takes_over(repo):
    edits = []
    for i in range(MAX_EDIT_ROUNDS):
        edits.append({"tool_calls": [{"name": "write_file",
                                      "arguments": {"path": "calc.py", "content": f"def add(a, b):\n    return {i}\n"}}]})
    result, backend, _ = run(repo, edits + [{"text": "I could not fix it."}])
    assert backend.options_requested[:MAX_EDIT_ROUNDS] == [EDIT_ONLY] * MAX_EDIT_ROUNDS
    assert backend.options_requested[MAX_EDIT_ROUNDS] == TurnOptions()  # free: no plan, no required call
    assert result.status == "done"


def test_auto_leaves_questions_and_passing_commands_to_the_free_loop(repo):
    result, backend, events = run(repo, [{"tool_calls": [{"name": "read_file", "arguments": {"path": "calc.py"}}]},
                                         {"text": "It subtracts."}],
                                  task="What does add() in calc.py do?", workflow="auto")
    assert calls(events) == [("call", "read_file")]
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    subprocess.run(["git", "commit", "-qam", "fixed"], cwd=repo, check=True)
    result, backend, events = run(repo, [{"text": "Nothing to fix."}], task="Tidy calc.py.", workflow="auto")
    assert calls(events) == [("agent", "shell")]  # reproduced, passed: the model is on its own
    assert backend.options_requested == [TurnOptions(require_call=True)]  # look_first: the model looks too


def test_free_runs_no_steps_of_its_own(repo):
    _, _, events = run(repo, [{"text": "Done."}], workflow="free")
    assert calls(events) == []


@pytest.mark.parametrize("task, expected", [
    ("`pytest` fails in tests/test_stats.py.", "python -m pytest -q"),
    ("Running `python serve.py example.env` crashes.", "python serve.py example.env"),
    ("Rename `get_usr` to `get_user`.", "python -m pytest -q"),  # not a command: the suite
])
def test_the_command_comes_from_the_task_or_the_tests(repo, task, expected):
    assert find_command(task, repo) == expected


def test_no_command_without_one_named_or_tests(tmp_path):
    assert find_command("Make it faster.", tmp_path) is None
    assert choose_workflow("fix", "Make it faster.", tmp_path) is None
    with pytest.raises(ValueError, match="unknown workflow"):
        choose_workflow("agentless", "x", tmp_path)


def test_questions(repo):
    assert is_question("Which port does it use?") and not is_question("Fix the port.")


def test_located_files_stay_inside_the_repository(repo):
    output = 'File "/usr/lib/python3/os.py", line 1\nFile "calc.py", line 2\n../../etc/passwd'
    assert located_files("see tests/test_calc.py", output, repo) == ["calc.py", "tests/test_calc.py"]


def test_a_command_that_may_not_run_leaves_the_model_on_its_own(repo):
    agent, backend, _, result = run_scripted(repo, [{"text": "I cannot run the tests here."}],
                                             "The tests fail. Fix calc.py.", Limits(workflow="fix", look_first=True),
                                             mode="ask")  # headless ask: shell denied
    assert agent.workflow.stage == "free" and result.status == "done"
    assert backend.options_requested == [TurnOptions(require_call=True)]  # no edit-only plan, no reads forced
