"""The pre-commit framework runs both hooks of this repository's .pre-commit-hooks.yaml
(`pre-commit try-repo`, which installs mtp-agent into pre-commit's own environment)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from support.git_support import Repo

PROJECT = Path(__file__).resolve().parents[1]


def try_repo(repo: Repo, hook: str, *args: str) -> subprocess.Popen:
    constraints = repo.home / "constraints.txt"
    constraints.write_text(f"torch=={torch.__version__}\n")  # the build already here, not a download
    env = repo.env(PRE_COMMIT_HOME=str(repo.home / "pre-commit-home"), PIP_CONSTRAINT=str(constraints))
    pre_commit = [sys.executable, "-m", "pre_commit"]
    return subprocess.Popen([*pre_commit, "try-repo", str(PROJECT), hook, "--verbose", *args], cwd=repo.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def home(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir()
    return tmp_path / name


def test_pre_commit_try_repo_runs_both_hooks(tmp_path):
    review_repo = Repo(home(tmp_path, "review"), turns=[{"text": "greet.py:2: high: `nme` is undefined, every call raises NameError"}])
    review_repo.stage("greet.py", "def greet(name):\n    return 'hello ' + nme\n")
    message_repo = Repo(home(tmp_path, "message"), turns=[{"text": "feat: greet with a comma\n\nReads better."}])
    message_repo.stage("greet.py", "def greet(name):\n    return 'hello, ' + name\n")
    message_file = message_repo.root / ".git" / "COMMIT_EDITMSG"
    message_file.write_text("\n# Please enter the commit message for your changes.\n")

    # both installs at once: each builds its own environment (PyTorch included)
    review = try_repo(review_repo, "mtp-agent-review", "--hook-stage", "pre-commit")
    message = try_repo(message_repo, "mtp-agent-commit-msg", "--hook-stage", "prepare-commit-msg",
                       "--commit-msg-filename", str(message_file))
    review_output, _ = review.communicate(timeout=900)
    message_output, _ = message.communicate(timeout=900)

    assert review.returncode == 1, review_output
    assert "mtp-agent review" in review_output and "Failed" in review_output
    assert "greet.py:2: high: `nme` is undefined" in review_output
    assert message.returncode == 0, message_output
    assert "mtp-agent commit message" in message_output and "Passed" in message_output
    assert message_file.read_text().startswith("feat: greet with a comma\n\nReads better.\n\n# Please enter")
