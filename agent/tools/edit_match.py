"""How edit_file finds old_string when it is not in the file verbatim: a cascade of ever looser
line-by-line comparisons, each accepted only when it points at exactly one place."""

from __future__ import annotations

import difflib
import heapq
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable

from agent.tools.base import ToolError

CLOSEST_SHOWN_LINES = 30  # lines of the closest window shown when nothing matches
FULL_SCAN_LINES = 200_000  # past this many window lines, only a shortlist of windows is compared
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Strategy:
    name: str  # what edit_file reports as matched_by
    ignoring: str  # completes "matched after ignoring ..."
    normalise: Callable[[list[str]], list[str]]  # a block of lines -> what is compared
    per_line: bool = True  # normalise treats lines independently, so the file can be normalised once


@dataclass(frozen=True)
class FuzzyMatch:
    start: int  # character span in the text; the last line's terminator is not part of it
    end: int
    first_line: int  # 1-based
    replacement: str
    matched_by: str
    description: str  # "matched after ignoring trailing whitespace", for the result message


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _common_indent(lines: list[str]) -> str:
    indents = [_indent(line) for line in lines if line.strip()]
    if not indents:
        return ""
    common = indents[0]
    for indent in indents[1:]:
        while not indent.startswith(common):
            common = common[:-1]
    return common


def _dedent(lines: list[str]) -> list[str]:
    common = len(_common_indent(lines))
    return [line[common:].rstrip() if line.strip() else "" for line in lines]


STRATEGIES = [
    Strategy("trailing_whitespace", "trailing whitespace", lambda lines: [line.rstrip() for line in lines]),
    Strategy("surrounding_whitespace", "leading and trailing whitespace on each line", lambda lines: [line.strip() for line in lines]),
    Strategy("normalised_whitespace", "differences in whitespace", lambda lines: [" ".join(line.split()) for line in lines]),
    # Whatever this matches, surrounding_whitespace matched first, so it decides only if the order
    # ever changes; the re-indentation it stands for is done for every tolerant match (_build_match).
    Strategy("indentation", "indentation", _dedent, per_line=False),
]


def split_block(block: str) -> tuple[list[str], bool]:
    """The lines of old_string/new_string, and whether it ended with a newline (dropped here
    because the match works on whole lines)."""
    if block.endswith("\n") and block != "\n":
        return block[:-1].split("\n"), True
    return block.split("\n"), False


def find_fuzzy(text: str, old: str, new: str, display_path: str) -> FuzzyMatch:
    """The one place where `old` matches `text` under the first strategy that matches anywhere,
    with `new` ready to put there. ToolError when a strategy matches several places (ambiguous)
    or none matches at all (showing the closest lines)."""
    lines = text.split("\n")
    old_lines, old_ends_with_newline = split_block(old)
    for strategy in STRATEGIES:
        starts = _match_starts(strategy, lines, old_lines)
        if len(starts) > 1:
            numbers = ", ".join(str(i + 1) for i in starts[:20])
            raise ToolError(
                f"old_string is not in {display_path} exactly, and ignoring {strategy.ignoring} it matches "
                f"{len(starts)} places (starting at lines {numbers}). Add a few unchanged lines around "
                "the change to old_string so it matches one place, copied exactly from read_file."
            )
        if starts:
            return _build_match(lines, starts[0], old_lines, new, old_ends_with_newline, strategy)
    raise ToolError(_no_match_message(lines, old_lines, display_path))


def _match_starts(strategy: Strategy, lines: list[str], old_lines: list[str]) -> list[int]:
    size, target = len(old_lines), strategy.normalise(old_lines)
    if strategy.per_line:
        normalised = strategy.normalise(lines)
        first = target[0]
        return [i for i in range(len(lines) - size + 1)
                if normalised[i] == first and normalised[i:i + size] == target]
    first = old_lines[0].strip()  # cheap filter: whole-block comparisons only where the first line fits
    return [i for i in range(len(lines) - size + 1)
            if lines[i].strip() == first and strategy.normalise(lines[i:i + size]) == target]


def _build_match(lines: list[str], start: int, old_lines: list[str], new: str,
                 old_ends_with_newline: bool, strategy: Strategy) -> FuzzyMatch:
    window = lines[start:start + len(old_lines)]
    begin = sum(len(line) + 1 for line in lines[:start])
    end = begin + sum(len(line) + 1 for line in window) - 1
    if window[-1].endswith("\r"):  # a CRLF line in a file with mixed endings keeps its CR
        end -= 1
    replacement = new[:-1] if old_ends_with_newline and new.endswith("\n") else new
    description = f"matched after ignoring {strategy.ignoring}"
    # old_string's indentation was off, so new_string's is off the same way: translate it
    mapping = _indent_map(old_lines, window)
    if mapping and any(old != found for old, found in mapping.items()):
        replacement = _reindent(replacement, mapping)
        description += "; new_string was re-indented to the file's indentation"
    return FuzzyMatch(begin, end, start + 1, replacement, strategy.name, description)


def _indent_map(old_lines: list[str], window: list[str]) -> dict[str, str] | None:
    """Which indentation in the file each indentation of old_string stands for, or None when the
    correspondence is inconsistent (then new_string is left as written)."""
    mapping: dict[str, str] = {}
    for old, found in zip(old_lines, window):
        if old.strip() and found.strip() and mapping.setdefault(_indent(old), _indent(found)) != _indent(found):
            return None
    return mapping


def _reindent(block: str, mapping: dict[str, str]) -> str:
    scale = _space_scale(mapping)
    out = []
    for line in block.split("\n"):
        indent = _indent(line)
        if line.strip() and indent not in mapping and scale and indent.strip(" ") == "":
            # a level old_string did not use, in spaces: follow the file's indent width
            low, file_low, step = scale
            line = " " * max(0, file_low + round((len(indent) - low) * step)) + line[len(indent):]
        elif line.strip():
            known = [old for old in mapping if indent.startswith(old)]
            if known:  # keep any extra indentation on top of the nearest known level
                nearest = max(known, key=len)
                line = mapping[nearest] + line[len(nearest):]
        out.append(line)
    return "\n".join(out)


def _space_scale(mapping: dict[str, str]) -> tuple[int, int, float] | None:
    """(lowest old width, its width in the file, file columns per old column) when the mapping
    is all spaces and has two levels to measure from, e.g. 2-space old_string in a 4-space file."""
    if len(mapping) < 2 or any(text.strip(" ") for pair in mapping.items() for text in pair):
        return None
    widths = sorted((len(old), len(found)) for old, found in mapping.items())
    (low, file_low), (high, file_high) = widths[0], widths[-1]
    step = (file_high - file_low) / (high - low)
    return (low, file_low, step) if step > 0 else None


def _no_match_message(lines: list[str], old_lines: list[str], display_path: str) -> str:
    start, ratio = closest_window(lines, old_lines)
    message = f"old_string was not found in {display_path}, not even ignoring whitespace and indentation."
    if start is None:
        return message + " The file is empty; use write_file to give it content."
    shown = lines[start:start + min(len(old_lines), CLOSEST_SHOWN_LINES)]
    numbered = "\n".join(f"{start + i + 1:>6}\t{line.rstrip(chr(13))}" for i, line in enumerate(shown))
    more = "\n   ..." if len(old_lines) > CLOSEST_SHOWN_LINES else ""
    return (f"{message} The closest lines ({ratio:.0%} similar) are:\n{numbered}{more}\n"
            "Read the file again with read_file and copy old_string exactly from it.")


def closest_window(lines: list[str], old_lines: list[str]) -> tuple[int | None, float]:
    """(start index, similarity) of the run of len(old_lines) lines most like old_lines."""
    if lines == [""]:
        return None, 0.0
    size = min(len(old_lines), len(lines))
    starts: Iterable[int] = range(len(lines) - size + 1)
    if (len(lines) - size + 1) * size > FULL_SCAN_LINES:
        starts = _likely_windows(lines, old_lines, size)
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2("\n".join(old_lines))  # SequenceMatcher caches its analysis of seq2
    best, best_ratio = 0, -1.0
    for i in starts:
        matcher.set_seq1("\n".join(lines[i:i + size]))
        # the cheap upper bounds skip most windows without the quadratic comparison
        if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best, best_ratio = i, ratio
    return best, max(best_ratio, 0.0)


def _likely_windows(lines: list[str], old_lines: list[str], size: int, keep: int = 50) -> list[int]:
    """The window starts sharing the most words with old_lines: a linear-time shortlist for big files."""
    wanted = Counter(word for line in old_lines for word in _WORD.findall(line))
    words = [_WORD.findall(line) for line in lines]
    have: Counter[str] = Counter()
    shared = 0
    scores = []
    for i, line_words in enumerate(words):
        for word in line_words:
            if have[word] < wanted[word]:
                shared += 1
            have[word] += 1
        if i >= size:
            for word in words[i - size]:
                have[word] -= 1
                if have[word] < wanted[word]:
                    shared -= 1
        if i >= size - 1:
            scores.append((shared, -(i - size + 1)))
    return [-start for _, start in heapq.nlargest(keep, scores)]
