"""The user's repository: its files, its uncommitted diff, and plain git calls. Outside a git
repository the file list comes from a walk of the folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable

from agent.errors import AgentError

GIT_LIST_TIMEOUT_S = 120


def run_git(root: Path, *args: str) -> str:
    """git's output for `git ARGS` run in root; AgentError saying which command failed and why."""
    completed = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if completed.returncode != 0:
        raise AgentError(f"git {' '.join(args)} failed: {completed.stderr.strip()}")
    return completed.stdout


def repository_diff(root: Path) -> str:
    """Uncommitted changes against HEAD (staged or not), new files included."""
    if not (root / ".git").exists():
        return ""
    has_head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root, capture_output=True).returncode == 0
    diff = run_git(root, "diff", "HEAD") if has_head else ""
    for path in run_git(root, "ls-files", "--others", "--exclude-standard").splitlines():
        new = subprocess.run(["git", "diff", "--no-index", "--", "/dev/null", path], cwd=root, capture_output=True, text=True)
        diff += new.stdout
    return diff


def is_dot_git(folder: Path) -> bool:
    return folder.name == ".git"


def repository_files(root: Path, skip_folder: Callable[[Path], bool] = is_dot_git, hidden_files: bool = True,
                     limit: int | None = None) -> list[str]:
    """Paths relative to root, POSIX style, sorted, at most `limit`. In a git repository: what git
    tracks plus the untracked files it does not ignore (links included, even dangling ones: git
    tracks them too). Elsewhere a walk, which stops at `limit` files, leaves out the folders
    `skip_folder` rejects and, unless `hidden_files`, files whose names start with a dot."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                                capture_output=True, timeout=GIT_LIST_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        listed = None
    if listed is not None and listed.returncode == 0:
        names = {os.fsdecode(raw) for raw in listed.stdout.split(b"\0") if raw}
        # --cached still lists files deleted from the work tree, and submodules as folders
        return sorted(name for name in names if (root / name).is_file() or (root / name).is_symlink())[:limit]
    found: list[str] = []
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        subfolders[:] = sorted(name for name in subfolders if not skip_folder(here / name))
        found.extend((here / name).relative_to(root).as_posix() for name in files
                     if hidden_files or not name.startswith("."))
        if limit is not None and len(found) >= limit:
            break
    return sorted(found[:limit])
