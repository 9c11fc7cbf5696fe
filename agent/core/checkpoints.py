"""Undo for agent edits: snapshots of the working tree kept as commits under hidden refs
(refs/mtp-agent/checkpoints/<session>/<n>), taken and restored without touching the user's index,
HEAD, branches or stash. Only git repositories are supported; git stores the snapshots and finds
what changed.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from agent.errors import AgentError
from agent.tools.files import atomic_target

REF_PREFIX = "refs/mtp-agent/checkpoints"
IDENTITY = {
    "GIT_AUTHOR_NAME": "mtp-agent",
    "GIT_AUTHOR_EMAIL": "mtp-agent@localhost",
    "GIT_COMMITTER_NAME": "mtp-agent",
    "GIT_COMMITTER_EMAIL": "mtp-agent@localhost",
}
REGULAR, EXECUTABLE, SYMLINK, GITLINK = "100644", "100755", "120000", "160000"
SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class CheckpointError(AgentError):
    """A checkpoint could not be taken, listed or restored."""


@dataclass(frozen=True)
class Checkpoint:
    ref: str  # refs/mtp-agent/checkpoints/<session_id>/<number>
    commit: str
    session_id: str
    label: str
    created: datetime  # UTC
    number: int


@dataclass
class RestoreReport:
    restored: list[str] = field(default_factory=list)  # content or executable bit put back
    deleted: list[str] = field(default_factory=list)  # created after the checkpoint, now removed
    recreated: list[str] = field(default_factory=list)  # deleted after the checkpoint, now back
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why it was left as it is

    @property
    def changed(self) -> int:
        return len(self.restored) + len(self.deleted) + len(self.recreated)


@dataclass(frozen=True)
class _Change:
    old_mode: str
    new_mode: str
    old_sha: str
    new_sha: str
    status: str
    path: str


def take(root: Path, session_id: str, label: str) -> Checkpoint:
    """Snapshot the working tree (tracked files as they are on disk, plus untracked files that are
    not ignored) into a commit under a hidden ref."""
    _check_session_id(session_id)
    top = _toplevel(root)
    tree = _working_tree(top, reuse_stat_cache=True)
    head = _run(["git", "rev-parse", "--verify", "-q", "HEAD^{commit}"], top).stdout.decode().strip()
    parents = ["-p", head] if head else []
    created = datetime.now(timezone.utc)
    label = " ".join(label.split()) or "checkpoint"  # one line, so it parses back as written
    message = (
        f"mtp-agent checkpoint: {label}\n\n"
        f"Label: {label}\nSession: {session_id}\nCreated: {created.isoformat()}\n"
    )
    dates = {"GIT_AUTHOR_DATE": f"@{int(created.timestamp())} +0000", "GIT_COMMITTER_DATE": f"@{int(created.timestamp())} +0000"}
    commit = _git(top, "commit-tree", "--no-gpg-sign", tree, *parents, env={**IDENTITY, **dates}, stdin=message.encode()).decode().strip()

    number = max((c.number for c in list_checkpoints(top, session_id)), default=0) + 1
    for _ in range(100):
        ref = f"{REF_PREFIX}/{session_id}/{number}"
        # An empty old value makes the update fail if another process took this number first.
        if _run(["git", "update-ref", ref, commit, ""], top).returncode == 0:
            return Checkpoint(ref=ref, commit=commit, session_id=session_id, label=label, created=created, number=number)
        number += 1
    raise CheckpointError(f"could not store checkpoint '{label}' in {top}: refs under {REF_PREFIX}/{session_id}/ keep changing; try again")


def list_checkpoints(root: Path, session_id: str | None = None) -> list[Checkpoint]:
    """The checkpoints of one session (or of all sessions), newest first."""
    prefix = REF_PREFIX
    if session_id is not None:
        _check_session_id(session_id)
        prefix = f"{REF_PREFIX}/{session_id}"
    top = _toplevel(root)
    fields = "%(refname)%00%(objectname)%00%(committerdate:unix)%00%(contents)%1e"
    output = _git(top, "for-each-ref", f"--format={fields}", f"{prefix}/").decode(errors="replace")
    checkpoints = []
    for record in output.split("\x1e"):
        parts = record.lstrip("\n").split("\x00")
        if len(parts) != 4:
            continue
        ref, commit, unix_time, message = parts
        session, _, number = ref.removeprefix(f"{REF_PREFIX}/").rpartition("/")
        if not session or not number.isdigit():
            continue  # not a ref this module wrote
        trailers = dict(line.split(": ", 1) for line in message.splitlines() if ": " in line)
        try:
            created = datetime.fromisoformat(trailers["Created"])
        except (KeyError, ValueError):
            created = datetime.fromtimestamp(int(unix_time or 0), timezone.utc)
        label = trailers.get("Label", message.partition("\n")[0])
        checkpoints.append(Checkpoint(ref=ref, commit=commit, session_id=session, label=label, created=created, number=int(number)))
    checkpoints.sort(key=lambda c: (c.created, c.number), reverse=True)
    return checkpoints


def restore(root: Path, checkpoint: Checkpoint) -> RestoreReport:
    """Make every file that is tracked, or untracked and not ignored, now or in the checkpoint,
    equal to the checkpoint. Ignored files, the index and HEAD are left alone."""
    top = _toplevel(root)
    snapshot = _run(["git", "rev-parse", "--verify", "-q", f"{checkpoint.commit}^{{tree}}"], top).stdout.decode().strip()
    if not snapshot:
        raise CheckpointError(f"checkpoint {checkpoint.ref} ({checkpoint.commit}) is not in the repository at {top}; list the ones that are with list_checkpoints()")
    # hash every file: an edit that kept a file's size and modification time (same second, or a
    # preserved mtime) would otherwise pass for unchanged, and undo must be exact
    current = _working_tree(top, reuse_stat_cache=False)
    report = RestoreReport()
    deletions, writes = [], []
    for change in _diff_trees(top, current, snapshot):
        if GITLINK in (change.old_mode, change.new_mode):
            if change.old_mode != change.new_mode:
                report.skipped[change.path] = "a nested git repository; undo leaves it to you"
        else:
            (deletions if change.status == "D" else writes).append(change)

    # Read everything before changing anything, so a failing git leaves the tree as it was.
    contents = _read_blobs(top, [c for c in writes if not _mode_only(c)])
    # Deletions first: a file may be in the way of a directory the snapshot needs, or the reverse.
    for change in deletions:
        try:
            _delete(top, change.path)
        except OSError as error:
            report.skipped[change.path] = str(error)
            continue
        report.deleted.append(change.path)
    for change in writes:
        try:
            if _mode_only(change):
                path = top / change.path
                path.chmod(_with_executable_bit(path.stat().st_mode, change.new_mode == EXECUTABLE))
            else:
                _write(top, change.path, change.new_mode, contents[change.path])
        except (OSError, CheckpointError) as error:
            report.skipped[change.path] = str(error)
            continue
        (report.recreated if change.status == "A" else report.restored).append(change.path)
    return report


def undo_last(root: Path, session_id: str | None = None) -> tuple[Checkpoint, RestoreReport]:
    """Restore the newest checkpoint (of the session, or of any session) and drop it, so the next
    undo goes one step further back."""
    checkpoints = list_checkpoints(root, session_id)
    if not checkpoints:
        scope = f"for session '{session_id}'" if session_id is not None else "of any session"
        raise CheckpointError(f"nothing to undo: there are no checkpoints {scope} in {Path(root)}; the agent takes one before each edit, so either it has changed nothing yet or every change is already undone")
    newest = checkpoints[0]
    report = restore(root, newest)
    _git(_toplevel(root), "update-ref", "-d", newest.ref, newest.commit)
    return newest, report


def _check_session_id(session_id: str) -> None:
    if not SESSION_ID.fullmatch(session_id) or ".." in session_id or session_id.endswith((".", ".lock")):
        raise CheckpointError(f"session id '{session_id}' cannot name a git ref; use letters, digits, '.', '_' and '-', starting with a letter or digit")


def _toplevel(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise CheckpointError(f"{root} is not a directory; undo needs the root of a git repository")
    result = _run(["git", "rev-parse", "--show-toplevel"], root)
    if result.returncode != 0 or not result.stdout.strip():
        raise CheckpointError(f"{root} is not inside a git repository (with a working tree), and undo needs one to keep its checkpoints; run 'git init' there to enable undo")
    return Path(os.fsdecode(result.stdout.strip()))


def _working_tree(top: Path, reuse_stat_cache: bool) -> str:
    """A tree object of the working tree as `git add -A` sees it, built in a scratch index."""
    with tempfile.TemporaryDirectory(prefix="mtp-agent-index-") as scratch:
        index = Path(scratch) / "index"
        real_index = top / os.fsdecode(_git(top, "rev-parse", "--git-path", "index").strip())
        if reuse_stat_cache and real_index.is_file():
            # Seeding with the real index lets git reuse its stat cache and only hash changed files.
            # copy2 keeps the index's own mtime, which git's "racy entry" check compares against: a
            # file changed in the same second as the index was written is then re-hashed.
            shutil.copy2(real_index, index)
        env = {"GIT_INDEX_FILE": str(index)}
        settings = ["-c", "core.splitIndex=false", "-c", "advice.addEmbeddedRepo=false", "-c", "core.safecrlf=false"]
        _git(top, *settings, "add", "-A", env=env)
        return _git(top, "write-tree", env=env).decode().strip()


def _diff_trees(top: Path, old: str, new: str) -> list[_Change]:
    output = _git(top, "diff-tree", "-r", "-z", "--no-renames", old, new)
    fields = output.split(b"\x00")
    changes = []
    for meta, path in zip(fields[0::2], fields[1::2]):
        old_mode, new_mode, old_sha, new_sha, status = meta.decode().lstrip(":").split()
        changes.append(_Change(old_mode, new_mode, old_sha, new_sha, status[0], os.fsdecode(path)))
    return changes


def _mode_only(change: _Change) -> bool:
    return change.old_sha == change.new_sha and {change.old_mode, change.new_mode} == {REGULAR, EXECUTABLE}


def _read_blobs(top: Path, changes: list[_Change]) -> dict[str, bytes]:
    """Blob contents as a checkout would write them (smudge filters and line endings applied)."""
    contents = {}
    batch = [c for c in changes if c.new_mode != SYMLINK and "\n" not in c.path]
    for change in changes:
        if change.new_mode == SYMLINK:
            contents[change.path] = _git(top, "cat-file", "blob", change.new_sha)
        elif "\n" in change.path:  # the batch protocol is line-based
            contents[change.path] = _git(top, "cat-file", "--filters", f"--path={change.path}", change.new_sha)
    if batch:
        request = b"".join(c.new_sha.encode() + b" " + os.fsencode(c.path) + b"\n" for c in batch)
        output = _git(top, "cat-file", "--batch", "--filters", stdin=request)
        position = 0
        for change in batch:
            end = output.index(b"\n", position)
            header = output[position:end].split()
            if len(header) != 3:
                raise CheckpointError(f"git could not read {change.path} ({change.new_sha}) from the checkpoint: {output[position:end].decode(errors='replace')}")
            size = int(header[2])
            contents[change.path] = output[end + 1 : end + 1 + size]
            position = end + 1 + size + 1
    return contents


def _delete(top: Path, relative: str) -> None:
    path = top / relative
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    parent = path.parent
    while parent != top:
        try:
            parent.rmdir()  # only succeeds on a directory the deletion left empty
        except OSError:
            break
        parent = parent.parent


def _write(top: Path, relative: str, mode: str, content: bytes) -> None:
    """Write one file through a temporary file and a rename, so it is never half written."""
    target = top / relative
    existing = target.parent
    while not existing.exists():
        existing = existing.parent
    if existing.resolve() != top.resolve() and top.resolve() not in existing.resolve().parents:
        raise CheckpointError(f"{existing} leads outside the repository (a symbolic link?); not writing through it")
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(target) as temporary:
        if mode == SYMLINK:
            os.symlink(os.fsdecode(content), temporary)
        else:
            executable = mode == EXECUTABLE
            # Like git checkout: 0666/0777 through the umask for new files.
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777 if executable else 0o666)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
            try:
                before = target.lstat()
            except FileNotFoundError:
                before = None
            if before is not None and stat.S_ISREG(before.st_mode):
                os.chmod(temporary, _with_executable_bit(before.st_mode, executable))


def _with_executable_bit(mode: int, executable: bool) -> int:
    permissions = stat.S_IMODE(mode) & ~0o111
    if executable:
        permissions |= (permissions & 0o444) >> 2  # executable by whoever may read it
    return permissions


def _git(top: Path, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> bytes:
    result = _run(["git", *args], top, env=env, stdin=stdin)
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
        raise CheckpointError(f"'git {' '.join(args)}' failed in {top}: {detail}")
    return result.stdout


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    # No optional locks: otherwise some commands refresh the user's index as a side effect.
    full_env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        return subprocess.run(command, cwd=cwd, env=full_env, input=stdin, capture_output=True)
    except FileNotFoundError as error:
        raise CheckpointError("git is not installed or not on PATH; undo needs it to keep checkpoints") from error
