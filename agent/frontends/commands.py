"""The slash commands, keys and permission modes an interactive session offers, and the help
text that lists them (the same in the TUI and the REPL)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.core.permissions import MODES


@dataclass(frozen=True)
class Command:
    name: str
    arguments: str  # how the arguments look in /help, "" for none
    help: str


COMMANDS = [
    Command("help", "", "show commands and keys"),
    Command("model", "[FILE]", "show the model, or switch to another GGUF (a script with --backend scripted)"),
    Command("mode", "[MODE]", "show or set the permission mode: " + ", ".join(MODES)),
    Command("clear", "", "start a new conversation (the current one stays saved)"),
    Command("compact", "", "summarise the conversation now to free context"),
    Command("undo", "", "restore the files as they were before the agent's last edits"),
    Command("diff", "", "show uncommitted changes in the repository"),
    Command("commit", "[MESSAGE]", "commit every change (with MESSAGE), or let the agent write the message"),
    Command("resume", "[ID]", "continue a saved session of this repository"),
    Command("stats", "", "tokens, speeds and MTP acceptance of this session"),
    Command("quit", "", "leave (the session stays saved)"),
]
COMMAND_NAMES = [c.name for c in COMMANDS]


MODE_HELP = {
    "ask": "edits and commands ask first",
    "accept-edits": "file edits run, commands ask first",
    "plan": "read-only: nothing is edited or run",
    "yolo": "everything runs without asking",
}

KEYS = [
    ("Enter", "send the message"),
    ("Ctrl+J or Shift+Enter", "new line"),
    ("Up / Down", "previous / next message from the history (at the first / last line)"),
    ("Tab", "complete a /command or an @path"),
    ("Esc", "interrupt the model or the running command"),
    ("Shift+Tab", "cycle the permission mode"),
    ("Ctrl+P", "command palette (themes and more)"),
    ("Ctrl+C", "quit"),
]


def help_text() -> str:
    commands = "\n".join(f"| `/{c.name}{' ' + c.arguments if c.arguments else ''}` | {c.help} |" for c in COMMANDS)
    keys = "\n".join(f"| {key} | {what} |" for key, what in KEYS)
    return (f"## Commands\n\n| command | what it does |\n|---|---|\n{commands}\n\n"
            f"Start a line with `!` to run a shell command yourself; its output goes to the model with your next "
            f"message. Write `@path` to attach a file.\n\n## Keys\n\n| key | |\n|---|---|\n{keys}\n")
