"""The terminal UI: a transcript, a prompt and a status line over an InteractiveSession.

The agent runs in a thread worker and reports through events, which arrive here as `AgentEvent`
messages; approvals cross back with call_from_thread. The UI thread never waits on the model.
"""

from __future__ import annotations

from concurrent.futures import Future, TimeoutError as FutureTimeout
from dataclasses import replace
from pathlib import Path

from prompt_toolkit.history import FileHistory
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Markdown, OptionList, ProgressBar
from textual.widgets.option_list import Option

from agent.core.events import (AssistantEvent, CheckpointEvent, CompactionEvent, Event, FormatErrorEvent, PermissionEvent,
                               PrefillProgressEvent, ResultEvent, TextDeltaEvent, ToolCallEvent, ToolOutputEvent,
                               ToolResultEvent)
from agent.frontends.commands import help_text
from agent.frontends.interactive import ApprovalRequest, InteractiveSession, Reply
from agent.core.loop import Interrupted
from agent.core.permissions import DENIED, Approval
from agent.core.setup import RunSettings, find_root
from agent.frontends.trust import ask_trust
from agent.frontends.tui.screens import ApprovalScreen, HelpScreen, ResumeScreen
from agent.frontends.tui.widgets import AssistantBlock, Completions, Notice, PromptInput, StatusLine, ToolBlock, UserBlock, diff_view

APPROVAL_POLL_S = 0.05


class AgentEvent(Message):
    def __init__(self, event: Event):
        super().__init__()
        self.event = event


class CommandReplied(Message):
    def __init__(self, reply: Reply):
        super().__init__()
        self.reply = reply


class ApprovalNeeded(Message):
    """Posted, not called across threads, so it arrives after the events that came before it."""

    def __init__(self, request: ApprovalRequest, answer: Future):
        super().__init__()
        self.request, self.answer = request, answer


class WorkFinished(Message):
    def __init__(self, error: str | None = None):
        super().__init__()
        self.error = error


class AgentApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "mtp-agent"
    BINDINGS = [
        Binding("escape", "interrupt", "interrupt", priority=True),
        Binding("shift+tab", "cycle_mode", "permission mode", priority=True),
        Binding("ctrl+c", "interrupt_or_quit", "quit", priority=True),
        Binding("f1", "help", "help"),
    ]

    def __init__(self) -> None:
        super().__init__()
        # attached after construction: the session needs the app's event sink and approver
        self.interactive: InteractiveSession = None  # type: ignore[assignment]
        self.busy = False
        self.queued: list[str] = []
        self.activity = ""
        self.assistant: AssistantBlock | None = None
        self.live_tool: ToolBlock | None = None
        self.tool_blocks: dict[str, ToolBlock] = {}
        self.approving: Future | None = None
        self._history: FileHistory | None = None

    def attach(self, interactive: InteractiveSession) -> None:
        self.interactive = interactive

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield VerticalScroll(id="transcript")
        yield ProgressBar(id="prefill", show_eta=False)
        yield Completions(id="completions")
        self._history = FileHistory(str(self.interactive.history_path()))
        history = list(reversed(list(self._history.load_history_strings())))
        yield PromptInput(history, id="prompt", placeholder="Message the agent · /help · !command · @file")
        yield StatusLine(id="status")

    def on_mount(self) -> None:
        self.query_one("#prefill").display = False
        self.query_one("#completions").display = False
        self.query_one("#transcript", VerticalScroll).anchor()
        init = self.interactive.init_event
        if init.resumed:
            self.redraw_transcript()
        self.notice(f"{init.model} ({init.backend}) in {init.root} · {init.permission_mode} mode · "
                    f"session {init.session_id}" + (" (resumed)" if init.resumed else ""))
        for warning in init.warnings:
            self.notice(f"warning: {warning}", "warning")
        self.query_one("#prompt").focus()
        self.show_status()

    def on_unmount(self) -> None:
        """Leaving while the agent works: stop it, so the worker thread ends and the app can exit."""
        if self.interactive is not None:
            self.interactive.interrupt()
        if self.approving is not None and not self.approving.done():
            self.approving.set_result(None)

    @property
    def transcript(self) -> VerticalScroll:
        return self.query_one("#transcript", VerticalScroll)

    def add_block(self, widget) -> None:
        self.transcript.mount(widget)

    def notice(self, text, kind: str = "notice") -> None:
        self.add_block(Notice(text, kind))

    def show_status(self) -> None:
        activity = self.activity + (f" · {len(self.queued)} queued" if self.queued else "")
        self.query_one(StatusLine).show(self.interactive.status, activity)

    # -- input ----------------------------------------------------------------------------------

    @on(PromptInput.Submitted)
    def submit(self, message: PromptInput.Submitted) -> None:
        text = message.text.strip()
        self.hide_completions()
        if self._history is not None:
            self._history.store_string(text)
        if self.busy:
            self.queued.append(text)
            self.notice(f"queued (runs when the current task ends; Esc interrupts it): {text}")
            self.show_status()
            return
        self.start(text)

    def start(self, text: str) -> None:
        self.busy = True
        if text.startswith("!"):
            self.add_block(UserBlock(text))
            self.live_tool = ToolBlock("!", {"command": text[1:].strip()})
            self.add_block(self.live_tool)
            self.activity = "running your command"
        elif not text.startswith("/"):
            self.add_block(UserBlock(text))
            self.activity = "thinking"
        self.show_status()
        self.process(text)

    @work(thread=True, group="agent")
    def process(self, text: str) -> None:
        error = None
        try:
            if text.startswith("/"):
                reply = self.interactive.command(text)
                self.post_message(CommandReplied(reply))
                if reply.task:
                    self.interactive.run(reply.task)
            elif text.startswith("!"):
                self.post_message(CommandReplied(self.interactive.run_shell(text[1:].strip())))
            else:
                self.interactive.run(text)
        except Exception as e:  # noqa: BLE001 - shown to the user; the app stays usable
            error = f"{type(e).__name__}: {e}" if not str(e) else str(e)
        self.post_message(WorkFinished(error))

    def on_work_finished(self, message: WorkFinished) -> None:
        self.busy, self.activity = False, ""
        self.live_tool = None
        self.query_one("#prefill").display = False
        if message.error:
            self.notice(message.error, "error")
        self.show_status()
        if self.queued:
            self.start(self.queued.pop(0))

    async def on_command_replied(self, message: CommandReplied) -> None:
        reply = message.reply
        if reply.kind == "shell" and self.live_tool is not None:
            self.live_tool.finish(reply.text, reply.data.get("is_error", False), {})
            self.live_tool = None
        elif reply.action == "help":
            self.push_screen(HelpScreen(reply.text))
        elif reply.action == "quit":
            self.exit()
        elif reply.action == "resume-picker":
            self.push_screen(ResumeScreen(reply.data["sessions"]), self._resume_picked)
        else:
            if reply.action in ("clear", "transcript"):
                self.redraw_transcript()
            if reply.kind == "diff":
                self.notice(diff_view(reply.text), "diff")
            elif reply.kind == "markdown":
                self.add_block(Markdown(reply.text, classes="notice"))
            else:
                self.notice(reply.text, reply.kind)
        if reply.task:
            self.add_block(UserBlock(reply.task))
            self.activity = "thinking"
        self.show_status()

    def _resume_picked(self, session_id: str | None) -> None:
        if session_id:
            self.start(f"/resume {session_id}")

    # -- completion -----------------------------------------------------------------------------

    @on(PromptInput.Changed)
    def suggest(self, event: PromptInput.Changed) -> None:
        prompt = event.text_area
        row, column = prompt.cursor_location
        line = prompt.document.get_line(row)[:column]
        word = line.split(" ")[-1] if line else ""
        candidates: list[str] = []
        if row == 0 and line.startswith("/") and " " not in line:
            candidates = self.interactive.complete_command(line)
        elif word.startswith("@"):
            candidates = ["@" + path for path in self.interactive.complete_path(word[1:])]
        if candidates == [word]:
            candidates = []
        completions = self.query_one(Completions)
        completions.clear_options()
        completions.add_options([Option(c, id=c) for c in candidates])
        completions.display = bool(candidates)
        if candidates:
            completions.highlighted = 0
        prompt.completing = bool(candidates)

    def hide_completions(self) -> None:
        self.query_one(Completions).display = False
        self.query_one(PromptInput).completing = False

    @on(PromptInput.CompletionKey)
    def move_or_take(self, message: PromptInput.CompletionKey) -> None:
        completions = self.query_one(Completions)
        if message.key == "down":
            completions.action_cursor_down()
        elif message.key == "up":
            completions.action_cursor_up()
        elif completions.highlighted is not None:
            self.take_completion(completions.get_option_at_index(completions.highlighted).id or "")

    @on(OptionList.OptionSelected, "#completions")
    def clicked_completion(self, event: OptionList.OptionSelected) -> None:
        self.take_completion(event.option.id or "")

    def take_completion(self, choice: str) -> None:
        prompt = self.query_one(PromptInput)
        row, column = prompt.cursor_location
        line = prompt.document.get_line(row)[:column]
        start = column - len(line.split(" ")[-1])
        prompt.replace(choice + " ", (row, start), (row, column))
        self.hide_completions()
        prompt.focus()

    # -- agent events ---------------------------------------------------------------------------

    def post_event(self, event: Event) -> None:
        """The session's event sink (any thread)."""
        self.post_message(AgentEvent(event))

    async def on_agent_event(self, message: AgentEvent) -> None:
        match message.event:
            case PrefillProgressEvent() as event:
                bar = self.query_one("#prefill", ProgressBar)
                bar.display = True
                bar.update(total=event.total, progress=event.done)
                self.activity = f"prefill {event.done}/{event.total} tokens"
            case TextDeltaEvent() as event:
                self.query_one("#prefill").display = False
                if self.assistant is None:
                    self.assistant = AssistantBlock()
                    self.add_block(self.assistant)
                self.activity = "writing"
                await self.assistant.feed(event.text)
            case AssistantEvent() as event:
                block = self.assistant or AssistantBlock()
                if self.assistant is None:
                    self.add_block(block)
                self.assistant = None
                await block.finish(event.text, event.reasoning)
                if not block.answer_text and not block.thought:
                    await block.remove()
            case ToolCallEvent() as event:
                self.live_tool = ToolBlock(event.name, event.arguments, event.diff, event.id)
                self.tool_blocks[event.id] = self.live_tool
                self.add_block(self.live_tool)
                self.activity = f"running {event.name}"
            case ToolOutputEvent() as event if self.live_tool is not None:
                self.live_tool.append_output(event.text)
            case PermissionEvent(decision="deny") as event if event.id in self.tool_blocks:
                self.tool_blocks[event.id].deny(event.reason)
            case ToolResultEvent() as event if event.id in self.tool_blocks:
                self.tool_blocks.pop(event.id).finish(event.output, event.is_error, event.data)
                self.live_tool = None
                self.activity = "thinking"
            case FormatErrorEvent() as event:
                self.notice(f"the model's tool call could not be read: {event.error}", "warning")
            case CompactionEvent() as event:
                self.notice(f"compacted the conversation: {event.tokens_before} -> {event.tokens_after} tokens")
            case CheckpointEvent(error=error) if error:
                self.notice(f"no checkpoint for /undo: {error}", "warning")
            case ResultEvent() as event:
                await self.finish_turn(event)
        self.show_status()

    async def finish_turn(self, event: ResultEvent) -> None:
        if self.assistant is not None:  # interrupted mid-stream: keep what was said
            await self.assistant.finish(self.assistant.answer_text, self.assistant.thought)
            self.assistant = None
        self.tool_blocks.clear()
        status = event.status
        if status == "interrupted":
            self.notice("Interrupted. The turn is saved as it stood; send a message to go on.", "warning")
        elif status != "done":
            self.notice(f"{status}: {event.error}", "error")

    # -- approvals (called from the worker thread) ----------------------------------------------

    def ask(self, request: ApprovalRequest) -> Approval:
        future: Future = Future()
        self.post_message(ApprovalNeeded(request, future))
        cancel = self.interactive.agent.env.workspace.cancel
        while True:
            try:
                answer = future.result(timeout=APPROVAL_POLL_S)
                break
            except FutureTimeout:
                if cancel.is_set():
                    if not future.done():
                        future.set_result(None)  # not shown yet: it never will be
                    self.call_from_thread(self._close_approval)
                    raise Interrupted("interrupted by the user") from None
        if answer is None:
            self.interactive.interrupt()
            raise Interrupted("interrupted by the user")
        return answer

    def on_approval_needed(self, message: ApprovalNeeded) -> None:
        future = message.answer
        if future.done():  # interrupted before it could be shown
            return
        self.activity = "waiting for your approval"
        self.show_status()
        self.approving = future
        self.push_screen(ApprovalScreen(message.request), lambda answer: future.done() or future.set_result(answer))

    def _close_approval(self) -> None:
        if isinstance(self.screen, ApprovalScreen):
            self.screen.dismiss(None)

    # -- actions --------------------------------------------------------------------------------

    def action_interrupt(self) -> None:
        if self.screen is not self.screen_stack[0]:
            self.screen.dismiss(None)  # approval: stop the turn; help, resume: close
        elif self.query_one(Completions).display:
            self.hide_completions()
        elif self.busy:
            self.interactive.interrupt()
            self.activity = "interrupting"
            self.show_status()

    def action_interrupt_or_quit(self) -> None:
        if self.busy:
            self.action_interrupt()
        else:
            self.exit()

    def action_cycle_mode(self) -> None:
        reply = self.interactive.cycle_mode()
        self.notice(reply.text)
        self.show_status()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_text()))

    def redraw_transcript(self) -> None:
        """The transcript as the session records it (after /resume, /clear, /compact)."""
        self.transcript.remove_children()
        blocks: dict[str, ToolBlock] = {}
        for m in self.interactive.session.messages:
            if m["role"] == "user":
                self.add_block(UserBlock(str(m.get("content", ""))))
            elif m["role"] == "assistant":
                block = AssistantBlock()
                self.add_block(block)
                self.call_after_refresh(block.finish, m.get("content") or "", m.get("reasoning") or "")
                for call in m.get("tool_calls", []):
                    blocks[call["id"]] = ToolBlock(call["name"], call.get("arguments", {}), None, call["id"])
                    self.add_block(blocks[call["id"]])
            elif m["role"] == "tool" and m.get("tool_call_id") in blocks:
                content = str(m.get("content", ""))
                blocks.pop(m["tool_call_id"]).finish(content, content.startswith(DENIED), {})


def run_tui(settings: RunSettings, cwd: Path) -> int:
    if not settings.trust_project and ask_trust(find_root(cwd), input, print):  # on the terminal, before the UI takes it
        settings = replace(settings, trust_project=True)
    app = AgentApp()
    app.attach(InteractiveSession(settings, cwd, app.post_event, app.ask))
    app.run()
    return 0
