"""Project instructions, the repository map, and shrinking a conversation to fit the context."""

from __future__ import annotations

import copy
import os
import re
import subprocess
from pathlib import Path

import pytest

from agent.core import context
from agent.backends.base import Message

needs_ctags = pytest.mark.skipif(context._universal_ctags() is None,
                                 reason="Universal Ctags is not installed (e.g. apt install universal-ctags)")


def write(root: Path, relative: str, text: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    for relative, text in files.items():
        write(root, relative, text)


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


# -- project instructions ------------------------------------------------------------------------

def test_instructions_absent(tmp_path: Path) -> None:
    assert context.project_instructions(tmp_path) == ""


def test_instructions_both_files_agents_first(tmp_path: Path) -> None:
    write(tmp_path, "CLAUDE.md", "Use tabs.\n")
    write(tmp_path, "AGENTS.md", "# Rules\nRun pytest before finishing.\n")
    text = context.project_instructions(tmp_path)
    assert text.index("AGENTS.md") < text.index("Run pytest") < text.index("CLAUDE.md") < text.index("Use tabs.")
    assert text.splitlines()[0] == "## AGENTS.md"


def test_instructions_capped_with_note(tmp_path: Path) -> None:
    write(tmp_path, "AGENTS.md", "".join(f"rule {i}: é keep it short\n" for i in range(2000)))
    write(tmp_path, "CLAUDE.md", "never reached\n")
    text = context.project_instructions(tmp_path, max_bytes=1000)
    assert len(text.encode("utf-8")) <= 1000
    assert text.startswith("## AGENTS.md") and "rule 0:" in text
    assert "cut" in text.splitlines()[-1] and "never reached" not in text


def test_instructions_skip_binary_and_duplicates(tmp_path: Path) -> None:
    write(tmp_path, "AGENTS.md", b"\x89PNG\x00\x00binary")
    write(tmp_path, "CLAUDE.md", "Be brief.\n")
    assert context.project_instructions(tmp_path) == "## CLAUDE.md\n\nBe brief."
    (tmp_path / "AGENTS.md").unlink()
    (tmp_path / "AGENTS.md").symlink_to("CLAUDE.md")
    assert context.project_instructions(tmp_path).count("Be brief.") == 1


# -- repository map ------------------------------------------------------------------------------

SHAPES = '''\
MAX_SIDES = 12
DEFAULT_NAME: str = "shape"
helper_value = 3


class Shape(Base):
    def __init__(self, name):
        self.name = name

    def area(self):
        return 0

    async def scale(self, factor=2, *, keep=True):
        return self

    def _cache(self):
        pass


def make(a, b=1, *rest, c, d=None, **options):
    return Shape(a)


def _private():
    pass
'''


def mixed_repo(root: Path) -> Path:
    write(root, "src/shapes.py", SHAPES)
    write(root, "src/broken.py", "def oops(:\n    pass\n")
    write(root, "web/app.js", "export function greet(name) { return 'hi ' + name; }\n"
                              "class Greeter { hello() { return 1; } }\n")
    write(root, "native/point.c", "struct point { int x; int y; };\nint add(int a, int b) { return a + b; }\n")
    write(root, "assets/logo.bin", b"\x00\x01\x02 not text")
    write(root, "README.md", "# Demo\n")
    return root


def test_repo_map_python_symbols(tmp_path: Path) -> None:
    text = context.repo_map(mixed_repo(tmp_path))
    assert "    MAX_SIDES, DEFAULT_NAME" in text and "helper_value" not in text
    assert "    class Shape(Base): __init__, area, scale" in text and "_cache" not in text
    assert "    def make(a, b=..., *rest, c, d=..., **options)" in text and "_private" not in text
    lines = text.splitlines()
    broken = lines.index("  broken.py")
    assert lines[broken - 1] == "src/" and not lines[broken + 1].startswith("    ")  # listed, no symbols
    assert "  logo.bin" in lines


def test_repo_map_groups_directories_and_sorts_files(tmp_path: Path) -> None:
    lines = context.repo_map(mixed_repo(tmp_path)).splitlines()
    headers = [line for line in lines if not line.startswith(" ")]
    assert headers == ["./", "assets/", "native/", "src/", "web/"]
    src = lines[lines.index("src/") + 1:]
    files = [line.strip() for line in src if line.startswith("  ") and not line.startswith("    ")]
    assert files[:2] == ["broken.py", "shapes.py"]


@needs_ctags
def test_repo_map_other_languages_through_ctags(tmp_path: Path) -> None:
    text = context.repo_map(mixed_repo(tmp_path))
    assert "    function greet(name)" in text
    assert "    class Greeter: hello" in text
    assert "    struct point" in text and "    function add(int a,int b)" in text
    assert " x\n" not in text  # struct members are not top-level


def test_repo_map_without_ctags_lists_file_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "_universal_ctags", lambda: None)
    lines = context.repo_map(mixed_repo(tmp_path)).splitlines()
    js = lines.index("  app.js")
    assert lines[js + 1:] == []  # web/app.js is the last file and has no symbols
    assert "    class Shape(Base): __init__, area, scale" in lines


def test_repo_map_respects_gitignore(tmp_path: Path) -> None:
    mixed_repo(tmp_path)
    git(tmp_path, "init", "-q")
    write_files(tmp_path, {".gitignore": "generated/\n*.log\n", "generated/out.py": "def hidden(): pass\n",
                           "run.log": "noise\n",
                           ".venv/lib/site.py": "def venv(): pass\n"})  # not ignored: git decides, not the walk
    git(tmp_path, "add", "src/shapes.py")
    text = context.repo_map(tmp_path)
    assert "out.py" not in text and "run.log" not in text and "hidden" not in text
    assert "  shapes.py" in text and "  app.js" in text  # tracked and untracked files alike
    assert "  .gitignore" in text


def test_repo_map_walk_skips_tool_directories(tmp_path: Path) -> None:
    mixed_repo(tmp_path)
    write_files(tmp_path, {".venv/lib/site.py": "def a(): pass\n", "env/pyvenv.cfg": "home = /usr\n",
                           "env/lib/thing.py": "def b(): pass\n", "node_modules/x/index.js": "function c() {}\n",
                           "src/__pycache__/shapes.cpython-312.pyc": b"\x00", ".cache/blob": "x"})
    text = context.repo_map(tmp_path)
    for hidden in ("site.py", "thing.py", "index.js", ".pyc", "blob"):
        assert hidden not in text
    assert "  shapes.py" in text


def test_repo_map_budget_drops_symbols_before_names(tmp_path: Path) -> None:
    mixed_repo(tmp_path)
    full = context.repo_map(tmp_path)
    names_only = "\n".join(line for line in full.splitlines() if not line.startswith("    "))
    text = context.repo_map(tmp_path, max_chars=len(names_only) + 30)
    assert len(text) <= len(names_only) + 30
    assert [line for line in text.splitlines() if not line.startswith("    ")] == names_only.splitlines()
    assert "files not shown" not in text


def test_repo_map_budget_keeps_symbols_of_product_code_first(tmp_path: Path) -> None:
    write(tmp_path, "tests/test_core.py", "def test_engine_runs(): pass\ndef test_engine_stops(): pass\n")
    write(tmp_path, "app/core.py", "class Engine:\n    def run(self): pass\n\ndef start(engine): pass\n")
    full = context.repo_map(tmp_path)
    assert "test_engine_runs" in full
    text = context.repo_map(tmp_path, max_chars=len(full) - 40)  # too small for the test symbols
    assert "    class Engine: run" in text and "    def start(engine)" in text
    assert "test_engine_runs" not in text and "  test_core.py" in text


def test_repo_map_budget_leaves_out_tests_and_vendored_files_first(tmp_path: Path) -> None:
    for i in range(40):
        write(tmp_path, f"tests/test_feature_{i:02}.py", "def test_it(): pass\n")
        write(tmp_path, f"vendor/lib_{i:02}.js", "function f() {}\n")
    write(tmp_path, "app/main.py", "def main(argv): pass\n")
    write(tmp_path, "app/core.py", "class Engine:\n    def run(self): pass\n")
    text = context.repo_map(tmp_path, max_chars=400)
    assert len(text) <= 400
    lines = text.splitlines()
    assert lines[:3] == ["app/", "  core.py", "  main.py"]
    assert not any(line.startswith("    ") for line in lines)  # every symbol goes before any name
    assert "  test_feature_00.py" in lines
    assert not any("lib_" in line for line in lines)  # vendored names go before test names
    shown = sum(1 for line in lines if line.startswith("  ") and not line.startswith("    "))
    last = re.fullmatch(r"\[(\d+) more files not shown\]", lines[-1])
    assert last and int(last.group(1)) == 82 - shown


def test_repo_map_tiny_budget(tmp_path: Path) -> None:
    mixed_repo(tmp_path)
    for budget in (1, 10, 30, 60):
        assert len(context.repo_map(tmp_path, max_chars=budget)) <= budget


def test_repo_map_odd_files(tmp_path: Path) -> None:
    write(tmp_path, "nul.py", b"def f():\x00 pass\n")
    write(tmp_path, "latin.py", "# -*- coding: latin-1 -*-\nNAME = 'caf\xe9'\n".encode("latin-1"))
    write(tmp_path, "deep.py", "x = " + "(" * 5000 + ")" * 5000 + "\n")
    write(tmp_path, "huge.py", "def big(): pass\n" + "# padding\n" * 60_000)
    write(tmp_path, "bad.c", b"\xff\xfe int f(\n")
    os.close(os.open(os.fsencode(tmp_path) + b"/odd\xffname.py", os.O_CREAT | os.O_WRONLY))
    (tmp_path / "dangling.py").symlink_to(tmp_path / "missing.py")
    (tmp_path / "outside.py").symlink_to("/etc/hostname")
    text = context.repo_map(tmp_path)
    assert "    NAME" in text and "def big" not in text  # huge files are listed without symbols
    for name in ("nul.py", "deep.py", "huge.py", "bad.c", "dangling.py", "outside.py", "odd\\xffname.py"):
        assert f"  {name}" in text
    text.encode("utf-8")  # printable, whatever the file names were


def test_repo_map_empty_or_missing(tmp_path: Path) -> None:
    assert context.repo_map(tmp_path) == ""
    assert context.repo_map(tmp_path / "nowhere") == ""


# -- compaction ----------------------------------------------------------------------------------

def agent_conversation() -> list[Message]:
    return [
        {"role": "system", "content": "You are mtp-agent."},
        {"role": "user", "content": "Fix the failing test in calc.py."},
        {"role": "assistant", "content": "Let me look.", "raw": "Let me look.<tool_call>...</tool_call>",
         "tool_calls": [{"id": "c1", "name": "read_file", "arguments": {"path": "calc.py"}},
                        {"id": "c2", "name": "bash", "arguments": {"command": "pytest -q"}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "read_file", "content": "def add(a, b):\n" + "    x\n" * 300},
        {"role": "tool", "tool_call_id": "c2", "name": "bash", "content": "F" * 900 + "\nAssertionError: 1 != 2"},
        {"role": "assistant", "content": "",
         "tool_calls": [{"id": "c3", "name": "edit_file", "arguments": {"path": "calc.py", "old": "-", "new": "+"}}]},
        {"role": "tool", "tool_call_id": "c3", "name": "edit_file", "content": "ok " * 300},
        {"role": "assistant", "content": "",
         "tool_calls": [{"id": "c4", "name": "bash", "arguments": {"command": "pytest -q"}}]},
        {"role": "tool", "tool_call_id": "c4", "name": "bash", "content": "1 passed" + " " * 500},
    ]


def assert_tool_pairs_intact(messages: list[Message]) -> None:
    called: set[str] = set()
    for message in messages:
        if message["role"] == "assistant":
            called |= {call["id"] for call in message.get("tool_calls", [])}
        if message["role"] == "tool":
            assert message["tool_call_id"] in called, f"tool result {message['tool_call_id']} lost its call"
    answered = {m["tool_call_id"] for m in messages if m["role"] == "tool"}
    assert called <= answered, f"calls without results: {called - answered}"


def test_elide_keeps_last_tool_outputs_and_leaves_input_alone() -> None:
    messages = agent_conversation()
    messages[1]["content"] = "long user text " * 100
    before = copy.deepcopy(messages)
    ids_before = [id(m) for m in messages]
    result, elided = context.elide_tool_outputs(messages, keep_last=2)
    assert messages == before and [id(m) for m in messages] == ids_before
    assert elided == 2 and len(result) == len(messages)
    first, second = result[3], result[4]
    assert "read_file" in first["content"] and str(len(before[3]["content"])) in first["content"]
    assert "elided" in first["content"] and "again" in first["content"]
    assert "bash" in second["content"] and "AssertionError" not in second["content"]
    assert first["tool_call_id"] == "c1" and first["name"] == "read_file"
    assert result[6:] == before[6:]  # the last two tool results are kept
    assert result[1] == before[1] and result[2] == before[2]  # user and assistant text untouched


def test_elide_skips_short_outputs_and_is_idempotent() -> None:
    messages = agent_conversation()
    messages[3]["content"] = "short"
    result, elided = context.elide_tool_outputs(messages, keep_last=1)
    assert elided == 2  # c2 and c3; c1 is short and c4 is kept
    assert result[3]["content"] == "short" and result[8] == messages[8]
    again, elided_again = context.elide_tool_outputs(result, keep_last=1)
    assert elided_again == 0 and again == result
    assert context.elide_tool_outputs(messages, keep_last=10) == (messages, 0)


def test_compaction_request() -> None:
    messages = agent_conversation()
    before = copy.deepcopy(messages)
    request = context.compaction_request(messages)
    assert messages == before
    assert [m["role"] for m in request] == ["system", "user"]
    assert request[0] == messages[0]
    body = request[1]["content"]
    assert "Fix the failing test in calc.py." in body
    assert "[tool call: read_file]" in body and '"path": "calc.py"' in body
    assert "[tool result: bash]" in body and "AssertionError: 1 != 2" in body  # the tail of a cut output stays
    assert "characters cut" in body and messages[3]["content"] not in body
    assert "You are mtp-agent." not in body
    for heading in ("Task", "Decisions", "Files", "Current state", "Next steps"):
        assert f"## {heading}" in body
    assert "{{" not in body


def test_compacted_conversation_keeps_last_exchange_with_its_tools() -> None:
    messages = agent_conversation()
    result = context.compacted_conversation(messages, "  The summary.  ")
    assert result[0] == messages[0]
    assert result[1]["role"] == "user" and result[1]["content"].endswith("The summary.")
    assert "summary of the earlier conversation" in result[1]["content"].lower()
    assert result[2:] == messages[7:]
    assert_tool_pairs_intact(result)


def test_compacted_conversation_never_splits_tool_pairs() -> None:
    messages = agent_conversation()
    for keep in range(0, 6):
        result = context.compacted_conversation(messages, "s", keep_last_turns=keep)
        assert_tool_pairs_intact(result)
        assert result[:1] == messages[:1] and result[1]["role"] == "user"
    assert context.compacted_conversation(messages, "s", keep_last_turns=2)[2:] == messages[5:]
    assert context.compacted_conversation(messages, "s", keep_last_turns=3)[2:] == messages[1:]  # with its user
    assert len(context.compacted_conversation(messages, "s", keep_last_turns=0)) == 2
    assert context.compacted_conversation(messages, "s", keep_last_turns=50)[2:] == messages[1:]


def test_compacted_conversation_chat_turns() -> None:
    messages = [{"role": "system", "content": "sys"},
                {"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"},
                {"role": "user", "content": "q3"}]
    assert context.compacted_conversation(messages, "s")[2:] == messages[5:]
    assert context.compacted_conversation(messages, "s", keep_last_turns=2)[2:] == messages[3:]
    without_system = context.compacted_conversation(messages[1:], "s", keep_last_turns=1)
    assert [m["role"] for m in without_system] == ["user", "user"]


def test_needs_compaction_thresholds() -> None:
    window = 10_000
    margin = int(window * context.SAFETY_MARGIN)
    limit = window - margin
    assert not context.needs_compaction(limit - 2000, window, 2000)
    assert context.needs_compaction(limit - 1999, window, 2000)
    assert not context.needs_compaction(0, window, 0)
    assert context.needs_compaction(window, window, 0)
    assert context.needs_compaction(0, window, window)  # a reserve as big as the window never fits
    with pytest.raises(ValueError, match="context window"):
        context.needs_compaction(10, 0, 0)
