"""Finding what a task is about without the model: its command, whether it only asks, and the
files it and the failure point at."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.core.locate import (asks_for_change, asks_for_tests, command_inputs, expected_outputs, file_moves,
                               find_command, introduced_names, is_question, located_files, missing_names, new_files,
                               task_names)
from support.git_support import init_and_commit


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "ops.py").write_text("from calc import add\n\nLIMIT_MAX = 3\n\n\ndef twice(a):\n    return add(a, a)\n")
    (root / "tests" / "test_calc.py").write_text("from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    (root / "tests" / "test_ops.py").write_text("from ops import twice\n\n\ndef test_twice():\n    assert twice(2) == 4\n")
    (root / "README.md").write_text("twice() doubles.\n")
    init_and_commit(root)
    return root


@pytest.mark.parametrize("task, expected", [
    ("`pytest` fails in tests/test_stats.py.", "python -m pytest -q --tb=short"),
    ("Running `python serve.py example.env` crashes.", "python serve.py example.env"),
    ("Rename `get_usr` to `get_user`.", "python -m pytest -q --tb=short"),  # not a command: the suite
])
def test_the_command_comes_from_the_task_or_the_tests(repo, task, expected):
    assert find_command(task, repo) == expected


def test_no_command_without_one_named_or_tests(tmp_path):
    assert find_command("Make it faster.", tmp_path) is None


@pytest.mark.parametrize("task, question", [
    ("Which port does it use?", True),
    ("What does `add` return? Don't change anything.", True),
    ("At most how many retries? Answer; do not edit anything.", True),
    ("Fix the port.", False),
    ("The tests fail. Can you fix it?", False),
    ("Why does it crash? Add a check for empty input.", False),
    ("Why does test_median fail?", True),  # a defect asked about is explained, not changed
])
def test_questions_ask_for_no_change(task, question):
    assert is_question(task) is question


def test_located_files_stay_inside_the_repository(repo):
    output = 'File "/usr/lib/python3/os.py", line 1\nFile "calc.py", line 2\n../../etc/passwd'
    assert located_files("see tests/test_calc.py", output, repo)[:2] == ["calc.py", "tests/test_calc.py"]


def test_names_lead_to_the_files_that_define_then_use_them(repo):
    assert task_names("Rename `twice` to `double`; LIMIT_MAX stays. See get_user in `ops.py`.") == \
        ["twice", "double", "LIMIT_MAX", "get_user"]
    located = located_files("Rename `twice` to `double` everywhere.", "", repo)
    assert located == ["ops.py", "README.md", "tests/test_ops.py"]  # the definition, its users, tests last
    assert located_files("Raise LIMIT_MAX to 4.", "", repo)[0] == "ops.py"


def test_the_tests_of_the_located_code_come_after_it(repo):
    assert located_files("calc.py subtracts.", "", repo) == ["calc.py", "tests/test_calc.py"]


def test_a_small_repository_is_read_whole_when_nothing_points_anywhere(repo):
    assert set(located_files("Which function doubles a number?", "", repo)) >= {"calc.py", "ops.py"}


def test_a_question_reads_a_small_repository_whole_after_what_it_names(repo):
    assert located_files("What is LIMIT_MAX for?", "", repo) == ["ops.py", "tests/test_ops.py"]
    assert located_files("What is LIMIT_MAX for?", "", repo, read_small_repository=True)[:2] == ["ops.py", "calc.py"]


def test_links_are_not_searched(repo, tmp_path):
    secret = tmp_path / "secret.py"
    secret.write_text("def twice(a):\n    return 0\n")
    (repo / "linked.py").symlink_to(secret)
    assert "linked.py" not in located_files("Fix `twice`.", "", repo)


def test_new_files_are_the_paths_the_task_names_that_are_not_there(repo):
    assert new_files("Put it in settings.py, test it in tests/test_settings.py, see calc.py and ../x.py.", repo) == \
        ["settings.py", "tests/test_settings.py"]
    assert new_files("Tests for calc in test_calc.py", repo) == []  # found under tests/


@pytest.mark.parametrize("task, change", [
    ("Fix the median.", True), ("Rename `get_usr` to `get_user`.", True), ("Hello!", False),
    ("`python report.py empty.csv` crashes. An empty file should print `no rows`.", True),
    ("The tests in test_pages.py fail.", True),
    ("What does `add` return? Don't change anything.", False), ("Which file defines `fix_it`?", False),
])
def test_a_change_is_asked_for_by_a_verb_that_is_not_negated_or_code(task, change):
    assert asks_for_change(task) is change


def test_the_inputs_of_a_command_are_not_the_fix(repo):
    (repo / "empty.csv").write_text("name,amount\n")
    assert command_inputs("python calc.py empty.csv", "`python calc.py empty.csv` crashes.", repo) == ["empty.csv"]
    # unless the task names them outside the command
    assert command_inputs("python calc.py empty.csv", "`python calc.py empty.csv` crashes; fix empty.csv.", repo) == []
    assert command_inputs("python -m pytest -q", "The tests fail.", repo) == []


def test_what_a_command_should_print_comes_from_the_task():
    assert expected_outputs("An empty file should print `no rows` instead of crashing.") == ["no rows"]
    assert expected_outputs("It outputs `OK` and says `done`.") == ["OK", "done"]
    assert expected_outputs("Show it in `format_order`, like `#7 Ada: 12.50 USD`.") == []


def test_a_rename_of_a_file_names_its_new_path_and_finds_its_importers(repo):
    task = "Rename the module calc.py to arithmetic.py and update everything that imports it."
    assert file_moves(task, repo) == [("calc.py", "arithmetic.py")]
    assert file_moves("Rename calc.py to ops.py.", repo) == []  # the new path is taken
    assert file_moves("Move calc.py to ../elsewhere.py.", repo) == []
    located = located_files(task, "", repo)
    assert located[:2] == ["calc.py", "ops.py"] and "tests/test_calc.py" in located


def test_introduced_names_are_the_quoted_names_no_file_has_yet(tmp_path):
    (tmp_path / "countlines.py").write_text("def count_lines(path):\n    return 0\n")
    task = ("Add a `--skip-blank` flag to `count_lines`, a `strip_blank(lines)` helper and a `--limit N` option; "
            "run `pytest`, `python countlines.py a.txt` should print `3 a.txt`.")
    assert introduced_names(task, tmp_path) == ["--skip-blank", "strip_blank", "--limit"]
    (tmp_path / "countlines.py").write_text("def strip_blank(lines):\n    pass  # --skip-blank, --limit-ish\n")
    assert missing_names(["--skip-blank", "strip_blank", "--limit"], tmp_path) == ["--limit"]


@pytest.mark.parametrize("task, asks", [
    ("Add a `--limit N` option. Add a test for it in test_wordfreq.py.", True),
    ("Add a flag and cover it with a test in tests/.", True),
    ("mathutil.py has no tests. Write tests for `clamp`.", True),
    ("Write a test file test_calendar.py for calendar.py.", True),
    ("Fix the code so the tests pass; don't change the tests.", False),
    ("Keep the tests passing.", False),
    ("Fix it, and don't add tests.", False),
])
def test_asks_for_tests(task, asks):
    assert asks_for_tests(task) is asks
