"""grep: a regex search over the workspace's files, through ripgrep when it is installed and in
plain Python otherwise; both skip what .gitignore ignores and give the same results."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.tools.base import ToolError, ToolResult, Workspace
from agent.tools.files import BINARY_SNIFF_BYTES, glob_regex, is_binary, list_files, missing_path_error

MAX_TEXT_CHARS = 300
MAX_RESULTS_LIMIT = 2000
USE_RIPGREP = True  # tests turn this off to exercise the pure-Python search


@dataclass(frozen=True)
class Match:
    path: str  # relative to the workspace root
    line: int
    text: str


class _RipgrepRejected(Exception):
    """ripgrep could not parse the regex (its syntax differs a little from Python's)."""


def grep(ws: Workspace, pattern: str, path: str = ".", glob: str | None = None,
         ignore_case: bool = False, max_results: int = 200) -> ToolResult:
    if not pattern:
        raise ToolError("the pattern is empty; give a regular expression, e.g. 'def main' or 'TODO|FIXME'")
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise ToolError(f"max_results must be between 1 and {MAX_RESULTS_LIMIT} (got {max_results})")
    base = ws.resolve(path)
    if not base.exists():
        raise missing_path_error(ws, base, path)
    try:
        regex: re.Pattern[str] | None = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        regex_error = None
    except re.error as e:
        regex, regex_error = None, e
    ripgrep = shutil.which("rg") if USE_RIPGREP else None
    matches: list[Match] | None = None
    if ripgrep:
        try:
            matches, capped = _grep_ripgrep(ws, ripgrep, pattern, base, glob, ignore_case, max_results)
        except _RipgrepRejected as e:
            if regex is None:
                raise ToolError(f"invalid regular expression {pattern!r}: {e}") from None
            # Python's re accepts it (e.g. a look-around), so search without ripgrep
    if matches is None:
        if regex is None:
            raise ToolError(f"invalid regular expression {pattern!r}: {regex_error}")
        matches, capped = _grep_python(ws, regex, base, glob, max_results)
    return _result(ws, pattern, base, matches, capped, max_results)


def _result(ws: Workspace, pattern: str, base: Path, matches: list[Match], capped: bool, max_results: int) -> ToolResult:
    files = len({match.path for match in matches})
    data = {"matches": len(matches), "files": files, "capped": capped}
    if not matches:
        return ToolResult(f"No matches for {pattern!r} in {ws.relative(base)}", data=data)
    lines = [f"{match.path}:{match.line}: {_clip(match.text)}" for match in matches]
    if capped:
        lines.append(f"[showing the first {max_results} matches; there are more. Narrow the pattern, path or glob, or raise max_results]")
    else:
        lines.append(f"({len(matches)} match{'es' if len(matches) != 1 else ''} in {files} file{'s' if files != 1 else ''})")
    return ToolResult("\n".join(lines), data=data)


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS] + " [...]"


def _strip_newline(text: str) -> str:
    return text.removesuffix("\n").removesuffix("\r")


# -- pure Python ------------------------------------------------------------------------------

def _glob_filter(glob: str | None):
    """ripgrep's --glob rules: a glob without '/' matches the file name at any depth, one with '/'
    the path from the searched folder; a leading '!' excludes."""
    if not glob:
        return lambda name: True
    exclude = glob.startswith("!")
    regex = glob_regex(glob.removeprefix("!"))

    def accepts(name: str) -> bool:
        subject = name if "/" in glob.removeprefix("!").strip("/") else name.rsplit("/", 1)[-1]
        return bool(regex.fullmatch(subject)) != exclude
    return accepts


def _grep_python(ws: Workspace, regex: re.Pattern[str], base: Path, glob: str | None,
                 max_results: int) -> tuple[list[Match], bool]:
    if base.is_file():
        files = [base]  # a file named explicitly is searched even when ignored, as ripgrep does
    else:
        accepts = _glob_filter(glob)
        # ripgrep does not follow symbolic links, and neither does this
        files = [base / name for name in list_files(base) if accepts(name) and not (base / name).is_symlink()]
    matches: list[Match] = []
    for file in files:
        try:
            with file.open("rb") as handle:
                if is_binary(handle.read(BINARY_SNIFF_BYTES)):
                    continue
                handle.seek(0)
                for number, raw in enumerate(handle, 1):
                    text = _strip_newline(raw.decode("utf-8", "replace"))
                    if regex.search(text):
                        if len(matches) == max_results:
                            return matches, True
                        matches.append(Match(ws.relative(file), number, text))
        except OSError:
            continue  # unreadable (permissions, vanished): ripgrep skips these too
    return matches, False


# -- ripgrep ----------------------------------------------------------------------------------

def _json_text(value: dict) -> str:
    if "text" in value:
        return value["text"]
    return base64.b64decode(value.get("bytes", "")).decode("utf-8", "replace")


def _grep_ripgrep(ws: Workspace, ripgrep: str, pattern: str, base: Path, glob: str | None,
                  ignore_case: bool, max_results: int) -> tuple[list[Match], bool]:
    folder, target = (base.parent, base.name) if base.is_file() else (base, ".")
    # --hidden and --sort path make ripgrep see and order files as git ls-files does
    command = [ripgrep, "--json", "--sort", "path", "--hidden", "--glob", "!.git"]
    if ignore_case:
        command.append("--ignore-case")
    if glob:
        command += ["--glob", glob]
    command += ["--regexp", pattern, "--", target]
    matches: list[Match] = []
    capped = False
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        try:
            for line in process.stdout:
                event = json.loads(line)
                if event.get("type") != "match":
                    continue
                if len(matches) == max_results:
                    capped = True
                    break
                found = event["data"]
                file = folder / _json_text(found["path"])
                matches.append(Match(ws.relative(file), found["line_number"], _strip_newline(_json_text(found["lines"]))))
        finally:
            if capped:
                process.kill()
            process.stdout.close()
            code = process.wait()
        errors.seek(0)
        message = errors.read().decode("utf-8", "replace").strip()
    # exit code 2 also covers unreadable files among good ones; only a bad regex or glob is fatal
    if not capped and code == 2 and not matches:
        if "regex" in message.lower():
            raise _RipgrepRejected(message)
        if "glob" in message.lower():
            raise ToolError(f"invalid glob {glob!r}: {message}")
    return matches, capped
