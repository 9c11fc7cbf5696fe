"""Temporary git repositories for the git helper's tests: real `git`, isolated from the
machine's git configuration, with the scripted backend chosen in the project config."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from agent.core.config import trust_folder

AGENT = [sys.executable, "-m", "agent"]

GREET = "def greet(name):\n    return 'hello ' + name\n"


def git_env(home: Path, **extra: str) -> dict[str, str]:
    config = home / "gitconfig"
    if not config.exists():
        config.write_text("[user]\n\tname = Test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "MTP_AGENT_SKIP", "PRE_COMMIT"))}
    return {**env, "GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1", "GIT_EDITOR": "true", **extra}


class Repo:
    """A repository under tmp_path/repo whose model turns come from tmp_path/turns.jsonl."""

    def __init__(self, tmp_path: Path, turns: list[dict] | None = None, hooks: dict | None = None, backend: dict | None = None):
        self.root = tmp_path / "repo"
        self.home = tmp_path
        self.script = tmp_path / "turns.jsonl"
        self.root.mkdir()
        self.git("init", "-q")
        (self.root / "greet.py").write_text(GREET)
        self.git("add", "greet.py")
        self.git("commit", "-qm", "Add greet")
        self.set_turns(turns or [])
        self.configure(backend or {}, hooks or {})

    def configure(self, backend: dict, hooks: dict | None = None) -> None:
        settings = {"name": "scripted", "script": str(self.script), **backend}
        lines = ["[backend]", *(f"{k} = {json.dumps(v)}" for k, v in settings.items())]
        if hooks:
            lines += ["[hooks]", *(f"{k} = {json.dumps(v)}" for k, v in hooks.items())]
        (self.root / ".mtp-agent").mkdir(exist_ok=True)
        (self.root / ".mtp-agent" / "config.toml").write_text("\n".join(lines) + "\n")
        (self.root / ".git" / "info" / "exclude").write_text(".mtp-agent/\n")
        trust_folder(self.root)  # the user's own settings, trusted as `agent trust` would (MTP_AGENT_CONFIG_DIR)

    def set_turns(self, turns: list[dict]) -> None:
        self.script.write_text("".join(json.dumps(t) + "\n" for t in turns))

    def env(self, **extra: str) -> dict[str, str]:
        return git_env(self.home, **extra)

    def git(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        done = subprocess.run(["git", *args], cwd=self.root, env=self.env(**env), capture_output=True, text=True)
        if check and done.returncode:
            raise AssertionError(f"git {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def agent(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([*AGENT, *args], cwd=self.root, env=self.env(**env), capture_output=True, text=True, timeout=300)

    def write(self, path: str, text: str | bytes) -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text) if isinstance(text, bytes) else target.write_text(text)
        return target

    def stage(self, path: str, text: str | bytes) -> None:
        self.write(path, text)
        self.git("add", path)

    def message(self, rev: str = "HEAD") -> str:
        return self.git("log", "-1", "--format=%B", rev).stdout.strip()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def hooks_dir(self) -> Path:
        return (self.root / self.git("rev-parse", "--git-path", "hooks").stdout.strip()).resolve()


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root (the .git folder's index included, its logs not) by content hash."""
    out = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not relative.startswith((".git/objects", ".git/logs", ".mtp-agent/")):
            out[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def init_and_commit(root: Path) -> None:
    """Make `root` a git repository with one commit of everything in it (a local identity, so the
    machine's git configuration is not needed)."""
    for cmd in (["init", "-q"], ["config", "user.name", "Test"], ["config", "user.email", "test@example.com"],
                ["add", "-A"], ["commit", "-qm", "initial"]):
        subprocess.run(["git", *cmd], cwd=root, check=True)


def committed_project(root: Path, files: dict[str, str]) -> Path:
    """`root` made with these files (paths relative to it) and committed as one git repository."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    init_and_commit(root)
    return root
