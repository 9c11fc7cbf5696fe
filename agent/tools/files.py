"""The file tools: read_file, write_file, edit_file, list_dir and glob. Every path goes through
the workspace guard; every write is atomic."""

from __future__ import annotations

import difflib
import os
import re
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from agent.core.repo import repository_files
from agent.tools.base import ToolError, ToolResult, Workspace
from agent.tools.edit_match import find_fuzzy

MAX_LINE_CHARS = 2000
MAX_READ_BYTES = 100_000
MAX_ENTRIES = 500
BINARY_SNIFF_BYTES = 8192


# -- shared helpers ---------------------------------------------------------------------------

def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    scaled = float(size)
    for unit in ("KB", "MB", "GB"):
        scaled /= 1024
        if scaled < 1024:
            break
    return f"{scaled:.1f} {unit}"


def missing_path_error(ws: Workspace, target: Path, path: str) -> ToolError:
    """'x does not exist', naming files with similar names in the same folder when there are any."""
    parent = target.parent
    if not parent.is_dir():
        return ToolError(f"'{path}' does not exist, and neither does its folder {ws.relative(parent)}/. Use list_dir or glob to find the right path.")
    similar = difflib.get_close_matches(target.name, [entry.name for entry in os.scandir(parent)], n=5, cutoff=0.6)
    if similar:
        names = ", ".join(ws.relative(parent / name) for name in similar)
        return ToolError(f"'{path}' does not exist. Did you mean: {names}?")
    return ToolError(f"'{path}' does not exist. Use list_dir on {ws.relative(parent)} or glob to find the right path.")


def is_binary(head: bytes) -> bool:
    return b"\x00" in head[:BINARY_SNIFF_BYTES]


def decode_text(data: bytes) -> str | None:
    """The bytes as UTF-8 text, or None when they are binary."""
    if is_binary(data):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def require_file(ws: Workspace, target: Path, path: str) -> None:
    if not target.exists():
        raise missing_path_error(ws, target, path)
    if target.is_dir():
        raise ToolError(f"'{path}' is a directory; use list_dir to see what is in it")


def read_text(ws: Workspace, target: Path, path: str) -> str:
    """The whole file as text, with its line endings untouched; ToolError when it is missing, a
    folder or binary."""
    require_file(ws, target, path)
    data = target.read_bytes()
    text = decode_text(data)
    if text is None:
        raise ToolError(f"'{path}' is a binary file ({human_size(len(data))}), not UTF-8 text; it cannot be read or edited as text")
    return text


@contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` for the block to write: when the block ends well it
    replaces `target` in one rename, else it is removed. A crash leaves the old file or the new
    one, never half of each."""
    temporary = target.with_name(f".{target.name[:100]}.{secrets.token_hex(4)}.tmp")
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomic(target: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` through atomic_target, synced to disk. Keeps the permission bits of the file
    it replaces, unless `mode` says what they must be."""
    if mode is None:
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            pass
    with atomic_target(target) as temporary:
        # a new file gets 0o666 less the umask, like any file the user creates
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
    try:  # make the rename itself durable; not every file system allows fsync on a folder
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        pass


def unified_diff(ws: Workspace, target: Path, before: str | None, after: str) -> str:
    relative = ws.relative(target)
    diff = difflib.unified_diff(
        (before or "").splitlines(keepends=True), after.splitlines(keepends=True),
        fromfile="/dev/null" if before is None else f"a/{relative}", tofile=f"b/{relative}",
    )
    lines = [line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in diff]
    return "".join(lines) or f"(no changes to {relative})\n"


# -- read_file --------------------------------------------------------------------------------

def read_file(ws: Workspace, path: str, offset: int = 1, limit: int = 2000) -> ToolResult:
    if offset < 1 or limit < 1:
        raise ToolError(f"offset and limit must be at least 1 (got offset={offset}, limit={limit}); offset is the first line to show, counting from 1")
    target = ws.resolve(path)
    require_file(ws, target, path)
    relative = ws.relative(target)
    size = target.stat().st_size
    shown: list[str] = []
    shown_bytes, total, last = 0, 0, offset - 1
    capped = False
    # streamed line by line so a huge log costs only the lines shown
    with target.open("rb") as handle:
        if is_binary(handle.read(BINARY_SNIFF_BYTES)):
            raise ToolError(f"'{path}' is a binary file ({human_size(size)}); it cannot be shown as text")
        handle.seek(0)
        for total, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ToolError(f"'{path}' is a binary file ({human_size(size)}): line {total} is not UTF-8 text, so it cannot be shown") from None
            if total < offset or total >= offset + limit or capped:
                continue
            line = line.rstrip("\n").removesuffix("\r")
            if len(line) > MAX_LINE_CHARS:
                line = f"{line[:MAX_LINE_CHARS]} [... line truncated: {len(line)} characters in all]"
            numbered = f"{total:>6}\t{line}"
            if shown and shown_bytes + len(numbered) + 1 > MAX_READ_BYTES:
                capped = True
                continue
            shown.append(numbered)
            shown_bytes += len(numbered) + 1
            last = total
    data = {"path": relative, "total_lines": total, "first_line": offset if shown else 0, "last_line": last if shown else 0}
    if total == 0:
        return ToolResult(f"({relative} is empty)", data=data)
    if offset > total:
        raise ToolError(f"offset {offset} is past the end of '{path}', which has {total} lines")
    output = "\n".join(shown)
    if last < total:
        why = "output limit reached" if capped else f"limit={limit}"
        output += (f"\n[showing lines {offset}-{last} of {total} ({why}); "
                   f"call read_file with offset={last + 1} to read more]")
    return ToolResult(output, data=data)


# -- write_file -------------------------------------------------------------------------------

def _write_target(ws: Workspace, path: str) -> Path:
    target = ws.resolve(path, write=True)
    if target.is_dir():
        raise ToolError(f"'{path}' is a directory; give the path of a file inside it")
    return target


def _current_text(target: Path) -> str | None:
    """The text a write would replace, None when there is no file; binary content as a placeholder."""
    if not target.exists():
        return None
    data = target.read_bytes()
    text = decode_text(data)
    return f"(binary content, {human_size(len(data))})\n" if text is None else text


def preview_write_file(ws: Workspace, path: str, content: str) -> str:
    target = _write_target(ws, path)
    return unified_diff(ws, target, _current_text(target), content)


def write_file(ws: Workspace, path: str, content: str) -> ToolResult:
    target = _write_target(ws, path)
    relative = ws.relative(target)
    existed = target.exists()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ToolError(f"cannot create '{path}': a part of its folder path is a file, not a folder") from None
    data = content.encode("utf-8")
    previous = target.stat().st_size if existed else 0
    write_atomic(target, data)
    if existed:
        message = f"Overwrote {relative} ({len(data)} bytes written; it had {previous} bytes)"
    else:
        message = f"Created {relative} ({len(data)} bytes written)"
    return ToolResult(message, data={"path": relative, "created": not existed})


# -- edit_file --------------------------------------------------------------------------------

def _plan_edit(ws: Workspace, path: str, old_string: str, new_string: str,
               replace_all: bool) -> tuple[Path, str, str, int, str, str, int]:
    """(target, text before, text after, replacements, matched_by, how it matched, first changed line)."""
    if old_string == "":
        raise ToolError("old_string is empty; to create a file or replace all of it, use write_file")
    if old_string == new_string:
        raise ToolError("old_string and new_string are the same, so the edit would change nothing")
    target = ws.resolve(path, write=True)
    relative = ws.relative(target)
    before = read_text(ws, target, path)
    # a file with only CRLF endings is edited as LF text and written back with CRLF
    crlf = "\r\n" in before and before.count("\r\n") == before.count("\n")
    text, old, new = before, old_string, new_string
    if crlf:
        text, old, new = (s.replace("\r\n", "\n") for s in (before, old_string, new_string))
    count = text.count(old)
    if count > 1 and not replace_all:
        lines = [text.count("\n", 0, m.start()) + 1 for m in re.finditer(re.escape(old), text)]
        numbers = ", ".join(str(n) for n in lines[:20])
        raise ToolError(f"old_string matches {count} places in {relative} (lines {numbers}). Add surrounding lines to "
                        "old_string so it matches exactly one, or set replace_all=true to change every one.")
    if count:
        index = text.index(old)
        after = text.replace(old, new) if replace_all else text.replace(old, new, 1)
        replacements, matched_by, how = count, "exact", "exact match"
        first_line = text.count("\n", 0, index) + 1
    else:
        match = find_fuzzy(text, old, new, relative)
        after = text[:match.start] + match.replacement + text[match.end:]
        replacements, matched_by, how, first_line = 1, match.matched_by, match.description, match.first_line
    if crlf:
        after = after.replace("\n", "\r\n")
    if after == before:
        raise ToolError(f"the edit would leave {relative} unchanged ({how}); check old_string and new_string")
    return target, before, after, replacements, matched_by, how, first_line


def preview_edit_file(ws: Workspace, path: str, old_string: str, new_string: str, replace_all: bool = False) -> str:
    target, before, after, *_ = _plan_edit(ws, path, old_string, new_string, replace_all)
    return unified_diff(ws, target, before, after)


def edit_file(ws: Workspace, path: str, old_string: str, new_string: str, replace_all: bool = False) -> ToolResult:
    target, _, after, replacements, matched_by, how, first_line = _plan_edit(ws, path, old_string, new_string, replace_all)
    write_atomic(target, after.encode("utf-8"))
    relative = ws.relative(target)
    noun = "occurrence" if replacements == 1 else "occurrences"
    message = f"Edited {relative}: replaced {replacements} {noun} ({how})."
    if replacements == 1:
        # the edited region with its line numbers, so the model can check the result without a read
        lines = after.replace("\r\n", "\n").removesuffix("\n").split("\n")
        start = max(first_line - 3, 1)
        end = min(first_line + new_string.count("\n") + 3, len(lines), start + 40)
        snippet = "\n".join(f"{n:>6}\t{lines[n - 1][:MAX_LINE_CHARS]}" for n in range(start, end + 1))
        message += f"\nLines {start}-{end} now read:\n{snippet}"
    return ToolResult(message, data={"path": relative, "replacements": replacements, "matched_by": matched_by})


# -- list_dir ---------------------------------------------------------------------------------

def list_dir(ws: Workspace, path: str = ".") -> ToolResult:
    target = ws.resolve(path)
    if not target.exists():
        raise missing_path_error(ws, target, path)
    if not target.is_dir():
        raise ToolError(f"'{path}' is a file, not a directory; use read_file to read it")
    entries = sorted((entry for entry in os.scandir(target) if entry.name != ".git"), key=lambda entry: entry.name)
    lines = []
    for entry in entries[:MAX_ENTRIES]:
        if entry.is_symlink():
            lines.append(f"{entry.name}{'/' if entry.is_dir() else ''} -> {os.readlink(entry.path)}")
        elif entry.is_dir():
            lines.append(f"{entry.name}/")
        else:
            lines.append(f"{entry.name}  {human_size(entry.stat().st_size)}")
    relative = ws.relative(target)
    if not entries:
        return ToolResult(f"{relative}/ is empty", data={"path": relative, "entries": 0})
    output = f"{relative}/ ({len(entries)} {'entry' if len(entries) == 1 else 'entries'})\n" + "\n".join(lines)
    if len(entries) > MAX_ENTRIES:
        output += f"\n[... {len(entries) - MAX_ENTRIES} more entries not shown; use glob to narrow down]"
    return ToolResult(output, data={"path": relative, "entries": len(entries)})


# -- glob and the file list it shares with grep ----------------------------------------------

def list_files(base: Path) -> list[str]:
    """Files under `base` (posix paths relative to it), sorted folder by folder. In a git
    repository: what git tracks plus untracked files it does not ignore; elsewhere every file
    outside .git folders."""
    return sorted(repository_files(base), key=lambda name: name.split("/"))


def _segment_regex(segment: str) -> str:
    """One path segment of a glob: * and ? stay inside the segment, [..] classes, {a,b} choices."""
    out, i = [], 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            while i + 1 < len(segment) and segment[i + 1] == "*":
                i += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and segment.find("]", i + 2) != -1:  # a ']' right after '[' is part of the class
            close = segment.find("]", i + 2)
            body = segment[i + 1:close]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = close
        elif char == "{" and "}" in segment[i:]:
            close = segment.index("}", i)
            choices = segment[i + 1:close].split(",")
            out.append("(?:" + "|".join(_segment_regex(choice) for choice in choices) + ")")
            i = close
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regex over posix paths: `*` stays within one folder, `**` spans any number."""
    segments = [segment for segment in pattern.removeprefix("./").split("/") if segment and segment != "."]
    parts = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:.*/)?")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(parts), re.DOTALL)


def glob(ws: Workspace, pattern: str, path: str = ".") -> ToolResult:
    if not pattern.strip():
        raise ToolError("the pattern is empty; for example '**/*.py' finds Python files at any depth")
    if pattern.startswith("/"):
        raise ToolError(f"the pattern '{pattern}' is absolute; give it relative to path (path='.' is the workspace root), e.g. 'src/**/*.py'")
    base = ws.resolve(path)
    if not base.exists():
        raise missing_path_error(ws, base, path)
    if not base.is_dir():
        raise ToolError(f"'{path}' is a file, not a directory; glob searches inside a directory")
    regex = glob_regex(pattern)
    matched = [base / name for name in list_files(base) if regex.fullmatch(name)]
    matched.sort(key=lambda file: file.stat().st_mtime if file.exists() else 0.0, reverse=True)
    relative = ws.relative(base)
    if not matched:
        hint = " ('*' stays within one folder; use '**/' to search subfolders)" if "**" not in pattern else ""
        return ToolResult(f"No files match '{pattern}' in {relative}{hint}", data={"count": 0})
    lines = [ws.relative(file) for file in matched[:MAX_ENTRIES]]
    output = "\n".join(lines)
    if len(matched) > MAX_ENTRIES:
        output += f"\n[... {len(matched) - MAX_ENTRIES} more files not shown (newest first); narrow the pattern or path]"
    else:
        output += f"\n({len(matched)} file{'s' if len(matched) != 1 else ''}, newest first)"
    return ToolResult(output, data={"count": len(matched)})
