"""What the task checkers share. A checker runs in the agent's copy of the task's repository
(the current directory) and exits 0 when the task is solved; `agent eval` sets EVAL_ANSWER_FILE
(the agent's final answer) and EVAL_TASK_DIR (the task's folder: hidden tests, mutants)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

TASK_DIR = Path(os.environ.get("EVAL_TASK_DIR", Path.cwd()))


def fail(why: str) -> None:
    print(f"unsolved: {why}")
    sys.exit(1)


def require(condition: bool, why: str) -> None:
    if not condition:
        fail(why)


def run(*command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def pytest_passes(*args: str) -> bool:
    """Whether pytest finds no failing test (a repository without tests has none)."""
    done = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args)
    print(done.stdout[-1500:])
    return done.returncode in (0, 5)  # 5: no tests collected


def unchanged(*paths: str) -> bool:
    """Whether these files are as committed: a task is not solved by editing the tests it is judged by."""
    return run("git", "diff", "--quiet", "HEAD", "--", *paths).returncode == 0


def hidden_tests_pass(*names: str) -> bool:
    """Run tests kept in the task's folder (out of the agent's sight) against the copy."""
    copies = []
    for name in names:
        copy = Path(f"test_eval_hidden_{Path(name).stem}.py")
        shutil.copy(TASK_DIR / "hidden" / name, copy)
        copies.append(copy)
    try:
        return pytest_passes(*map(str, copies))
    finally:
        for copy in copies:
            copy.unlink(missing_ok=True)


def tests_catch_mutants(target: str, *test_args: str) -> None:
    """The agent's tests pass on `target` as it is and fail on every mutant in the task's mutants/ folder."""
    original = Path(target).read_text()
    require(pytest_passes(*test_args), "the tests do not pass on the original implementation")
    for mutant in sorted((TASK_DIR / "mutants").glob("*.py")):
        Path(target).write_text(mutant.read_text())
        try:
            require(not pytest_passes(*test_args), f"the tests pass on the mutant {mutant.name}")
        finally:
            Path(target).write_text(original)


def answer() -> str:
    path = os.environ.get("EVAL_ANSWER_FILE")
    return Path(path).read_text() if path and Path(path).is_file() else ""


def tree_clean() -> bool:
    """No tracked file changed and none added: for questions, which need no edits."""
    return run("git", "status", "--porcelain").stdout.strip() == ""


def no_module_reference(module: str) -> bool:
    """Whether no Python file in the copy imports `module` or uses an attribute of it (a module
    rename; the word in prose, "Text helpers.", is not a reference)."""
    name = re.escape(module)
    pattern = re.compile(rf"^\s*(?:import\s+{name}\b|from\s+{name}\b)|\b{name}\.\w", re.MULTILINE)
    users = [p for p in Path(".").rglob("*.py") if ".git" not in p.parts and pattern.search(p.read_text())]
    if users:
        print(f"{module} is still imported in: {', '.join(map(str, users))}")
    return not users


def no_identifier(name: str) -> bool:
    """Whether no Python file in the copy uses `name` as a whole word (renames)."""
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    users = [p for p in Path(".").rglob("*.py") if ".git" not in p.parts and pattern.search(p.read_text())]
    if users:
        print(f"{name} is still in: {', '.join(map(str, users))}")
    return not users
