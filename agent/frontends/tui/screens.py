"""Modal screens: the approval prompt, help, and the session picker. Each is driven by the
keyboard and dismisses with its answer."""

from __future__ import annotations

import json
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from agent.frontends.interactive import ApprovalRequest
from agent.core.permissions import Approval
from agent.core.session import SessionSummary
from agent.frontends.tui.widgets import diff_view


class ApprovalScreen(ModalScreen[Approval | None]):
    """Allow once (y), always allow the pattern (a), or deny with a reason (n). Esc dismisses
    with None: the user wants the whole turn stopped."""

    CSS_PATH = "approval.tcss"
    BINDINGS = [
        Binding("y", "choose('once')", "allow once"),
        Binding("a", "choose('always')", "always allow"),
        Binding("n", "choose('deny')", "deny"),
        Binding("escape", "stop", "stop the turn"),
    ]

    def __init__(self, request: ApprovalRequest):
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        r = self.request
        with Vertical(id="approval"):
            yield Static(Text.assemble(("Allow ", ""), (r.tool, "bold"), ("?  ", ""), (r.reason, "dim")), id="approval-title")
            with VerticalScroll(id="approval-body"):
                if r.diff:
                    yield Static(diff_view(r.diff), id="approval-diff")
                shown = {k: v for k, v in r.arguments.items() if not (r.diff and k in ("content", "old_string", "new_string"))}
                if shown:
                    yield Static(Text("\n".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in shown.items())),
                                 id="approval-arguments")
            yield OptionList(
                Option("Yes, allow once  [y]", id="once"),
                Option(f"Yes, and always allow {r.rule} in this project  [a]", id="always"),
                Option("No, and tell the model why  [n]", id="deny"),
                id="approval-options",
            )
            yield Input(placeholder="Why not? (Enter sends it to the model; empty: just no)", id="approval-reason")

    def on_mount(self) -> None:
        self.query_one("#approval-reason").display = False
        self.query_one("#approval-options").focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_choose(event.option.id or "once")

    def action_choose(self, choice: str) -> None:
        reason_box = self.query_one("#approval-reason", Input)
        if reason_box.display:  # typing a reason: letters are text, not choices
            return
        if choice == "once":
            self.dismiss(Approval(True))
        elif choice == "always":
            self.dismiss(Approval(True, always_rule=self.request.rule))
        else:
            reason_box.display = True
            reason_box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        self.dismiss(Approval(False, reason=f"the user declined: {reason}" if reason else "the user declined"))

    def action_stop(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS = [Binding("escape,q,f1", "dismiss(None)", "close")]

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(self.text)
            yield Static("Esc closes this help.", id="help-footer")


class ResumeScreen(ModalScreen[str | None]):
    """Pick a saved session of this repository; Enter resumes it, Esc keeps the current one."""

    CSS_PATH = "resume.tcss"
    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def __init__(self, sessions: list[SessionSummary]):
        super().__init__()
        self.sessions = sessions

    def compose(self) -> ComposeResult:
        with Vertical(id="resume"):
            yield Static("Resume which session?", id="resume-title")
            yield OptionList(*[Option(f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(s.modified))}  "
                                      f"{s.first_task or '(no message)'}", id=s.id) for s in self.sessions])

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
