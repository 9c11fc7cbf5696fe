"""Permission modes and allow/deny rules."""

from __future__ import annotations

import pytest

from agent.errors import AgentError
from agent.core.permissions import Permissions, Rule, suggested_rule
from agent.tools import TOOLS
from agent.tools.base import Workspace


@pytest.fixture
def ws(tmp_path) -> Workspace:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    return Workspace(tmp_path)


def decide(ws, mode, tool, allow=(), deny=(), **arguments) -> str:
    return Permissions.from_settings(mode, list(allow), list(deny)).check(TOOLS[tool], arguments, ws).action


@pytest.mark.parametrize(("mode", "tool", "arguments", "expected"), [
    ("ask", "read_file", {"path": "a.py"}, "allow"),
    ("ask", "edit_file", {"path": "a.py", "old_string": "a", "new_string": "b"}, "ask"),
    ("ask", "shell", {"command": "ls"}, "ask"),
    ("accept-edits", "write_file", {"path": "a.py", "content": ""}, "allow"),
    ("accept-edits", "shell", {"command": "ls"}, "ask"),
    ("accept-edits", "git_commit", {"message": "m"}, "ask"),
    ("plan", "grep", {"pattern": "x"}, "allow"),
    ("plan", "write_file", {"path": "a.py", "content": ""}, "deny"),
    ("plan", "shell", {"command": "ls"}, "deny"),
    ("yolo", "shell", {"command": "rm -rf build"}, "allow"),
])
def test_modes(ws, mode, tool, arguments, expected):
    assert decide(ws, mode, tool, **arguments) == expected


def test_rules_match_commands_and_paths(ws):
    allow = ["shell(pytest *)", "edit_file(src/**)", "git_*"]
    assert decide(ws, "ask", "shell", allow, command="pytest -q tests/") == "allow"
    assert decide(ws, "ask", "shell", allow, command="pytest") == "ask"  # "pytest *" needs an argument
    assert decide(ws, "ask", "shell", allow, command="python -m pytest") == "ask"
    assert decide(ws, "ask", "edit_file", allow, path="src/pkg/mod.py", old_string="a", new_string="b") == "allow"
    assert decide(ws, "ask", "edit_file", allow, path="./src/x.py", old_string="a", new_string="b") == "allow"
    assert decide(ws, "ask", "edit_file", allow, path="setup.py", old_string="a", new_string="b") == "ask"
    assert decide(ws, "ask", "git_commit", allow, message="m") == "allow"


def test_deny_wins_over_allow_and_yolo(ws):
    assert decide(ws, "yolo", "shell", ["shell(*)"], ["shell(git push*)"], command="git push origin main") == "deny"
    assert decide(ws, "yolo", "read_file", [], ["read_file(.env)"], path=".env") == "deny"
    assert decide(ws, "yolo", "read_file", [], ["read_file(.env)"], path="src/.env") == "allow"


def test_path_patterns_do_not_cross_directories_with_one_star(ws):
    assert decide(ws, "ask", "write_file", ["write_file(src/*)"], path="src/a.py", content="") == "allow"
    assert decide(ws, "ask", "write_file", ["write_file(src/*)"], path="src/pkg/a.py", content="") == "ask"
    assert decide(ws, "ask", "write_file", ["write_file(src/**/a.py)"], path="src/a.py", content="") == "allow"


def test_bad_rules_and_modes_are_reported():
    with pytest.raises(AgentError, match="not of the form"):
        Rule.parse("shell(pytest")
    with pytest.raises(AgentError, match="unknown permission mode"):
        Permissions.from_settings("sometimes", [], [])


def test_suggested_rules():
    # "allow always" remembers the one simple command it was shown, not a prefix for anything after it
    assert suggested_rule(TOOLS["shell"], "pytest -q tests") == "shell(pytest -q tests)"
    allowed = Permissions.from_settings("ask", ["shell(pytest *)"], [])
    assert suggested_rule(TOOLS["shell"], "pytest -q && rm -f x", allowed) == "shell(rm -f x)"
    assert suggested_rule(TOOLS["shell"], "ls *.py") == "shell(ls [*].py)"
    assert suggested_rule(TOOLS["edit_file"], "src/pkg/a.py") == "edit_file(src/pkg/**)"
    assert suggested_rule(TOOLS["git_commit"], None) == "git_commit"
