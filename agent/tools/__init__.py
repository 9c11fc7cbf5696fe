"""The agent's tools (read, edit, search, shell, git), one plain function each.

TOOLS is the registry the agent offers to the model; run_tool checks a call's arguments against
the tool's schema and turns a ToolError into an error result the model can act on."""

from __future__ import annotations

import json
from typing import Any

# modules, not their functions: binding the name `shell` here would hide the module agent.tools.shell
from agent.tools import files, git, search, shell
from agent.tools.base import Tool, ToolError, ToolResult, Workspace, schema

__all__ = ["TOOLS", "Tool", "ToolError", "ToolResult", "Workspace", "run_tool"]


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _integer(description: str, minimum: int = 1) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "description": description}


def _boolean(description: str) -> dict[str, Any]:
    return {"type": "boolean", "description": description}


_PATH = _string("Path relative to the workspace root")


def _search_tool(name: str, function: Any, pattern: str, path: str, **options: dict[str, Any]) -> Tool:
    """glob and grep: a required pattern, searched for under a path, and their own options."""
    properties = {"pattern": _string(pattern), "path": _string(path), **options}
    return Tool(name, function, schema(properties, ["pattern"]), access="read", subject="path")


_ALL = [
    Tool("read_file", files.read_file, schema({
        "path": _PATH,
        "offset": _integer("First line to show (default 1)"),
        "limit": _integer("Most lines to show (default 2000)"),
    }, ["path"]), access="read", subject="path"),
    Tool("write_file", files.write_file, schema({
        "path": _PATH,
        "content": _string("The complete new content of the file"),
    }, ["path", "content"]), access="edit", subject="path", preview=files.preview_write_file),
    Tool("edit_file", files.edit_file, schema({
        "path": _PATH,
        "old_string": _string("The exact text to replace"),
        "new_string": _string("The text to put in its place"),
        "replace_all": _boolean("Replace every occurrence (default false)"),
    }, ["path", "old_string", "new_string"]), access="edit", subject="path", preview=files.preview_edit_file),
    Tool("list_dir", files.list_dir, schema({
        "path": _string("Directory relative to the workspace root (default '.')"),
    }, []), access="read", subject="path"),
    _search_tool("glob", files.glob, pattern="Glob such as '**/*.py'",
                 path="Directory to search from (default '.')"),
    _search_tool("grep", search.grep, pattern="Regular expression to search for",
                 path="File or directory to search (default '.')",
                 glob=_string("Only files matching this glob"),
                 ignore_case=_boolean("Match regardless of case (default false)"),
                 max_results=_integer("Most lines to return (default 200)")),
    Tool("shell", shell.shell, schema({
        "command": _string("The bash command to run in the workspace root"),
        "timeout": _integer("Seconds before it is stopped (default 120, at most 600)"),
    }, ["command"]), access="exec", subject="command"),
    Tool("git_status", git.git_status, schema({}, []), access="read"),
    Tool("git_diff", git.git_diff, schema({
        "staged": _boolean("Staged changes instead (default false)"),
        "path": _string("Only this file or directory"),
    }, []), access="read"),
    Tool("git_log", git.git_log, schema({
        "count": _integer("How many commits, newest first (default 10)"),
        "path": _string("Only commits touching this file or directory"),
    }, []), access="read"),
    Tool("git_commit", git.git_commit, schema({
        "message": _string("A short subject line, then optionally a blank line and details"),
        "paths": {"type": "array", "items": {"type": "string"}, "description": "Files to stage before committing"},
        "all": _boolean("Stage every change to tracked files (default false)"),
    }, ["message"]), access="exec"),
]

TOOLS: dict[str, Tool] = {tool.name: tool for tool in _ALL}

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list,), "object": (dict,), "null": (type(None),),
}


def _type_problem(name: str, value: Any, spec: dict[str, Any]) -> str | None:
    expected = spec.get("type")
    if expected is None:
        return None
    kinds = expected if isinstance(expected, list) else [expected]
    for kind in kinds:
        # bool is an int in Python but not in JSON
        if isinstance(value, _JSON_TYPES.get(kind, (object,))) and not (isinstance(value, bool) and kind in ("integer", "number")):
            if kind == "array" and "items" in spec:
                for index, item in enumerate(value):
                    problem = _type_problem(f"{name}[{index}]", item, spec["items"])
                    if problem:
                        return problem
            return None
    return f"'{name}' must be {' or '.join(kinds)}, not {type(value).__name__} ({value!r:.60})"


def _coerce(value: Any, spec: dict[str, Any]) -> Any:
    """Undo the usual type slips of local models where the intent is unambiguous: XML-style calls
    deliver every parameter as text (so "30" for an integer), and JSON-looking text for a string
    parameter arrives parsed (a file's content of {"a": 1} as a dict)."""
    kind = spec.get("type")
    if kind == "string" and not isinstance(value, str):
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        return json.dumps(value) if isinstance(value, bool) else str(value)
    if kind == "integer":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    if kind == "boolean" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def validate_arguments(tool: Tool, arguments: Any) -> tuple[dict[str, Any], list[str]]:
    """The arguments ready to pass (nulls for optional parameters dropped, unambiguous type slips
    corrected), and the problems that make the call unusable."""
    if not isinstance(arguments, dict):
        return {}, [f"the arguments must be a JSON object, not {type(arguments).__name__}"]
    properties = tool.parameters.get("properties", {})
    required = tool.parameters.get("required", [])
    ready: dict[str, Any] = {}
    problems = []
    for name, value in arguments.items():
        spec = properties.get(name)
        if spec is None:
            known = ", ".join(properties) or "none"
            problems.append(f"unknown argument '{name}' (the parameters of {tool.name} are: {known})")
            continue
        if value is None:
            continue  # models often send null for "not given"; a required one is reported below
        value = _coerce(value, spec)
        problem = _type_problem(name, value, spec) or _unicode_problem(name, value)
        if problem:
            problems.append(problem)
        ready[name] = value
    problems.extend(f"missing required argument '{name}'" for name in required if arguments.get(name) is None)
    return ready, problems


def _unicode_problem(name: str, value: Any) -> str | None:
    """A string argument holding a lone surrogate (a model's or a server's broken text) cannot be
    written to a file or passed to a command."""
    for text in (value if isinstance(value, list) else [value]):
        if isinstance(text, str):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as e:
                return (f"argument '{name}' holds text that is not valid Unicode (a lone surrogate at character "
                        f"{e.start}); send it again without it")
    return None


def run_tool(tool: Tool, ws: Workspace, arguments: dict[str, Any]) -> ToolResult:
    ready, problems = validate_arguments(tool, arguments)
    if problems:
        return ToolResult(f"{tool.name} was not run: " + "; ".join(problems), is_error=True, data={"invalid_arguments": True})
    try:
        return tool(ws, ready)
    except ToolError as e:
        return ToolResult(output=str(e), is_error=True)
    except OSError as e:  # permissions, a full disk: the model can often work around these
        where = f" ({e.filename})" if e.filename else ""
        return ToolResult(output=f"{tool.name} failed: {e.strerror or e}{where}", is_error=True)
