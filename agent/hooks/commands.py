"""The git helper's commands: `agent commit-msg`, `agent review` and `agent hooks ...`."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import threading
from pathlib import Path
from typing import Callable

from agent.backends.base import Backend, ModelError
from agent.core.config import Config, load_config
from agent.errors import AgentError
from agent.core.setup import RunSettings, make_backend, untrusted_warning
from agent.hooks.commit_message import write_commit_message
from agent.hooks.diff import DiffTarget, GitError, git, read_changes
from agent.hooks.install import HOOKS, SKIP_VARIABLE, describe_status, install, uninstall
from agent.hooks.review import SEVERITIES, review_changes
from agent.hooks.runner import HookSettings, pre_commit, prepare_commit_msg, print_review, write_message_file


def repository_root(cwd: Path) -> Path:
    try:
        top = git(cwd, "rev-parse", "--show-toplevel").strip()
    except GitError:
        raise AgentError(f"{cwd} is not inside a git repository with a working tree") from None
    return Path(top)


@functools.cache
def _config(root: Path) -> Config:
    """The config (read once); a project file's widening settings left out for an untrusted folder say so."""
    config = load_config(root)
    if config.ignored:
        print(f"mtp-agent: {untrusted_warning(config.ignored)}", file=sys.stderr)
    return config


def _backend_loader(settings: RunSettings, root: Path) -> Callable[[], Backend]:
    return lambda: make_backend(settings, _config(root))


def cmd_commit_msg(args: argparse.Namespace, settings: RunSettings) -> int:
    root = repository_root(Path.cwd())
    try:
        message = write_commit_message(_backend_loader(settings, root)(), root, args.style)
    except ModelError as e:
        raise AgentError(f"the model failed: {e}") from e
    if args.write:
        write_message_file(Path(args.write), message.text)
    else:
        sys.stdout.write(message.text)
    if message.fallback:
        print("agent: warning: the model's answer had no usable subject; the message names the changed files instead",
              file=sys.stderr)
    if message.clipped:
        print("agent: the diff was shortened to fit the model's context", file=sys.stderr)
    return 0


def cmd_review(args: argparse.Namespace, settings: RunSettings) -> int:
    root = repository_root(Path.cwd())
    if args.range and ".." not in args.range:
        raise AgentError(f"--range takes two revisions, A..B (or A...B from their merge base); got '{args.range}'")
    changes = read_changes(root, DiffTarget(args.range))
    if not changes.files:
        print(f"agent: nothing to review in {changes.target.describe()}", file=sys.stderr)
        return 0
    try:
        review = review_changes(_backend_loader(settings, root)(), changes)
    except ModelError as e:
        raise AgentError(f"the model failed: {e}") from e
    return print_review(review, args.fail_on, args.format == "json", sys.stdout, sys.stderr)


def hook_options() -> argparse.ArgumentParser:
    """The options `hooks install` writes into the scripts and `hooks run` reads."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--fail-closed", action="store_true",
                         help="block the commit when the model cannot run or runs out of time (default: let it through)")
    options.add_argument("--timeout", type=float, metavar="SECONDS", help="time budget per hook (default 60)")
    options.add_argument("--fail-on", choices=["none", *SEVERITIES],
                         help="review: block on a finding this severe or worse (default high)")
    return options


def _hook_options(args: argparse.Namespace) -> list[str]:
    """The flags `hooks install` writes into the scripts, for `hooks run`."""
    options = ["--fail-closed"] if args.fail_closed else []
    if args.timeout is not None:
        options += ["--timeout", f"{args.timeout:g}"]
    if args.fail_on is not None:
        options += ["--fail-on", args.fail_on]
    return options


def cmd_hooks(args: argparse.Namespace, settings: RunSettings) -> int:
    if args.hooks_command == "run":
        return _run_hook(args, settings)
    root = repository_root(Path.cwd())
    if args.hooks_command == "install":
        names = list(HOOKS) if args.review else ["prepare-commit-msg"]
        for line in install(root, names, _hook_options(args), args.fail_closed):
            print(line)
        if not args.review:
            print("the review hook is opt-in: `agent hooks install --review` adds it")
    elif args.hooks_command == "uninstall":
        for line in uninstall(root):
            print(line)
    else:
        for line in describe_status(root):
            print(line)
    return 0


def _run_hook(args: argparse.Namespace, settings: RunSettings) -> int:
    if os.environ.get(SKIP_VARIABLE):
        return 0
    # the pre-commit framework puts a hook's `args` after the hook name, git its own after those
    given = argparse.ArgumentParser(prog=f"agent hooks run {args.hook}", parents=[hook_options()])
    given.add_argument("values", nargs="*")
    more = given.parse_intermixed_args(args.hook_args)
    args.fail_closed = args.fail_closed or more.fail_closed
    args.timeout = more.timeout if more.timeout is not None else args.timeout
    args.fail_on = more.fail_on or args.fail_on
    fail_open = 1 if args.fail_closed else 0
    try:
        root = repository_root(Path.cwd())
        hook = HookSettings.from_config(_config(root).hooks, timeout=args.timeout, fail_on=args.fail_on,
                                        fail_closed=True if args.fail_closed else None, debug=args.debug or None)
    except AgentError as e:
        print(f"mtp-agent: {args.hook} skipped: {e}", file=sys.stderr)
        return fail_open
    load = _backend_loader(settings, root)
    if args.hook == "prepare-commit-msg":
        if not 1 <= len(more.values) <= 3:
            raise AgentError("prepare-commit-msg takes the message file, and optionally its source and a commit")
        source = more.values[1] if len(more.values) > 1 else None
        code = prepare_commit_msg(root, Path(more.values[0]), source, hook, load)
    else:
        code = pre_commit(root, hook, load)
    if any(t.name == "mtp-agent-hook" and t.is_alive() for t in threading.enumerate()):
        # a model load that ran over its budget cannot be stopped; do not wait for it at exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
