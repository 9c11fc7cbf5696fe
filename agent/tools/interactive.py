"""Commands that wait for a terminal: refused before they run, with the tool to use instead.

The shell tool has no terminal and no input, so an editor, a pager or a bare interpreter would
sit until the timeout. Small models reach for them anyway (`vim calc.py`, then the tests, then
`vim` again), so the refusal names what works here.
"""

from __future__ import annotations

from agent.tools.shell_syntax import parse

EDITORS = {"vim", "vi", "nvim", "nano", "emacs", "pico", "joe", "micro", "ed", "kak", "hx"}
PAGERS = {"less", "more", "most"}
SCREENS = {"top", "htop", "btop", "watch", "tmux", "screen", "ssh", "telnet", "ftp", "sftp", "mysql", "psql", "sqlite3"}
INTERPRETERS = {"python", "python3", "ipython", "node", "irb", "ghci", "lua", "R"}


def interactive_reason(command: str) -> str | None:
    """Why `command` cannot work without a terminal, or None when it can (as far as a plain
    reading of the command shows)."""
    for simple in parse(command).commands:
        name, arguments = simple.program or "", list(simple.arguments)
        if name in EDITORS:
            return (f"'{name}' is an interactive editor and there is no terminal here: read a file with read_file "
                    "and change it with edit_file (or write_file for a new file)")
        if name in PAGERS:
            return f"'{name}' waits for a terminal: use read_file to see a file, or run the command without a pager"
        if name in SCREENS:
            return f"'{name}' is interactive and there is no terminal here; run a command that prints and exits"
        if (name in INTERPRETERS or name.startswith("python3.")) and not simple.stdin_redirected \
                and _starts_a_repl(arguments):
            return (f"'{name}' without a script starts an interactive interpreter, and there is no input here: "
                    f"run `{name} -c '...'` or a script file")
    return None


def programs(command: str) -> list[tuple[str, list[str]]]:
    """Each simple command's program (its file name, past wrappers) and arguments, in order."""
    return [(simple.program, list(simple.arguments)) for simple in parse(command).commands if simple.program]


def _starts_a_repl(arguments: list[str]) -> bool:
    """An interpreter with no script, no -c/-m/-e and stdin not redirected runs interactively."""
    for argument in arguments:
        if argument in ("-i",):
            return True
        if argument in ("-c", "-m", "-e", "-p", "--version", "-V", "-h", "--help", "-"):
            return False
        if not argument.startswith("-"):
            return False  # a script
    return True
