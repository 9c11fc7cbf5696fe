"""The installed hooks, driven by real `git commit`s in temporary repositories on the scripted
backend."""

from __future__ import annotations

import os
import stat

import pytest

from agent.hooks.commit_message import check_message
from support.git_support import Repo, snapshot

MESSAGE = "feat: greet people by their full name\n\nThe greeting now takes a last name as well."


@pytest.fixture
def repo(tmp_path) -> Repo:
    return Repo(tmp_path, turns=[{"text": MESSAGE}])


def install(repo: Repo, *flags: str) -> None:
    done = repo.agent("hooks", "install", *flags)
    assert done.returncode == 0, done.stderr


def test_a_normal_commit_gets_the_generated_message(repo):
    install(repo)
    repo.stage("greet.py", "def greet(first, last):\n    return f'hello {first} {last}'\n")
    repo.git("commit", "-q")
    assert repo.message() == MESSAGE
    assert check_message(repo.message(), conventional=True) == []


def test_commit_all_uses_the_temporary_index_git_gives_the_hook(repo):
    install(repo)
    repo.write("greet.py", "def greet(name):\n    return 'hi ' + name\n")  # not staged: -a stages it
    repo.git("commit", "-qa")
    assert repo.message() == MESSAGE
    assert "hi " in repo.git("show", "HEAD:greet.py").stdout


@pytest.mark.parametrize("flags", [["-m", "my own words"], ["-F", "MSG"], ["-t", "TEMPLATE"]])
def test_messages_from_the_user_are_left_alone(repo, flags):
    install(repo)
    (repo.home / "MSG").write_text("my own words\n")
    (repo.home / "TEMPLATE").write_text("my own words\n")
    flags = [str(repo.home / f) if f in ("MSG", "TEMPLATE") else f for f in flags]
    repo.stage("greet.py", GREET_V2)
    repo.git("commit", "-q", *flags, GIT_EDITOR="sh -c 'echo edited >> \"$1\"' editor")  # git wants a template edited
    assert repo.message().startswith("my own words") and "feat:" not in repo.message()


GREET_V2 = "def greet(name):\n    return 'hello, ' + name\n"


def test_an_amend_keeps_its_message(repo):
    install(repo)
    repo.stage("notes.txt", "more\n")
    repo.git("commit", "-q", "--amend")
    assert repo.message() == "Add greet"


def test_merge_and_squash_commits_keep_gits_message(repo):
    install(repo)
    repo.git("checkout", "-qb", "topic")
    repo.stage("topic.py", "x = 1\n")
    repo.git("commit", "-qm", "Topic work")
    repo.git("checkout", "-q", "main")
    repo.stage("main.py", "y = 2\n")
    repo.git("commit", "-qm", "Main work")
    repo.git("merge", "--no-ff", "-q", "topic")  # git runs prepare-commit-msg with source "merge"
    assert repo.message() == "Merge branch 'topic'"
    repo.git("checkout", "-qb", "squashed", "HEAD~1")
    repo.git("merge", "--squash", "-q", "topic")
    repo.git("commit", "-q")  # source "squash": git's SQUASH_MSG stays
    assert repo.message().startswith("Squashed commit of the following:")


def test_existing_hooks_still_run_and_their_failure_blocks(repo):
    hooks = repo.hooks_dir()
    pre_commit = hooks / "pre-commit"
    pre_commit.write_text(f"#!/bin/sh\necho ran >> '{repo.home}/pre-commit-ran'\nexit ${{BLOCK:-0}}\n")
    pre_commit.chmod(0o750)
    prepare = hooks / "prepare-commit-msg"
    prepare.write_text(f"#!/bin/sh\necho \"$@\" >> '{repo.home}/prepare-ran'\n")
    prepare.chmod(0o700)
    before = {p.name: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in (pre_commit, prepare)}
    install(repo, "--review")

    repo.stage("greet.py", GREET_V2)
    repo.git("commit", "-q")  # the review reads MESSAGE as "no findings"
    assert (repo.home / "pre-commit-ran").read_text() == "ran\n"
    assert (repo.home / "prepare-ran").read_text().startswith(".git/COMMIT_EDITMSG")
    assert repo.message() == MESSAGE

    head = repo.head()
    repo.stage("greet.py", "def greet(name):\n    return name\n")
    blocked = repo.git("commit", "-qm", "try", check=False, BLOCK="1")
    assert blocked.returncode != 0 and repo.head() == head
    assert (repo.home / "pre-commit-ran").read_text() == "ran\nran\n"

    status = repo.agent("hooks", "status").stdout
    assert "prepare-commit-msg: installed" in status and "runs first" in status
    assert repo.agent("hooks", "uninstall").returncode == 0
    after = {p.name: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in (pre_commit, prepare)}
    assert after == before
    assert sorted(p.name for p in hooks.iterdir() if not p.name.endswith(".sample")) == ["pre-commit", "prepare-commit-msg"]


def test_core_hooks_path_is_honoured_and_uninstall_leaves_nothing(repo):
    repo.git("config", "core.hooksPath", ".githooks")
    install(repo)
    assert (repo.root / ".githooks" / "prepare-commit-msg").exists()
    assert not (repo.root / ".git" / "hooks" / "prepare-commit-msg").exists()
    repo.stage("greet.py", GREET_V2)
    repo.git("commit", "-q")
    assert repo.message() == MESSAGE
    repo.agent("hooks", "uninstall")
    assert list((repo.root / ".githooks").iterdir()) == []


def test_a_high_finding_blocks_and_a_low_one_does_not(repo):
    install(repo, "--review")
    repo.stage("greet.py", "def greet(name):\n    return 'hello ' + nme\n")
    repo.set_turns([{"text": "greet.py:2: high: `nme` is undefined, so every call raises NameError"}])
    head = repo.head()
    blocked = repo.git("commit", "-qm", "typo", check=False)
    assert blocked.returncode != 0 and repo.head() == head
    assert "greet.py:2: high: `nme` is undefined" in blocked.stdout + blocked.stderr
    assert "blocked" in blocked.stderr

    repo.set_turns([{"text": "greet.py:2: low: consider an f-string"}])
    passed = repo.git("commit", "-qm", "typo")
    assert "greet.py:2: low: consider an f-string" in passed.stdout + passed.stderr
    assert repo.message() == "typo"


def test_fail_on_is_configurable_at_install(repo):
    install(repo, "--review", "--fail-on", "low")
    repo.stage("greet.py", GREET_V2)
    repo.set_turns([{"text": "greet.py:2: low: consider an f-string"}])
    assert repo.git("commit", "-qm", "x", check=False).returncode != 0


def test_a_secret_blocks_without_its_value_being_printed(repo):
    install(repo, "--review")
    key = "AKIA" + "ZXCVBNMASDFGHJKL"
    repo.stage("settings.py", f"AWS_ACCESS_KEY_ID = '{key}'\n")
    repo.set_turns([{"text": "No findings."}])
    blocked = repo.git("commit", "-qm", "settings", check=False)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0
    assert "settings.py:1: high: possible secret (AWS Access Key)" in output
    assert key not in output


EDITOR_WRITES_A_MESSAGE = "sh -c 'grep -q \"^[^#]\" \"$1\" || echo \"written by hand\" > \"$1\"' editor"


def test_a_model_that_cannot_load_lets_the_commit_through(repo):
    repo.configure({"name": "embedded", "model": str(repo.home / "missing.gguf")})
    install(repo, "--review")
    repo.stage("greet.py", GREET_V2)
    done = repo.git("commit", "-q", GIT_EDITOR=EDITOR_WRITES_A_MESSAGE)
    assert repo.message() == "written by hand"
    warnings = [line for line in done.stderr.splitlines() if line.startswith("mtp-agent:")]
    assert len(warnings) == 2, done.stderr  # one line per hook
    assert sorted("goes ahead" in w for w in warnings) == [False, True]  # the message hook's line
    assert sorted("only the secret scan runs" in w for w in warnings) == [False, True]  # the review's
    assert all("skipped" in w and "missing.gguf" in w for w in warnings)


def test_when_the_review_model_fails_the_secret_scan_still_blocks_and_says_so(repo):
    repo.configure({"name": "embedded", "model": str(repo.home / "missing.gguf")})
    install(repo, "--review")
    repo.stage("settings.py", "AWS_ACCESS_KEY_ID = 'AKIA" + "ZXCVBNMASDFGHJKL'\n")
    head = repo.head()
    blocked = repo.git("commit", "-qm", "settings", check=False)
    assert blocked.returncode != 0 and repo.head() == head
    review_lines = [line for line in blocked.stderr.splitlines() if "review skipped" in line]
    assert review_lines and "only the secret scan runs" in review_lines[0] and "goes ahead" not in review_lines[0]
    assert "the commit is blocked" in blocked.stderr


def test_fail_closed_blocks_when_the_model_cannot_load(repo):
    repo.configure({"name": "embedded", "model": str(repo.home / "missing.gguf")})
    install(repo, "--review", "--fail-closed")
    repo.stage("greet.py", GREET_V2)
    head = repo.head()
    blocked = repo.git("commit", "-qm", "x", check=False)
    assert blocked.returncode != 0 and repo.head() == head
    assert "blocked (fail-closed)" in blocked.stderr
    # the message hook alone blocks too
    repo.agent("hooks", "uninstall")
    install(repo, "--fail-closed")
    assert repo.git("commit", "-q", check=False, GIT_EDITOR=EDITOR_WRITES_A_MESSAGE).returncode != 0
    assert repo.head() == head


def test_a_hook_over_its_time_budget_lets_the_commit_through(repo):
    repo.set_turns([{"text": "feat: this answer takes far too long " + "word " * 50, "delay": 0.5}])
    install(repo, "--timeout", "2")
    repo.stage("greet.py", GREET_V2)
    done = repo.git("commit", "-q", GIT_EDITOR=EDITOR_WRITES_A_MESSAGE)
    assert repo.message() == "written by hand"
    assert "longer than its 2 s budget" in done.stderr


def test_a_broken_hooks_setting_fails_open_too(repo):
    repo.configure({}, hooks={"timeout": "soon"})
    install(repo, "--review")
    repo.stage("greet.py", GREET_V2)
    done = repo.git("commit", "-q", GIT_EDITOR=EDITOR_WRITES_A_MESSAGE)
    assert repo.message() == "written by hand"
    assert "timeout = 'soon' is not a float" in done.stderr


def test_skip_variable_turns_the_hooks_off(repo):
    install(repo, "--review")
    repo.stage("greet.py", "def greet(name):\n    return nme\n")
    repo.set_turns([{"text": "greet.py:2: high: undefined name"}])
    repo.git("commit", "-qm", "skip it", MTP_AGENT_SKIP_HOOKS="1")
    assert repo.message() == "skip it"


def test_binary_files_and_a_5000_line_diff(repo):
    repo.configure({"context_window": 4096})
    repo.set_turns([{"text": "feat: add the lookup table and its logo"}] + [{"text": "No findings."}] * 400)
    install(repo, "--review")
    repo.stage("logo.png", bytes(range(256)) * 40)
    repo.stage("table.py", "".join(f"VALUE_{i} = {i * i}  # square of {i}\n" for i in range(5000)))
    done = repo.git("commit", "-q")
    assert repo.message() == "feat: add the lookup table and its logo"
    assert "reviewed file by file" in done.stderr
    assert "binary files not reviewed: logo.png" in done.stderr
    assert repo.git("show", "--stat", "HEAD").stdout.count("|") == 2


def test_the_hooks_leave_the_index_and_the_working_tree_untouched(repo):
    repo.set_turns([{"text": MESSAGE}])
    repo.stage("greet.py", GREET_V2)
    repo.stage("logo.png", b"\x89PNG\r\n\x1a\n" + bytes(1000))
    repo.write("greet.py", GREET_V2 + "# not staged\n")
    repo.write("untracked.txt", "left alone\n")
    message_file = repo.root / ".git" / "COMMIT_EDITMSG"
    message_file.write_text("\n# Please enter the commit message for your changes.\n")
    index = repo.root / ".git" / "index"
    before, index_bytes, index_mtime = snapshot(repo.root), index.read_bytes(), index.stat().st_mtime_ns

    assert repo.agent("hooks", "run", "pre-commit").returncode == 0
    assert repo.agent("hooks", "run", "prepare-commit-msg", str(message_file)).returncode == 0

    assert index.read_bytes() == index_bytes and index.stat().st_mtime_ns == index_mtime
    after = snapshot(repo.root)
    assert {k for k in after if after[k] != before.get(k)} == {".git/COMMIT_EDITMSG"}
    assert message_file.read_text().startswith(MESSAGE + "\n\n# Please enter")
    assert os.listdir(message_file.parent).count("COMMIT_EDITMSG") == 1
