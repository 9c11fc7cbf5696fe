"""Shell permission rules on parsed commands (issue 21): each bypass found by trying, as a case.

An allow rule vouches for a command only when every simple command in it is allowed and nothing in
it writes a file, substitutes a command, evals or fails to parse; a deny rule meets any simple
command anywhere, by the program's file name, past wrappers."""

from __future__ import annotations

import pytest

from agent.core.permissions import Permissions
from agent.tools import TOOLS
from agent.tools.base import Workspace
from agent.tools.shell_syntax import parse


def decide(tmp_path, command: str, allow=(), deny=(), mode="ask") -> str:
    permissions = Permissions.from_settings(mode, list(allow), list(deny))
    return permissions.check(TOOLS["shell"], {"command": command}, Workspace(tmp_path)).action


PYTEST = ["shell(python -m pytest*)"]


@pytest.mark.parametrize("command", [
    "python -m pytest -q; echo PWNED > x.txt",
    "python -m pytest --version && touch x.txt",
    "python -m pytest $(touch x.txt)",
    "python -m pytest `touch x.txt`",
    "python -m pytest -q\ntouch x.txt",
    "python -m pytest | tee x.txt",
    "python -m pytest > x.txt",
    "python -m pytest || rm -rf .",
    "python -m pytest & touch x.txt",
    "(python -m pytest; touch x.txt)",
    "{ python -m pytest; touch x.txt; }",
    "python -m pytest <(touch x.txt)",
    'python -m pytest "$(touch x.txt)"',
    "python -m pytest; bash -c 'touch x.txt'",
    "python -m pytest -q 2>&1 > x.txt",
    "python -m pytest; eval touch x.txt",
    "python -m pytest 'unbalanced",
    "if python -m pytest; then touch x.txt; fi",
])
def test_an_allow_rule_does_not_vouch_for_a_second_command_or_a_hazard(tmp_path, command):
    assert decide(tmp_path, command, PYTEST) == "ask"
    assert decide(tmp_path, command, PYTEST, mode="yolo") == "allow"  # yolo still runs everything


@pytest.mark.parametrize("command", [
    "python -m pytest -q", "python -m pytest -q 2>&1", "python -m pytest -q 2>/dev/null",
    "python -m pytest -q tests/test_a.py -k 'not slow'",
])
def test_an_allow_rule_still_allows_what_it_names(tmp_path, command):
    assert decide(tmp_path, command, PYTEST) == "allow"


def test_every_simple_command_needs_an_allow_rule(tmp_path):
    rules = PYTEST + ["shell(tail *)", "shell(ls*)"]
    assert decide(tmp_path, "python -m pytest -q | tail -5", rules) == "allow"
    assert decide(tmp_path, "ls && python -m pytest -q", rules) == "allow"
    assert decide(tmp_path, "ls && python -m pytest -q && curl x", rules) == "ask"


@pytest.mark.parametrize("command", [
    "ls; /bin/rm -f keep.txt", "ls && env rm -f keep.txt", "ls; \\rm -f keep.txt", 'ls; r"m" -f keep.txt',
    "ls; command rm -f keep.txt", "ls; exec rm -f keep.txt", "ls; sudo -u root rm -f keep.txt",
    "ls; nice -n 5 rm -f keep.txt", "ls; timeout -s KILL 5 rm -f keep.txt", "ls | xargs -n 1 rm -f",
    "ls; FOO=1 rm -f keep.txt", "ls; bash -c 'rm -f keep.txt'", "ls; sh -c \"bash -c 'rm -f keep.txt'\"",
    "echo $(rm -f keep.txt)", "ls `rm -f keep.txt`", "(cd . && rm -f keep.txt)", "if true; then rm -f keep.txt; fi",
    "f() { rm -f keep.txt; }; f", "ls\nrm -f keep.txt",
])
def test_a_deny_rule_meets_the_program_anywhere(tmp_path, command):
    assert decide(tmp_path, command, ["shell(ls*)"], ["shell(rm *)"]) == "deny"
    assert decide(tmp_path, command, ["shell(*)"], ["shell(rm *)"], mode="yolo") == "deny"


def test_a_hazard_is_named_for_the_person_asked_or_the_model_refused(tmp_path):
    permissions = Permissions.from_settings("ask", PYTEST, [])
    decision = permissions.check(TOOLS["shell"], {"command": "python -m pytest > out.txt"}, Workspace(tmp_path))
    assert decision.action == "ask" and "it writes out.txt with >" in decision.reason


def test_the_whole_tool_rule_allows_everything_but_what_is_denied(tmp_path):
    assert decide(tmp_path, "make > log.txt; eval x", ["shell(*)"]) == "allow"
    assert decide(tmp_path, "make; git push", ["shell"], ["shell(git push*)"]) == "deny"


@pytest.mark.parametrize(("command", "programs", "hazard"), [
    ("python -m pytest -q 2>&1 | tail -5", ["python", "tail"], None),
    ("cat <<EOF > f.txt\nhi\nEOF", ["cat"], "it writes f.txt with >"),
    ("diff <(ls a) b", ["ls", "diff"], "process substitution"),
    ("$CMD x", ["$CMD"], "the program comes from an expansion"),
    ('git commit -m "a > b; rm x"', ["git"], None),  # inside quotes: one argument
    ("echo hi >&2", ["echo"], None),
    ("sudo -u root timeout 5 nice -n 3 /usr/bin/env X=1 rm x", ["rm"], None),
])
def test_the_reading_of_a_command(command, programs, hazard):
    parsed = parse(command)
    assert [c.program for c in parsed.commands] == programs
    assert (hazard is None and not parsed.hazards) or any(hazard in h for h in parsed.hazards)


def test_a_redirected_stdin_is_seen():
    assert parse("python < in.py").commands[0].stdin_redirected
    assert not parse("python").commands[0].stdin_redirected
    assert [c.stdin_redirected for c in parse("echo 1 | python | tail -1").commands] == [False, True, True]
