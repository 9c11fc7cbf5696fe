"""An interactive session, whatever draws it: what the user types (a task, a `/command`, a
`!shell` line, `@path` mentions), the agent that runs it, approvals, and the numbers the status
line shows. The TUI (agent/frontends/tui) and the line REPL (agent/frontends/repl.py) are two faces of this object.

Methods that talk to the model or touch the repository block; UIs call them from a worker
thread. Events reach the UI through `on_event`, from whichever thread produced them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import git

from agent.core.config import load_config, save_project_rule
from agent.errors import AgentError
from agent.core.events import CompactionEvent, Event, EventSink, StatsEvent, ToolOutputEvent, UserShellEvent
from agent.core.loop import RunResult
from agent.core.permissions import MODES, Approval, Decision, Permissions, suggested_rule
from agent.frontends.commands import COMMAND_NAMES, MODE_HELP, help_text
from agent.prompts import load_prompt
from agent.core.setup import RunSettings, find_root, make_backend, open_session, prepare
from agent.core.repo import repository_diff, repository_files, run_git
from agent.core.session import Session, list_sessions, sessions_dir
from agent.tools import run_tool
from agent.tools.base import Tool

MENTION_FILE_CHARS = 20_000  # an @path's content attached to the message, at most this much
MENTION_TOTAL_CHARS = 60_000
COMPLETION_FILES = 50_000  # files `@path` completes from, at most


@dataclass(frozen=True)
class ApprovalRequest:
    """What a person sees when a call needs approval."""

    tool: str
    arguments: dict[str, Any]
    reason: str  # why it is asked, e.g. "edit_file needs approval in ask mode"
    rule: str  # what "always allow" would remember, e.g. "edit_file(src/**)"
    diff: str | None  # for edits: the change, before it is applied


@dataclass
class Reply:
    """What a slash command or a `!` line produced, for the UI to show or do."""

    text: str = ""
    kind: str = "notice"  # notice, markdown, diff, shell, error
    action: str | None = None  # help, quit, clear, resume-picker, transcript (redraw from the session)
    task: str | None = None  # a task for the agent to run next (e.g. /commit without a message)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Status:
    """The status line's numbers."""

    model: str = ""
    backend: str = ""
    mode: str = "ask"
    context_used: int = 0
    context_limit: int = 0
    prefill_tps: float = 0.0
    decode_tps: float = 0.0
    drafted: int = 0  # all drafters
    accepted: int = 0
    mtp_drafted: int = 0  # of which by the MTP head; the rest by prompt lookup
    mtp_accepted: int = 0
    reused: int = 0
    branch: str | None = None
    dirty: bool = False
    session_id: str = ""

    def drafts(self) -> list[tuple[str, int, int]]:
        """(label, accepted, drafted) for each kind of draft this session had: `MTP` only for
        the MTP head's, `lookup` for prompt lookup's."""
        lookup_drafted, lookup_accepted = self.drafted - self.mtp_drafted, self.accepted - self.mtp_accepted
        return [(label, accepted, drafted) for label, accepted, drafted in
                (("MTP", self.mtp_accepted, self.mtp_drafted), ("lookup", lookup_accepted, lookup_drafted)) if drafted]


class InteractiveSession:
    """One user's conversation with the agent in one repository."""

    def __init__(self, settings: RunSettings, cwd: Path, on_event: EventSink,
                 ask: Callable[[ApprovalRequest], Approval] | None = None):
        self.settings, self.on_event, self.ask = settings, on_event, ask
        self.root = find_root(cwd)
        self.agent, init = prepare(settings, cwd, self._emit, self._approve)
        self.agent.env.workspace.on_output = lambda text: self._emit(ToolOutputEvent(text))
        self.status = Status(model=init.model, backend=init.backend, mode=init.permission_mode,
                             context_limit=init.context_window, session_id=init.session_id)
        self.init_event = init
        self.pending_notes: list[str] = []  # `!` commands' output, sent along with the next message
        self._busy = threading.Lock()
        self._files: list[str] | None = None
        self.refresh_git()
        self.status.context_used = self.agent.context_tokens()

    # -- the agent ------------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        return self.agent.session

    @property
    def permissions(self) -> Permissions:
        return self.agent.env.permissions

    def run(self, task: str) -> RunResult:
        """Run one task to its end (blocks). `@path` mentions attach the files' text."""
        attachments = self.mentions(task)
        message = "\n\n".join(self.pending_notes + [task] + attachments)
        self.pending_notes = []
        with self._busy:
            result = self.agent.run(message)
        self.refresh_git()
        return result

    def interrupt(self) -> None:
        self.agent.interrupt()

    def _emit(self, event: Event) -> None:
        if isinstance(event, StatsEvent):
            s, turn = self.status, event.stats
            s.prefill_tps, s.decode_tps = event.prefill_tokens_per_second, event.decode_tokens_per_second
            s.reused = turn.reused_prompt_tokens
            s.drafted += turn.drafted_tokens
            s.accepted += turn.accepted_tokens
            s.mtp_drafted += turn.mtp_drafted_tokens
            s.mtp_accepted += turn.mtp_accepted_tokens
            s.context_used = turn.prompt_tokens + turn.generated_tokens
        elif isinstance(event, CompactionEvent):
            self.status.context_used = event.tokens_after
        self.on_event(event)

    def _approve(self, tool: Tool, arguments: dict[str, Any], decision: Decision, diff: str | None) -> Approval:
        if self.ask is None:
            return Approval(False, reason="nobody is there to approve it")
        subject = Permissions.subject(tool, arguments, self.agent.env.workspace)
        approval = self.ask(ApprovalRequest(tool.name, arguments, decision.reason, suggested_rule(tool, subject, self.agent.env.permissions), diff))
        if approval.always_rule:
            save_project_rule(self.root, approval.always_rule)
        return approval

    # -- what the user types --------------------------------------------------------------------

    def mentions(self, text: str) -> list[str]:
        """The text of files named as @path in the message, as blocks the model can read."""
        blocks, total = [], 0
        for word in text.split():
            if not word.startswith("@") or len(word) < 2:
                continue
            relative = word[1:].rstrip(".,;:!?)")
            path = (self.root / relative).resolve()
            if self.root not in path.parents or not path.is_file():
                continue
            content = path.read_text(encoding="utf-8", errors="replace")[:MENTION_FILE_CHARS]
            if total + len(content) > MENTION_TOTAL_CHARS:
                break
            total += len(content)
            blocks.append(f"Contents of {relative}:\n```\n{content}\n```")
        return blocks

    def run_shell(self, command: str) -> Reply:
        """A `!command`: run directly (the user typed it, so no approval), shown to the user, and
        its output sent to the model with the next message."""
        env = self.agent.env
        with self._busy:
            env.workspace.cancel.clear()
            result = run_tool(env.tools["shell"], env.workspace, {"command": command})
            env.workspace.cancel.clear()
        self.pending_notes.append(f"I ran `{command}` in the shell:\n```\n{result.output}\n```")
        self.session.add_event(UserShellEvent(command, result.output))
        self.refresh_git()
        return Reply(result.output, kind="shell", data={"command": command, "is_error": result.is_error})

    def command(self, line: str) -> Reply:
        """A `/command [arguments]` line."""
        name, _, argument = line.strip().removeprefix("/").partition(" ")
        argument = argument.strip()
        handler = getattr(self, f"cmd_{name}", None)
        if name not in COMMAND_NAMES or handler is None:
            close = [c for c in COMMAND_NAMES if c.startswith(name[:1])]
            hint = f" (did you mean /{close[0]}?)" if close and name else ""
            return Reply(f"unknown command /{name}{hint}; /help lists them", kind="error")
        try:
            return handler(argument)
        except AgentError as e:
            return Reply(str(e), kind="error")

    def cmd_help(self, argument: str) -> Reply:
        return Reply(help_text(), kind="markdown", action="help")

    def cmd_quit(self, argument: str) -> Reply:
        return Reply("bye", action="quit")

    def cmd_mode(self, argument: str) -> Reply:
        if not argument:
            return Reply(f"permission mode: {self.permissions.mode} (one of {', '.join(MODES)}; Shift+Tab cycles)")
        if argument not in MODES:
            return Reply(f"unknown mode '{argument}'; use one of {', '.join(MODES)}", kind="error")
        return self.set_mode(argument)

    def set_mode(self, mode: str) -> Reply:
        self.permissions.mode = self.status.mode = mode
        return Reply(f"permission mode: {mode} — {MODE_HELP[mode]}")

    def cycle_mode(self) -> Reply:
        return self.set_mode(MODES[(MODES.index(self.permissions.mode) + 1) % len(MODES)])

    def cmd_model(self, argument: str) -> Reply:
        if not argument:
            return Reply(f"model: {self.agent.backend.model} ({self.agent.backend.name} backend), "
                         f"context {self.agent.backend.context_window} tokens")
        key = "script" if self.agent.backend.name == "scripted" else "model"
        settings = replace(self.settings, **{key: Path(argument) if key == "script" else argument})
        backend = make_backend(settings, load_config(self.root))
        self.settings, self.agent.backend = settings, backend
        self.agent.env.workspace.attribution = f"mtp-agent:{backend.model}"
        self.status.model, self.status.context_limit = backend.model, backend.context_window
        self.status.context_used = self.agent.context_tokens()
        return Reply(f"switched to {backend.model} ({backend.name} backend, context {backend.context_window} tokens)")

    def cmd_clear(self, argument: str) -> Reply:
        settings = replace(self.settings, resume=None, continue_session=False)
        self.agent.session = open_session(settings, self.root, self.agent.backend)
        self.pending_notes = []
        self._new_session_status()
        return Reply(f"new conversation (session {self.session.id}); the previous one stays saved", action="clear")

    def cmd_compact(self, argument: str) -> Reply:
        if sum(m["role"] != "system" for m in self.session.messages) < 2:
            return Reply("nothing to compact yet")
        with self._busy:
            event = self.agent.compact(force=True)
        assert event is not None
        return Reply(f"compacted the conversation: {event.tokens_before} -> {event.tokens_after} tokens",
                     action="transcript")

    def cmd_undo(self, argument: str) -> Reply:
        from agent.core.checkpoints import CheckpointError, undo_last

        try:
            checkpoint, report = undo_last(self.root, self.session.id)
        except CheckpointError as e:
            return Reply(str(e), kind="error")
        lines = [f"restored the files as they were before {checkpoint.label}"]
        for label, paths in (("restored", report.restored), ("deleted", report.deleted), ("recreated", report.recreated)):
            lines += [f"  {label}: {path}" for path in paths]
        self.refresh_git()
        return Reply("\n".join(lines))

    def cmd_diff(self, argument: str) -> Reply:
        diff = repository_diff(self.root)
        return Reply(diff, kind="diff") if diff.strip() else Reply("no uncommitted changes")

    def cmd_commit(self, argument: str) -> Reply:
        if not run_git(self.root, "status", "--porcelain").strip():  # cheaper than building the diff
            return Reply("nothing to commit: the working tree is clean")
        if not argument:
            return Reply("asking the agent to commit the changes", task=load_prompt("commit.md").strip())
        with self._busy:
            run_git(self.root, "add", "--all")
            result = run_tool(self.agent.env.tools["git_commit"], self.agent.env.workspace, {"message": argument})
        self.refresh_git()
        return Reply(result.output, kind="error" if result.is_error else "notice")

    def cmd_resume(self, argument: str) -> Reply:
        if not argument:
            sessions = [s for s in list_sessions(self.root) if s.id != self.session.id]
            if not sessions:
                return Reply("there is no other saved session for this repository")
            return Reply("pick a session", action="resume-picker", data={"sessions": sessions})
        self.agent.session = Session.load(self.root, argument)
        self.pending_notes = []
        self._new_session_status()
        return Reply(f"resumed session {argument} ({len(self.session.messages)} messages)", action="transcript")

    def cmd_stats(self, argument: str) -> Reply:
        return Reply(stats_text(self), kind="markdown")

    def _new_session_status(self) -> None:
        self.status.session_id = self.session.id
        self.status.drafted = self.status.accepted = self.status.mtp_drafted = self.status.mtp_accepted = self.status.reused = 0
        self.status.context_used = self.agent.context_tokens()

    # -- completion and status ------------------------------------------------------------------

    def files(self) -> list[str]:
        if self._files is None:
            # outside git, hidden folders and files are left out of completion
            self._files = repository_files(self.root, skip_folder=lambda folder: folder.name.startswith("."),
                                           hidden_files=False, limit=COMPLETION_FILES)
        return self._files

    def complete_path(self, prefix: str, limit: int = 20) -> list[str]:
        """Repository files for an `@prefix`: those starting with it first, then those containing it."""
        lowered = prefix.lower()
        starts = [f for f in self.files() if f.lower().startswith(lowered)]
        contains = [f for f in self.files() if lowered in f.lower() and f not in starts]
        return (sorted(starts, key=lambda f: (f.count("/"), f)) + sorted(contains, key=len))[:limit]

    @staticmethod
    def complete_command(prefix: str) -> list[str]:
        return [f"/{name}" for name in COMMAND_NAMES if name.startswith(prefix.removeprefix("/"))]

    def refresh_git(self) -> None:
        self._files = None
        try:
            repo = git.Repo(self.root)
            self.status.branch = repo.active_branch.name if not repo.head.is_detached else repo.head.commit.hexsha[:7]
            self.status.dirty = repo.is_dirty(untracked_files=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError, TypeError):
            self.status.branch, self.status.dirty = None, False

    def history_path(self) -> Path:
        directory = sessions_dir(self.root)
        directory.mkdir(parents=True, exist_ok=True)
        return directory / "input-history"


def stats_text(interactive: InteractiveSession) -> str:
    s, events = interactive.status, interactive.session.events
    results = [e for e in events if e.get("type") == "result"]
    total = {key: sum(r.get(key, 0) for r in results) for key in
             ("turns", "prompt_tokens", "reused_prompt_tokens", "generated_tokens", "drafted_tokens", "accepted_tokens",
              "mtp_drafted_tokens", "mtp_accepted_tokens")}
    mtp = (total["mtp_accepted_tokens"], total["mtp_drafted_tokens"])
    lookup = (total["accepted_tokens"] - mtp[0], total["drafted_tokens"] - mtp[1])
    drafts = "; ".join(f"{name}: {accepted} of {drafted} drafted tokens accepted ({100 * accepted / drafted:.0f}%)"
                       for name, (accepted, drafted) in (("MTP head", mtp), ("prompt lookup", lookup)) if drafted) or "none"
    return "\n".join([
        f"**session** {interactive.session.id} · {len(results)} tasks · {total['turns']} model turns",
        f"- model: {s.model} ({s.backend}), context {s.context_used} / {s.context_limit} tokens",
        f"- prompt tokens: {total['prompt_tokens']} ({total['reused_prompt_tokens']} reused from the cache)",
        f"- generated tokens: {total['generated_tokens']}",
        f"- last turn: prefill {s.prefill_tps:.1f} tok/s, decode {s.decode_tps:.1f} tok/s",
        f"- speculative decoding: {drafts}",
        f"- saved in {interactive.session.path}",
    ])
