"""`agent eval` end to end on the scripted backend: a tiny task suite made here, each run in a real
`agent run` subprocess, then checked."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from agent.engine_tools.evaluate import LOAD_MARGIN_S, AgentRun, agent_time_limit
from agent.frontends.cli import main

CALC = "def add(a, b):\n    return a - b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
CHECK = f"""import subprocess, sys
sys.exit(subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_calc.py"]).returncode)
"""


@pytest.fixture
def suite(tmp_path, monkeypatch) -> Path:
    """One task: make the failing test pass. Sessions and config isolated."""
    task = tmp_path / "suite" / "fix_add"
    (task / "repo").mkdir(parents=True)
    (task / "repo" / "calc.py").write_text(CALC)
    (task / "repo" / "test_calc.py").write_text(TEST_CALC)
    (task / "task.md").write_text("Fix the failing test in test_calc.py.\n")
    (task / "check.py").write_text(CHECK)
    (task / "meta.toml").write_text('kind = "bugfix-test"\ntime_limit = 120\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("MTP_AGENT_SESSIONS", str(tmp_path / "sessions"))
    return tmp_path / "suite"


def call(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def evaluate(suite: Path, turns: list[dict], *extra: str) -> tuple[int, dict, str]:
    script = suite.parent / "script.jsonl"
    script.write_text("\n".join(json.dumps(t) for t in turns) + "\n")
    report = suite.parent / "report.json"
    code = main(["eval", str(suite), "--backend", "scripted", "--script", str(script), "--json", str(report), *extra])
    return code, json.loads(report.read_text()) if report.exists() else {}, ""


def test_a_solving_run_is_reported_solved(suite, capsys):
    turns = [
        {"tool_calls": [call("edit_file", path="calc.py", old_string="a - b", new_string="a + b")]},
        {"tool_calls": [call("shell", command=f"{sys.executable} -m pytest -q test_calc.py")]},
        {"text": "Fixed add(); the test passes."},
    ]
    code, report, _ = evaluate(suite, turns)
    out = capsys.readouterr().out
    assert code == 0
    row = report["rows"][0]
    assert row["task"] == "fix_add" and row["kind"] == "bugfix-test"
    assert row["solved"] is True and row["status"] == "done" and row["exit_code"] == 0
    # three calls: the edit, the tests the agent ran after it (auto-test), the model's own test run
    assert row["turns"] == 3 and row["tool_calls"] == 3 and row["invalid_tool_calls"] == 0
    assert row["prompt_tokens"] > 0 and row["generated_tokens"] > 0 and row["seconds"] > 0
    assert report["solved"] == 1 and report["total"] == 1
    assert "fix_add" in out and "solved 1/1" in out


def test_a_run_that_changes_nothing_is_unsolved(suite, capsys):
    code, report, _ = evaluate(suite, [{"text": "The code looks fine to me."}])
    assert code == 0
    row = report["rows"][0]
    assert row["solved"] is False and row["status"] == "done" and row["tool_calls"] == 0
    assert "1 failed" in row["check_output"]
    assert "solved 0/1" in capsys.readouterr().out


def test_invalid_tool_calls_are_counted(suite, capsys):
    bad = {"raw": '<tool_call>{"name": "read_file", "arguments": {"path": calc.py}}</tool_call>'}
    good = {"raw": '<tool_call>{"name": "read_file", "arguments": {"path": "calc.py"}}</tool_call>'}
    code, report, _ = evaluate(suite, [bad, good, {"text": "I only looked."}])
    row = report["rows"][0]
    assert code == 0 and row["invalid_tool_calls"] == 1 and row["tool_calls"] == 1 and not row["solved"]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_timeout_is_reported_and_kills_the_agent_and_its_commands(suite, tmp_path, capsys):
    pid_file = tmp_path / "sleeper.pid"
    turns = [{"tool_calls": [call("shell", command=f"echo $$ > {pid_file}; exec sleep 120", timeout=300)]},
             {"text": "never reached"}]
    code, report, _ = evaluate(suite, turns, "--time-limit", "4")
    row = report["rows"][0]
    assert code == 0
    assert row["status"] == "timeout" and row["solved"] is False and row["exit_code"] is None
    assert row["seconds"] < 30
    sleeper = int(pid_file.read_text())
    assert not _running(sleeper)


def test_the_agent_is_told_its_time_limit_less_the_loading(suite, tmp_path, capsys):
    seen = tmp_path / "cmdline"  # the agent process's arguments, read by the command it runs
    turns = [{"tool_calls": [call("shell", command=f"tr '\\0' ' ' < /proc/$PPID/cmdline > {seen}")]},
             {"text": "Looked."}]
    code, report, _ = evaluate(suite, turns)
    assert code == 0 and report["rows"][0]["status"] == "done"
    assert f"--max-time {120 - LOAD_MARGIN_S:g} " in seen.read_text()  # meta.toml's time_limit = 120
    assert agent_time_limit(300) == 270 and agent_time_limit(8) == 6  # short limits keep three quarters


def test_answer_contains_is_required(suite, capsys):
    (suite / "fix_add" / "meta.toml").write_text('kind = "question"\nanswer_contains = [["subtract", "minus"]]\n')
    (suite / "fix_add" / "check.py").write_text("")  # only the answer decides
    code, report, _ = evaluate(suite, [{"text": "add() returns the difference."}])
    assert code == 0 and report["rows"][0]["solved"] is False
    code, report, _ = evaluate(suite, [{"text": "add() returns a minus b."}])
    assert code == 0 and report["rows"][0]["solved"] is True


def test_tasks_picks_tasks_by_name(suite, capsys):
    code, _, _ = evaluate(suite, [{"text": "hi"}], "--tasks", "no_such_task")
    assert code == 2 and "no_such_task" in capsys.readouterr().err


def test_a_missing_folder_exits_2(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nowhere"), "--backend", "scripted"]) == 2
    assert "no task folder" in capsys.readouterr().err


def test_a_task_without_a_checker_exits_2(suite, capsys):
    os.remove(suite / "fix_add" / "check.py")
    assert main(["eval", str(suite), "--backend", "scripted"]) == 2
    assert "check.py or check.sh" in capsys.readouterr().err


def test_a_suite_named_by_a_relative_path_runs(suite, monkeypatch, capsys):
    """The agent and the checker run in a copy elsewhere: a relative DIR must still find task.md."""
    monkeypatch.chdir(suite.parent)
    script = suite.parent / "script.jsonl"
    script.write_text(json.dumps({"text": "The code looks fine to me."}) + "\n")
    code = main(["eval", "suite", "--backend", "scripted", "--script", "script.jsonl", "--json", "report.json"])
    row = json.loads((suite.parent / "report.json").read_text())["rows"][0]
    assert code == 0 and row["status"] == "done" and row["turns"] == 1
    assert "1 failed" in row["check_output"]


def test_a_crashed_agent_shows_why(suite, capsys):
    report = suite.parent / "report.json"
    code = main(["eval", str(suite), "--backend", "scripted", "--script", str(suite.parent / "missing.jsonl"),
                 "--json", str(report)])
    row = json.loads(report.read_text())["rows"][0]
    assert code == 0 and row["status"] == "crashed" and row["exit_code"] == 2
    assert row["check_output"].startswith("agent crashed:") and "missing.jsonl" in row["check_output"]


def test_why_the_agent_stopped_is_in_the_row(suite, capsys):
    same = {"tool_calls": [call("read_file", path="calc.py")]}
    code, report, _ = evaluate(suite, [same, same, same, same, {"text": "done"}])
    row = report["rows"][0]
    assert code == 0 and row["status"] == "stuck" and "kept repeating" in row["error"]


def test_model_flags_reach_the_agent_runs_including_no_constrain(tmp_path):
    from agent.engine_tools.evaluate import agent_flags_from
    from agent.frontends.cli import build_parser

    script = tmp_path / "turns.json"
    script.write_text("[]")
    args = build_parser().parse_args(["eval", "--backend", "scripted", "--script", str(script), "--no-constrain",
                                      "--max-turns", "4"])
    flags = agent_flags_from(args)
    assert flags[flags.index("--script") + 1] == str(script.resolve())
    assert "--no-constrain" in flags and flags[flags.index("--max-turns") + 1] == "4"
    assert "--no-constrain" not in agent_flags_from(build_parser().parse_args(["eval", "--backend", "scripted"]))


def test_ablate_runs_the_suite_once_per_lever_configuration(suite, capsys):
    from agent.engine_tools.evaluate import ABLATION

    read = {"tool_calls": [call("read_file", path="calc.py")]}
    fix = {"tool_calls": [call("edit_file", path="calc.py", old_string="a - b", new_string="a + b")]}
    code, report, _ = evaluate(suite, [read, read, fix, {"text": "Fixed."}], "--ablate")
    out = capsys.readouterr().out
    configurations = report["ablation"]
    assert code == 0 and [c["configuration"] for c in configurations] == [label for label, _ in ABLATION]
    # the script is a free loop's turns; the workflow asks for replies in its own shapes
    assert all(c["solved"] == 1 for c in configurations[:-1])
    steered = {c["configuration"]: c["rows"][0]["steered"] for c in configurations}
    assert steered["constraints only"] == 0 and steered["+ repeats steered"] == 1  # the second read
    assert "--no-constrain" in configurations[0]["agent_flags"] and "--no-constrain" not in configurations[1]["agent_flags"]
    assert configurations[-1]["agent_flags"][-2:] == ["--workflow", "auto"]
    assert "--no-auto-test" in configurations[2]["agent_flags"] and "--no-auto-test" not in configurations[3]["agent_flags"]
    assert "configuration" in out and "+ fix workflow (all)" in out.splitlines()[-1]


def test_ablate_can_run_some_configurations_and_refuses_unknown_ones(suite, capsys):
    from agent.engine_tools.evaluate import ABLATION

    read = {"tool_calls": [call("read_file", path="calc.py")]}
    fix = {"tool_calls": [call("edit_file", path="calc.py", old_string="a - b", new_string="a + b")]}
    code, report, _ = evaluate(suite, [read, fix, {"text": "Fixed."}], "--ablate", "3,1")
    assert code == 0 and [c["configuration"] for c in report["ablation"]] == [ABLATION[2][0], ABLATION[0][0]]
    assert main(["eval", str(suite), "--backend", "scripted", "--ablate", "9"]) == 2
    assert "--ablate takes configuration numbers from 1 to 5 (1 no constraints;" in capsys.readouterr().err


def test_a_run_stopped_before_its_result_counts_its_turns_and_tokens_from_its_stats():
    events = [{"type": "stats", "turn": 1, "prompt_tokens": 900, "generated_tokens": 40},
              {"type": "tool_call", "turn": 1}, {"type": "stats", "turn": 2, "prompt_tokens": 1000, "generated_tokens": 60}]
    run = AgentRun(status="timeout", exit_code=None, answer="", events=events, seconds=300.0)
    assert run.result == {"turns": 2, "prompt_tokens": 1900, "generated_tokens": 100}
    finished = AgentRun("done", 0, "ok", events + [{"type": "result", "turns": 2, "prompt_tokens": 1}], 10.0)
    assert finished.result["prompt_tokens"] == 1
