"""The git helper's parts: reading diffs, the message format, findings, secrets, splitting a
diff too large for the context; and `agent commit-msg` / `agent review` from the command line."""

from __future__ import annotations

import json

import pytest

from agent.backends.scripted import ScriptedBackend
from agent.hooks.commit_message import Style, check_message, detect_style, format_message, write_commit_message
from agent.hooks.diff import DiffTarget, read_changes, split_for_review
from agent.hooks.review import parse_findings, review_changes
from agent.hooks.runner import has_message
from agent.hooks.secrets import Redactor, redact_text
from support.git_support import Repo

AWS_KEY = "AKIA" + "ZXCVBNMASDFGHJKL"
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


@pytest.fixture
def repo(tmp_path) -> Repo:
    return Repo(tmp_path)


def changes_of(repo: Repo):
    return read_changes(repo.root, DiffTarget())


# --- commit message format ---------------------------------------------------------------

@pytest.mark.parametrize("answer, expected", [
    ("feat: add a parser", "feat: add a parser"),
    ("Here is the commit message:\n```\nfix(api): Handle empty input.\n```", "fix(api): handle empty input"),
    ("**Subject:** Add retries to the HTTP client", "feat: add retries to the HTTP client"),
    ("Parser: fix a crash on empty files", "fix(parser): fix a crash on empty files"),
    ("FEAT(Core)!: drop Python 3.8", "feat(core)!: drop Python 3.8"),
    ("Fixed the bug where the whole program crashed when the input file was empty or missing entirely",
     "fix: fixed the bug where the whole program crashed when the input file"),
])
def test_the_subject_is_conventional_and_short(repo, answer, expected):
    repo.stage("greet.py", "x = 1\n")
    message, fallback = format_message(answer, Style(), changes_of(repo))
    assert message.splitlines()[0] == expected and not fallback
    assert check_message(message, conventional=True) == []


def test_the_body_is_wrapped_deduplicated_and_bounded(repo):
    repo.stage("greet.py", "x = 1\n")
    long = "This change makes the greeting configurable so that every caller can choose its own words and punctuation."
    answer = f"feat: configurable greeting\n\n{long}\n- one point\n- one point\n- " + "a long bullet " * 12 + "\n" + \
        "\n".join(f"filler line {i}" for i in range(40))
    message, _ = format_message(answer, Style(), changes_of(repo))
    lines = message.rstrip("\n").split("\n")
    assert lines[1] == "" and all(len(line) <= 72 for line in lines)
    assert sum(line == "- one point" for line in lines) == 1
    assert len(lines) <= 2 + 15
    assert check_message(message, conventional=True) == []


@pytest.mark.parametrize("answer", ["", "```\n```", "ok", "Here is the commit message:"])
def test_an_unusable_answer_falls_back_to_the_file_list(repo, answer):
    repo.stage("docs/guide.md", "# Guide\n")
    message, fallback = format_message(answer, Style(), changes_of(repo))
    assert fallback and message == "docs: add docs/guide.md\n"


def test_a_line_cut_by_the_token_limit_is_dropped(repo):
    repo.stage("greet.py", "x = 1\n")
    backend = ScriptedBackend([{"text": "feat: add x\n\nThe value is now one.\nAnd then the answer was cu",
                                "finish_reason": "length"}])
    assert write_commit_message(backend, repo.root).text == "feat: add x\n\nThe value is now one.\n"


def test_the_type_follows_the_files_when_the_model_gives_none(repo):
    repo.stage("tests/test_greet.py", "def test(): pass\n")
    assert format_message("cover the greeting", Style(), changes_of(repo))[0] == "test: cover the greeting\n"


def test_style_follows_the_history():
    plain = ["Fix the parser", "Add retries", "Shell tests: one helper", "Update the docs", "Remove dead code"]
    style = detect_style(plain)
    assert not style.conventional and not style.lowercase and style.examples[:2] == plain[:2]
    conventional = detect_style(["feat(api): add x", "fix(api): y", "docs: z", "Merge stuff", "chore(ci): w"])
    assert conventional.conventional and conventional.scopes[0] == "api"
    assert detect_style([]).conventional
    assert detect_style(plain, "conventional").conventional


def test_a_plain_history_gets_a_plain_subject(repo):
    for subject in ["Fix the parser", "Add retries", "Update the docs", "Remove dead code"]:
        repo.stage("greet.py", repo.root.joinpath("greet.py").read_text() + "#\n")
        repo.git("commit", "-qm", subject)
    repo.stage("greet.py", "x = 2\n")
    backend = ScriptedBackend([{"text": "feat: make the greeting shorter"}])
    message = write_commit_message(backend, repo.root)
    assert message.text == "Make the greeting shorter\n"
    assert "Fix the parser" in backend.requests[0][0]["content"]  # the history is shown to the model


def test_the_hooks_cap_their_answers_through_the_backend_contract(repo):
    from agent.hooks import commit_message, review

    repo.stage("greet.py", "x = 2\n")
    backend = ScriptedBackend([{"text": "feat: shorten the greeting"}, {"text": "No findings."}])
    write_commit_message(backend, repo.root)
    review_changes(backend, changes_of(repo))
    assert backend.max_tokens_requested == [commit_message.ANSWER_TOKENS, review.ANSWER_TOKENS]
    assert not hasattr(backend, "max_tokens")  # passed with each request, not set on the backend


def test_existing_message_detection():
    assert not has_message("\n# Please enter the commit message\n#\n")
    assert has_message("my words\n# comment\n")
    assert not has_message("; comment\n", (";",))
    assert not has_message("# ------------------------ >8 ------------------------\ndiff --git a b\n")


# --- diffs -------------------------------------------------------------------------------

def test_the_model_sees_numbered_lines_renames_and_binary_files(repo):
    repo.git("mv", "greet.py", "hello.py")
    repo.stage("hello.py", "def greet(name):\n    return 'hello ' + name\n\nprint(greet('x'))\n")
    repo.stage("logo.png", bytes(range(256)))
    changes = changes_of(repo)
    by_path = {f.path: f for f in changes.files}
    assert by_path["logo.png"].binary and by_path["hello.py"].old_path == "greet.py"
    assert "4 + print(greet('x'))" in by_path["hello.py"].views["narrow"]
    assert by_path["hello.py"].changed_lines == [3, 4]
    backend = ScriptedBackend([{"text": "feat: add a logo and rename the module"}])
    write_commit_message(backend, repo.root)
    prompt = backend.requests[0][1]["content"]
    assert "logo.png | binary (added)" in prompt and "greet.py -> hello.py" in prompt


def test_a_5000_line_diff_is_split_into_parts_that_fit(repo):
    repo.stage("table.py", "".join(f"VALUE_{i} = {i}\n" for i in range(5000)))
    repo.stage("other.py", "y = 1\n")
    changes = changes_of(repo)
    parts, whole = split_for_review(changes, 4000)
    assert not whole and len(parts) > 10
    assert all(len(p.text) <= 4000 for p in parts)
    shown = "\n".join(p.text for p in parts)
    assert all(f"+ VALUE_{i} = {i}" in shown for i in range(0, 5000, 499)) and "+ y = 1" in shown
    assert split_for_review(changes, 10**7)[1]


def test_a_huge_wider_view_is_not_read(repo, monkeypatch):
    import agent.hooks.diff as diff

    repo.stage("data.txt", "".join(f"    {i}\n" for i in range(300)))
    repo.git("commit", "-qm", "Add data")
    repo.stage("data.txt", "".join(f"    {i}\n" if i != 150 else "    changed\n" for i in range(300)))
    full = changes_of(repo).files[0]
    assert full.views["function"].count("\n") > 250  # no function header: git shows the whole file
    monkeypatch.setattr(diff, "MAX_WIDER_VIEW_CHARS", 1000)
    bounded = changes_of(repo).files[0]
    assert bounded.views["function"] == bounded.views["wide"] and bounded.views["wide"].count("\n") < 25


def test_review_of_a_large_diff_goes_file_by_file(repo):
    repo.stage("table.py", "".join(f"VALUE_{i} = {i}\n" for i in range(5000)))
    repo.stage("greet.py", "def greet(name):\n    return nme\n")
    backend = ScriptedBackend([{"text": "greet.py:2: high: `nme` is not defined"}] + [{"text": "No findings."}] * 100,
                              context_window=2048)
    review = review_changes(backend, changes_of(repo))
    assert not review.whole and review.parts == len(backend.requests) > 2
    assert [f.format() for f in review.findings] == ["greet.py:2: high: `nme` is not defined"]
    assert all(backend.count_tokens(r, []) <= 2048 - 512 for r in backend.requests)
    assert "file by file" in " ".join(review.summary())


def test_findings_are_parsed_leniently_and_checked_against_the_diff(repo):
    repo.stage("src/app.py", "".join(f"line_{i} = {i}\n" for i in range(1, 101)))
    changes = changes_of(repo)
    answer = "\n".join([
        "Here are my findings:",
        "- src/app.py:5: HIGH: wrong value",
        "`app.py`:7: warning: shadowed name",
        "src/app.py:900: error: far away line",
        "other.py:1: high: a file that is not in the diff",
        "src/app.py:3: bogus: unknown severity",
        "No findings otherwise.",
    ])
    findings = parse_findings(answer, ["src/app.py"], changes)
    assert [f.format() for f in findings] == ["src/app.py:5: high: wrong value", "src/app.py:7: medium: shadowed name",
                                              "src/app.py:100: high: far away line"]


# --- secrets -----------------------------------------------------------------------------

def test_secrets_are_redacted_whole():
    redact = Redactor("settings.py")
    assert redact(f"KEY = '{AWS_KEY}'") == ("KEY = '[REDACTED]'", ["AWS Access Key"])
    assert redact(f"token = \"{GITHUB_TOKEN}\"")[0] == 'token = "[REDACTED]"'
    assert redact("password = 'correct-horse-battery'")[0] == "password = '[REDACTED]'"
    assert redact("password = os.environ['PASSWORD']")[1] == []
    assert redact("-----BEGIN RSA PRIVATE KEY-----")[1] == ["Private Key"]
    assert redact("MIIEowIBAAKCAQEA7Y8qL3xyz")[0] == "[REDACTED]"
    assert redact("-----END RSA PRIVATE KEY-----")[1] == []
    assert redact("MIIEowIBAAKCAQEA7Y8qL3xyz")[1] == []  # the block has ended
    assert redact_text(f"a\n{AWS_KEY} b") == "a\n[REDACTED] b"


def test_secrets_never_reach_the_model_or_the_output(repo, capsys):
    repo.stage("deploy.py", f"AWS = '{AWS_KEY}'\nGITHUB = '{GITHUB_TOKEN}'\nREGION = 'eu-west-1'\n")
    repo.stage("ci.yml", f"token: {GITHUB_TOKEN}\n")
    echo = f"deploy.py:1: high: the key {AWS_KEY} is hard-coded"
    backend = ScriptedBackend([{"text": echo}, {"text": f"feat: add deploy settings with {GITHUB_TOKEN}"}])
    review = review_changes(backend, changes_of(repo))
    message = write_commit_message(backend, repo.root)
    sent = json.dumps(backend.requests)
    assert AWS_KEY not in sent and GITHUB_TOKEN not in sent and "eu-west-1" in sent
    text = "\n".join(f.format() for f in review.findings) + message.text
    assert AWS_KEY not in text and GITHUB_TOKEN not in text
    kinds = {(f.path, f.line, f.source) for f in review.findings}
    assert {("deploy.py", 1, "secrets"), ("deploy.py", 2, "secrets"), ("ci.yml", 1, "secrets"), ("deploy.py", 1, "model")} <= kinds


# --- the commands ------------------------------------------------------------------------

def test_review_command_formats_and_exit_codes(repo):
    repo.stage("greet.py", "def greet(name):\n    return nme\n")
    repo.set_turns([{"text": "greet.py:2: medium: `nme` is undefined"}])
    text = repo.agent("review", "--staged")
    assert text.returncode == 0 and text.stdout == "greet.py:2: medium: `nme` is undefined\n"
    assert "1 finding (1 medium)" in text.stderr
    data = repo.agent("review", "--format", "json", "--fail-on", "medium")
    assert data.returncode == 1
    report = json.loads(data.stdout)
    assert report["findings"][0] == {"path": "greet.py", "line": 2, "severity": "medium",
                                      "message": "`nme` is undefined", "source": "model"}
    assert report["failed"] and not report["file_by_file"]


def test_review_of_a_range(repo):
    repo.stage("greet.py", "def greet(name):\n    return nme\n")
    repo.git("commit", "-qm", "Break greet")
    repo.set_turns([{"text": "greet.py:2: critical: undefined name"}])
    done = repo.agent("review", "--range", "HEAD~1..HEAD")
    assert done.returncode == 1 and "greet.py:2: critical" in done.stdout
    assert "of HEAD~1..HEAD" in done.stderr
    bad = repo.agent("review", "--range", "nope..HEAD")
    assert bad.returncode == 2 and "nope" in bad.stderr
    assert repo.agent("review", "--range", "HEAD").returncode == 2


def test_commit_msg_command_prints_or_writes(repo):
    repo.stage("greet.py", "x = 1\n")
    repo.set_turns([{"text": "Refactor: simplify greet"}])
    assert repo.agent("commit-msg").stdout == "refactor: simplify greet\n"
    target = repo.home / "MSG"
    target.write_text("\n# comment kept\n")
    assert repo.agent("commit-msg", "--write", str(target)).returncode == 0
    assert target.read_text() == "refactor: simplify greet\n\n# comment kept\n"


def test_commit_msg_with_nothing_staged_says_what_to_do(repo):
    done = repo.agent("commit-msg")
    assert done.returncode == 2 and "git add" in done.stderr


def test_commit_msg_outside_a_repository(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "agent", "commit-msg"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "GIT_CEILING_DIRECTORIES": str(tmp_path.parent), "HOME": str(tmp_path)})
    assert done.returncode == 2 and "not inside a git repository" in done.stderr


def test_smollm2_writes_a_well_formed_message(repo, smollm2):
    """The embedded engine end to end; what the message says is the model's business."""
    repo.configure({"name": "embedded", "model": str(smollm2), "context_window": 2048})
    repo.stage("greet.py", "def greet(name, punctuation='!'):\n    return 'hello ' + name + punctuation\n")
    done = repo.agent("commit-msg")
    assert done.returncode == 0, done.stderr
    assert check_message(done.stdout, conventional=True) == [], done.stdout
