"""Reading a diff from git without touching the index or the working tree, and showing it to a
model: numbered lines, as much surrounding code as fits, secrets redacted, and split into parts
when the whole does not fit the model's context."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from unidiff import PatchedFile, PatchSet
from unidiff.errors import UnidiffParseError

from agent.errors import AgentError
from agent.hooks.secrets import Redactor

# --function-context shows whole functions around a change; the narrower views are for files
# whose functions do not fit.
CONTEXTS = {"function": ["--function-context"], "wide": ["-U10"], "narrow": ["-U3"]}
MAX_WIDER_VIEW_CHARS = 1_000_000  # more than any model's context holds


class GitError(AgentError):
    pass


def git(root: Path, *args: str, ok_codes: tuple[int, ...] = (0,)) -> str:
    """Run a read-only git command. GIT_OPTIONAL_LOCKS=0 keeps git from refreshing the index as a
    side effect; GIT_INDEX_FILE, set by `git commit -a` for its hooks, is passed through."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        done = subprocess.run(["git", "-c", "core.quotePath=false", *args], cwd=root, env=env,
                              capture_output=True, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None
    if done.returncode not in ok_codes:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {message[0] if message else 'exit ' + str(done.returncode)}")
    return done.stdout.decode("utf-8", "replace")


@dataclass(frozen=True)
class DiffTarget:
    """What to read: the staged changes, or a revision range such as main..HEAD."""

    range: str | None = None

    def args(self) -> list[str]:
        return [self.range] if self.range else ["--cached"]

    def describe(self) -> str:
        return self.range or "the staged changes"


@dataclass
class Secret:
    path: str
    line: int | None  # in the new file; None for removed lines
    kind: str


@dataclass
class FileChange:
    path: str
    old_path: str | None  # for renames
    status: str  # added, deleted, renamed, modified, mode changed
    binary: bool
    added: int
    removed: int
    views: dict[str, str] = field(default_factory=dict)  # context name -> numbered text
    hunks: dict[str, list[str]] = field(default_factory=dict)  # context name -> numbered hunks
    changed_lines: list[int] = field(default_factory=list)  # new-file numbers of added lines

    def header(self) -> str:
        what = f"{self.status}, binary" if self.binary else f"{self.status}, +{self.added} -{self.removed}"
        name = f"{self.old_path} -> {self.path}" if self.old_path else self.path
        return f"=== {name} ({what}) ==="

    def stat_line(self) -> str:
        name = f"{self.old_path} -> {self.path}" if self.old_path else self.path
        return f"{name} | " + ("binary" if self.binary else f"+{self.added} -{self.removed}") + f" ({self.status})"


@dataclass
class Changes:
    target: DiffTarget
    files: list[FileChange]
    secrets: list[Secret]

    @property
    def text_files(self) -> list[FileChange]:
        return [f for f in self.files if not f.binary]

    def stat(self) -> str:
        return "\n".join(f.stat_line() for f in self.files)


def _status(patched: PatchedFile) -> str:
    if patched.is_added_file:
        return "added"
    if patched.is_removed_file:
        return "deleted"
    if patched.is_rename:
        return "renamed"
    if not patched.added and not patched.removed and not patched.is_binary_file:
        return "mode changed"
    return "modified"


def _number_hunks(patched: PatchedFile, redactor: Redactor, secrets: list[Secret] | None) -> list[str]:
    """Each hunk as text the model can cite: new-file line numbers on kept and added lines."""
    hunks = []
    width = len(str(max((h.target_start + h.target_length for h in patched), default=1)))
    for hunk in patched:
        lines = [f"@@ -{hunk.source_start},{hunk.source_length} +{hunk.target_start},{hunk.target_length} @@ {hunk.section_header}".rstrip()]
        for line in hunk:
            value, kinds = redactor(line.value.rstrip("\r\n"))
            if secrets is not None and line.is_added:
                secrets.extend(Secret(patched.path, line.target_line_no, kind) for kind in kinds)
            number = str(line.target_line_no) if line.target_line_no is not None else ""
            lines.append(f"{number:>{width}} {line.line_type} {value}")
        hunks.append("\n".join(lines))
    return hunks


def _parse(patch: str) -> PatchSet:
    try:
        return PatchSet(patch)
    except UnidiffParseError as e:
        raise GitError(f"could not read git's diff: {e}") from e


def read_changes(root: Path, target: DiffTarget) -> Changes:
    """The changes of `target`, each file numbered at every context width. A wider view whose
    diff would be huge (a one-line change in a large file without functions shows all of it)
    is not read; the narrower view stands in for it."""
    base = ["diff", *target.args(), "-M", "--no-color", "--no-ext-diff", "--no-textconv", "--no-relative",
            "--src-prefix=a/", "--dst-prefix=b/"]
    secrets: list[Secret] = []
    files: list[FileChange] = []
    narrower = "narrow"
    for context in reversed(CONTEXTS):  # narrow first: it defines the files and finds the secrets
        text = git(root, *base, *CONTEXTS[context])
        if context != "narrow" and len(text) > MAX_WIDER_VIEW_CHARS:
            for change in files:
                change.hunks[context], change.views[context] = change.hunks[narrower], change.views[narrower]
            continue
        patch = _parse(text)
        if not files:
            files = [FileChange(p.path, p.source_file[2:] if p.is_rename else None, _status(p), p.is_binary_file,
                                p.added, p.removed, changed_lines=[line.target_line_no for h in p for line in h if line.is_added])
                     for p in patch]
        for change, patched in zip(files, patch):
            hunks = _number_hunks(patched, Redactor(patched.path), secrets if context == "narrow" else None)
            change.hunks[context] = hunks
            change.views[context] = "\n".join([change.header(), *hunks])
        narrower = context
    return Changes(target, files, secrets)


@dataclass
class Part:
    """One request's worth of diff."""

    text: str
    paths: list[str]


def _split_long(text: str, budget: int) -> list[str]:
    """Text over the budget cut at line boundaries (a single line over it is cut too)."""
    pieces, current = [], ""
    for line in text.split("\n"):
        while len(line) > budget:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:budget])
            line = line[budget:]
        if current and len(current) + 1 + len(line) > budget:
            pieces.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        pieces.append(current)
    return pieces


def _file_parts(change: FileChange, budget: int) -> list[Part]:
    for context in CONTEXTS:
        if len(change.views[context]) <= budget:
            return [Part(change.views[context], [change.path])]
    header = change.header()
    room = max(budget - len(header) - 40, 200)
    pieces: list[str] = []
    for hunk in change.hunks["narrow"]:
        for piece in _split_long(hunk, room):
            if pieces and len(pieces[-1]) + 1 + len(piece) <= room:
                pieces[-1] += "\n" + piece
            else:
                pieces.append(piece)
    return [Part(f"{header} (part {i} of {len(pieces)})\n{piece}", [change.path]) for i, piece in enumerate(pieces, 1)]


def split_for_review(changes: Changes, budget_chars: int) -> tuple[list[Part], bool]:
    """The text files' diff in parts of at most `budget_chars`: one part with the widest context
    that fits, else one file per part, else pieces of hunks. Returns (parts, whole)."""
    files = changes.text_files
    for context in CONTEXTS:
        text = "\n\n".join(f.views[context] for f in files)
        if len(text) <= budget_chars:
            return [Part(text, [f.path for f in files])], True
    return [part for f in files for part in _file_parts(f, budget_chars)], False


def clipped_diff(changes: Changes, budget_chars: int) -> tuple[str, bool]:
    """The diff in one text of at most about `budget_chars`, each file clipped to an equal share
    when it does not all fit (for a commit message a summary is enough). Returns (text, clipped)."""
    files = changes.text_files
    for context in CONTEXTS:
        text = "\n\n".join(f.views[context] for f in files)
        if len(text) <= budget_chars:
            return text, False
    share = max(budget_chars // max(len(files), 1), 120)
    out, used = [], 0
    for f in files:
        view = f.views["narrow"]
        if len(view) > share:
            kept = view[:share].rsplit("\n", 1)[0]
            view = f"{kept}\n... ({view.count(chr(10)) - kept.count(chr(10))} more lines of this file not shown)"
        if used + len(view) > budget_chars:
            out.append(f"... ({len(files) - len(out)} more files not shown; see the list above)")
            break
        out.append(view)
        used += len(view) + 2
    return "\n\n".join(out), True
