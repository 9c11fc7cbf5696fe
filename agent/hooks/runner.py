"""What the installed hooks run: `agent hooks run prepare-commit-msg|pre-commit`. A hook never
leaves the user unable to commit unless they asked for that: when the model cannot be loaded or
the time budget runs out it says so in one line and lets the commit proceed (`--fail-closed`
blocks instead). It reads the index through git and writes only the commit message file."""

from __future__ import annotations

import os
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO, TypeVar

from agent.backends.base import Backend
from agent.errors import AgentError
from agent.tools.files import write_atomic
from agent.hooks.commit_message import write_commit_message
from agent.hooks.diff import DiffTarget, git, read_changes
from agent.hooks.review import Review, check_threshold, review_changes

T = TypeVar("T")
SKIPPED_SOURCES = {"message", "template", "merge", "squash", "commit"}  # -m/-F, -t, merges, squashes, --amend/-c/-C
SCISSORS = "------------------------ >8 ------------------------"


@dataclass
class HookSettings:
    timeout: float = 60.0
    fail_closed: bool = False
    fail_on: str = "high"
    style: str = "auto"
    debug: bool = False

    @classmethod
    def from_config(cls, section: dict, **flags: object) -> "HookSettings":
        """[hooks] in the config files, then the flags that were given (None: not given)."""
        settings = cls()
        for key, value in {**section, **{k: v for k, v in flags.items() if v is not None}}.items():
            if not hasattr(settings, key):
                raise AgentError(f"unknown setting '{key}' in [hooks]; known: timeout, fail_closed, fail_on, style")
            try:
                setattr(settings, key, type(getattr(cls(), key))(value))
            except (TypeError, ValueError):
                raise AgentError(f"[hooks] {key} = {value!r} is not a {type(getattr(cls(), key)).__name__}") from None
        if settings.timeout <= 0:
            raise AgentError(f"the hook time budget must be positive (got {settings.timeout:g} s)")
        check_threshold(settings.fail_on)
        return settings


class HookFailed(Exception):
    """The hook could not do its job; `exit_code` is 0 when failing open."""

    def __init__(self, exit_code: int):
        super().__init__(exit_code)
        self.exit_code = exit_code


class BudgetExceeded(Exception):
    pass


def within_budget(job: Callable[[threading.Event], T], seconds: float) -> T:
    """job(cancel) on a daemon thread; cancel is set and BudgetExceeded raised if it runs over.
    (Loading a model cannot be interrupted, so the thread is left behind; the hook's process
    exits right after.)"""
    cancel = threading.Event()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = job(cancel)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = e

    thread = threading.Thread(target=target, name="mtp-agent-hook", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        cancel.set()
        raise BudgetExceeded
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def guarded(what: str, job: Callable[[threading.Event], T], settings: HookSettings, err: TextIO,
            fail_open: str = "the commit goes ahead without it") -> T:
    """The job's result, or one line on `err` and HookFailed (exit 0, or 1 with fail_closed);
    `fail_open` says what happens next when the hook fails open."""
    outcome = "the commit is blocked (fail-closed)" if settings.fail_closed else fail_open
    try:
        return within_budget(job, settings.timeout)
    except BudgetExceeded:
        reason = f"it took longer than its {settings.timeout:g} s budget (set timeout in [hooks] of .mtp-agent/config.toml)"
    except Exception as e:  # noqa: BLE001 - failing open is the point: no bug of ours may stop a commit
        if settings.debug:
            traceback.print_exc(file=err)
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    print(f"mtp-agent: {what} skipped: {reason}; {outcome}", file=err)
    err.flush()
    raise HookFailed(1 if settings.fail_closed else 0)


def _comment_prefixes(root: Path) -> tuple[str, ...]:
    configured = git(root, "config", "--get", "core.commentString", ok_codes=(0, 1)).strip() or \
        git(root, "config", "--get", "core.commentChar", ok_codes=(0, 1)).strip()
    if configured == "auto":
        return tuple("#;@!$%^&|:")
    return (configured or "#",)


def has_message(text: str, comment_prefixes: tuple[str, ...] = ("#",)) -> bool:
    """Whether a commit message file already says something (from -m, -F, a template, or an
    earlier hook): a line that is neither blank nor a comment, above git's scissors line."""
    for line in text.splitlines():
        if line.startswith(comment_prefixes):
            if SCISSORS in line:
                break
            continue
        if line.strip():
            return True
    return False


def write_message_file(path: Path, message: str) -> None:
    """The message on top of what the file held (git's comment lines), replaced atomically."""
    try:
        existing = path.read_text(encoding="utf-8") if path.exists() else ""
    except OSError as e:
        raise AgentError(f"cannot read the commit message file {path}: {e.strerror}") from e
    text = message.rstrip("\n") + "\n" + ("\n" + existing.lstrip("\n") if existing.strip() else "")
    write_atomic(path, text.encode("utf-8"))


def _staged_paths(root: Path) -> list[str]:
    return [p for p in git(root, "diff", "--cached", "--name-only", "-z").split("\0") if p]


def prepare_commit_msg(root: Path, message_file: Path, source: str | None, settings: HookSettings,
                       load_backend: Callable[[], Backend], err: TextIO = sys.stderr) -> int:
    source = source or os.environ.get("PRE_COMMIT_COMMIT_MSG_SOURCE")  # the pre-commit framework passes it so
    if source in SKIPPED_SOURCES:
        return 0
    try:
        if message_file.exists() and has_message(message_file.read_text(encoding="utf-8", errors="replace"), _comment_prefixes(root)):
            return 0
        if not _staged_paths(root):
            return 0
    except (OSError, AgentError) as e:
        print(f"mtp-agent: commit message skipped: {e}", file=err)
        return 1 if settings.fail_closed else 0
    try:
        message = guarded("commit message", lambda cancel: write_commit_message(load_backend(), root, settings.style, cancel),
                          settings, err)
        write_message_file(message_file, message.text)
    except HookFailed as e:
        return e.exit_code
    except AgentError as e:
        print(f"mtp-agent: commit message skipped: {e}", file=err)
        return 1 if settings.fail_closed else 0
    if message.fallback:
        print("mtp-agent: the model's answer had no usable subject; the message names the changed files instead", file=err)
    return 0


def print_review(review: Review, threshold: str, as_json: bool, out: TextIO, err: TextIO) -> int:
    """Findings on `out` (text or one JSON object), the summary on `err`; 1 if any finding is at
    or above the threshold."""
    import json

    if as_json:
        print(json.dumps(review.as_dict(threshold), indent=2), file=out)
    else:
        for finding in review.findings:
            print(finding.format(), file=out)
        for line in review.summary():
            print(f"mtp-agent: {line}", file=err)
    return 1 if review.at_or_above(threshold) else 0


def pre_commit(root: Path, settings: HookSettings, load_backend: Callable[[], Backend],
               out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        changes = read_changes(root, DiffTarget())
    except AgentError as e:
        print(f"mtp-agent: review skipped: {e}", file=err)
        return 1 if settings.fail_closed else 0
    if not changes.files:
        return 0
    try:
        # failing open, the secret scan still runs (it needs no model) and may block the commit
        review = guarded("review", lambda cancel: review_changes(load_backend(), changes, cancel), settings, err,
                         fail_open="only the secret scan runs")
    except HookFailed as e:
        if e.exit_code:
            return e.exit_code
        review = review_changes(None, changes)  # secrets are found without the model
        if not review.findings:
            return 0
    code = print_review(review, settings.fail_on, False, out, err)
    if code:
        blocking = review.at_or_above(settings.fail_on)
        print(f"mtp-agent: {len(blocking)} finding{'s' if len(blocking) != 1 else ''} at or above {settings.fail_on}: "
              "the commit is blocked. Fix them, or skip the review once with `git commit --no-verify`.", file=err)
    return code
