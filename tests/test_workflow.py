"""The fix workflow: reproduce -> locate -> (choose) -> diagnose -> rewrite -> validate -> answer;
a failed attempt is undone and the next one sampled; the free loop after MAX_ATTEMPTS (or, under
--max-time, once another attempt no longer fits)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.backends.base import Reply, TurnOptions, TurnSampling
from agent.core.loop import Limits
from agent.core.workflow import (ANSWER_TOKENS, ATTEMPT_SAMPLING, DIAGNOSIS_TOKENS, MAX_ATTEMPTS, MAX_COVERAGE_ROUNDS,
                                 MAX_README_LINES, MAX_REWRITE_LINES, MAX_REWRITE_SAMPLES, NEW_FILE_TOKENS, WORKED_ANSWER,
                                 choose_workflow)
from agent.core.workflow_text import runs_away, without_repeats
from support.git_support import committed_project, init_and_commit
from support.scripted_agent import run_scripted

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
DIAGNOSIS = {"text": "It subtracts; it must return a + b."}  # names no function: the whole file is rewritten
FIX = {"text": "```python\ndef add(a, b):\n    return a + b\n```"}
WRONG = {"text": "```python\ndef add(a, b):\n    return a * b\n```"}  # fails another way: 6 == 5
NO_BETTER = {"text": "```python\ndef add(a, b):\n    return a - b  # fixed\n```"}  # fails as before
ANSWERED = {"text": "add() now adds; the test passes."}
PYPROJECT = "[tool.pytest.ini_options]\npythonpath = ['.']\n"
MATHUTIL = "def double(x):\n    return 2 * x\n"

DIAGNOSE = TurnOptions(reply=Reply("text", max_tokens=DIAGNOSIS_TOKENS))
REWRITE = TurnOptions(reply=Reply("code", language="python", max_tokens=NEW_FILE_TOKENS), stop_when=runs_away)  # short files
ANSWER = TurnOptions(reply=Reply("text", max_tokens=ANSWER_TOKENS))


def no_better(attempt: int) -> dict:
    """Fails as before, each attempt with a comment of its own (code known to fail is drawn again)."""
    return {"text": f"```python\ndef add(a, b):\n    return a - b  # fixed {attempt}\n```"}


def sampled_diagnosis(attempt: int) -> TurnOptions:
    return TurnOptions(sampling=TurnSampling(*ATTEMPT_SAMPLING, seed=attempt),
                       reply=Reply("text", max_tokens=DIAGNOSIS_TOKENS))


def calc_project(path: Path) -> Path:
    return committed_project(path, {"calc.py": CALC, "tests/test_calc.py": TEST,
                                    "pyproject.toml": "[tool.pytest.ini_options]\npythonpath = ['.']\n"})


@pytest.fixture
def repo(tmp_path) -> Path:
    return calc_project(tmp_path / "project")


def run(root: Path, turns: list[dict], task: str = "The tests fail. Fix calc.py.", workflow: str = "fix"):
    agent, backend, events, result = run_scripted(root, turns, task, Limits(workflow=workflow))
    return result, backend, events, agent


def calls(events: list) -> list[tuple[str, str]]:
    return [(e.id.split("_")[0], e.name) for e in events if type(e).__name__ == "ToolCallEvent"]


def test_reproduce_locate_diagnose_rewrite_validate_answer(repo):
    result, backend, events, _ = run(repo, [DIAGNOSIS, FIX, ANSWERED])
    assert result.status == "done" and result.answer == ANSWERED["text"]
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert calls(events) == [("agent", "shell"), ("agent", "read_file"), ("agent", "read_file"), ("agent", "shell"),
                             ("rewrite", "write_file"), ("agent", "shell")]
    shells = [e for e in events if type(e).__name__ == "ToolResultEvent" and e.name == "shell"]
    assert shells[0].is_error and not shells[2].is_error  # failing before the edit, passing after
    assert backend.options_requested == [DIAGNOSE, REWRITE, ANSWER]
    assert backend.tools_requested == [[], [], []]  # replies in a fixed shape: no tool definitions to prefill
    reads = [e.arguments["path"] for e in events if type(e).__name__ == "ToolCallEvent" and e.name == "read_file"]
    assert reads == ["tests/test_calc.py", "calc.py"]  # the code the failing test imports, read last
    request = backend.requests[0][-1]["content"]  # the file as it is, without read_file's line numbers
    assert "```python\ndef add(a, b):\n    return a - b\n```" in request and "assert 5 == -1" in request or "add(2, 3)" in request
    assert "The task: The tests fail. Fix calc.py." in request
    # the failing test traced through the code to change: what it was given and what it returned
    assert "calc.py:1 add(a=2, b=3)\n    returned -1\n```" in request


def test_a_trace_names_where_the_code_raised_and_its_variables_there(tmp_path):
    root = committed_project(tmp_path / "project", {
        "config.py": "def load(text):\n    values = dict(line.split('=') for line in text.split())\n    return values['port']\n",
        "test_config.py": "from config import load\n\n\ndef test_default():\n    assert load('host=a') == '80'\n"})
    _, backend, events, _ = run(root, [DIAGNOSIS, FIX, ANSWERED], task="The tests fail. Fix config.py.")
    probe = [e for e in events if type(e).__name__ == "ToolCallEvent" and e.name == "shell"][1]
    assert "trace_probe.py config.py -- -m pytest" in probe.arguments["command"]
    assert ("config.py:1 load(text='host=a')\n    values = {'host': 'a'}\n    line 3 raised KeyError: 'port'"
            in backend.requests[0][-1]["content"])


def test_a_failed_attempt_is_undone_and_the_next_one_sampled_from_the_same_start(repo):
    result, backend, events, agent = run(repo, [DIAGNOSIS, NO_BETTER, {"text": "Use +."}, FIX, ANSWERED])
    assert result.status == "done" and "a + b" in (repo / "calc.py").read_text()
    assert backend.options_requested == [DIAGNOSE, REWRITE, sampled_diagnosis(1), REWRITE, ANSWER]
    # the second attempt starts from the same conversation as the first, with no trace of it
    assert backend.requests[2] == backend.requests[0]
    assert calls(events)[4:] == [("rewrite", "write_file"), ("agent", "shell"), ("agent", "write_file"),
                                 ("rewrite", "write_file"), ("agent", "shell")]
    restore = [e for e in events if type(e).__name__ == "ToolCallEvent" and e.id.startswith("agent")][-2]
    assert restore.arguments == {"path": "calc.py", "content": CALC}
    assert not any("# fixed" in str(m.get("content")) for m in agent.messages)


def test_an_attempt_that_fails_another_way_is_undone_too(repo):
    result, backend, events, _ = run(repo, [DIAGNOSIS, WRONG, DIAGNOSIS, FIX, ANSWERED])
    assert result.status == "done"
    # no trace of `a * b`; only the error it met is named with the next request
    assert backend.requests[2][:-1] == backend.requests[0][:-1] and "a * b" not in str(backend.requests[2])
    assert "assert 6 == 5" in backend.requests[2][-1]["content"]
    assert ("agent", "write_file") in calls(events)


def test_after_max_attempts_the_free_loop_takes_over_with_the_files_as_they_were(repo):
    attempts = [turn for i in range(MAX_ATTEMPTS) for turn in (DIAGNOSIS, no_better(i))]
    result, backend, _, agent = run(repo, attempts + [{"text": "I could not fix it."}])
    assert backend.options_requested[-1] == TurnOptions()  # free: the model's own loop
    assert backend.tools_requested[-1]  # with its tools
    assert [o.sampling.seed for o in backend.options_requested[2:-1:2]] == list(range(1, MAX_ATTEMPTS))
    assert (repo / "calc.py").read_text() == CALC and agent.workflow.stage == "free"
    assert result.status == "done"


def test_under_max_time_attempts_go_on_while_the_longest_so_far_fits(repo, monkeypatch):
    # the agent's clock moves 10 s per model turn: an attempt (diagnosis and rewrite) takes 20 s
    import agent.core.loop as loop_module
    from agent.backends.scripted import ScriptedBackend
    turns_taken = []
    original = ScriptedBackend.complete
    monkeypatch.setattr(ScriptedBackend, "complete", lambda self, *a, **k: turns_taken.append(1) or original(self, *a, **k))
    monkeypatch.setattr(loop_module, "time", type("Clock", (), {"monotonic": staticmethod(lambda: 10.0 * len(turns_taken))}))
    attempts = [turn for i in range(12) for turn in (DIAGNOSIS, no_better(i))]
    script = attempts[:16] + [{"text": "I could not fix it."}]
    agent, backend, _, result = run_scripted(repo, script, "The tests fail. Fix calc.py.",
                                             Limits(workflow="fix", max_seconds=175))
    # after 8 attempts (160 s) 15 s are left, less than an attempt takes: the free loop has them
    seeds = [o.sampling.seed for o in backend.options_requested[2:-1:2]]
    assert seeds == list(range(1, 8)) and len(seeds) > MAX_ATTEMPTS - 1
    assert backend.options_requested[-1] == TurnOptions() and agent.workflow.stage == "free"
    assert result.status == "done" and (repo / "calc.py").read_text() == CALC


def test_a_limit_in_the_middle_of_an_attempt_leaves_the_files_as_they_were(repo, monkeypatch):
    """--max-time after the first of two rewrites: not half an edit on disk."""
    import agent.core.loop as loop_module
    from agent.backends.scripted import ScriptedBackend
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    init_and_commit(repo)
    turns_taken = []
    original = ScriptedBackend.complete
    monkeypatch.setattr(ScriptedBackend, "complete", lambda self, *a, **k: turns_taken.append(1) or original(self, *a, **k))
    monkeypatch.setattr(loop_module, "time", type("Clock", (), {"monotonic": staticmethod(lambda: 10.0 * len(turns_taken))}))
    both = {"text": '["calc.py", "tests/test_calc.py"]'}
    agent, _, _, result = run_scripted(repo, [both, DIAGNOSIS, SUBTRACT, subtract_test(1)],
                                       "Add a `subtract` function to calc.py and add a test for it.",
                                       Limits(workflow="fix", max_seconds=35))
    assert result.status == "limit" and agent.workflow.written == 1  # calc.py written, the tests not yet
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"


def test_a_rewrite_that_copies_the_file_is_told_so_and_drawn_again(repo):
    same = {"text": f"```python\n{CALC}```"}
    result, backend, events, _ = run(repo, [DIAGNOSIS, same, FIX, ANSWERED])
    assert result.status == "done" and "a + b" in (repo / "calc.py").read_text()
    # the file as it was is known to fail: the copy is not written; the model is told, and draws again
    assert backend.options_requested[1:3] == [REWRITE, TurnOptions(sampling=TurnSampling(*ATTEMPT_SAMPLING, seed=1),
                                                                   reply=REWRITE.reply, stop_when=runs_away)]
    assert backend.requests[2][:-2] == backend.requests[1] and backend.requests[2][-2]["content"] == same["text"]
    assert backend.requests[2][-1]["content"].startswith("That is `calc.py` exactly as it was")
    assert [name for _, name in calls(events)] == ["shell", "read_file", "read_file", "shell", "write_file", "shell"]


def test_a_rewrite_known_to_fail_is_drawn_again_with_a_seed_then_not_run_again(repo, tmp_path):
    result, backend, _, _ = run(repo, [DIAGNOSIS, WRONG, DIAGNOSIS, WRONG, FIX, ANSWERED])
    assert result.status == "done" and "a + b" in (repo / "calc.py").read_text()
    # the second attempt wrote the first one's code again: out of the conversation, drawn again
    assert backend.requests[4] == backend.requests[3]
    assert backend.options_requested[4].sampling == TurnSampling(*ATTEMPT_SAMPLING, seed=101)
    # once the draws run out, code known to fail is written but not run again
    turns = [DIAGNOSIS, WRONG, DIAGNOSIS] + [WRONG] * (MAX_REWRITE_SAMPLES + 1) + [DIAGNOSIS, FIX, ANSWERED]
    again = calc_project(tmp_path / "again")
    result, backend, events, _ = run(again, turns)
    assert result.status == "done" and "a + b" in (again / "calc.py").read_text()
    assert [name for _, name in calls(events)].count("shell") == 4  # reproduce, trace, WRONG once, FIX


def test_the_model_chooses_among_several_files(repo):
    (repo / "ops.py").write_text("from calc import add\n\n\ndef twice(a):\n    return add(a, a)\n")
    init_and_commit(repo)
    choice = {"text": '["calc.py"]'}
    result, backend, _, _ = run(repo, [choice, DIAGNOSIS, FIX, ANSWERED], task="add() in calc.py is used by twice() in ops.py; the tests fail. Fix it.")
    assert result.status == "done"
    chosen = backend.options_requested[0].reply
    assert chosen.kind == "json" and set(chosen.schema["items"]["enum"]) == {"calc.py", "ops.py"}
    assert "tests/test_calc.py" not in chosen.schema["items"]["enum"]  # the failing tests are the specification
    assert "This is `ops.py`" not in backend.requests[1][-1]["content"]  # only the chosen file is shown for the diagnosis


def test_a_question_is_answered_after_the_agent_reads_what_it_names_and_works_it_out(repo):
    worked = {"relevant_code": ["return a - b"], "working": "add returns a minus b.", "answer": "It subtracts b from a."}
    result, backend, events, _ = run(repo, [{"text": json.dumps(worked)}], task="What does `add` return?")
    assert result.status == "done"
    assert result.answer == "It subtracts b from a.\n\nFrom the code:\n    return a - b\nadd returns a minus b."
    assert ("agent", "read_file") in calls(events) and ("rewrite", "write_file") not in calls(events)
    # the grammar has the lines and the working come before the answer
    assert backend.options_requested == [TurnOptions(reply=Reply("json", schema=WORKED_ANSWER, max_tokens=ANSWER_TOKENS))]
    assert list(WORKED_ANSWER["properties"]) == ["relevant_code", "working", "answer"]
    assert "What does `add` return?" in backend.requests[0][-1]["content"]


def test_a_question_is_asked_with_the_values_the_agent_folded_from_the_code(tmp_path):
    root = committed_project(tmp_path / "project", {"config.py": "BASE = 8000\nOFFSET = 80\n",
                                                    "server.py": "from config import BASE, OFFSET\n\nPORT = BASE + OFFSET\n"})
    worked = {"relevant_code": ["PORT = BASE + OFFSET"], "working": "8000 + 80.", "answer": "8080"}
    result, backend, _, _ = run(root, [{"text": json.dumps(worked)}], task="Which port does `server.py` use?")
    assert result.answer.startswith("8080")
    assert "- `server.py:3  PORT = BASE + OFFSET = 8080`" in backend.requests[0][-1]["content"]


def test_a_question_that_points_nowhere_in_a_big_repository_is_left_to_the_model(repo):
    for i in range(10):
        (repo / f"module_{i}.py").write_text(f"VALUE = {i}\n")
    init_and_commit(repo)
    result, backend, events, agent = run(repo, [{"text": "A calculator."}], task="What is this project about?")
    assert agent.workflow.stage == "free" and calls(events) == []
    assert backend.options_requested == [TurnOptions()] and result.answer == "A calculator."


def test_a_new_file_the_task_names_is_written_and_then_validated_by_the_tests_it_adds(tmp_path):
    root = committed_project(tmp_path / "lib", {"mathutil.py": MATHUTIL})
    tests = {"text": "```python\nfrom mathutil import double\n\n\ndef test_double():\n    assert double(2) == 4\n```"}
    result, backend, events, _ = run(root, [{"text": '["test_mathutil.py"]'}, DIAGNOSIS, tests, ANSWERED],
                                     task="Write tests for mathutil.py in test_mathutil.py.")
    assert result.status == "done" and (root / "test_mathutil.py").exists()
    assert calls(events)[-1] == ("agent", "shell")  # the tests it wrote ran, and passed
    assert "`test_mathutil.py` does not exist yet." in backend.requests[1][-1]["content"]


def test_a_rewrite_cut_at_its_token_limit_fails_its_attempt(repo):
    cut = {"text": "```python\ndef add(a, b):\n", "finish_reason": "length"}
    result, backend, _, _ = run(repo, [DIAGNOSIS, cut, DIAGNOSIS, FIX, ANSWERED])
    assert result.status == "done" and "a + b" in (repo / "calc.py").read_text()
    assert backend.options_requested[1].reply.max_tokens is not None  # bounded
    assert "ran past" in backend.requests[2][-1]["content"]  # the next attempt is told


def test_a_file_created_by_a_failed_attempt_is_removed(tmp_path):
    root = committed_project(tmp_path / "lib", {"mathutil.py": MATHUTIL})
    def wrong(i: int) -> dict:  # each attempt wrong in a new way: code known to fail is drawn again
        return {"text": f"```python\nfrom mathutil import double\n\n\ndef test_double():\n    assert double(2) == {5 + i}\n```"}
    attempts = [turn for i in range(MAX_ATTEMPTS) for turn in (DIAGNOSIS, wrong(i))]
    result, _, _, agent = run(root, [{"text": '["test_mathutil.py"]'}] + attempts + [{"text": "I give up."}],
                              task="Write tests for mathutil.py in test_mathutil.py.")
    assert agent.workflow.stage == "free" and not (root / "test_mathutil.py").exists()


def test_a_file_too_long_to_write_whole_leaves_the_model_on_its_own(repo):
    (repo / "calc.py").write_text(CALC + "\n" * MAX_REWRITE_LINES)
    init_and_commit(repo)
    result, backend, _, agent = run(repo, [{"text": "Too long for me."}])
    assert agent.workflow.stage == "free" and backend.options_requested == [TurnOptions()]


def test_free_runs_no_steps_of_its_own(repo):
    _, _, events, agent = run(repo, [{"text": "Done."}], workflow="free")
    assert calls(events) == [] and agent.workflow is None


def test_a_command_that_may_not_run_leaves_the_model_on_its_own(repo):
    agent, backend, _, result = run_scripted(repo, [{"text": "I cannot run the tests here."}],
                                             "The tests fail. Fix calc.py.", Limits(workflow="fix"),
                                             mode="ask")  # headless ask: shell denied
    assert agent.workflow.stage == "free" and result.status == "done"
    assert backend.options_requested == [TurnOptions()]  # no plan, no reads forced


def test_the_trace_runs_only_where_it_needs_no_approval(repo):
    agent, backend, events, result = run_scripted(repo, [DIAGNOSIS, FIX, ANSWERED], "The tests fail. Fix calc.py.",
                                                  Limits(workflow="fix"), mode="accept-edits",
                                                  allow=("shell(python -m pytest *)",))
    assert result.status == "done" and "a + b" in (repo / "calc.py").read_text()
    commands = [e.arguments["command"] for e in events if type(e).__name__ == "ToolCallEvent" and e.name == "shell"]
    assert commands == ["python -m pytest -q --tb=short"] * 2  # reproduce, validate; no probe asked for
    assert "What the code did" not in backend.requests[0][-1]["content"]


def test_auto_gives_the_workflow_to_small_models_only(tmp_path):
    task = "Fix calc.py."
    assert choose_workflow("auto", task, tmp_path, model_parameters=1_500_000_000) is not None
    assert choose_workflow("auto", "What does calc.py do?", tmp_path, model_parameters=1_500_000_000) is not None
    assert choose_workflow("auto", "Hello there", tmp_path, model_parameters=1_500_000_000) is None
    assert choose_workflow("auto", task, tmp_path, model_parameters=27_000_000_000) is None
    assert choose_workflow("auto", task, tmp_path) is None  # a server's model: size unknown
    assert choose_workflow("fix", task, tmp_path, model_parameters=27_000_000_000) is not None
    assert choose_workflow("free", task, tmp_path, model_parameters=1) is None


def test_unknown_workflows_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown workflow"):
        choose_workflow("agentless", "x", tmp_path)
    assert choose_workflow("fix", "Make it faster.", tmp_path).command is None


def test_a_command_that_runs_but_does_not_print_what_the_task_asks_for_fails_the_attempt(tmp_path):
    root = committed_project(tmp_path / "report", {
        "report.py": "import sys\nrows = open(sys.argv[1]).read().split()[1:]\nprint(100 / len(rows))\n",
        "empty.csv": "amount\n"})
    silent = {"text": "```python\nimport sys\nrows = open(sys.argv[1]).read().split()[1:]\nprint(0 if not rows else 100 / len(rows))\n```"}
    told = {"text": "```python\nimport sys\nrows = open(sys.argv[1]).read().split()[1:]\nprint('no rows' if not rows else 100 / len(rows))\n```"}
    result, backend, _, _ = run(root, [DIAGNOSIS, silent, DIAGNOSIS, told, ANSWERED],
                                task="`python report.py empty.csv` crashes. It should print `no rows` instead.")
    assert result.status == "done" and "'no rows'" in (root / "report.py").read_text()
    # the command's input file shows the problem: it is not offered for change (no choice asked)
    assert backend.options_requested[:2] == [DIAGNOSE, REWRITE]
    assert (root / "empty.csv").read_text() == "amount\n"
    assert "`python report.py empty.csv` printed `0`, not `no rows`" in backend.requests[2][-1]["content"]


def test_a_later_attempt_is_told_the_errors_of_earlier_ones(repo):
    broken = {"text": "```python\ndef add(a, b):\n    return a + c\n```"}
    result, backend, _, _ = run(repo, [DIAGNOSIS, broken, DIAGNOSIS, FIX, ANSWERED])
    assert result.status == "done"
    first, second = backend.requests[0][-1]["content"], backend.requests[2][-1]["content"]
    assert "NameError: name 'c' is not defined (at `return a + c`)" in second and "Earlier attempts" not in first


def test_a_file_the_task_renames_is_moved_and_its_importers_offered(repo):
    (repo / "ops.py").write_text("from calc import add\n\n\ndef twice(a):\n    return add(a, a)\n")
    (repo / "tests" / "test_calc.py").write_text(TEST.replace("== 5", "== -1"))  # passing: nothing to fix
    init_and_commit(repo)
    ops = {"text": "```python\nfrom arithmetic import add\n\n\ndef twice(a):\n    return add(a, a)\n```"}
    test = {"text": "```python\nfrom arithmetic import add\n\n\ndef test_add():\n    assert add(2, 3) == -1\n```"}
    result, backend, events, _ = run(repo, [{"text": '["ops.py", "tests/test_calc.py"]'}, DIAGNOSIS, ops, test, ANSWERED],
                                     task="Rename calc.py to arithmetic.py and update what imports it.")
    assert result.status == "done", result
    assert not (repo / "calc.py").exists() and (repo / "arithmetic.py").read_text() == CALC
    offered = set(backend.options_requested[0].reply.schema["items"]["enum"])
    assert {"ops.py", "arithmetic.py", "tests/test_calc.py"} <= offered and "calc.py" not in offered  # gone, not new
    moves = [e.arguments["command"] for e in events if type(e).__name__ == "ToolCallEvent" and e.name == "shell"]
    assert moves[1] == "mv -- calc.py arithmetic.py"


def test_a_rewrite_cut_while_repeating_itself_keeps_the_whole_lines_that_parse(tmp_path):
    root = committed_project(tmp_path / "lib", {"mathutil.py": MATHUTIL})
    repeating = ("```python\nfrom mathutil import double\n\n\ndef test_double():\n    assert double(2) == 4\n\n\n"
                 "def test_double_zero():\n    assert double(0) == 0\n\n\ndef test_double_zero_again():\n    assert dou")
    result, _, events, _ = run(root, [{"text": '["test_mathutil.py"]'}, DIAGNOSIS,
                                      {"text": repeating, "finish_reason": "length"}, ANSWERED],
                               task="Write tests for mathutil.py in test_mathutil.py.")
    assert result.status == "done", result
    written = (root / "test_mathutil.py").read_text()
    assert written.endswith("def test_double_zero():\n    assert double(0) == 0\n") and "again" not in written
    assert calls(events)[-1] == ("agent", "shell")  # what was kept ran, and passed


def test_a_rewrite_repeating_one_line_is_stopped_there_and_keeps_the_line_once(tmp_path):
    """A 1.5B writing tests went on with `assert mathutil.clamp(10, 10, 10) == 10` to its token
    bound; the third copy of a line ends the turn, and the file keeps one."""
    root = committed_project(tmp_path / "lib", {"mathutil.py": MATHUTIL})
    runaway = ("```python\nfrom mathutil import double\n\n\ndef test_double():\n    assert double(2) == 4\n"
               + "    assert double(0) == 0\n" * 40 + "```")
    result, _, events, _ = run(root, [{"text": '["test_mathutil.py"]'}, DIAGNOSIS, {"text": runaway}, ANSWERED],
                               task="Write tests for mathutil.py in test_mathutil.py.")
    assert result.status == "done", result
    assert (root / "test_mathutil.py").read_text() == ("from mathutil import double\n\n\ndef test_double():\n"
                                                        "    assert double(2) == 4\n    assert double(0) == 0\n")
    streamed = "".join(e.text for e in events if type(e).__name__ == "TextDeltaEvent")
    assert streamed.count("double(0)") == 3  # the script was stopped at the third copy


def test_runaway_lines_are_told_from_lines_that_only_look_alike():
    assert runs_away("x = 1\n    assert f(1) == 1\n    assert f(1) == 1\n    assert f(1) == 1\n")
    assert not runs_away("    assert f(1) == 1\n    assert f(2) == 2\n    assert f(3) == 3\n")
    assert not runs_away("\n\n\n\n")  # blank lines are layout
    assert not runs_away("    assert f(1) == 1\n    assert f(1) == 1\n    assert f(1")  # the third is not whole yet
    code = "a\nb\nb\nc\nc\nc\nc\n\n\n\nd"
    assert without_repeats(code) == "a\nb\nb\nc\n\n\n\nd"  # two copies and blank lines stay
    pair = "    assert f(1) == 1\n    assert f(5) == 5\n"  # the 1.5B's second shape: two lines in turn
    assert runs_away("def test():\n" + pair * 3) and not runs_away("def test():\n" + pair * 2)
    assert without_repeats("def test():\n" + pair * 5 + "    assert f(") == "def test():\n" + pair + "    assert f("


def test_tests_that_pass_without_the_name_the_task_asks_for_fail_the_attempt(repo):
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    init_and_commit(repo)
    without = {"text": "```python\ndef add(a, b):\n    return a + b  # unchanged\n```"}
    with_it = {"text": "```python\ndef add(a, b):\n    return a + b\n\n\ndef subtract(a, b):\n    return a - b\n```"}
    chosen = {"text": '["calc.py"]'}  # the tests pass: they may change too, so the model picks
    result, backend, _, _ = run(repo, [chosen, DIAGNOSIS, without, DIAGNOSIS, with_it, ANSWERED],
                                task="Add a `subtract` function to calc.py and keep the tests passing.")
    assert result.status == "done", result
    assert "def subtract" in (repo / "calc.py").read_text()
    assert "the task asks for `subtract`, and no file has it" in backend.requests[3][-1]["content"]


def test_an_attempt_that_passes_more_tests_is_the_base_of_the_next(tmp_path):
    both_wrong = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a + b\n"
    tests = TEST + "\n\ndef test_sub():\n    assert sub(5, 3) == 2\n"
    root = committed_project(tmp_path / "project", {"calc.py": both_wrong,
                                                    "tests/test_calc.py": tests.replace("import add", "import add, sub"),
                                                    "pyproject.toml": "[tool.pytest.ini_options]\npythonpath = ['.']\n"})
    half = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a + b\n"
    whole = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
    result, backend, _, agent = run(root, [DIAGNOSIS, {"text": f"```python\n{half}```"}, DIAGNOSIS,
                                           {"text": f"```python\n{whole}```"}, ANSWERED])
    assert result.status == "done", result
    assert (root / "calc.py").read_text() == whole
    second = backend.requests[2][-1]["content"]
    assert f"```python\n{half}```" in second and "1 failed, 1 passed" in second  # the kept attempt, its output
    assert backend.options_requested[2] == sampled_diagnosis(1)
    assert not any("test_add" in str(m.get("content")) and "return a + b" in str(m.get("content"))
                   for m in backend.requests[2][:-1] if m["role"] == "assistant")  # the attempt itself is gone


def test_a_question_about_the_whole_repository_is_answered_from_its_readme(repo):
    for i in range(10):
        (repo / f"module_{i}.py").write_text(f"VALUE = {i}\n")
    (repo / "README.md").write_text("# calc\n\nA calculator that gets addition wrong.\n" + "More.\n" * 200)
    init_and_commit(repo)
    worked = {"relevant_code": ["     3\tA calculator that gets addition wrong."], "working": "The README says so.",
              "answer": "A calculator."}
    result, backend, events, _ = run(repo, [{"text": json.dumps(worked)}], task="What is this project about?")
    assert result.status == "done" and result.answer.startswith("A calculator.\n\nFrom the code:\n    A calculator that")
    reads = [e.arguments for e in events if type(e).__name__ == "ToolCallEvent" and e.name == "read_file"]
    assert reads == [{"path": "README.md", "limit": MAX_README_LINES}]  # its opening, not 200 lines of it


def test_a_task_that_asks_for_a_test_gets_a_test_file_to_write_and_needs_a_new_test(repo):
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    init_and_commit(repo)
    code = {"text": "```python\ndef add(a, b):\n    return a + b\n\n\ndef subtract(a, b):\n    return a - b\n```"}
    same_tests = {"text": f"```python\n{TEST}```"}
    more_tests = {"text": f"```python\n{TEST}\n\ndef test_subtract():\n    from calc import subtract\n    assert subtract(3, 2) == 1\n```"}
    only_code = {"text": '["calc.py"]'}  # the model picks the code alone; the agent adds the test file
    result, backend, _, agent = run(repo, [only_code, DIAGNOSIS, code, same_tests, DIAGNOSIS, code, more_tests, ANSWERED],
                                    task="Add a `subtract` function to calc.py and add a test for it.")
    assert result.status == "done", result
    assert agent.workflow.targets == ["calc.py", "tests/test_calc.py"]
    assert "def test_subtract" in (repo / "tests" / "test_calc.py").read_text()
    assert "the task asks for a new test, and no test was added" in backend.requests[4][-1]["content"]
    # the request for the test file says to keep its tests and add new ones; the code's does not
    assert "add new test functions" in backend.requests[3][-1]["content"]
    assert "add new test functions" not in backend.requests[2][-1]["content"]


def test_tests_that_pass_but_leave_a_branch_unrun_are_the_base_of_one_more_attempt(tmp_path):
    clamp = ("def clamp(value, low, high):\n    if low > high:\n        raise ValueError('low > high')\n"
             "    return max(low, min(value, high))\n")
    root = committed_project(tmp_path / "lib", {"mathutil.py": clamp, "pyproject.toml": PYPROJECT})
    first = "from mathutil import clamp\n\n\ndef test_inside():\n    assert clamp(5, 0, 9) == 5\n"
    second = first + "\n\ndef test_bounds():\n    import pytest\n    with pytest.raises(ValueError):\n        clamp(1, 2, 0)\n"
    choose = {"text": '["tests/test_mathutil.py"]'}
    result, backend, events, agent = run(root, [choose, DIAGNOSIS, {"text": f"```python\n{first}```"}, DIAGNOSIS,
                                                {"text": f"```python\n{second}```"}, ANSWERED],
                                         task="Write tests for `clamp` in tests/test_mathutil.py.")
    assert result.status == "done" and "test_bounds" in (root / "tests" / "test_mathutil.py").read_text()
    # the second attempt starts from the first one's tests and is told which line they never ran
    request = backend.requests[3][-1]["content"]
    assert "no test runs mathutil.py:3: raise ValueError('low > high')" in request and "def test_inside" in request
    probes = [e.arguments["command"] for e in events if type(e).__name__ == "ToolCallEvent" and "--lines" in str(e.arguments)]
    assert len(probes) == 2 and agent.workflow.coverage_rounds == 1  # the second probe found every line run



SUBTRACT = {"text": "```python\ndef add(a, b):\n    return a + b\n\n\ndef subtract(a, b):\n    return a - b\n```"}


def subtract_test(expected: int) -> dict:
    return {"text": f"```python\n{TEST}\n\ndef test_subtract():\n    from calc import subtract\n    assert subtract(3, 2) == {expected}\n```"}


def test_when_only_the_new_test_fails_the_code_is_kept_and_the_test_rewritten(repo):
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    init_and_commit(repo)
    both = {"text": '["calc.py", "tests/test_calc.py"]'}
    result, backend, events, agent = run(repo, [both, DIAGNOSIS, SUBTRACT, subtract_test(5), DIAGNOSIS, subtract_test(1),
                                                ANSWERED], task="Add a `subtract` function to calc.py and add a test for it.")
    assert result.status == "done", result
    assert "assert subtract(3, 2) == 1" in (repo / "tests" / "test_calc.py").read_text()
    assert agent.workflow.targets == ["tests/test_calc.py"]  # the repair rewrote the test alone
    writes = [e.arguments["path"] for e in events if type(e).__name__ == "ToolCallEvent" and e.name == "write_file"]
    assert writes == ["calc.py", "tests/test_calc.py", "tests/test_calc.py"]  # the code was never undone
    request = backend.requests[4][-1]["content"]
    assert "The code passes every test but the new test_subtract" in request
    assert "def subtract(a, b)" in request and "assert 1 == 5" in request  # the kept code and the failure
    # a rewrite of the one new test that fails, put back in its file
    assert backend.requests[5][-1]["content"].startswith("Write the complete new `test_subtract` function of `tests/test_calc.py`")
    assert backend.options_requested[5] == TurnOptions(reply=Reply("code", language="python", max_tokens=NEW_FILE_TOKENS // 2),
                                                       stop_when=runs_away)


def test_new_tests_that_leave_out_what_the_task_adds_are_rewritten_alone(repo):
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    init_and_commit(repo)
    both = {"text": '["calc.py", "tests/test_calc.py"]'}
    elsewhere = {"text": f"```python\n{TEST}\n\ndef test_add_negative():\n    assert add(-1, 1) == 0\n```"}
    turns = [both, DIAGNOSIS, SUBTRACT, elsewhere, DIAGNOSIS, subtract_test(1), ANSWERED]
    result, backend, events, agent = run(repo, turns, task="Add a `subtract` function to calc.py and add a test for it.")
    assert result.status == "done", result
    # the first tests pass and never call subtract: the code is kept, the tests alone rewritten
    request = backend.requests[4][-1]["content"]
    assert "the task asks for a test of `subtract`, and no test uses it" in request
    assert "The code stays as it is; the tests are what changes now." in request and "def subtract(a, b)" in request
    assert "fails:" not in request  # the tests passed: no failure is shown
    assert "assert subtract(3, 2) == 1" in (repo / "tests" / "test_calc.py").read_text()
    writes = [e.arguments["path"] for e in events if type(e).__name__ == "ToolCallEvent" and e.name == "write_file"]
    assert writes == ["calc.py", "tests/test_calc.py", "tests/test_calc.py"]  # the code was never undone


def test_tests_that_still_leave_it_out_after_their_rewrite_are_kept_when_they_pass(repo):
    """They exercise the code some other way: passing work is not thrown away for a name."""
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    init_and_commit(repo)
    both = {"text": '["calc.py", "tests/test_calc.py"]'}
    elsewhere = {"text": f"```python\n{TEST}\n\ndef test_add_negative():\n    assert add(-1, 1) == 0\n```"}
    # the repair, then the coverage rounds (subtract's line never runs), each writing the same tests
    turns = [both, DIAGNOSIS, SUBTRACT, elsewhere] + [DIAGNOSIS, elsewhere] * (1 + MAX_COVERAGE_ROUNDS) + [ANSWERED]
    result, backend, _, _ = run(repo, turns, task="Add a `subtract` function to calc.py and add a test for it.")
    assert result.status == "done" and result.answer == ANSWERED["text"], result
    assert "def subtract" in (repo / "calc.py").read_text() and "test_add_negative" in (repo / "tests" / "test_calc.py").read_text()


def test_a_test_repair_that_fails_puts_code_and_tests_back_as_they_were(repo):
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    init_and_commit(repo)
    both = {"text": '["calc.py", "tests/test_calc.py"]'}
    result, backend, _, agent = run(repo, [both, DIAGNOSIS, SUBTRACT, subtract_test(5), DIAGNOSIS, subtract_test(7),
                                           DIAGNOSIS, SUBTRACT, subtract_test(1), ANSWERED],
                                    task="Add a `subtract` function to calc.py and add a test for it.")
    assert result.status == "done", result
    assert agent.workflow.targets == ["calc.py", "tests/test_calc.py"] and agent.workflow.repair is None
    third = backend.requests[6][-1]["content"]  # after the failed repair: the files as before the first attempt
    assert "def subtract" not in third and "The code passes every test" not in third


def test_a_new_test_failing_beside_an_old_one_is_no_reason_to_keep_the_code(repo):
    """An old test failing too means the code is wrong: the usual undo, no repair."""
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    init_and_commit(repo)
    both = {"text": '["calc.py", "tests/test_calc.py"]'}
    broke_add = {"text": "```python\ndef add(a, b):\n    return a - b\n\n\ndef subtract(a, b):\n    return a - b\n```"}
    result, backend, _, agent = run(repo, [both, DIAGNOSIS, broke_add, subtract_test(5), DIAGNOSIS, SUBTRACT,
                                           subtract_test(1), ANSWERED],
                                    task="Add a `subtract` function to calc.py and add a test for it.")
    assert result.status == "done", result
    second = backend.requests[4][-1]["content"]
    assert "The code passes every test" not in second and "def subtract" not in second  # undone as usual
    assert agent.workflow.repair is None and agent.workflow.targets == ["calc.py", "tests/test_calc.py"]


STATS = ("def mean(values):\n    return sum(values) / len(values)\n\n\n"
         "def median(values):\n    ordered = sorted(values)\n    return ordered[len(ordered) // 2 + 1]\n")
STATS_TEST = ("from stats import mean, median\n\n\ndef test_mean():\n    assert mean([1, 2, 3]) == 2\n\n\n"
              "def test_median():\n    assert median([3, 1, 2]) == 2\n")


def test_the_one_function_a_diagnosis_names_is_rewritten_alone_and_put_back_in_its_file(tmp_path):
    root = committed_project(tmp_path / "p", {"stats.py": STATS, "tests/test_stats.py": STATS_TEST, "pyproject.toml": PYPROJECT})
    diagnosis = {"text": "`median` takes the element after the middle one; it must take ordered[len(ordered) // 2]."}
    copied = {"text": "```python\ndef median(values):\n    ordered = sorted(values)\n    return ordered[len(ordered) // 2 + 1]\n```"}
    fixed = {"text": "```python\ndef median(values):\n    ordered = sorted(values)\n    return ordered[len(ordered) // 2]\n```"}
    result, backend, _, _ = run(root, [diagnosis, copied, fixed, ANSWERED], task="The tests fail. Fix stats.py.")
    assert result.status == "done", result
    assert (root / "stats.py").read_text() == STATS.replace("// 2 + 1]", "// 2]")  # mean() untouched
    request = backend.requests[1][-1]["content"]
    assert request.startswith("Write the complete new `median` function of `stats.py`")
    assert backend.options_requested[1] == TurnOptions(reply=Reply("code", language="python", max_tokens=NEW_FILE_TOKENS // 2),
                                                       stop_when=runs_away)
    # a copy of the function as it was is said to be one, as a copied file is
    assert backend.requests[2][-1]["content"].startswith("That is `median` exactly as it was in `stats.py`")


def test_a_function_reply_without_the_function_fails_its_attempt(tmp_path):
    root = committed_project(tmp_path / "p", {"stats.py": STATS, "tests/test_stats.py": STATS_TEST, "pyproject.toml": PYPROJECT})
    diagnosis = {"text": "`median` takes the element after the middle one."}
    other = {"text": "```python\ndef middle(values):\n    return 0\n```"}
    whole = {"text": f"```python\n{STATS.replace('// 2 + 1]', '// 2]')}```"}
    result, backend, _, _ = run(root, [diagnosis, other, diagnosis, whole, ANSWERED], task="The tests fail. Fix stats.py.")
    assert result.status == "done", result
    assert "the reply for `stats.py` had no `def median` that parses" in backend.requests[2][-1]["content"]
    # the next attempt writes the whole file: the change may lie outside the function named
    assert backend.requests[3][-1]["content"].startswith("Write the complete new `stats.py`")
    assert (root / "stats.py").read_text() == STATS.replace("// 2 + 1]", "// 2]")


def test_a_rename_rewrites_whole_files_even_when_the_diagnosis_names_one_function(repo):
    """The new name is not in the file yet: a function reply would have no `def add`."""
    rename = {"text": "Rename `add` to `plus` in calc.py and its test."}
    workflow = choose_workflow("fix", "Rename the function `add` to `plus`.", repo)
    workflow.original = {"calc.py": CALC}
    workflow.introduced = ["plus"]
    workflow.diagnosis = rename["text"]
    assert workflow._focus("calc.py") is None
    workflow.introduced = []
    assert workflow._focus("calc.py") == "add"
