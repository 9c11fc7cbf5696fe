"""Commands that wait for a terminal: refused before they run, with the tool to use instead.

The shell tool has no terminal and no input, so an editor, a pager or a bare interpreter would
sit until the timeout. Small models reach for them anyway (`vim calc.py`, then the tests, then
`vim` again), so the refusal names what works here.
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath

EDITORS = {"vim", "vi", "nvim", "nano", "emacs", "pico", "joe", "micro", "ed", "kak", "hx"}
PAGERS = {"less", "more", "most"}
SCREENS = {"top", "htop", "btop", "watch", "tmux", "screen", "ssh", "telnet", "ftp", "sftp", "mysql", "psql", "sqlite3"}
INTERPRETERS = {"python", "python3", "ipython", "node", "irb", "ghci", "lua", "R"}
WRAPPERS = {"sudo", "env", "nohup", "time", "nice", "command", "exec", "xargs"}
OPERATOR_CHARS = frozenset(";&|()")  # shlex's punctuation: words made of them separate commands


def interactive_reason(command: str) -> str | None:
    """Why `command` cannot work without a terminal, or None when it can (as far as a plain
    reading of the words shows)."""
    for name, arguments in programs(command):
        if name in EDITORS:
            return (f"'{name}' is an interactive editor and there is no terminal here: read a file with read_file "
                    "and change it with edit_file (or write_file for a new file)")
        if name in PAGERS:
            return f"'{name}' waits for a terminal: use read_file to see a file, or run the command without a pager"
        if name in SCREENS:
            return f"'{name}' is interactive and there is no terminal here; run a command that prints and exits"
        if (name in INTERPRETERS or name.startswith("python3.")) and _starts_a_repl(arguments):
            return (f"'{name}' without a script starts an interactive interpreter, and there is no input here: "
                    f"run `{name} -c '...'` or a script file")
    return None


def programs(command: str) -> list[tuple[str, list[str]]]:
    """Each simple command's program (its file name, past wrappers) and arguments, in order; none
    when the quotes do not balance (bash will say what is wrong)."""
    try:
        words = _words(command)
    except ValueError:
        return []
    found = []
    for simple in _simple_commands(words):
        program, arguments = _program(simple)
        if program is not None:
            found.append((PurePosixPath(program).name, arguments))
    return found


def _words(command: str) -> list[str]:
    lexer = shlex.shlex(command.replace("\n", " ; "), posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    return list(lexer)


def _simple_commands(words: list[str]) -> list[list[str]]:
    commands, current = [], []
    for word in words:
        if set(word) <= OPERATOR_CHARS:
            if current:
                commands.append(current)
            current = []
        else:
            current.append(word)
    if current:
        commands.append(current)
    return commands


def _program(words: list[str]) -> tuple[str | None, list[str]]:
    """The program a simple command runs, past variable assignments and wrappers (`sudo`,
    `env X=1`, `timeout 10`), and its arguments."""
    i = 0
    while i < len(words):
        word = words[i]
        if "=" in word and not word.startswith("-") and word.split("=", 1)[0].isidentifier():
            i += 1
        elif word in WRAPPERS or (i > 0 and words[i - 1] in WRAPPERS and word.startswith("-")):
            i += 1
        elif word == "timeout":
            i += 2  # timeout DURATION
        else:
            return word, words[i + 1:]
    return None, []


def _starts_a_repl(arguments: list[str]) -> bool:
    """An interpreter with no script, no -c/-m/-e and stdin not redirected runs interactively."""
    for argument in arguments:
        if argument in ("-i",):
            return True
        if argument in ("-c", "-m", "-e", "-p", "--version", "-V", "-h", "--help", "<", "-") or argument.startswith("<"):
            return False
        if not argument.startswith("-"):
            return False  # a script
    return True
