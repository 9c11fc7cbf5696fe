"""What the model is told about the project (instruction files, a repository map), and how a long
conversation is shrunk to fit the context window (eliding old tool outputs, summarising)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from agent.backends.base import Message
from agent.core.repo import repository_files
from agent.prompts import render_prompt

INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md")

# -- project instructions ------------------------------------------------------------------------


def project_instructions(root: Path, max_bytes: int = 32768) -> str:
    """AGENTS.md and CLAUDE.md from the repository root (in that order), each under a header naming
    it, at most max_bytes in all. Empty when there are none; unreadable or binary files are skipped."""
    sections: list[str] = []
    seen: set[str] = set()
    for name in INSTRUCTION_FILES:
        text = _read_instruction_file(Path(root) / name, max_bytes)
        # AGENTS.md is often a symlink to CLAUDE.md (or a copy): say it once
        if text is None or not text.strip() or text in seen:
            continue
        seen.add(text)
        sections.append(f"## {name}\n\n{text.strip()}")
    joined = "\n\n".join(sections)
    data = joined.encode("utf-8")
    if len(data) <= max_bytes:
        return joined
    note = f"\n\n[... cut here: the instruction files are longer than {max_bytes} bytes; read them for the rest]"
    keep = max_bytes - len(note.encode("utf-8"))
    if keep <= 0:
        return note.strip().encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
    head = data[:keep].decode("utf-8", "ignore")
    line_end = head.rfind("\n")
    if line_end > keep // 2:  # end on a whole line unless that throws away too much
        head = head[:line_end]
    return head.rstrip() + note


def _read_instruction_file(path: Path, max_bytes: int) -> str | None:
    try:
        if not path.is_file():
            return None
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)  # anything past max_bytes is cut anyway
    except OSError:
        return None
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        # the read may have stopped inside a multi-byte character; anything else is not text
        if len(data) > max_bytes and e.start >= len(data) - 3:
            return data[:e.start].decode("utf-8", "ignore")
        return None


# -- repository map ------------------------------------------------------------------------------

SKIP_DIRS = {"node_modules", "__pycache__", "venv", "site-packages"}
VENDORED_DIRS = {"vendor", "vendored", "third_party", "third-party", "external", "node_modules", "dist", "build",
                 "site-packages"}
TEST_DIRS = {"test", "tests", "testing", "spec", "specs", "__tests__", "fixtures", "testdata", "examples"}
GENERATED_SUFFIXES = (".min.js", ".min.css", ".map", ".lock", "-lock.json", "-lock.yaml", ".snap")
MAX_PARSE_BYTES = 512 * 1024  # bigger files are listed without symbols
MAX_SYMBOL_FILES = 1000  # a map of a few thousand characters never shows symbols for more files than this
MAX_SYMBOL_LINE = 160
CTAGS_TIMEOUT_S = 15.0
CTAGS_TOP_KINDS = {"function", "func", "prototype", "method", "class", "struct", "union", "interface", "trait",
                   "enum", "type", "typedef", "alias"}
CTAGS_MEMBER_KINDS = {"method", "func", "function", "methodSpec", "singletonMethod"}
CTAGS_CONTAINER_KINDS = {"package", "namespace", "module"}  # tags inside these still count as top-level
CTAGS_CALLABLE_KINDS = {"function", "func", "prototype", "method"}


def repo_map(root: Path, max_chars: int = 6000) -> str:
    """The repository's files, grouped by directory and sorted, with their top-level symbols, in at
    most max_chars characters. Over budget, the symbols of the least important files go first, then
    file names, and a last line says how many files were left out."""
    root = Path(root)
    if max_chars <= 0 or not root.is_dir():
        return ""
    paths = repository_files(root, skip_folder=_is_tool_folder)
    if not paths:
        return ""
    # The budget goes to what a model needs first: product code before tests, vendored and
    # generated files last, shallow paths before deep ones. Ranking by symbol count would mean
    # parsing every file of a large repository before knowing which ones fit.
    ranked = sorted(paths, key=_importance)
    listed, used = _fit_names(ranked, max_chars)
    left_out = len(paths) - len(listed)
    footer = _footer(left_out) if left_out else ""
    if len(footer) > max_chars:
        return ""
    budget = max_chars - (len(footer) + 1 if footer else 0)

    symbols: dict[str, list[str]] = {}
    if used < budget:
        ctags_symbols = _ctags_symbols(root, [p for p in ranked[:MAX_SYMBOL_FILES] if p in listed])
        for path in ranked[:MAX_SYMBOL_FILES]:
            if path not in listed:
                break
            lines = _python_symbols(root / path) if path.endswith((".py", ".pyi")) else ctags_symbols.get(path, [])
            kept: list[str] = []
            for line in lines:
                cost = len(line) + 5  # four spaces of indent and a newline
                if used + cost > budget:
                    break
                kept.append(line)
                used += cost
            symbols[path] = kept
            if len(kept) < len(lines):
                break

    out: list[str] = []
    directory = None
    for path in sorted(listed, key=_reading_order):
        parent = PurePosixPath(path).parent
        if parent != directory:
            directory = parent
            out.append(_directory_line(parent))
        out.append("  " + _printable(PurePosixPath(path).name))
        out.extend("    " + line for line in symbols.get(path, []))
    if footer:
        out.append(footer)
    return "\n".join(out)


def _fit_names(ranked: list[str], max_chars: int) -> tuple[set[str], int]:
    """The most important files whose names (and directory headers) fit, and the characters used."""
    def cost(path: str, directories: set[PurePosixPath]) -> int:
        parent = PurePosixPath(path).parent
        header = 0 if parent in directories else len(_directory_line(parent)) + 1
        return header + len(_printable(PurePosixPath(path).name)) + 3

    directories: set[PurePosixPath] = set()
    total = 0
    for path in ranked:
        total += cost(path, directories)
        directories.add(PurePosixPath(path).parent)
    if total <= max_chars + 1:  # the last line needs no newline
        return set(ranked), total
    budget = max_chars - len(_footer(len(ranked))) - 1
    listed: set[str] = set()
    directories, used = set(), 0
    for path in ranked:
        c = cost(path, directories)
        if used + c > budget:
            break
        listed.add(path)
        directories.add(PurePosixPath(path).parent)
        used += c
    return listed, used


def _footer(left_out: int) -> str:
    return f"[{left_out} more files not shown]"


def _directory_line(directory: PurePosixPath) -> str:
    return "./" if directory == PurePosixPath(".") else _printable(directory.as_posix()) + "/"


def _reading_order(path: str) -> tuple[tuple[str, ...], str]:
    pure = PurePosixPath(path)
    return pure.parent.parts, pure.name


def _importance(path: str) -> tuple[int, int, str]:
    pure = PurePosixPath(path)
    directories = {part.lower() for part in pure.parts[:-1]}
    name = pure.name.lower()
    if directories & VENDORED_DIRS or name.endswith(GENERATED_SUFFIXES):
        tier = 2
    elif (directories & TEST_DIRS or name.startswith("test_") or name == "conftest.py"
          or pure.stem.lower().endswith("_test") or ".test." in name or ".spec." in name):
        tier = 1
    else:
        tier = 0
    return tier, len(pure.parts), path


def _printable(name: str) -> str:
    # file names may hold undecodable bytes (surrogate escapes) or control characters
    try:
        text = os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeError:
        text = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else "?" for c in text)


def _is_tool_folder(folder: Path) -> bool:
    """Hidden folders, caches, dependencies and virtualenvs (under any name): no map needs them."""
    return folder.name.startswith(".") or folder.name in SKIP_DIRS or (folder / "pyvenv.cfg").exists()


def _parsable(path: Path) -> bool:
    """A regular text file of reasonable size (symlinks may point anywhere, so they are not read)."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_PARSE_BYTES:
            return False
        with path.open("rb") as f:
            return b"\x00" not in f.read(8192)
    except OSError:
        return False


def _source_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if _parsable(path) else None
    except OSError:
        return None


def _python_symbols(path: Path) -> list[str]:
    data = _source_bytes(path)
    if data is None:
        return []
    try:
        tree = ast.parse(data, filename=str(path))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    lines: list[str] = []
    constants = False  # consecutive constants share a line
    for node in tree.body:
        if getattr(node, "name", "").startswith("_"):  # private helpers are not worth the budget
            continue
        try:
            line = _python_symbol(node)
        except Exception:  # noqa: BLE001 - an odd node costs one symbol, never the map
            line = None
        if not line:
            continue
        is_constant = isinstance(node, (ast.Assign, ast.AnnAssign))
        if is_constant and constants and len(lines[-1]) + len(line) + 2 <= MAX_SYMBOL_LINE:
            lines[-1] += ", " + line
        else:
            lines.append(_clip_line(line))
        constants = is_constant
    return lines


def _python_symbol(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
        return f"{prefix} {node.name}({_python_arguments(node.args)})"
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(base) for base in node.bases)
        methods = [item.name for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                   and (not item.name.startswith("_") or item.name in ("__init__", "__call__"))]
        return f"class {node.name}" + (f"({bases})" if bases else "") + (f": {', '.join(methods)}" if methods else "")
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    names = [t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()]
    return ", ".join(names) or None


def _python_arguments(args: ast.arguments) -> str:
    parts: list[str] = []
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    for i, arg in enumerate(positional):
        parts.append(arg.arg + ("=..." if i >= first_default else ""))
        if args.posonlyargs and i == len(args.posonlyargs) - 1:
            parts.append("/")
    if args.vararg:
        parts.append("*" + args.vararg.arg)
    elif args.kwonlyargs:
        parts.append("*")
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        parts.append(arg.arg + ("=..." if default is not None else ""))
    if args.kwarg:
        parts.append("**" + args.kwarg.arg)
    return ", ".join(parts)


def _clip_line(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= MAX_SYMBOL_LINE else line[:MAX_SYMBOL_LINE - 3] + "..."


@lru_cache(maxsize=1)
def _universal_ctags() -> str | None:
    """The ctags executable when it is Universal Ctags (the only one with JSON output), else None."""
    executable = shutil.which("ctags")
    if executable is None:
        return None
    try:
        done = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return executable if "Universal Ctags" in done.stdout else None


def _ctags_symbols(root: Path, paths: list[str]) -> dict[str, list[str]]:
    """Top-level symbols of the non-Python files, from one batched ctags run; {} without ctags."""
    executable = _universal_ctags()
    candidates = [p for p in paths if not p.endswith((".py", ".pyi")) and "\n" not in p
                  and _parsable(root / p)]
    if executable is None or not candidates:
        return {}
    command = [executable, "--output-format=json", "--fields=+nKS", "--sort=no",
               "--kinds-C=+p", "--kinds-C++=+p",  # in headers the prototypes are the API
               "-f", "-", "-L", "-"]
    try:
        done = subprocess.run(command, cwd=root, input="\n".join(candidates).encode("utf-8", "surrogateescape"),
                              capture_output=True, timeout=CTAGS_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return {}
    tags: dict[str, list[dict[str, Any]]] = {}
    for raw in done.stdout.decode("utf-8", "replace").splitlines():
        try:
            tag = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(tag, dict) and tag.get("_type") == "tag" and isinstance(tag.get("path"), str):
            tags.setdefault(tag["path"], []).append(tag)
    return {path: _ctags_lines(file_tags) for path, file_tags in tags.items()}


def _ctags_lines(tags: list[dict[str, Any]]) -> list[str]:
    members: dict[str, list[str]] = {}
    for tag in tags:
        if tag.get("scope") and tag.get("kind") in CTAGS_MEMBER_KINDS:
            members.setdefault(str(tag["scope"]), []).append(str(tag.get("name", "")))
    lines: list[str] = []
    for tag in tags:
        kind, name = tag.get("kind"), str(tag.get("name", ""))
        top_level = not tag.get("scope") or tag.get("scopeKind") in CTAGS_CONTAINER_KINDS
        if kind not in CTAGS_TOP_KINDS or not top_level or not name or name.startswith("__anon"):
            continue
        line = f"{kind} {name}{tag.get('signature', '')}"
        if kind not in CTAGS_CALLABLE_KINDS:
            qualified = f"{tag['scope']}.{name}" if tag.get("scope") else name  # Go scopes members as pkg.Type
            methods = list(dict.fromkeys(members.get(qualified) or members.get(name) or []))
            if methods:
                line += ": " + ", ".join(methods)
        lines.append(_clip_line(line))
    return list(dict.fromkeys(lines))  # a C prototype and its definition read the same


# -- compaction ----------------------------------------------------------------------------------

TRANSCRIPT_TOOL_CHARS = 1500  # tool outputs in the compaction transcript are cut to this
TRANSCRIPT_ARGUMENT_CHARS = 400
SAFETY_MARGIN = 0.03  # of the context window: token counts are estimates (templates, tool specs)

def elide_tool_outputs(messages: list[Message], keep_last: int = 4,
                       min_chars: int = 400) -> tuple[list[Message], int]:
    """A new list in which the content of older tool results (all but the last keep_last tool
    messages, and only those longer than min_chars) is a short stub naming the tool; and how many
    were elided. The input list and its dicts are never changed: elided messages are copies, the
    others are the same dicts."""
    tool_indices = [i for i, m in enumerate(messages) if m.get("role") == "tool"]
    older = tool_indices[:max(len(tool_indices) - max(keep_last, 0), 0)]
    result = list(messages)
    elided = 0
    for i in older:
        content = _text(messages[i].get("content"))
        if len(content) <= min_chars:
            continue
        stub = render_prompt("tool_output_elided.md", tool=messages[i].get("name") or "the tool", chars=len(content),
                       lines=content.count("\n") + 1)
        result[i] = {**messages[i], "content": stub}
        elided += 1
    return result, elided


def compaction_request(messages: list[Message]) -> list[Message]:
    """The request that asks the model to summarise the conversation so far: the original system
    message (its prompt prefix is likely cached already) and one user message holding the
    transcript, tool outputs cut, with what the summary must keep."""
    transcript = "\n\n".join(_transcript_entry(m) for m in messages if m.get("role") != "system")
    return [*_system_messages(messages), {"role": "user", "content": render_prompt("compact.md", transcript=transcript)}]


def compacted_conversation(messages: list[Message], summary: str, keep_last_turns: int = 1) -> list[Message]:
    """The conversation after compaction: the system message, a user message with the summary of
    the earlier conversation, then the last keep_last_turns exchanges unchanged.

    An exchange is one assistant message with the tool results that answer its calls, plus the
    user message(s) it replies to. In an agent loop a single user request spans many exchanges, so
    keeping whole user turns would often keep everything. Tool results are never separated from
    the assistant message that called them."""
    exchanges = _exchanges(messages)
    kept = exchanges[max(len(exchanges) - keep_last_turns, 0):] if keep_last_turns > 0 else []
    tail = [m for exchange in kept for m in exchange]
    while tail and tail[0].get("role") == "tool":  # a result whose call is gone would confuse the model
        tail.pop(0)
    summary_message = {"role": "user", "content": render_prompt("compact_summary.md", summary=summary.strip())}
    return [*_system_messages(messages), summary_message, *tail]


def needs_compaction(used_tokens: int, context_window: int, reserve_tokens: int) -> bool:
    """True once used_tokens plus reserve_tokens exceed the context window less a small safety
    margin (token counts are estimates).

    The reserve must cover the next reply and also the output of the compaction request itself:
    summarising is a model call that reads the conversation and then writes the summary into the
    same window. Compacting only when the window is already full means the summary request
    overflows exactly when it is needed, and the conversation can no longer be rescued."""
    if context_window <= 0:
        raise ValueError(f"the context window must be a positive number of tokens, not {context_window}")
    margin = int(context_window * SAFETY_MARGIN)
    return used_tokens + reserve_tokens > context_window - margin


def _system_messages(messages: list[Message]) -> list[Message]:
    first = next((m for m in messages if m.get("role") == "system"), None)
    return [first] if first is not None else []


def _exchanges(messages: list[Message]) -> list[list[Message]]:
    exchanges: list[list[Message]] = []
    for message in messages:
        role = message.get("role")
        if role == "system":
            continue
        current = exchanges[-1] if exchanges else None
        only_user = current is not None and all(m.get("role") == "user" for m in current)
        if current is None or (role in ("user", "assistant") and not only_user):
            exchanges.append([message])
        else:
            current.append(message)
    return exchanges


def _transcript_entry(message: Message) -> str:
    role = message.get("role", "unknown")
    content = _text(message.get("content"))
    if role == "tool":
        return f"[tool result: {message.get('name') or 'tool'}]\n{_clip(content, TRANSCRIPT_TOOL_CHARS)}"
    lines = [f"[{role}]"] + ([content] if content.strip() else [])
    for call in message.get("tool_calls") or []:
        arguments = json.dumps(call.get("arguments"), ensure_ascii=False, default=str)
        lines.append(f"[tool call: {call.get('name')}] {_clip(arguments, TRANSCRIPT_ARGUMENT_CHARS)}")
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    """The head and tail of a long text; the tail is where errors and test summaries usually are."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head]}\n[... {len(text) - head - tail} characters cut ...]\n{text[len(text) - tail:]}"


def _text(content: Any) -> str:
    if content is None:
        return ""
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)
