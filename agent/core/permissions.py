"""Which tool calls run without asking: permission modes plus allow/deny rules.

Rules look like `shell(pytest *)`, `edit_file(src/**)`, `read_file` or `git_*`: a tool name (glob)
and optionally a pattern for the tool's subject (the command for shell, the workspace-relative path
for file tools). Deny rules win over everything, then the mode's hard limits (plan is read-only),
then allow rules, then the mode's defaults.

A shell command is judged by its simple commands (tools/shell_syntax.py): a deny rule matches any
of them, by the program's file name past wrappers (`ls; /bin/rm x` and `env rm x` meet `rm *`); an
allow rule vouches for a command only when every simple command in it is allowed and nothing in it
writes a file, substitutes a command, evals or fails to parse (those ask; headless, they are denied
with the reason). docs/permissions.md has the table.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from agent.errors import AgentError
from agent.tools import shell_syntax
from agent.tools.base import Tool, ToolError, Workspace

MODES = ("ask", "accept-edits", "plan", "yolo")
RULE = re.compile(r"^\s*(?P<tool>[A-Za-z0-9_*?\[\]-]+)\s*(?:\((?P<pattern>.*)\))?\s*$")

DENIED = "permission denied:"  # how the result of a call that may not run starts (the model reads it)


def _path_regex(pattern: str) -> re.Pattern[str]:
    """Glob over workspace-relative paths: ** spans directories, * and ? stay within one."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if pattern.startswith("/", i):  # "src/**/x" also matches "src/x"
                out[-1] = "(?:.*/)?"
                i += 1
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class Rule:
    text: str
    tool: str
    pattern: str | None

    @classmethod
    def parse(cls, text: str) -> "Rule":
        m = RULE.match(text)
        if not m:
            raise AgentError(f"permission rule '{text}' is not of the form tool or tool(pattern), e.g. \"shell(pytest *)\"")
        return cls(text.strip(), m["tool"], m["pattern"].strip() if m["pattern"] is not None else None)

    def applies_to(self, tool: Tool) -> bool:
        """`mcp(server__tool)` names tools from MCP servers; any other rule names tools by name."""
        return fnmatch.fnmatchcase(tool.name, self.tool) or (self.tool == "mcp" and bool(getattr(tool, "server", "")))

    def matches(self, tool: Tool, subject: str | None) -> bool:
        if self.tool == "mcp" and getattr(tool, "server", ""):
            return fnmatch.fnmatchcase(tool.name, self.pattern or "*")
        if not fnmatch.fnmatchcase(tool.name, self.tool):
            return False
        if self.pattern is None or self.pattern in ("", "*", "**"):
            return True
        if subject is None:
            return False
        if tool.subject == "command":  # a deny rule: any simple command; allow rules: see allows_command
            return self.matches_text(subject) or any(self.matches_text(simple.text) or self.matches_text(simple.unwrapped)
                                                     for simple in shell_syntax.parse(subject).commands)
        return bool(_path_regex(self.pattern).match(subject))

    def matches_text(self, text: str) -> bool:
        """`*` matches anything, spaces included."""
        return self.pattern is None or fnmatch.fnmatchcase(text.strip(), self.pattern)

    @property
    def whole_tool(self) -> bool:
        return self.pattern is None or self.pattern in ("", "*", "**")


@dataclass(frozen=True)
class Decision:
    action: Literal["allow", "deny", "ask"]
    reason: str


# What a person answers when asked: allow once, allow always (the pattern is remembered), or deny
# with a reason for the model. An approver is shown the call, why it asks, and an edit's diff.
@dataclass(frozen=True)
class Approval:
    allow: bool
    always_rule: str | None = None
    reason: str = ""


Approver = Callable[[Tool, dict[str, Any], Decision, "str | None"], Approval]


@dataclass
class Permissions:
    mode: str = "ask"
    allow: list[Rule] = field(default_factory=list)
    deny: list[Rule] = field(default_factory=list)

    @classmethod
    def from_settings(cls, mode: str, allow: list[str], deny: list[str]) -> "Permissions":
        if mode not in MODES:
            raise AgentError(f"unknown permission mode '{mode}'; use one of {', '.join(MODES)}")
        return cls(mode, [Rule.parse(r) for r in allow], [Rule.parse(r) for r in deny])

    @staticmethod
    def subject(tool: Tool, arguments: dict[str, Any], ws: Workspace) -> str | None:
        """The string rule patterns see: the command, or the path relative to the workspace."""
        if tool.subject is None:
            return None
        value = arguments.get(tool.subject, "." if tool.subject == "path" else None)
        if value is None or tool.subject != "path":
            return None if value is None else str(value)
        try:
            return ws.relative(ws.resolve(str(value)))
        except (ToolError, ValueError):
            return str(value)  # the tool itself refuses escaping paths; rules just see the raw text

    def check(self, tool: Tool, arguments: dict[str, Any], ws: Workspace) -> Decision:
        subject = self.subject(tool, arguments, ws)
        for rule in self.deny:
            if rule.matches(tool, subject):
                return Decision("deny", f"denied by the rule '{rule.text}'")
        if self.mode == "plan" and tool.access != "read":
            return Decision("deny", "plan mode is read-only: nothing may be edited or run; describe the plan instead")
        allowed = self._allowed(tool, subject)
        if allowed is not None and allowed.action == "allow":
            return allowed
        if self.mode == "yolo" or tool.access == "read":
            return Decision("allow", f"{tool.access} tools run without asking in {self.mode} mode")
        if self.mode == "accept-edits" and tool.access == "edit":
            return Decision("allow", "file edits are accepted in accept-edits mode")
        return allowed or Decision("ask", f"{tool.name} needs approval in {self.mode} mode")

    def _allowed(self, tool: Tool, subject: str | None) -> Decision | None:
        rules = [rule for rule in self.allow if rule.applies_to(tool)]
        whole = next((rule for rule in rules if rule.whole_tool), None)
        if whole is not None:
            return Decision("allow", f"allowed by the rule '{whole.text}'")
        if tool.subject != "command" or subject is None:
            rule = next((rule for rule in rules if rule.matches(tool, subject)), None)
            return Decision("allow", f"allowed by the rule '{rule.text}'") if rule else None
        parsed = shell_syntax.parse(subject)
        if not rules or not parsed.commands or self._uncovered(rules, parsed) is not None:
            return None
        if parsed.hazards:  # every part is allowed, but a rule about commands cannot vouch for this
            return Decision("ask", f"{'; '.join(parsed.hazards)}: allow rules cover plain commands only")
        return Decision("allow", "allowed by the rules " + ", ".join(f"'{rule.text}'" for rule in rules
                                                                    if any(_covers(rule, c) for c in parsed.commands)))

    @staticmethod
    def _uncovered(rules: list[Rule], parsed: shell_syntax.ShellCommand) -> shell_syntax.SimpleCommand | None:
        return next((simple for simple in parsed.commands if not any(_covers(rule, simple) for rule in rules)), None)

    def remember(self, rule_text: str) -> None:
        self.allow.append(Rule.parse(rule_text))


def _covers(rule: Rule, simple: shell_syntax.SimpleCommand) -> bool:
    """An allow rule covers a simple command as written, and past its wrappers too: `xargs *` does
    not allow `xargs rm`, nor `sudo *` everything."""
    return rule.matches_text(simple.text) and rule.matches_text(simple.unwrapped)


def suggested_rule(tool: Tool, subject: str | None, permissions: Permissions | None = None) -> str:
    """A rule a person could add to allow calls like this one: for a command, exactly the first of
    its simple commands that no rule allows yet; for a file, its directory."""
    if getattr(tool, "server", ""):
        return f"mcp({tool.name})"
    if subject is None:
        return tool.name
    if tool.subject == "command":
        parsed = shell_syntax.parse(subject)
        rules = [rule for rule in (permissions.allow if permissions else []) if rule.applies_to(tool)]
        simple = Permissions._uncovered(rules, parsed) or (parsed.commands[0] if parsed.commands else None)
        return f"{tool.name}({_escaped(simple.text if simple else subject.strip())})"
    parent = Path(subject).parent.as_posix()
    return f"{tool.name}({parent}/**)" if parent != "." else f"{tool.name}({subject})"


def _escaped(text: str) -> str:
    """A command as a rule pattern that matches just it (fnmatch's wildcards in brackets)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)
