"""The git tools on real repositories made in tmp_path: status, diff, log, and commits with the
attribution trailer, hooks and the workspace guard."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.tools import TOOLS, Workspace, run_tool
from agent.tools.base import ToolError
from agent.tools.git import git_commit, git_diff, git_log, git_status, with_trailer


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    return root


@pytest.fixture
def ws(repo: Path) -> Workspace:
    return Workspace(repo, attribution="mtp-agent:test-model")


def commit_file(repo: Path, name: str, content: str, message: str) -> None:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)


def test_not_a_git_repository_is_a_clear_error(tmp_path: Path):
    outside = Workspace(tmp_path / "plain")
    outside.root.mkdir()
    for tool in (git_status, git_log, git_diff):
        with pytest.raises(ToolError, match="not inside a git repository"):
            tool(outside)
    result = run_tool(TOOLS["git_commit"], outside, {"message": "x"})
    assert result.is_error and "not inside a git repository" in result.output


def test_status_shows_branch_and_short_status(ws: Workspace, repo: Path):
    assert git_status(ws).output == "## No commits yet on main\n(working tree clean)"
    commit_file(repo, "a.txt", "one\n", "Add a")
    (repo / "a.txt").write_text("two\n")
    (repo / "new.txt").write_text("new\n")
    result = git_status(ws)
    assert result.output.splitlines() == ["## main", " M a.txt", "?? new.txt"]
    assert result.data == {"clean": False}


def test_diff_unstaged_staged_and_by_path(ws: Workspace, repo: Path):
    commit_file(repo, "a.txt", "one\n", "Add a")
    commit_file(repo, "b.txt", "bee\n", "Add b")
    assert "No unstaged changes" in git_diff(ws).output
    (repo / "a.txt").write_text("two\n")
    (repo / "b.txt").write_text("bzz\n")
    unstaged = git_diff(ws).output
    assert "--- a/a.txt" in unstaged and "-one" in unstaged and "+two" in unstaged and "b.txt" in unstaged
    only_a = git_diff(ws, path="a.txt").output
    assert "a.txt" in only_a and "b.txt" not in only_a
    assert "No staged changes" in git_diff(ws, staged=True).output
    git(repo, "add", "a.txt")
    staged = git_diff(ws, staged=True).output
    assert "+two" in staged and "b.txt" not in staged


def test_diff_is_capped_and_guards_paths(ws: Workspace, repo: Path):
    commit_file(repo, "big.txt", "".join(f"line {n}\n" for n in range(20_000)), "Add big")
    (repo / "big.txt").write_text("".join(f"changed {n}\n" for n in range(20_000)))
    result = git_diff(ws)
    assert "bytes omitted" in result.output and len(result.output) < 31_000
    with pytest.raises(ToolError, match="outside the workspace"):
        git_diff(ws, path="../elsewhere")


def test_log_lists_commits_newest_first(ws: Workspace, repo: Path):
    assert git_log(ws).output == "No commits yet."
    commit_file(repo, "a.txt", "1\n", "First commit")
    commit_file(repo, "b.txt", "2\n", "Second commit")
    commit_file(repo, "a.txt", "3\n", "Third commit")
    lines = git_log(ws).output.splitlines()
    assert len(lines) == 3
    sha, date, rest = lines[0].split(" ", 2)
    assert len(sha) >= 7 and len(date) == 10 and rest == "Test User: Third commit"
    assert lines[2].endswith("First commit")
    assert len(git_log(ws, count=2).output.splitlines()) == 2
    only_a = git_log(ws, path="a.txt").output
    assert "Third commit" in only_a and "Second commit" not in only_a
    with pytest.raises(ToolError, match="count"):
        git_log(ws, count=0)


def test_commit_named_paths_with_trailer(ws: Workspace, repo: Path):
    (repo / "a.txt").write_text("a\n")
    (repo / "b.txt").write_text("b\n")
    result = git_commit(ws, "Add a", paths=["a.txt"])
    sha = git(repo, "rev-parse", "--short", "HEAD").strip()
    assert result.data["sha"] == sha and result.data["subject"] == "Add a"
    assert result.output.startswith(f"Committed {sha} Add a")
    assert git(repo, "log", "-1", "--format=%B").strip() == "Add a\n\nAssisted-by: mtp-agent:test-model"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["a.txt"]
    assert "?? b.txt" in git(repo, "status", "--short")


def test_commit_all_stages_tracked_changes_only(ws: Workspace, repo: Path):
    commit_file(repo, "a.txt", "1\n", "Add a")
    (repo / "a.txt").write_text("2\n")
    (repo / "untracked.txt").write_text("u\n")
    git_commit(ws, "Change a", all=True)
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["a.txt"]
    assert "?? untracked.txt" in git(repo, "status", "--short")


def test_commit_what_is_already_staged(ws: Workspace, repo: Path):
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "a.txt")
    result = git_commit(ws, "Staged by hand")
    assert result.data["subject"] == "Staged by hand"


def test_commit_refuses_when_there_is_nothing_to_commit(ws: Workspace, repo: Path):
    with pytest.raises(ToolError, match="nothing to commit"):
        git_commit(ws, "Empty")
    commit_file(repo, "a.txt", "1\n", "Add a")
    (repo / "new.txt").write_text("n\n")
    with pytest.raises(ToolError, match=r"nothing to commit(.|\n)*new\.txt"):
        git_commit(ws, "Still empty", all=True)
    with pytest.raises(ToolError, match="empty"):
        git_commit(ws, "   ")


def test_commit_keeps_existing_trailers_in_one_block():
    assert with_trailer("Fix\n\nSigned-off-by: A <a@b>", "agent") == "Fix\n\nSigned-off-by: A <a@b>\nAssisted-by: agent\n"
    assert with_trailer("Fix it\n\nLonger body.", "agent") == "Fix it\n\nLonger body.\n\nAssisted-by: agent\n"
    assert with_trailer("Subject: with colon", "agent") == "Subject: with colon\n\nAssisted-by: agent\n"
    assert with_trailer("Fix\n\nAssisted-by: agent", "agent") == "Fix\n\nAssisted-by: agent\n"


def test_commit_runs_hooks_and_reports_their_rejection(ws: Workspace, repo: Path):
    hook = repo / ".git" / "hooks" / "commit-msg"
    hook.write_text('#!/bin/sh\necho "hook saw: $(head -1 "$1")" >> "$(git rev-parse --git-dir)/hook.log"\n'
                    'grep -q WIP "$1" && { echo "no WIP commits" >&2; exit 1; }\nexit 0\n')
    hook.chmod(0o755)
    (repo / "a.txt").write_text("a\n")
    with pytest.raises(ToolError, match="no WIP commits"):
        git_commit(ws, "WIP stuff", paths=["a.txt"])
    git_commit(ws, "Real work", paths=["a.txt"])
    assert (repo / ".git" / "hook.log").read_text().splitlines() == ["hook saw: WIP stuff", "hook saw: Real work"]


def test_commit_paths_go_through_the_workspace_guard(ws: Workspace, repo: Path, tmp_path: Path):
    (tmp_path / "outside.txt").write_text("x\n")
    with pytest.raises(ToolError, match="outside the workspace"):
        git_commit(ws, "Sneaky", paths=["../outside.txt"])
    with pytest.raises(ToolError, match="did not match|pathspec"):
        git_commit(ws, "Missing", paths=["nope.txt"])


def test_workspace_in_a_subfolder_of_the_repository(repo: Path):
    commit_file(repo, "sub/a.txt", "1\n", "Add sub/a")
    ws = Workspace(repo / "sub")
    (repo / "sub" / "a.txt").write_text("2\n")
    assert "a.txt" in git_diff(ws, path="a.txt").output
    result = git_commit(ws, "Change sub/a", paths=["a.txt"])
    assert result.data["files"] == 1
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["sub/a.txt"]
