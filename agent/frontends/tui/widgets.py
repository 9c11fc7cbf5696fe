"""The transcript's blocks, the prompt editor and the status line. Widgets never touch the agent:
the app feeds them what its events say."""

from __future__ import annotations

import json
from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Collapsible, Markdown, OptionList, Static, TextArea

from agent.core.stream import StreamSplitter
from agent.frontends.interactive import Status

SHOWN_OUTPUT_CHARS = 6000  # a tool block shows the end of long output; the model saw it all


def short(value: Any, limit: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "⏎")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diff_view(diff: str) -> Syntax:
    return Syntax(diff, "diff", theme="ansi_dark", word_wrap=True, background_color="default")


def tail(text: str, limit: int = SHOWN_OUTPUT_CHARS) -> str:
    return text if len(text) <= limit else f"[… {len(text) - limit} characters above]\n" + text[-limit:]


class UserBlock(Static):
    def __init__(self, text: str):
        super().__init__(Text(text), classes="user")


class Notice(Static):
    """A line from the app itself: command output, mode changes, interruptions, errors."""

    def __init__(self, text: str | Syntax, kind: str = "notice"):
        super().__init__(Text(text) if isinstance(text, str) else text, classes=f"notice {kind}")
        self.plain = text if isinstance(text, str) else text.code


class AssistantBlock(Vertical):
    """One model turn: reasoning (collapsed) and the answer as Markdown, streamed as it arrives."""

    def __init__(self) -> None:
        super().__init__(classes="assistant")
        self.splitter = StreamSplitter()
        self.thinking = Static("", classes="thinking-text")
        self.reasoning = Collapsible(self.thinking, title="Thinking", collapsed=True, classes="thinking")
        self.answer = Markdown("", classes="answer")
        self.answer_text = ""
        self.thought = ""
        self._stream = None

    def compose(self):
        yield self.reasoning
        yield self.answer

    def on_mount(self) -> None:
        self.reasoning.display = False

    async def feed(self, delta: str) -> None:
        for kind, text in self.splitter.feed(delta):
            if kind == "think":
                self.thought += text
                self.reasoning.display = True
                self.thinking.update(Text(self.thought))
            else:
                self.answer_text += text
                if self._stream is None:
                    self._stream = Markdown.get_stream(self.answer)
                await self._stream.write(text)

    async def finish(self, text: str, reasoning: str) -> None:
        """The parsed turn replaces the streamed text (tool-call markup gone, whitespace tidy)."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.answer_text, self.thought = text.strip(), reasoning.strip() or self.thought
        await self.answer.update(self.answer_text)
        self.answer.display = bool(self.answer_text)
        self.reasoning.display = bool(self.thought)
        self.thinking.update(Text(self.thought))


class ToolBlock(Collapsible):
    """A tool call: its arguments, a diff for edits, live output while it runs, then the result."""

    ICONS = {"running": "…", "ok": "✓", "error": "✗", "denied": "⊘"}

    def __init__(self, name: str, arguments: dict[str, Any], diff: str | None = None, call_id: str = ""):
        self.tool_name, self.arguments, self.call_id = name, arguments, call_id
        self.state = "running"
        self.detail = Static(self._arguments_text(), classes="tool-args")
        self.diff = Static(diff_view(diff) if diff else "", classes="tool-diff")
        self.output_text = ""
        self.output = Static("", classes="tool-output")
        super().__init__(self.detail, self.diff, self.output, title=self._heading(), collapsed=False, classes="tool")
        self.diff.display = bool(diff)
        self.output.display = False

    def _subject(self) -> str:
        for key in ("command", "path", "pattern", "message"):
            if key in self.arguments:
                return short(self.arguments[key])
        return ""

    def _heading(self) -> str:
        # titles are markup, and textual's escape() leaves brackets it does not take for tags, e.g. [100%]
        return f"{self.ICONS[self.state]} {self.tool_name} {self._subject()}".rstrip().replace("[", "\\[")

    def _arguments_text(self) -> Text:
        shown = {k: v for k, v in self.arguments.items() if k not in ("content", "old_string", "new_string")}
        return Text("  ".join(f"{k}={short(v, 200)}" for k, v in shown.items()), style="dim")

    def append_output(self, text: str) -> None:
        self.output_text += text
        self.output.display = True
        self.output.update(Text(tail(self.output_text)))

    def finish(self, output: str, is_error: bool, data: dict[str, Any]) -> None:
        self.state = "denied" if data.get("denied") else ("error" if is_error else "ok")
        self.output_text = output
        self.output.display = bool(output.strip())
        self.output.update(Text(tail(output)))
        self.title = self._heading()
        self.set_class(is_error, "failed")
        # reads are noise once done; what changed things or failed stays open
        if self.state == "ok" and not self.diff.display and self.tool_name not in ("shell", "git_commit", "!"):
            self.collapsed = True

    def deny(self, reason: str) -> None:
        self.state = "denied"
        self.title = self._heading()
        self.append_output(f"denied: {reason}")


class StatusLine(Static):
    def show(self, status: Status, activity: str = "") -> None:
        self.update(status_text(status, activity))


def _tokens(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def status_text(s: Status, activity: str = "") -> Text:
    parts = [(s.model, "bold"), (s.mode, ""), (f"ctx {_tokens(s.context_used)}/{_tokens(s.context_limit)}", "")]
    if s.prefill_tps or s.decode_tps:
        parts.append((f"prefill {s.prefill_tps:.0f} tok/s · decode {s.decode_tps:.1f} tok/s", ""))
    for label, accepted, drafted in s.drafts():
        parts.append((f"{label} {100 * accepted / drafted:.0f}% ({accepted}/{drafted})", ""))
    if s.reused:
        parts.append((f"reused {_tokens(s.reused)}", ""))
    if s.branch:
        parts.append((s.branch + ("*" if s.dirty else ""), ""))
    if activity:
        parts.append((activity, "italic"))
    text = Text()
    for i, (piece, style) in enumerate(parts):
        if i:
            text.append(" · ", style="dim")
        text.append(piece, style=style)
    return text


class Completions(OptionList):
    """The /command and @path suggestions under the prompt."""


class PromptInput(TextArea):
    """The multi-line message editor: Enter sends, Ctrl+J or Shift+Enter breaks the line, Up and
    Down at the edges walk the history, Tab completes."""

    BINDINGS = [Binding("ctrl+j,shift+enter", "newline", "new line", show=False)]

    class Submitted(Message):
        def __init__(self, text: str):
            super().__init__()
            self.text = text

    class CompletionKey(Message):
        """Tab, Up or Down while suggestions are shown: the app moves or takes the suggestion."""

        def __init__(self, key: str):
            super().__init__()
            self.key = key

    def __init__(self, history: list[str], **kwargs: Any):
        super().__init__(soft_wrap=True, tab_behavior="focus", show_line_numbers=False, compact=True,
                         highlight_cursor_line=False, **kwargs)
        self.sent = history
        self.sent_index = len(history)
        self.draft = ""
        self.completing = False  # set by the app while suggestions are shown

    def action_newline(self) -> None:
        self.insert("\n")

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if self.completing and key in ("tab", "up", "down"):
            event.prevent_default()
            event.stop()
            self.post_message(self.CompletionKey(key))
            return
        if key == "enter":
            event.prevent_default()
            event.stop()
            text = self.text
            if text.endswith("\\"):  # a trailing backslash continues the message on a new line
                self.text = text[:-1] + "\n"
                self.move_cursor(self.document.end)
                return
            if text.strip():
                self.remember(text)
                self.text = ""
                self.post_message(self.Submitted(text))
            return
        if key == "up" and self.cursor_location[0] == 0 and self.sent_index > 0:
            event.prevent_default()
            event.stop()
            if self.sent_index == len(self.sent):
                self.draft = self.text
            self.sent_index -= 1
            self._show(self.sent[self.sent_index])
            return
        if key == "down" and self.cursor_location[0] == self.document.line_count - 1 and self.sent_index < len(self.sent):
            event.prevent_default()
            event.stop()
            self.sent_index += 1
            self._show(self.sent[self.sent_index] if self.sent_index < len(self.sent) else self.draft)
            return
        await super()._on_key(event)

    def _show(self, text: str) -> None:
        self.text = text
        self.move_cursor(self.document.end)

    def remember(self, text: str) -> None:
        if not self.sent or self.sent[-1] != text:
            self.sent.append(text)
        self.sent_index = len(self.sent)
        self.draft = ""
