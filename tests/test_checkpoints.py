"""Checkpoints and undo on real repositories: the working tree comes back byte for byte, and the
user's HEAD, branches, index and stash never move."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from agent.core.checkpoints import REF_PREFIX, Checkpoint, CheckpointError, list_checkpoints, restore, take, undo_last
from agent.errors import AgentError


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "--no-optional-locks", *args], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def init_repo(root: Path) -> Path:
    root.mkdir(exist_ok=True)
    git(root, "-c", "init.defaultBranch=main", "init", "-q")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    return root


def commit_all(root: Path, message: str = "commit") -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def files(root: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file outside .git: content and executable bit."""
    found = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if relative.parts[0] == ".git" or path.is_dir():
            continue
        found[relative.as_posix()] = (path.read_bytes(), os.access(path, os.X_OK))
    return found


def user_state(root: Path) -> dict[str, object]:
    index = root / ".git" / "index"
    head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root, capture_output=True, text=True).stdout
    return {
        "status": git(root, "status", "--porcelain", "--untracked-files=all", "--ignored"),
        "head": head,
        "symbolic_head": (root / ".git" / "HEAD").read_text(),
        "branches": git(root, "for-each-ref", "refs/heads", "refs/tags"),
        "index": index.read_bytes() if index.exists() else None,
        "stash": git(root, "stash", "list"),
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo")
    write(root, "README.md", "# project\n")
    write(root, "src/app.py", "print('hello')\n")
    write(root, "src/util.py", "def helper():\n    return 1\n")
    write(root, "scripts/run.sh", "echo run\n")
    write(root, ".gitignore", "build/\n*.log\n")
    commit_all(root, "initial")
    return root


def test_restore_undoes_a_multi_file_edit(repo: Path) -> None:
    before = files(repo)
    checkpoint = take(repo, "session-1", "before edit_file")

    write(repo, "src/app.py", "print('changed')\n")
    write(repo, "src/util.py", "def helper():\n    return 2\n")
    write(repo, "docs/new/notes.md", "new file\n")
    (repo / "README.md").unlink()
    (repo / "scripts/run.sh").chmod(0o755)

    report = restore(repo, checkpoint)

    assert files(repo) == before
    assert not (repo / "docs").exists()
    assert not os.access(repo / "scripts/run.sh", os.X_OK)
    assert sorted(report.restored) == ["scripts/run.sh", "src/app.py", "src/util.py"]
    assert report.deleted == ["docs/new/notes.md"]
    assert report.recreated == ["README.md"]
    assert report.skipped == {}
    assert git(repo, "status", "--porcelain") == ""


def test_restore_puts_back_the_executable_bit_of_the_snapshot(repo: Path) -> None:
    (repo / "scripts/run.sh").chmod(0o755)
    checkpoint = take(repo, "s", "executable")
    (repo / "scripts/run.sh").chmod(0o644)
    write(repo, "scripts/run.sh", "echo changed\n")

    restore(repo, checkpoint)

    assert (repo / "scripts/run.sh").read_text() == "echo run\n"
    assert os.access(repo / "scripts/run.sh", os.X_OK)


def take_unnoticed(root: Path, label: str) -> tuple[Checkpoint, dict, dict]:
    """A checkpoint, checked to leave the user's git state as it was; that state and the files
    as they were when it was taken."""
    state = user_state(root)
    before = files(root)
    checkpoint = take(root, "s", label)
    assert user_state(root) == state
    return checkpoint, state, before


def test_take_and_restore_leave_head_branches_index_and_stash_alone(repo: Path) -> None:
    git(repo, "branch", "feature")
    write(repo, "src/app.py", "print('stashed')\n")
    git(repo, "stash", "push", "-q", "-m", "user stash")
    write(repo, "src/util.py", "def helper():\n    return 'staged'\n")
    git(repo, "add", "src/util.py")
    write(repo, "src/app.py", "print('unstaged')\n")
    write(repo, "untracked.txt", "mine\n")
    write(repo, "debug.log", "ignored\n")
    checkpoint, state, before = take_unnoticed(repo, "snapshot")

    write(repo, "src/app.py", "print('agent')\n")
    write(repo, "agent_file.py", "x = 1\n")
    (repo / "untracked.txt").unlink()
    during = user_state(repo)
    restore(repo, checkpoint)

    assert files(repo) == before
    assert user_state(repo) == {**during, "status": state["status"]}
    assert during["index"] == state["index"]


def test_checkpoint_commit_records_head_label_and_session(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    checkpoint = take(repo, "abc-123", "before shell: make test")

    assert checkpoint.ref == f"{REF_PREFIX}/abc-123/1"
    assert git(repo, "rev-parse", checkpoint.ref).strip() == checkpoint.commit
    assert git(repo, "rev-parse", f"{checkpoint.commit}^").strip() == head
    message = git(repo, "log", "-1", "--format=%B", checkpoint.commit)
    assert "before shell: make test" in message and "abc-123" in message
    assert git(repo, "log", "-1", "--format=%an <%ae>", checkpoint.commit).strip() == "mtp-agent <mtp-agent@localhost>"
    assert checkpoint.label == "before shell: make test"
    assert checkpoint.session_id == "abc-123" and checkpoint.number == 1


def test_works_without_user_identity_configured(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    monkeypatch.setenv("HOME", str(repo.parent))  # no global identity either
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    checkpoint = take(repo, "s", "no identity")
    assert list_checkpoints(repo) == [checkpoint]


def test_undo_twice_goes_back_twice_then_says_there_is_nothing_left(repo: Path) -> None:
    first_state = files(repo)
    take(repo, "s", "first")
    write(repo, "src/app.py", "print('step 1')\n")
    write(repo, "step1.txt", "1\n")
    second_state = files(repo)
    take(repo, "s", "second")
    write(repo, "src/app.py", "print('step 2')\n")
    (repo / "step1.txt").unlink()
    write(repo, "step2.txt", "2\n")

    undone, report = undo_last(repo, "s")
    assert undone.label == "second" and undone.number == 2
    assert files(repo) == second_state
    assert report.recreated == ["step1.txt"] and report.deleted == ["step2.txt"]

    undone, _ = undo_last(repo, "s")
    assert undone.label == "first"
    assert files(repo) == first_state
    assert list_checkpoints(repo, "s") == []

    with pytest.raises(CheckpointError, match="nothing to undo"):
        undo_last(repo, "s")


def test_list_checkpoints_is_newest_first_and_filters_by_session(repo: Path) -> None:
    a1 = take(repo, "alpha", "a1")
    b1 = take(repo, "beta", "b1")
    a2 = take(repo, "alpha", "a2")

    assert list_checkpoints(repo) == [a2, b1, a1]
    assert list_checkpoints(repo, "alpha") == [a2, a1]
    assert [c.number for c in list_checkpoints(repo, "alpha")] == [2, 1]
    assert list_checkpoints(repo, "gamma") == []

    undone, _ = undo_last(repo)
    assert undone == a2
    undone, _ = undo_last(repo, "alpha")
    assert undone == a1
    assert list_checkpoints(repo) == [b1]


def test_numbers_keep_increasing_after_an_undo(repo: Path) -> None:
    take(repo, "s", "one")
    take(repo, "s", "two")
    undo_last(repo, "s")
    assert take(repo, "s", "again").number == 2


def test_ignored_files_are_never_touched(repo: Path) -> None:
    write(repo, "build/output.bin", "old build\n")
    write(repo, "app.log", "old log\n")
    checkpoint = take(repo, "s", "before build")

    write(repo, "build/output.bin", "new build\n")
    write(repo, "build/extra.o", "created after\n")
    write(repo, "app.log", "new log\n")
    write(repo, "cache/data.log", "ignored in a new directory\n")
    write(repo, "cache/tracked_later.txt", "not ignored, created after\n")

    report = restore(repo, checkpoint)

    assert (repo / "build/output.bin").read_text() == "new build\n"
    assert (repo / "build/extra.o").read_text() == "created after\n"
    assert (repo / "app.log").read_text() == "new log\n"
    assert (repo / "cache/data.log").exists()  # its directory stays: it still holds an ignored file
    assert not (repo / "cache/tracked_later.txt").exists()
    assert report.deleted == ["cache/tracked_later.txt"]
    assert report.restored == [] and report.recreated == []


def test_staged_changes_are_captured_and_restored(repo: Path) -> None:
    write(repo, "src/app.py", "print('staged')\n")
    write(repo, "src/staged_new.py", "new = True\n")
    git(repo, "add", "src/app.py", "src/staged_new.py")
    index_before = (repo / ".git/index").read_bytes()
    status_before = git(repo, "status", "--porcelain")
    checkpoint = take(repo, "s", "with staged changes")

    write(repo, "src/app.py", "print('agent edit')\n")
    (repo / "src/staged_new.py").unlink()
    restore(repo, checkpoint)

    assert (repo / "src/app.py").read_text() == "print('staged')\n"
    assert (repo / "src/staged_new.py").read_text() == "new = True\n"
    assert (repo / ".git/index").read_bytes() == index_before
    assert git(repo, "status", "--porcelain") == status_before


def test_repository_without_commits(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "fresh")
    write(root, "first.py", "a = 1\n")
    write(root, "pkg/second.py", "b = 2\n")
    checkpoint, state, before = take_unnoticed(root, "before anything")
    assert git(root, "rev-list", "--parents", "-n", "1", checkpoint.commit).split() == [checkpoint.commit]

    write(root, "first.py", "a = 100\n")
    write(root, "third.py", "c = 3\n")
    (root / "pkg/second.py").unlink()
    undo_last(root)

    assert files(root) == before
    assert user_state(root) == state


def test_empty_repository_round_trip(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "empty")
    checkpoint = take(root, "s", "nothing yet")
    write(root, "created.txt", "x\n")
    report = restore(root, checkpoint)
    assert report.deleted == ["created.txt"]
    assert files(root) == {}


def test_paths_with_spaces_and_unicode(repo: Path) -> None:
    write(repo, "dir with spaces/naïve café.txt", "bonjour\n")
    write(repo, "日本語/ファイル 1.md", "こんにちは\n")
    commit_all(repo, "unicode")
    write(repo, "untracked ü/ñ file.txt", "untracked\n")
    before = files(repo)
    checkpoint = take(repo, "s", "unicode")

    write(repo, "dir with spaces/naïve café.txt", "au revoir\n")
    (repo / "日本語/ファイル 1.md").unlink()
    (repo / "untracked ü/ñ file.txt").unlink()
    write(repo, "new dir ß/emoji 🎉.txt", "party\n")
    report = restore(repo, checkpoint)

    assert files(repo) == before
    assert not (repo / "new dir ß").exists()
    assert report.restored == ["dir with spaces/naïve café.txt"]
    assert sorted(report.recreated) == sorted(["日本語/ファイル 1.md", "untracked ü/ñ file.txt"])
    assert report.deleted == ["new dir ß/emoji 🎉.txt"]


def test_symlinks_are_restored(repo: Path) -> None:
    (repo / "link").symlink_to("src/app.py")
    checkpoint = take(repo, "s", "with link")
    (repo / "link").unlink()
    (repo / "link").symlink_to("README.md")
    write(repo, "src/app.py", "print('changed')\n")

    restore(repo, checkpoint)

    assert os.readlink(repo / "link") == "src/app.py"
    assert (repo / "link").read_text() == "print('hello')\n"


def test_a_file_replaced_by_a_directory_comes_back(repo: Path) -> None:
    checkpoint = take(repo, "s", "before")
    (repo / "README.md").unlink()
    write(repo, "README.md/inside.txt", "now a directory\n")

    report = restore(repo, checkpoint)

    assert (repo / "README.md").read_text() == "# project\n"
    assert report.deleted == ["README.md/inside.txt"] and report.recreated == ["README.md"]


def test_root_may_be_a_subdirectory(repo: Path) -> None:
    checkpoint = take(repo / "src", "s", "from a subdirectory")
    write(repo, "README.md", "changed\n")
    restore(repo / "src", checkpoint)
    assert (repo / "README.md").read_text() == "# project\n"


def test_not_a_git_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    write(plain, "file.txt", "x\n")
    with pytest.raises(CheckpointError, match="git init"):
        take(plain, "s", "label")
    with pytest.raises(CheckpointError, match="git init"):
        undo_last(plain)
    with pytest.raises(CheckpointError, match="not a directory"):
        take(tmp_path / "missing", "s", "label")
    assert issubclass(CheckpointError, AgentError)


def test_session_id_must_name_a_ref(repo: Path) -> None:
    for bad in ["", "a/b", "..", "x..y", "name.lock", "has space", "-dash"]:
        with pytest.raises(CheckpointError, match="session id"):
            take(repo, bad, "label")


def test_restore_of_a_dropped_checkpoint_says_so(repo: Path) -> None:
    checkpoint = take(repo, "s", "label")
    git(repo, "update-ref", "-d", checkpoint.ref)
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    with pytest.raises(CheckpointError, match="not in the repository"):
        restore(repo, checkpoint)


def test_take_is_fast_with_thousands_of_files(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "big")
    for number in range(3000):
        write(root, f"pkg{number % 30}/module_{number}.py", f"value = {number}\n" * 20)
    commit_all(root, "many files")
    write(root, "pkg0/module_0.py", "changed\n")
    write(root, "pkg_new/untracked.py", "new\n")
    time.sleep(1.1)  # past git's racy-timestamp window, as on a real machine

    started = time.perf_counter()
    checkpoint = take(root, "s", "big")
    elapsed = time.perf_counter() - started

    assert elapsed < 1.0, f"take() took {elapsed:.2f}s for 3000 files"
    tree = git(root, "ls-tree", "-r", "--name-only", checkpoint.commit).splitlines()
    assert len(tree) == 3001


def test_restore_sees_an_edit_that_kept_size_and_mtime(repo: Path) -> None:
    """Same size, same modification time (an edit in the same second, or a tool that preserves
    mtime): the content changed, and undo must still put it back."""
    path = repo / "src/util.py"
    original = path.read_bytes()
    stat = path.stat()
    checkpoint = take(repo, "session-1", "before edit")
    path.write_bytes(original.replace(b"1", b"2"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    report = restore(repo, checkpoint)
    assert path.read_bytes() == original and "src/util.py" in report.restored
