"""`agent hooks install|uninstall|status`: our hook scripts in the repository's hooks directory
(core.hooksPath honoured). A hook that was there is renamed, not rewritten, runs first from our
script, and is renamed back on uninstall, so it comes back byte for byte with its mode."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from agent.errors import AgentError
from agent.tools.files import write_atomic
from agent.hooks.diff import git

HOOKS = ("prepare-commit-msg", "pre-commit")
MARKER = "# mtp-agent hook"
OPTIONS_PREFIX = "# options:"
CHAINED_SUFFIX = ".mtp-agent-chained"
SKIP_VARIABLE = "MTP_AGENT_SKIP_HOOKS"


def hooks_dir(root: Path) -> Path:
    """Where git looks for hooks: core.hooksPath if set, else the common git dir's hooks."""
    return (root / git(root, "rev-parse", "--git-path", "hooks").strip()).resolve()


def is_ours(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as f:
        return MARKER.encode() in f.read(400)


def agent_command() -> list[str]:
    """How a hook starts us: the `agent` script beside this interpreter, else the interpreter
    with -P, so that a repository with its own `agent/` folder is not imported instead."""
    script = Path(sys.executable).parent / "agent"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-P", "-m", "agent"] if sys.version_info >= (3, 11) else [sys.executable, "-m", "agent"]


def hook_script(name: str, options: list[str], fail_closed: bool, command: list[str] | None = None) -> str:
    command = command or agent_command()
    what = "the commit message" if name == "prepare-commit-msg" else "the review"
    return f"""#!/bin/sh
{MARKER}: {name}. Installed by `agent hooks install`; `agent hooks uninstall` restores what was here.
{OPTIONS_PREFIX} {shlex.join(options)}
chained="$0{CHAINED_SUFFIX}"
if [ -x "$chained" ]; then
    "$chained" "$@" || exit $?
fi
if [ -n "${SKIP_VARIABLE}" ]; then
    exit 0
fi
program={shlex.quote(command[0])}
if [ ! -x "$program" ]; then
    echo "mtp-agent: $program is gone, so {what} is skipped; run 'agent hooks install' again" >&2
    exit {1 if fail_closed else 0}
fi
exec "$program" {shlex.join(command[1:] + ["hooks", "run", name, *options])} "$@"
"""


def install(root: Path, names: list[str], options: list[str], fail_closed: bool) -> list[str]:
    """Install our hooks `names`; returns one line per hook saying what happened."""
    directory = hooks_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    report = []
    for name in names:
        path, chained = directory / name, directory / (name + CHAINED_SUFFIX)
        if is_ours(path):
            action = "updated"
        elif path.exists() or path.is_symlink():
            if chained.exists() or chained.is_symlink():
                raise AgentError(f"both {path} and {chained} exist and neither is ours; move one of them away first")
            os.rename(path, chained)
            action = f"installed; the hook that was there runs first (kept as {chained.name})"
        else:
            action = "installed"
        write_atomic(path, hook_script(name, options, fail_closed).encode("utf-8"), mode=0o755)
        report.append(f"{name}: {action} in {directory}")
    return report


def uninstall(root: Path) -> list[str]:
    directory = hooks_dir(root)
    report = []
    for name in HOOKS:
        path, chained = directory / name, directory / (name + CHAINED_SUFFIX)
        has_chained = chained.exists() or chained.is_symlink()
        if is_ours(path):
            if has_chained:
                os.replace(chained, path)
                report.append(f"{name}: removed; the hook that was there before is back")
            else:
                path.unlink()
                report.append(f"{name}: removed")
        elif has_chained:
            report.append(f"{name}: not ours any more, left alone; the hook we chained is still at {chained}")
    return report or ["no mtp-agent hooks were installed"]


@dataclass
class HookState:
    name: str
    installed: bool
    options: str  # as written in our script
    chained: bool  # a hook that was there before runs first
    foreign: bool  # a hook that is not ours sits in our place


def status(root: Path) -> tuple[Path, list[HookState]]:
    directory = hooks_dir(root)
    states = []
    for name in HOOKS:
        path, chained = directory / name, directory / (name + CHAINED_SUFFIX)
        ours = is_ours(path)
        options = ""
        if ours:
            options = next((line[len(OPTIONS_PREFIX):].strip() for line in path.read_text(encoding="utf-8").splitlines()
                            if line.startswith(OPTIONS_PREFIX)), "")
        states.append(HookState(name, ours, options, chained.exists() or chained.is_symlink(),
                                not ours and (path.exists() or path.is_symlink())))
    return directory, states


def describe_status(root: Path) -> list[str]:
    directory, states = status(root)
    configured = git(root, "config", "--get", "core.hooksPath", ok_codes=(0, 1)).strip()
    lines = [f"hooks directory: {directory}" + (f" (core.hooksPath = {configured})" if configured else "")]
    for state in states:
        if state.installed:
            line = f"{state.name}: installed" + (f" ({state.options})" if state.options else "")
            if state.chained:
                line += "; the hook that was there before runs first"
        elif state.foreign:
            line = f"{state.name}: not installed (another hook is there; `agent hooks install` would chain it)"
        else:
            line = f"{state.name}: not installed"
        lines.append(line)
    if (root / ".pre-commit-config.yaml").exists():
        lines.append("this repository uses the pre-commit framework: you can run the hooks through it instead "
                     "(see docs/git-hooks.md)")
    return lines
