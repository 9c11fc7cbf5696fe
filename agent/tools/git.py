"""The git tools: git_status, git_diff, git_log and git_commit, through GitPython. Commits go
through the git command line so the user's hooks run, and credit the agent in a trailer."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import git

from agent.tools.base import ToolError, ToolResult, Workspace
from agent.tools.shell import clip_middle

MAX_LOG_COUNT = 200
_TRAILER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*: \S")


@contextmanager
def open_repo(ws: Workspace) -> Iterator[git.Repo]:
    try:
        repo = git.Repo(ws.root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ToolError(f"{ws.root} is not inside a git repository; run 'git init' with the shell tool first if you want one") from None
    try:
        if repo.bare:
            raise ToolError(f"{ws.root} is a bare git repository, which has no working tree to inspect or commit")
        yield repo
    finally:
        repo.close()  # GitPython keeps cat-file processes alive until closed


def _run(repo: git.Repo, *args: str) -> str:
    try:
        return repo.git.execute(["git", *args])
    except git.GitCommandError as e:
        raise ToolError(f"git {args[0]} failed: {_error_text(e)}") from None


def _error_text(error: git.GitCommandError) -> str:
    """What git printed, without GitPython's "stderr: '...'" wrapping."""
    parts = []
    for label, text in (("stdout", error.stdout), ("stderr", error.stderr)):
        text = (text or "").strip()
        text = text.removeprefix(f"{label}: ").strip("'").strip()
        if text:
            parts.append(text)
    return "\n".join(parts) or str(error)


def _has_commits(repo: git.Repo) -> bool:
    try:
        repo.head.commit
        return True
    except ValueError:
        return False


def _repo_path(ws: Workspace, repo: git.Repo, path: str) -> str:
    """A path the model gave, checked by the workspace guard, relative to the repository's root."""
    resolved = ws.resolve(path)
    top = Path(repo.working_tree_dir).resolve()
    try:
        return resolved.relative_to(top).as_posix() or "."
    except ValueError:
        raise ToolError(f"'{path}' is outside the git repository at {top}") from None


def git_status(ws: Workspace) -> ToolResult:
    with open_repo(ws) as repo:
        output = _run(repo, "status", "--short", "--branch")
        clean = len(output.splitlines()) <= 1
    if clean:
        output += "\n(working tree clean)"
    return ToolResult(output, data={"clean": clean})


def git_diff(ws: Workspace, staged: bool = False, path: str | None = None) -> ToolResult:
    with open_repo(ws) as repo:
        args = ["diff", "--no-color", "--no-ext-diff"] + (["--cached"] if staged else [])
        if path is not None:
            args += ["--", _repo_path(ws, repo, path)]
        output = _run(repo, *args)
    if not output.strip():
        where = f" in {path}" if path else ""
        if staged:
            return ToolResult(f"No staged changes{where}.")
        return ToolResult(f"No unstaged changes{where} (untracked files are not diffed; git_status lists them, staged changes need staged=true).")
    return ToolResult(clip_middle(output), data={"bytes": len(output.encode("utf-8"))})


def git_log(ws: Workspace, count: int = 10, path: str | None = None) -> ToolResult:
    if not 1 <= count <= MAX_LOG_COUNT:
        raise ToolError(f"count must be between 1 and {MAX_LOG_COUNT} (got {count})")
    with open_repo(ws) as repo:
        if not _has_commits(repo):
            return ToolResult("No commits yet.", data={"count": 0})
        args = ["log", f"--max-count={count}", "--date=short", "--format=%h %ad %an: %s"]
        if path is not None:
            args += ["--", _repo_path(ws, repo, path)]
        output = _run(repo, *args)
    if not output:
        return ToolResult(f"No commits touch {path}.", data={"count": 0})
    return ToolResult(output, data={"count": len(output.splitlines())})


def with_trailer(message: str, attribution: str) -> str:
    """The message with `Assisted-by: <attribution>` as its last trailer."""
    message = message.strip()
    trailer = f"Assisted-by: {attribution}"
    paragraphs = message.split("\n\n")
    last = paragraphs[-1].splitlines()
    if trailer in last:
        return message + "\n"
    # the message's own trailers stay one block with ours, or git interpret-trailers would miss them
    ends_with_trailers = len(paragraphs) > 1 and all(_TRAILER.match(line) for line in last)
    return f"{message}{chr(10) if ends_with_trailers else chr(10) * 2}{trailer}\n"


def git_commit(ws: Workspace, message: str, paths: list[str] | None = None, all: bool = False) -> ToolResult:
    if not message.strip():
        raise ToolError("the commit message is empty; write a short subject line saying what changed and why")
    with open_repo(ws) as repo:
        if paths:
            _run(repo, "add", "--", *(_repo_path(ws, repo, path) for path in paths))
        if all:
            _run(repo, "add", "--update")  # every tracked change, as commit -a would take
        staged = _run(repo, "diff", "--cached", "--name-only")
        if not staged:
            status = _run(repo, "status", "--short")
            hint = f" Current status:\n{status}" if status else " The working tree is clean."
            raise ToolError("nothing to commit: no changes are staged. Pass paths=[...] to stage files "
                            "(new files must be named) or all=true for every change to tracked files." + hint)
        full_message = with_trailer(message, ws.attribution)
        try:
            # the command line rather than repo.index.commit, so pre-commit and commit-msg hooks run
            repo.git.commit("--cleanup=whitespace", "-m", full_message)
        except git.GitCommandError as e:
            detail = _error_text(e)
            raise ToolError(f"git commit failed (a hook may have rejected it; the changes stay staged):\n{detail}") from None
        sha = repo.head.commit.hexsha[:7]
        subject = repo.head.commit.summary
        files = len(staged.splitlines())
    return ToolResult(f"Committed {sha} {subject} ({files} file{'s' if files != 1 else ''} changed)",
                      data={"sha": sha, "subject": subject, "files": files})

