"""Reviewing a diff: the model reads it (in parts when it does not fit), answers with findings
as `path:line: severity: message`, and we keep the ones that point into the change. Secrets in
added lines are findings of their own, found without the model."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field

from agent.backends.base import Backend
from agent.errors import AgentError
from agent.prompts import render_prompt
from agent.hooks.diff import Changes, split_for_review
from agent.hooks.model import ask, diff_budget_chars
from agent.hooks.secrets import redact_text

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_ALIASES = {"blocker": "critical", "severe": "critical", "error": "high", "major": "high", "bug": "high",
                    "warning": "medium", "warn": "medium", "moderate": "medium", "minor": "low", "note": "low",
                    "nit": "info", "suggestion": "info", "style": "info"}
ANSWER_TOKENS = 512
STAT_CHARS = 2000  # the file list sent with each part
NEAR_A_CHANGE = 10  # a finding this many lines from an added line keeps its line number
FINDING = re.compile(r"^\s*(?:[-*]\s+|\d+[.)]\s+)?`?(?P<path>[^\s:`]+)`?:(?P<line>\d+)(?::\d+)?:\s*\[?(?P<severity>[A-Za-z]+)\]?\s*:\s*(?P<message>\S.*)$")


def severity_name(word: str) -> str | None:
    word = word.lower()
    return word if word in SEVERITIES else SEVERITY_ALIASES.get(word)


def check_threshold(name: str) -> str:
    """A --fail-on value: a severity, or "none" to never fail."""
    if name != "none" and name not in SEVERITIES:
        raise AgentError(f"unknown severity '{name}' for --fail-on; use one of {', '.join(SEVERITIES)} or none")
    return name


@dataclass
class Finding:
    path: str
    line: int
    severity: str
    message: str
    source: str = "model"  # or "secrets"

    def format(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self.severity)


@dataclass
class Review:
    target: str
    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # reviewed by the model
    skipped: list[str] = field(default_factory=list)  # binary files
    parts: int = 0
    whole: bool = True  # False: the diff did not fit and was reviewed file by file

    def at_or_above(self, threshold: str) -> list[Finding]:
        if threshold == "none":
            return []
        return [f for f in self.findings if f.rank >= SEVERITIES.index(threshold)]

    def summary(self) -> list[str]:
        counts = ", ".join(f"{sum(f.severity == s for f in self.findings)} {s}" for s in reversed(SEVERITIES)
                           if any(f.severity == s for f in self.findings))
        lines = [f"reviewed {len(self.files)} file{'s' if len(self.files) != 1 else ''} of {self.target}: "
                 f"{len(self.findings)} finding{'s' if len(self.findings) != 1 else ''}" + (f" ({counts})" if counts else "")]
        if not self.whole:
            lines.append(f"the diff is larger than the model's context, so it was reviewed file by file in {self.parts} parts")
        if self.skipped:
            lines.append(f"binary files not reviewed: {', '.join(self.skipped)}")
        return lines

    def as_dict(self, threshold: str) -> dict:
        return {"target": self.target, "findings": [asdict(f) for f in self.findings], "files": self.files,
                "skipped_binary": self.skipped, "parts": self.parts, "file_by_file": not self.whole,
                "fail_on": threshold, "failed": bool(self.at_or_above(threshold)), "summary": self.summary()}


def _match_path(path: str, candidates: list[str]) -> str | None:
    path = path.removeprefix("b/").removeprefix("./")
    if path in candidates:
        return path
    ends = [c for c in candidates if c.endswith("/" + path) or path.endswith("/" + c)]
    return ends[0] if len(ends) == 1 else None


def parse_findings(answer: str, paths: list[str], changes: Changes) -> list[Finding]:
    """The findings in a model's answer that name a file of this part; a line number far from
    every added line is moved to the nearest one (small models miscount)."""
    added = {f.path: f.changed_lines for f in changes.files}
    findings = []
    for line in answer.splitlines():
        match = FINDING.match(line.replace("**", ""))
        if not match:
            continue
        path, severity = _match_path(match["path"], paths), severity_name(match["severity"])
        if path is None or severity is None:
            continue
        number = int(match["line"])
        if added.get(path) and min(abs(number - n) for n in added[path]) > NEAR_A_CHANGE:
            number = min(added[path], key=lambda n: abs(number - n))
        message = redact_text(match["message"].strip())[:500]
        findings.append(Finding(path, number, severity, message))
    return findings


def secret_findings(changes: Changes) -> list[Finding]:
    return [Finding(s.path, s.line or 0, "high", f"possible secret ({s.kind}) added; its value is not shown. Remove it "
                                                  "from the change and rotate it", source="secrets")
            for s in changes.secrets]


def review_changes(backend: Backend | None, changes: Changes, cancel: threading.Event | None = None) -> Review:
    """Findings for `changes`: the model's, and secrets in added lines (the only ones without a
    backend)."""
    review = Review(changes.target.describe(), skipped=[f.path for f in changes.files if f.binary])
    review.findings = secret_findings(changes)
    text_files = changes.text_files
    if text_files and backend is not None:
        system = render_prompt("review.md")
        stat = changes.stat()[:STAT_CHARS]
        sample = "\n".join(f.views["narrow"] for f in text_files[:20])
        budget = diff_budget_chars(backend, system, sample, ANSWER_TOKENS) - len(stat) - 200
        parts, review.whole = split_for_review(changes, max(budget, 500))
        review.parts, review.files = len(parts), [f.path for f in text_files]
        for number, part in enumerate(parts, 1):
            user = render_prompt("review_request.md", part=number, parts=len(parts), stat=stat, diff=part.text)
            review.findings += parse_findings(ask(backend, system, user, ANSWER_TOKENS, cancel), part.paths, changes)
    unique = {(f.path, f.line, f.severity, f.message): f for f in review.findings}
    review.findings = sorted(unique.values(), key=lambda f: (f.path, f.line, -f.rank))
    return review
