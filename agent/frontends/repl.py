"""The line-based REPL (`agent --plain`, or `agent` without a terminal): prompt-toolkit's line
editor with history and completion over the same InteractiveSession as the TUI. Ctrl-C stops
the running turn; Ctrl-D or /quit leaves."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Iterable, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from rich.console import Console
from rich.markdown import Markdown
from rich.syntax import Syntax

from agent.core.events import (Event, PermissionEvent, PrefillProgressEvent, ResultEvent, TextDeltaEvent, ToolCallEvent,
                               ToolOutputEvent, ToolResultEvent)
from agent.core.stream import StreamSplitter
from agent.frontends.interactive import ApprovalRequest, InteractiveSession, Reply
from agent.core.permissions import Approval
from agent.core.setup import RunSettings, find_root
from agent.frontends.trust import ask_trust


class SessionCompleter(Completer):
    """/commands at the start of the line, @paths anywhere."""

    def __init__(self, interactive: InteractiveSession):
        self.interactive = interactive

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        before = document.text_before_cursor
        word = before.split(" ")[-1]
        if before.startswith("/") and " " not in before:
            for name in self.interactive.complete_command(before):
                yield Completion(name, start_position=-len(before))
        elif word.startswith("@"):
            for path in self.interactive.complete_path(word[1:]):
                yield Completion("@" + path, start_position=-len(word))


class Printer:
    """Events as lines: streamed text as it comes (reasoning dimmed), tool calls, live output."""

    def __init__(self, console: Console):
        self.console = console
        self.splitter = StreamSplitter()
        self.streaming = False

    def __call__(self, event: Event) -> None:
        out = self.console
        if isinstance(event, TextDeltaEvent):
            for part, text in self.splitter.feed(event.text):
                out.print(text, end="", style="dim italic" if part == "think" else None, markup=False, highlight=False)
            self.streaming = True
            return
        if self.streaming:
            out.print()
            self.streaming = False
            self.splitter = StreamSplitter()
        match event:
            case ToolCallEvent():
                args = ", ".join(f"{k}={str(v)[:60]!r}" for k, v in event.arguments.items() if k not in ("content", "old_string", "new_string"))
                out.print(f"→ {event.name}({args})", style="cyan", markup=False)
                if event.diff:
                    out.print(Syntax(event.diff, "diff", theme="ansi_dark"))
            case ToolOutputEvent():
                out.print(event.text, end="", style="dim", markup=False, highlight=False)
            case ToolResultEvent():
                first = (event.output.strip().splitlines() or [""])[-1]
                out.print(f"  {'✗' if event.is_error else '✓'} {first[:120]}", style="red" if event.is_error else "green", markup=False)
            case PermissionEvent(decision="deny"):
                out.print(f"  denied: {event.reason}", style="yellow", markup=False)
            case PrefillProgressEvent():
                out.print(f"\r  prefill {event.done}/{event.total} tokens", end="", style="dim", markup=False)
            case ResultEvent(status="interrupted"):
                out.print("Interrupted. The turn is saved as it stood; send a message to go on.", style="yellow")
            case ResultEvent(status=status) if status != "done":
                out.print(f"{status}: {event.error}", style="red", markup=False)


class Repl:
    def __init__(self, settings: RunSettings, cwd: Path, stdin: TextIO | None = None, console: Console | None = None):
        self.console = console or Console(highlight=False)
        self.stdin = stdin or sys.stdin
        self.prompt: PromptSession | None = None
        if not settings.trust_project and ask_trust(find_root(cwd), self.read, self._say):
            settings = replace(settings, trust_project=True)
        self.interactive = InteractiveSession(settings, cwd, Printer(self.console), self.ask)
        for warning in self.interactive.init_event.warnings:
            self.console.print(f"warning: {warning}", style="yellow", markup=False)
        if self.stdin.isatty():
            self.prompt = PromptSession(history=FileHistory(str(self.interactive.history_path())),
                                        completer=SessionCompleter(self.interactive), complete_while_typing=True)

    def _say(self, text: str) -> None:
        self.console.print(text, markup=False)

    def read(self, message: str) -> str | None:
        """A line from the user, None at end of input."""
        if self.prompt is not None:
            try:
                return self.prompt.prompt(message)
            except EOFError:
                return None
        self.console.print(message, end="", markup=False)  # "[y/N]" is text, not a style
        line = self.stdin.readline()
        return None if not line else line.rstrip("\n")

    def ask(self, request: ApprovalRequest) -> Approval:
        out = self.console
        out.print(f"Allow {request.tool}? ({request.reason})", style="bold yellow", markup=False)
        if request.diff:
            out.print(Syntax(request.diff, "diff", theme="ansi_dark"))
        elif "command" in request.arguments:
            out.print(f"  $ {request.arguments['command']}", markup=False)
        while True:
            answer = self.read(f"[y] once · [a] always allow {request.rule} · [n] no: ")
            choice = (answer or "n").strip().lower()[:1]
            if choice == "y":
                return Approval(True)
            if choice == "a":
                return Approval(True, always_rule=request.rule)
            if choice == "n":
                reason = (self.read("Why not (optional, goes to the model)? ") or "").strip()
                return Approval(False, reason=f"the user declined: {reason}" if reason else "the user declined")

    def show(self, reply: Reply) -> None:
        if reply.kind == "diff":
            self.console.print(Syntax(reply.text, "diff", theme="ansi_dark"))
        elif reply.kind == "markdown":
            self.console.print(Markdown(reply.text))
        elif reply.kind != "shell":
            self.console.print(reply.text, style="red" if reply.kind == "error" else "dim", markup=False)

    def handle(self, line: str) -> bool:
        """One line from the user; False when it asks to leave."""
        if line.startswith("/"):
            name = line.strip().split(" ")[0]
            if name == "/resume" and line.strip() == "/resume":
                reply = self.interactive.command(line)
                for s in reply.data.get("sessions", []):
                    self.console.print(f"{s.id}  {s.first_task}", markup=False)
                if reply.data.get("sessions"):
                    self.console.print("resume one with /resume ID", style="dim")
                else:
                    self.show(reply)
                return True
            reply = self.interactive.command(line)
            self.show(reply)
            if reply.action == "quit":
                return False
            if reply.task:
                self.interactive.run(reply.task)
        elif line.startswith("!"):
            self.show(self.interactive.run_shell(line[1:].strip()))
        else:
            self.interactive.run(line)
        return True

    def loop(self) -> int:
        s = self.interactive.status
        self.console.print(f"mtp-agent · {s.model} ({s.backend}) · {s.mode} mode · session {s.session_id} · /help for commands",
                           style="dim", markup=False)
        while True:
            try:
                line = self.read("› ")
            except KeyboardInterrupt:
                continue
            if line is None:
                return 0
            if not line.strip():
                continue
            try:
                if not self.handle(line):
                    return 0
            except KeyboardInterrupt:  # between steps; the loop itself records interrupts inside a turn
                self.console.print("interrupted", style="yellow")


def run_repl(settings: RunSettings, cwd: Path) -> int:
    return Repl(settings, cwd).loop()
