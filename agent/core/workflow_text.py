"""What the fix workflow reads: read_file results, test output, pytest's summary, errors and the
code blocks of replies; plain functions over text."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterable

MAX_SALVAGED_LINES = 40  # a cut Python file loses at most this many lines of its tail to parse
RUNAWAY_REPEATS = 3  # one block of lines written this many times in a row: the model is running on
MAX_RUNAWAY_PERIOD = 3  # lines in such a block
MAX_FAILURE_LINES = 40
LANGUAGES = {".py": "python", ".js": "javascript", ".ts": "typescript", ".sh": "bash", ".toml": "toml",
             ".json": "json", ".yaml": "yaml", ".yml": "yaml", ".md": "markdown", ".go": "go", ".rs": "rust"}
_ERROR = re.compile(r"^[\w.]*(?:Error|Exception|Exit)\b:?")
_TEST_FUNCTION = re.compile(r"^\s*(?:async\s+)?def test\w*|^\s*(?:it|test)\(", re.MULTILINE)
_SUMMARY = re.compile(r"(\d+) (passed|failed|errors?)\b")
_SUMMARY_LINE = re.compile(r"^=*\s*\d+ (?:passed|failed|errors?)\b.* in [\d.]+s\b")
_NUMBERED = re.compile(r"^ *\d+\t(.*)$")
_FENCED = re.compile(r"```[^\n]*\n(.*?)(?:\n```|\Z)", re.DOTALL)
_FAILED_TEST = re.compile(r"^FAILED ([^\s:]+)::([A-Za-z_]\w*)", re.MULTILINE)


def unnumbered(output: str) -> str | None:
    """A read_file result's text without its line numbers; None when it is not the whole file."""
    if output.startswith("(") and output.endswith(" is empty)"):
        return ""
    lines = []
    for line in output.split("\n"):
        match = _NUMBERED.match(line)
        if match is None:
            return None  # a note: part of the file, or not a file at all
        lines.append(match.group(1))
    return "\n".join(lines) + "\n"


def without_line_number(line: str) -> str:
    """A line copied from a read_file result, as the file has it."""
    return _NUMBERED.sub(r"\1", line)


def file_text(root: Path, path: str) -> str | None:
    return (root / path).read_text(errors="replace") if (root / path).is_file() else None


def tests_in(texts: Iterable[str | None]) -> int:
    """Test functions in these files' texts (None: no such file)."""
    return sum(len(_TEST_FUNCTION.findall(text or "")) for text in texts)


def failing_tests(output: str) -> list[tuple[str, str]]:
    """(file, test function or class) of each FAILED line of pytest's short summary."""
    return _FAILED_TEST.findall(output)


def defines(text: str | None, name: str) -> bool:
    """Whether Python source defines a function or class `name` at any depth."""
    return bool(re.search(rf"^\s*(?:async\s+)?(?:def|class) {re.escape(name)}\b", text or "", re.MULTILINE))


def test_counts(output: str) -> tuple[int, int] | None:
    """(passed, failed or in error) from pytest's summary line ("2 failed, 6 passed in 0.05s", the
    last line but the shell tool's exit code), None when there is none."""
    summary = [line for line in output.strip().split("\n")[-2:] if _SUMMARY_LINE.search(line)]
    counts = {word: int(n) for n, word in _SUMMARY.findall(summary[-1])} if summary else {}
    if not counts:
        return None
    return counts.get("passed", 0), counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)


def progress(before: str, after: str) -> bool:
    """Whether the tests went forward: more passed and fewer failed than before."""
    old, new = test_counts(before), test_counts(after)
    return old is not None and new is not None and new[0] > old[0] and new[1] < old[1]


def _copies(lines: list[str], start: int, period: int) -> int:
    """How many times in a row the `period` lines at `start` occur there (0 for a blank block)."""
    block = lines[start : start + period]
    if len(block) < period or not any(line.strip() for line in block):
        return 0
    copies = 1
    while lines[start + copies * period : start + (copies + 1) * period] == block:
        copies += 1
    return copies


def runs_away(text: str) -> bool:
    """The text's last whole lines are one block of 1..MAX_RUNAWAY_PERIOD lines RUNAWAY_REPEATS times
    over: a 1.5B writing tests went on with `assert mathutil.clamp(10, 10, 10) == 10` (and with
    two such lines in turn) to its token bound, 800 tokens and 30 s a draw."""
    lines = text.split("\n")[:-1]  # whole lines
    return any(_copies(lines, len(lines) - RUNAWAY_REPEATS * period, period) >= RUNAWAY_REPEATS
               for period in range(1, MAX_RUNAWAY_PERIOD + 1) if len(lines) >= RUNAWAY_REPEATS * period)


def without_repeats(code: str) -> str:
    """Each block of lines written RUNAWAY_REPEATS times or more in a row, as that block once."""
    lines, kept, i = code.split("\n"), [], 0
    while i < len(lines):
        period, copies = next(((p, c) for p in range(1, MAX_RUNAWAY_PERIOD + 1)
                               if (c := _copies(lines, i, p)) >= RUNAWAY_REPEATS), (1, 1))
        kept += lines[i : i + period]
        i += period * copies
    return "\n".join(kept)


def parsing_prefix(code: str) -> str | None:
    """The longest run of whole lines from the start of cut Python code that parses (nothing runs)."""
    lines = code.split("\n")[:-1]  # the last line is the one the cut went through
    for _ in range(MAX_SALVAGED_LINES):
        if not any(line.strip() for line in lines):
            return None
        kept = "\n".join(lines).rstrip() + "\n"
        try:
            ast.parse(kept)
            return kept
        except SyntaxError:
            lines.pop()
    return None


def code_block(text: str) -> str:
    match = _FENCED.search(text)
    return match.group(1) if match else text.strip()


def language_of(path: str) -> str:
    return LANGUAGES.get(Path(path).suffix, "")


def error_lines(output: str) -> list[str]:
    """The error messages in a command's output, pytest's `E` lines and exceptions' last lines, each
    with the line of code that raised it when the traceback shows one (a bare error message left a
    1.5B writing the same bug again)."""
    lines = []
    code = ""
    for line in output.split("\n"):
        pytest_line = line.startswith("E ")
        text = line[1:].strip() if pytest_line else line.strip()
        if _ERROR.match(text) or (pytest_line and text.startswith("assert ")):
            error = f"{text[:200]} (at `{code[:120]}`)" if code and code != text else text[:200]
            if error not in lines:
                lines.append(error)
        elif not pytest_line and text.strip("^~"):  # the code stands above its error (and carets)
            code = text if line.startswith("    ") and not text.startswith("File ") else ""
    return lines


def trimmed(output: str) -> str:
    """A failing command's output, the part that helps first: from the first failure or traceback,
    at most MAX_FAILURE_LINES lines, and the summary line."""
    lines = output.rstrip().split("\n")
    start = next((i for i, line in enumerate(lines)
                  if line.startswith(("_____", "Traceback", "E ", "FAILED", "ERROR"))), 0)
    kept = lines[start:start + MAX_FAILURE_LINES]
    if start + MAX_FAILURE_LINES < len(lines):
        kept += ["[...]", lines[-1]]
    return "\n".join(kept)
