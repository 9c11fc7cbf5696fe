"""The task suite in benchmarks/tasks/: every task is well-formed, and no checker passes on the
untouched repository with an empty answer (no task is solved by doing nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.engine_tools.evaluate import check_task, load_suite, load_task, prepare_copy

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "tasks"
TASK_DIRS = sorted(p for p in SUITE.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
KINDS = {"bugfix-test", "bugfix-traceback", "implement", "rename", "cli-option", "write-tests", "question", "multi-file"}


def test_the_suite_loads_and_covers_every_kind():
    tasks = load_suite(SUITE)
    assert len(tasks) >= 20
    assert {t.kind for t in tasks} == KINDS


@pytest.mark.parametrize("directory", TASK_DIRS, ids=lambda p: p.name)
def test_task_is_well_formed(directory):
    assert (directory / "task.md").read_text().strip()
    assert (directory / "meta.toml").is_file()
    task = load_task(directory)
    assert task.kind in KINDS and 0 < task.time_limit <= 3600
    assert any((directory / "repo").iterdir())
    if task.kind == "question":
        assert task.answer_contains
    if task.kind == "write-tests":
        assert list((directory / "mutants").glob("*.py"))


@pytest.mark.parametrize("directory", TASK_DIRS, ids=lambda p: p.name)
def test_untouched_repository_is_not_solved(directory, tmp_path):
    task = load_task(directory)
    prepare_copy(task, tmp_path / "repo")
    solved, output = check_task(task, tmp_path / "repo", "", tmp_path)
    assert not solved, output
    if task.kind == "question":  # the checker alone must also refuse an empty answer
        task.answer_contains = []
        solved, output = check_task(task, tmp_path / "repo", "", tmp_path)
        assert not solved, output


def test_a_module_rename_that_keeps_the_word_in_a_docstring_is_solved_and_a_leftover_import_is_not(tmp_path):
    task = load_task(SUITE / "rename_module")
    repo = tmp_path / "repo"
    prepare_copy(task, repo)
    (repo / "helpers.py").rename(repo / "text_utils.py")  # its docstring still says "Text helpers."
    for name in ("feed.py", "summary.py", "test_text.py"):
        path = repo / name
        path.write_text(path.read_text().replace("helpers", "text_utils"))
    solved, output = check_task(task, repo, "", tmp_path)
    assert solved, output
    (repo / "feed.py").write_text("import helpers\n" + (repo / "feed.py").read_text())
    solved, output = check_task(task, repo, "", tmp_path)
    assert not solved and "helpers is still imported in: feed.py" in output
