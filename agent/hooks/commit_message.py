"""Commit messages for the staged diff: the model writes, we make the format right. A subject of
at most 72 characters (Conventional Commits unless the repository's history clearly uses
another style), a blank line, a body wrapped at 72 columns."""

from __future__ import annotations

import re
import textwrap
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from agent.backends.base import Backend
from agent.core.toolcalls import split_reasoning
from agent.errors import AgentError
from agent.prompts import render_prompt
from agent.hooks.diff import Changes, DiffTarget, clipped_diff, git, read_changes
from agent.hooks.model import ask, diff_budget_chars

SUBJECT_LIMIT = 72
BODY_WIDTH = 72
MAX_BODY_LINES = 15  # small models ramble; a commit body is a summary
ANSWER_TOKENS = 256
HISTORY_COMMITS = 30
TYPES = ("feat", "fix", "docs", "style", "refactor", "perf", "test", "build", "ci", "chore", "revert")
TYPE_ALIASES = {"feature": "feat", "bugfix": "fix", "bug": "fix", "hotfix": "fix", "doc": "docs", "tests": "test",
                "refactoring": "refactor", "chores": "chore", "performance": "perf", "styles": "style"}
CONVENTIONAL = re.compile(r"^(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()]*)\))?(?P<bang>!)?\s*:\s*(?P<description>\S.*)$")
_PREAMBLE = re.compile(r"^(here('s| is)|sure\b|okay\b|certainly\b|the commit message\b)|commit message.*:\s*$", re.I)
# a small model echoing its input: file headers, stat lines, diff lines
_ECHO = re.compile(r"^(=== |@@ |diff --git |\+\+\+ |--- |\S+ \| |[+-]?\s*\S+ \((added|deleted|renamed|modified|mode changed)[,)]|\s*\d+ [-+ ] )")
_LABEL = re.compile(r"^(subject|title|summary|body|description|commit message|message)\s*:\s*", re.I)
_BULLET = re.compile(r"^\s*([-*•]|\d+[.)])\s+")
_TRAILER = re.compile(r"^[A-Za-z][A-Za-z0-9-]*: \S")
BUILD_FILES = {"pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "package.json", "package-lock.json",
               "Cargo.toml", "Cargo.lock", "go.mod", "go.sum", "Makefile", "CMakeLists.txt", "Dockerfile", "poetry.lock"}
VERB_TYPES = {"fix": "fix", "correct": "fix", "resolve": "fix", "handle": "fix", "prevent": "fix", "avoid": "fix",
              "add": "feat", "implement": "feat", "introduce": "feat", "support": "feat", "create": "feat", "allow": "feat",
              "enable": "feat", "refactor": "refactor", "rename": "refactor", "move": "refactor", "simplify": "refactor",
              "extract": "refactor", "split": "refactor", "clean": "refactor", "speed": "perf", "optimize": "perf",
              "optimise": "perf", "cache": "perf", "document": "docs", "test": "test"}


class NothingToDescribe(AgentError):
    pass


@dataclass
class Style:
    conventional: bool = True
    lowercase: bool = True  # the description's first letter
    scopes: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)


@dataclass
class CommitMessage:
    text: str
    fallback: bool  # the model's answer had no usable subject; one was made from the file list
    clipped: bool  # the diff was shortened to fit the model's context
    raw: str  # what the model said


def read_history(root: Path) -> list[str]:
    """Subjects of the latest commits, newest first (none in a repository without commits)."""
    if not git(root, "rev-parse", "--verify", "--quiet", "HEAD", ok_codes=(0, 1)).strip():
        return []
    return [s for s in git(root, "log", f"-n{HISTORY_COMMITS}", "--no-merges", "--format=%s").splitlines() if s.strip()]


def detect_style(subjects: list[str], requested: str = "auto") -> Style:
    """auto: Conventional Commits, unless at least five recent subjects exist and fewer than a
    third of them use it, in which case the history's own style is followed."""
    parsed = [m for s in subjects if (m := CONVENTIONAL.match(s)) and _known_type(m["type"])]
    conventional = requested == "conventional" or (requested == "auto" and (len(subjects) < 5 or len(parsed) * 3 >= len(subjects)))
    descriptions = [m["description"] for m in parsed] if conventional else subjects
    letters = [d[0] for d in descriptions if d[:1].isalpha()]
    lowercase = sum(c.islower() for c in letters) * 2 >= len(letters) if letters else conventional
    scopes = [scope for scope, _ in Counter(m["scope"] for m in parsed if m["scope"]).most_common(8)]
    examples = [s for s in subjects if not conventional or CONVENTIONAL.match(s)][:8]
    return Style(conventional, lowercase, scopes, examples)


def _known_type(word: str) -> str | None:
    word = word.lower()
    return word if word in TYPES else TYPE_ALIASES.get(word)


def _path_kind(path: str) -> str:
    p = PurePosixPath(path)
    if p.parts[0] in ("docs", "doc") or p.suffix.lower() in (".md", ".rst", ".adoc") or p.name.upper().startswith(("README", "CHANGELOG")):
        return "docs"
    if any(part in ("tests", "test", "spec", "__tests__") for part in p.parts[:-1]) or p.name.startswith("test_") \
            or re.search(r"(_test|\.test|\.spec)\.\w+$", p.name):
        return "test"
    if ".github" in p.parts or p.parts[0] in (".ci", ".circleci") or p.name in (".gitlab-ci.yml", ".travis.yml", "Jenkinsfile"):
        return "ci"
    return "build" if p.name in BUILD_FILES else "code"


def infer_type(changes: Changes, description: str) -> str:
    kinds = {_path_kind(f.path) for f in changes.files}
    if len(kinds) == 1 and kinds != {"code"}:
        return kinds.pop()
    verb = description.split(" ", 1)[0].lower()
    verb = re.sub(r"(es|s|ed|ing)$", "", verb) if verb not in VERB_TYPES else verb
    if verb in VERB_TYPES:
        return VERB_TYPES[verb]
    return "feat" if all(f.status == "added" for f in changes.files) else "chore"


def fallback_description(changes: Changes) -> str:
    if len(changes.files) == 1:
        f = changes.files[0]
        verb = {"added": "add", "deleted": "remove", "renamed": "rename"}.get(f.status, "update")
        return f"{verb} {f.old_path} to {f.path}" if f.old_path else f"{verb} {f.path}"
    parents = {str(PurePosixPath(f.path).parent) for f in changes.files}
    where = f" in {parents.pop()}" if len(parents) == 1 and "." not in parents else ""
    return f"update {len(changes.files)} files{where}"


def _clean(raw: str) -> list[str]:
    """The answer's lines without reasoning, fences, preambles, labels and markdown."""
    text, _ = split_reasoning(raw)
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```") or stripped in ('"""', "'''"):
            continue
        line = re.sub(r"^#+\s*", "", line.rstrip())  # a markdown heading; git would drop it as a comment
        lines.append(line.replace("**", ""))
    # lines with no word in them ("===", "- +2 -2") are debris, not prose
    lines = [line for line in lines if not line.strip() or (re.search(r"[A-Za-z]{2}", line)
             and not _PREAMBLE.search(line.strip()) and not _ECHO.match(line))]
    while lines and (not lines[0].strip() or lines[0].rstrip().endswith(":")):  # "The diff:" introduces, it is no subject
        lines.pop(0)
    return lines


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[: limit + 1] else text[:limit]
    return cut[:limit].rstrip(" ,;:-")


def _subject(line: str, style: Style, changes: Changes) -> str:
    line = _LABEL.sub("", line.strip()).strip().strip("`'\"").strip()
    line = re.sub(r"\s+", " ", line).rstrip(".").strip()
    match = CONVENTIONAL.match(line)
    kind = _known_type(match["type"]) if match else None
    scope = ""
    if match and (kind or (style.conventional and not match["scope"])):
        description = match["description"].strip()
        # "Parser: fix x" names a component, which Conventional Commits calls a scope
        scope = (match["scope"] or "") if kind else match["type"]
    else:
        description = line
    if len(re.sub(r"[^A-Za-z]", "", description)) < 3:
        return ""
    if style.lowercase and not description[1:2].isupper():  # keep acronyms such as "API"
        description = description[0].lower() + description[1:]
    elif not style.lowercase:
        description = description[0].upper() + description[1:]
    if not style.conventional:
        return _shorten(description, SUBJECT_LIMIT)
    kind = kind or infer_type(changes, description)
    scope = re.sub(r"[^\w./-]+", "-", scope).strip("-").lower()
    prefix = f"{kind}{f'({scope})' if scope else ''}{'!' if match and match['bang'] else ''}: "
    return prefix + _shorten(description, SUBJECT_LIMIT - len(prefix))


def _body(lines: list[str], subject: str) -> str:
    paragraphs: list[list[str]] = [[]]
    def key(text: str) -> str:
        return re.sub(r"\W+", " ", text).strip().lower()

    seen = {key(subject), key(subject.split(": ", 1)[-1])}
    for line in lines:
        line = _LABEL.sub("", line.rstrip()) if _LABEL.match(line.strip()) else line.rstrip()
        if not line.strip():
            paragraphs.append([])
            continue
        if key(line) in seen:  # repetition is how small models go wrong
            continue
        seen.add(key(line))
        paragraphs[-1].append(line.strip() if not _BULLET.match(line) else _BULLET.sub(lambda m: m[1] + " ", line).strip())
    out: list[str] = []
    for paragraph in filter(None, paragraphs):
        if all(_TRAILER.match(line) for line in paragraph):
            block = paragraph
        elif any(_BULLET.match(line) for line in paragraph):
            block, item = [], []
            for line in paragraph + ["- "]:
                if _BULLET.match(line) and item:
                    indent = "  " if _BULLET.match(item[0]) else ""
                    block += textwrap.wrap(" ".join(item), BODY_WIDTH, subsequent_indent=indent, break_long_words=False)
                    item = []
                item.append(line)
        else:
            block = textwrap.wrap(" ".join(paragraph), BODY_WIDTH, break_long_words=False)
        if len(out) + len(block) > MAX_BODY_LINES:
            break
        out += ([""] if out else []) + block
    return "\n".join(out)


def format_message(raw: str, style: Style, changes: Changes) -> tuple[str, bool]:
    """The message made from the model's answer, and whether the subject had to be made up."""
    lines = _clean(raw)
    subject = _subject(lines[0], style, changes) if lines else ""
    fallback = not subject
    if fallback:
        subject = _subject(fallback_description(changes), style, changes)
    body = _body(lines[1:], subject) if not fallback else ""
    return (f"{subject}\n\n{body}" if body else subject) + "\n", fallback


def check_message(message: str, conventional: bool) -> list[str]:
    """What is wrong with a message's format (nothing, for what format_message returns)."""
    problems = []
    lines = message.rstrip("\n").split("\n")
    subject = lines[0]
    if not subject.strip():
        problems.append("the subject is empty")
    if len(subject) > SUBJECT_LIMIT:
        problems.append(f"the subject has {len(subject)} characters (at most {SUBJECT_LIMIT})")
    if subject.endswith("."):
        problems.append("the subject ends with a period")
    if conventional and not ((m := CONVENTIONAL.match(subject)) and m["type"] in TYPES and ": " in subject):
        problems.append("the subject is not `type(scope): description` with a Conventional Commits type")
    if len(lines) > 1 and lines[1].strip():
        problems.append("no blank line after the subject")
    for line in lines[2:]:
        if len(line) > BODY_WIDTH and " " in line.strip():
            problems.append(f"a body line is longer than {BODY_WIDTH} characters")
        if line.startswith("#"):
            problems.append("a body line starts with # (git drops it as a comment)")
    return problems


def write_commit_message(backend: Backend, root: Path, style: str = "auto",
                         cancel: threading.Event | None = None) -> CommitMessage:
    """A message for what is staged in the repository at `root`."""
    changes = read_changes(root, DiffTarget())
    if not changes.files:
        raise NothingToDescribe("nothing is staged: stage changes with `git add` first")
    chosen = detect_style(read_history(root), style)
    system = render_prompt("commit_message.md", conventional=chosen.conventional, lowercase=chosen.lowercase,
                           scopes=chosen.scopes, examples=chosen.examples)
    stat = changes.stat()
    sample = "\n".join(f.views["narrow"] for f in changes.text_files[:20])
    budget = diff_budget_chars(backend, system, sample, ANSWER_TOKENS) - len(stat)
    diff, clipped = clipped_diff(changes, max(budget, 500))
    user = render_prompt("commit_message_request.md", stat=stat, diff=diff or "(only binary files changed)", clipped=clipped)
    raw = ask(backend, system, user, ANSWER_TOKENS, cancel)
    text, fallback = format_message(raw, chosen, changes)
    return CommitMessage(text, fallback, clipped, raw)
