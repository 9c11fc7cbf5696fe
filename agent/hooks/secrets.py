"""Keeping secrets out of prompts and output: detect-secrets' pattern detectors, called directly
(its entropy detectors are left out: on source code they flag identifiers and hashes; its
per-line scanner resets its caches on every call, 15x slower on a big diff), plus redaction that
replaces the whole token, not only the part a detector captured (its GitHub detector reports
`ghp`, not the token)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

REDACTED = "[REDACTED]"
PRIVATE_KEY = "Private Key"
KEYWORD = "Secret Keyword"
MIN_KEYWORD_VALUE = 6  # `key = "abc"` in a test is not a credential worth blocking a commit over
_TOKEN_CHARS = r"[A-Za-z0-9_\-+/=.~]"
_KEY_BLOCK_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY")


@lru_cache(maxsize=1)
def _detectors() -> tuple[Any, ...]:
    return tuple(cls() for cls in get_mapping_from_secret_type_to_class().values() if "Entropy" not in cls.__name__)


@lru_cache(maxsize=1 << 16)  # the same lines come back in each context width of a diff
def _scan(line: str, file_type: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The kinds of secret in a line, and the values the detectors captured. The keyword detector
    reads assignments by file type (`file_type` is a suffix such as ".py")."""
    if not re.search(r"[A-Za-z0-9]{6}", line):  # nothing long enough to be a credential
        return (), ()
    found = [s for d in _detectors() for s in d.analyze_line(filename=f"file{file_type}", line=line, line_number=0)
             if s.type != KEYWORD or len(s.secret_value or "") >= MIN_KEYWORD_VALUE]
    return tuple(sorted({s.type for s in found})), tuple(s.secret_value for s in found if s.secret_value)


def _expand(line: str, value: str) -> list[tuple[int, int]]:
    """Spans of every token in `line` that contains `value`."""
    spans = []
    for match in re.finditer(re.escape(value), line):
        start, end = match.span()
        while start > 0 and re.match(_TOKEN_CHARS, line[start - 1]):
            start -= 1
        while end < len(line) and re.match(_TOKEN_CHARS, line[end]):
            end += 1
        spans.append((start, end))
    return spans


@dataclass
class Redactor:
    """Redacts lines in order; a private key's body lines follow its BEGIN line, so the redactor
    keeps that state between calls. One per file, named by `path`."""

    path: str = ""
    in_key_block: bool = False

    def __call__(self, line: str) -> tuple[str, list[str]]:
        """The line with secrets replaced, and the kinds found in it."""
        if self.in_key_block:
            if _KEY_BLOCK_END.search(line):
                self.in_key_block = False
                return line, []
            return REDACTED if line.strip() else line, [PRIVATE_KEY]
        kinds, values = _scan(line, Path(self.path).suffix)
        if not kinds:
            return line, []
        if PRIVATE_KEY in kinds:
            self.in_key_block = not _KEY_BLOCK_END.search(line)
            return line, list(kinds)  # the BEGIN line itself is not secret
        spans = sorted(span for value in values for span in _expand(line, value))
        clean, last = [], 0
        for start, end in spans:
            if start >= last:
                clean.append(line[last:start] + REDACTED)
                last = end
        clean.append(line[last:])
        return "".join(clean), list(kinds)


def redact_text(text: str) -> str:
    """Every line of `text` redacted (for model output and anything else about to be printed)."""
    redactor = Redactor()
    return "\n".join(redactor(line)[0] for line in text.split("\n"))
