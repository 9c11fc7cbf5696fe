"""A shell command read the way bash reads it (tree-sitter-bash): the simple commands it runs and
the constructs that no rule about plain commands can vouch for.

Permission rules, the interactive-program refusal and the network refusal all look at commands
through this one reading. Matching a rule against the whole string lets `python -m pytest*` allow
`python -m pytest; rm -rf x`, and a rule that only looks at the first word misses `ls; /bin/rm x`
and `env rm x`. Here the string is split through lists (`;`, `&&`, `||`, newlines), pipelines,
subshells and groups, command and process substitution, backticks and `bash -c '...'` strings,
and each simple command's program is named past assignments and wrappers (`env`, `sudo`,
`timeout 5`, `xargs`...). What writes files (`>`), runs text as code (`eval`, substitutions) or
does not parse cleanly is a hazard: it never runs on an allow rule alone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import PurePosixPath

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

SHELLS = {"bash", "sh", "dash", "zsh", "ksh"}
# wrappers run the command that follows them; the values are their options that take an argument
WRAPPERS: dict[str, set[str]] = {
    "env": {"-u", "--unset", "-C", "--chdir", "-S", "--split-string"},
    "sudo": {"-u", "--user", "-g", "--group", "-C", "-D", "-h", "-p", "-r", "-t", "-U"},
    "command": set(), "exec": {"-a"}, "nohup": set(), "time": {"-f", "-o"}, "builtin": set(),
    "nice": {"-n", "--adjustment"}, "ionice": {"-c", "-n", "-t"}, "stdbuf": {"-i", "-o", "-e"},
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "xargs": {"-a", "-d", "-E", "-e", "-I", "-i", "-L", "-l", "-n", "-P", "-s", "--arg-file", "--delimiter",
              "--max-args", "--max-procs", "--max-chars", "--replace"},
}
RUNS_TEXT = {"eval", "source", "."}  # programs that run a string or a file as shell code
WRITE_REDIRECTS = {">", ">>", ">|", "&>", "&>>", ">&"}
HARMLESS_TARGETS = {"/dev/null", "/dev/stdout", "/dev/stderr"}
SUBSTITUTIONS = {"command_substitution": "command substitution", "process_substitution": "process substitution"}


@dataclass(frozen=True)
class SimpleCommand:
    words: tuple[str, ...]  # as bash passes them, quotes removed, wrappers included
    program: str | None  # the program's file name, past assignments and wrappers
    arguments: tuple[str, ...]  # the words after the program
    stdin_redirected: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def unwrapped(self) -> str:
        """The command from its program on, by the program's file name: `/bin/rm -f x` -> `rm -f x`."""
        return " ".join((self.program or "", *self.arguments)).strip()


@dataclass(frozen=True)
class ShellCommand:
    commands: tuple[SimpleCommand, ...]
    hazards: tuple[str, ...]  # why no allow rule may vouch for the command, in words a model can read


@functools.cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_bash.language()))


@functools.lru_cache(maxsize=256)
def parse(command: str) -> ShellCommand:
    """The command's reading (cached: each deny rule, the allow rules, and the interactive and
    network refusals all ask for the same command's)."""
    reader = _Reader()
    reader.read(command)
    return ShellCommand(tuple(reader.commands), tuple(dict.fromkeys(reader.hazards)))


class _Reader:
    def __init__(self) -> None:
        self.commands: list[SimpleCommand] = []
        self.hazards: list[str] = []

    def read(self, source: str, depth: int = 0) -> None:
        if depth > 4:
            self.hazards.append("shell strings nested too deep to read")
            return
        tree = _parser().parse(source.encode("utf-8", errors="surrogateescape"))
        if tree.root_node.has_error:
            self.hazards.append("it does not parse as a shell command")
        self._walk(tree.root_node, depth)

    def _walk(self, node: Node, depth: int, stdin_redirected: bool = False) -> None:
        if node.type in SUBSTITUTIONS:
            self.hazards.append(f"{SUBSTITUTIONS[node.type]} runs `{_text(node)[:60]}`")
        if node.type == "redirected_statement":
            redirects = [c for c in node.children if c.type in ("file_redirect", "herestring_redirect", "heredoc_redirect")]
            for redirect in redirects:
                self._redirect(redirect, depth)
            reads_stdin = any(_operator(r) in ("<", "<<<", "<<", "<<-") or r.type != "file_redirect" for r in redirects)
            body = node.child_by_field_name("body") or node.children[0]
            self._walk(body, depth, stdin_redirected or reads_stdin)
            return
        if node.type == "pipeline":  # each command after the first reads the one before it
            for position, child in enumerate(c for c in node.children if c.is_named):
                self._walk(child, depth, stdin_redirected or position > 0)
            return
        if node.type == "file_redirect":
            self._redirect(node, depth)
            return
        if node.type == "command":
            self._command(node, depth, stdin_redirected)
            return
        for child in node.children:
            self._walk(child, depth)

    def _redirect(self, node: Node, depth: int) -> None:
        if node.type == "file_redirect":
            operator = _operator(node)
            named = [c for c in node.children if c.is_named and c.type != "file_descriptor"]
            target = node.child_by_field_name("destination") or (named[-1] if named else None)
            target_text = _word(target) if target is not None else ""
            if operator in WRITE_REDIRECTS and target_text not in HARMLESS_TARGETS and not target_text.isdigit() \
                    and target_text != "-":
                self.hazards.append(f"it writes {target_text or 'a file'} with {operator}")
        for child in node.children:  # a heredoc's own redirections, substitutions in targets and bodies
            if child.type in ("file_redirect", "heredoc_redirect"):
                self._redirect(child, depth)
            elif child.type in SUBSTITUTIONS:
                self._walk(child, depth)
            elif child.child_count:
                self._substitutions_in(child, depth)

    def _command(self, node: Node, depth: int, stdin_redirected: bool) -> None:
        words: list[str] = []
        for child in node.children:
            if child.type == "variable_assignment":
                words.append(_word(child))
                self._substitutions_in(child, depth)
            elif child.type == "command_name":
                if _has_expansion(child):
                    self.hazards.append(f"the program comes from an expansion (`{_text(child)}`)")
                words.append(_word(child))
                self._substitutions_in(child, depth)
            elif child.type == "file_redirect":
                self._redirect(child, depth)
            elif child.is_named:
                words.append(_word(child))
                if child.type in SUBSTITUTIONS:
                    self._walk(child, depth)
                else:
                    self._substitutions_in(child, depth)
        program, arguments = _program(words)
        self.commands.append(SimpleCommand(tuple(words), program, tuple(arguments), stdin_redirected))
        if program in RUNS_TEXT:
            self.hazards.append(f"`{program}` runs text as shell code")
        elif program in SHELLS and "-c" in arguments:
            script = arguments[arguments.index("-c") + 1:]
            if script:
                self.read(script[0], depth + 1)

    def _substitutions_in(self, node: Node, depth: int) -> None:
        for child in node.children:
            if child.type in SUBSTITUTIONS:
                self._walk(child, depth)
            else:
                self._substitutions_in(child, depth)


def _text(node: Node) -> str:
    return node.text.decode("utf-8", errors="surrogateescape") if node.text is not None else ""


def _operator(node: Node) -> str:
    return next((_text(c) for c in node.children if not c.is_named), "")


def _has_expansion(node: Node) -> bool:
    return node.type in ("simple_expansion", "expansion", *SUBSTITUTIONS) or any(_has_expansion(c) for c in node.children)


def _word(node: Node) -> str:
    """A word as bash would pass it, quotes and backslashes removed (`\\rm`, `r"m"` -> `rm`);
    expansions stay as written."""
    kind = node.type
    if kind == "raw_string":
        return _text(node)[1:-1]
    if kind == "string":
        return "".join(_text(c) if c.is_named else "" for c in node.children) if node.children else _text(node)[1:-1]
    if kind == "word":
        return _unescape(_text(node))
    if kind in ("concatenation", "command_name"):
        return "".join(_word(c) for c in node.children)
    return _text(node)


def _unescape(text: str) -> str:
    out, escaped = [], False
    for char in text:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def _program(words: list[str]) -> tuple[str | None, list[str]]:
    """The program a simple command runs, past `X=1` assignments and wrappers, by its file name."""
    i, wrapper = 0, None
    while i < len(words):
        word = words[i]
        if "=" in word and not word.startswith("-") and word.split("=", 1)[0].isidentifier():
            i += 1
        elif PurePosixPath(word).name in WRAPPERS:
            wrapper = PurePosixPath(word).name
            i += 1
            if wrapper == "timeout":  # timeout [options] DURATION command
                while i < len(words) and words[i].startswith("-"):
                    i += 2 if words[i] in WRAPPERS["timeout"] else 1
                i += 1
        elif wrapper is not None and word.startswith("-"):
            i += 2 if word in WRAPPERS[wrapper] else 1
        else:
            return PurePosixPath(word).name, words[i + 1:]
    return None, []
