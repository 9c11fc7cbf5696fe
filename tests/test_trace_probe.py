"""trace_probe.py: a failing test or script run with the watched files' calls recorded; the
command the workflow builds for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent.core.trace_probe import ALL_RUN, HEADER, MAX_CALLS, UNRUN_HEADER, coverage_command, probe_command

PROBE = str(Path(__file__).resolve().parents[1] / "agent" / "core" / "trace_probe.py")
STATS = ("def mean(values):\n    total = sum(values)\n    return total / len(values)\n\n\n"
         "class Box:\n    size = 3\n\n\ndef safe(values):\n    try:\n        return mean(values)\n"
         "    except ZeroDivisionError:\n        return None\n")
TEST = ("from stats import mean, safe\n\n\ndef test_mean():\n    assert mean([1, 2, 6]) == 2\n\n\n"
        "def test_safe():\n    assert safe([]) == 0\n")


def probe(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, PROBE, *args], cwd=root, capture_output=True, text=True, timeout=60)


def test_a_failing_test_is_traced_through_the_watched_file_only_and_leaves_nothing_behind(tmp_path):
    (tmp_path / "stats.py").write_text(STATS)
    (tmp_path / "test_stats.py").write_text(TEST)
    done = probe(tmp_path, "stats.py", "--", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "test_stats.py::test_mean")
    assert done.returncode == 0 and done.stderr == ""
    # the test's own output is not repeated; a class body is not a call
    assert done.stdout == f"{HEADER}\nstats.py:1 mean(values=[1, 2, 6])\n    total = 9\n    returned 3.0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.py", "test_stats.py"]


def test_a_caught_exception_is_not_reported_as_raised_and_a_raised_one_names_its_line(tmp_path):
    (tmp_path / "stats.py").write_text(STATS)
    (tmp_path / "test_stats.py").write_text(TEST)
    done = probe(tmp_path, "stats.py", "--", "-m", "pytest", "-p", "no:cacheprovider", "test_stats.py::test_safe")
    assert done.stdout.splitlines()[1:] == ["stats.py:10 safe(values=[])", "    returned None",
                                            "stats.py:1 mean(values=[])", "    total = 0",
                                            "    line 3 raised ZeroDivisionError: division by zero"]


def test_a_script_is_traced_with_its_arguments_and_the_calls_are_bounded(tmp_path):
    (tmp_path / "loop.py").write_text("import sys\n\n\ndef step(i):\n    return i * int(sys.argv[1])\n\n\n"
                                      "for i in range(50):\n    step(i)\nraise SystemExit(3)\n")
    done = probe(tmp_path, "loop.py", "--", "loop.py", "2")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[1:3] == ["loop.py:4 step(i=0)", "    returned 0"] and lines[-2:] == [f"loop.py:4 step(i={MAX_CALLS - 1})", f"    returned {2 * (MAX_CALLS - 1)}"]


def test_the_command_follows_the_way_the_task_runs_its_code():
    failing = "FAILED tests/test_a.py::test_b[1-2] - assert 1 == 2\n"
    assert probe_command("python -m pytest -q", failing, ["a.py"]) == (
        f"python {PROBE} a.py -- -m pytest -q -x -p no:cacheprovider 'tests/test_a.py::test_b[1-2]'")
    assert probe_command("pytest tests", failing, ["a.py"]).startswith(f"python {PROBE} a.py -- -m pytest")
    assert probe_command("python3 serve.py my.env", "Traceback", ["serve.py"]) == f"python3 {PROBE} serve.py -- serve.py my.env"
    assert probe_command("python -m pytest", "1 error", ["a.py"]) is None  # no failing test to trace
    assert probe_command("npm test", failing, ["a.py"]) is None and probe_command("python x.py", "x", []) is None
    assert probe_command("python 'unclosed", "x", ["a.py"]) is None


def test_lines_no_test_runs_are_listed_and_docstrings_and_module_code_are_not(tmp_path):
    (tmp_path / "stats.py").write_text('"""Stats."""\nLIMIT = 3\n\n\n' + STATS.replace("    total = sum", '    """Mean."""\n    total = sum'))
    (tmp_path / "test_stats.py").write_text(TEST)
    done = probe(tmp_path, "--lines", "stats.py", "--", "-m", "pytest", "-p", "no:cacheprovider", "test_stats.py::test_mean")
    assert done.stdout.splitlines() == [UNRUN_HEADER, "stats.py:16: try:", "stats.py:17: return mean(values)",
                                        "stats.py:19: return None"]
    done = probe(tmp_path, "--lines", "stats.py", "--", "-m", "pytest", "-p", "no:cacheprovider")
    assert done.stdout.splitlines() == [ALL_RUN]


def test_the_coverage_command_runs_the_whole_suite_as_the_task_runs_it():
    assert coverage_command("python -m pytest -q tests", ["a.py"]) == (
        f"python {PROBE} --lines a.py -- -m pytest -q -p no:cacheprovider -q tests")
    assert coverage_command("pytest", ["a.py"]) == f"python {PROBE} --lines a.py -- -m pytest -q -p no:cacheprovider"
    assert coverage_command("python serve.py", ["a.py"]) is None and coverage_command("pytest", []) is None


def test_the_probe_says_how_to_call_it():
    done = subprocess.run([sys.executable, PROBE, "a.py"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage: trace_probe.py" in done.stderr
