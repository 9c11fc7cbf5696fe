"""The file tools (read_file, write_file, edit_file, list_dir, glob, grep), the workspace guard
they all go through, and the registry that validates arguments."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from agent.tools import TOOLS, Workspace, run_tool
from agent.tools import search
from agent.tools.base import ToolError
from agent.tools.files import (edit_file, glob, glob_regex, list_dir, preview_edit_file, preview_write_file,
                               read_file, write_file)
from agent.tools.search import grep


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "repo"
    root.mkdir()
    return Workspace(root)


def write(ws: Workspace, path: str, content: str | bytes) -> Path:
    target = ws.root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_bytes(content.encode("utf-8"))
    return target


def git_init(root: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)


# -- the registry -----------------------------------------------------------------------------

def test_registry_has_the_eleven_tools_with_their_access():
    assert sorted(TOOLS) == sorted(["read_file", "write_file", "edit_file", "list_dir", "glob", "grep", "shell",
                                    "git_status", "git_diff", "git_log", "git_commit"])
    access = {name: tool.access for name, tool in TOOLS.items()}
    assert {name for name, kind in access.items() if kind == "edit"} == {"write_file", "edit_file"}
    assert {name for name, kind in access.items() if kind == "exec"} == {"shell", "git_commit"}
    assert TOOLS["shell"].subject == "command"
    assert TOOLS["grep"].subject == "path" and TOOLS["git_log"].subject is None
    for tool in TOOLS.values():
        spec = tool.spec()["function"]
        assert spec["description"] and spec["parameters"]["type"] == "object"


def test_run_tool_rejects_unknown_missing_and_mistyped_arguments(ws: Workspace):
    unknown = run_tool(TOOLS["read_file"], ws, {"path": "a", "lines": 3})
    assert unknown.is_error and "unknown argument 'lines'" in unknown.output
    missing = run_tool(TOOLS["edit_file"], ws, {"path": "a", "old_string": "x"})
    assert missing.is_error and "missing required argument 'new_string'" in missing.output
    mistyped = run_tool(TOOLS["read_file"], ws, {"path": "a", "offset": "ten"})
    assert mistyped.is_error and "'offset' must be integer" in mistyped.output
    boolean = run_tool(TOOLS["read_file"], ws, {"path": "a", "limit": True})
    assert boolean.is_error and "'limit'" in boolean.output
    items = run_tool(TOOLS["git_commit"], ws, {"message": "m", "paths": ["a", 3]})
    assert items.is_error and "paths[1]" in items.output


def test_run_tool_turns_tool_errors_into_error_results_and_accepts_nulls(ws: Workspace):
    write(ws, "a.txt", "one\n")
    result = run_tool(TOOLS["read_file"], ws, {"path": "a.txt", "offset": None, "limit": 5.0})
    assert not result.is_error and "one" in result.output
    missing = run_tool(TOOLS["read_file"], ws, {"path": "nope.txt"})
    assert missing.is_error and "does not exist" in missing.output


def test_run_tool_corrects_unambiguous_type_slips_of_local_models(ws: Workspace):
    """XML-style calls send "5" for an integer; JSON-looking text for a string arrives parsed."""
    write(ws, "a.txt", "one\ntwo\nthree\n")
    result = run_tool(TOOLS["read_file"], ws, {"path": "a.txt", "offset": "2", "limit": "1"})
    assert not result.is_error and "two" in result.output and "three" not in result.output
    written = run_tool(TOOLS["write_file"], ws, {"path": "config.json", "content": {"debug": True}})
    assert not written.is_error and (ws.root / "config.json").read_text() == '{"debug": true}'
    run_tool(TOOLS["write_file"], ws, {"path": "n.txt", "content": 3})
    assert (ws.root / "n.txt").read_text() == "3"


# -- the workspace guard ----------------------------------------------------------------------

@pytest.fixture
def escapes(ws: Workspace, tmp_path: Path) -> dict[str, str]:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    (ws.root / "link").symlink_to(outside)
    return {"parent": "../outside.txt", "absolute": "/etc/passwd", "symlink": "link"}


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_read_file_refuses_paths_outside_the_workspace(ws: Workspace, escapes: dict[str, str], kind: str):
    with pytest.raises(ToolError, match="outside the workspace"):
        read_file(ws, escapes[kind])


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_write_file_refuses_paths_outside_the_workspace(ws: Workspace, escapes: dict[str, str], kind: str, tmp_path: Path):
    with pytest.raises(ToolError, match="outside the workspace"):
        write_file(ws, escapes[kind], "pwned\n")
    assert (tmp_path / "outside.txt").read_text() == "secret\n"


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_edit_file_refuses_paths_outside_the_workspace(ws: Workspace, escapes: dict[str, str], kind: str, tmp_path: Path):
    with pytest.raises(ToolError, match="outside the workspace"):
        edit_file(ws, escapes[kind], "secret", "pwned")
    assert (tmp_path / "outside.txt").read_text() == "secret\n"


def test_writes_under_git_are_refused_but_reads_are_allowed(ws: Workspace):
    git_init(ws.root)
    with pytest.raises(ToolError, match=r"\.git/"):
        write_file(ws, ".git/hooks/pre-commit", "#!/bin/sh\n")
    with pytest.raises(ToolError, match=r"\.git/"):
        edit_file(ws, ".git/HEAD", "ref", "oops")
    assert not (ws.root / ".git/hooks/pre-commit").exists()
    assert "ref: refs/heads/" in read_file(ws, ".git/HEAD").output


# -- read_file --------------------------------------------------------------------------------

def test_read_file_numbers_lines_like_cat_n(ws: Workspace):
    write(ws, "a.py", "first\nsecond\r\nthird")
    result = read_file(ws, "a.py")
    assert result.output == "     1\tfirst\n     2\tsecond\n     3\tthird"
    assert result.data == {"path": "a.py", "total_lines": 3, "first_line": 1, "last_line": 3}


def test_read_file_offset_and_limit_say_how_to_read_on(ws: Workspace):
    write(ws, "a.txt", "".join(f"line {n}\n" for n in range(1, 11)))
    result = read_file(ws, "a.txt", offset=4, limit=3)
    assert result.output.splitlines()[:3] == ["     4\tline 4", "     5\tline 5", "     6\tline 6"]
    assert "lines 4-6 of 10" in result.output and "offset=7" in result.output
    assert result.data["first_line"] == 4 and result.data["last_line"] == 6
    with pytest.raises(ToolError, match="past the end.*10 lines"):
        read_file(ws, "a.txt", offset=11)


def test_read_file_truncates_long_lines_and_caps_output(ws: Workspace):
    write(ws, "long.txt", "x" * 5000 + "\n" + "".join(f"{'y' * 99}\n" for _ in range(3000)))
    result = read_file(ws, "long.txt")
    first = result.output.splitlines()[0]
    assert "line truncated: 5000 characters" in first and len(first) < 2100
    assert len(result.output.encode()) < 110_000
    last = result.data["last_line"]
    assert last < 2000 and f"showing lines 1-{last} of 3001" in result.output and f"offset={last + 1}" in result.output


def test_read_file_refuses_binary_files_without_dumping_them(ws: Workspace):
    write(ws, "image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 10)
    with pytest.raises(ToolError, match=r"binary file \(2\.5 KB\)") as error:
        read_file(ws, "image.png")
    assert "PNG" not in str(error.value)
    write(ws, "latin1.txt", "caf\xe9\n".encode("latin-1"))
    with pytest.raises(ToolError, match="binary"):
        read_file(ws, "latin1.txt")


def test_read_file_on_a_directory_or_missing_file_says_what_to_do(ws: Workspace):
    write(ws, "src/config.py", "x = 1\n")
    with pytest.raises(ToolError, match="list_dir"):
        read_file(ws, "src")
    with pytest.raises(ToolError, match=r"Did you mean: src/config\.py"):
        read_file(ws, "src/confg.py")
    with pytest.raises(ToolError, match="does not exist"):
        read_file(ws, "nowhere/file.py")


def test_read_file_of_an_empty_file(ws: Workspace):
    write(ws, "empty.txt", "")
    result = read_file(ws, "empty.txt")
    assert "empty" in result.output and result.data["total_lines"] == 0


# -- write_file -------------------------------------------------------------------------------

def test_write_file_creates_parents_and_reports_created_or_overwrote(ws: Workspace):
    created = write_file(ws, "deep/new/file.txt", "hello\n")
    assert "Created deep/new/file.txt" in created.output and "6 bytes" in created.output
    assert created.data == {"path": "deep/new/file.txt", "created": True}
    overwrote = write_file(ws, "deep/new/file.txt", "bye\n")
    assert "Overwrote" in overwrote.output and overwrote.data["created"] is False
    assert (ws.root / "deep/new/file.txt").read_text() == "bye\n"
    assert [p.name for p in (ws.root / "deep/new").iterdir()] == ["file.txt"]  # no temporary left behind


def test_write_file_keeps_permission_bits(ws: Workspace):
    script = write(ws, "run.sh", "#!/bin/sh\n")
    script.chmod(0o750)
    write_file(ws, "run.sh", "#!/bin/sh\necho hi\n")
    assert stat.S_IMODE(script.stat().st_mode) == 0o750
    new = ws.root / "plain.txt"
    write_file(ws, "plain.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask


def test_write_file_through_a_symlink_inside_the_workspace_writes_the_target(ws: Workspace):
    target = write(ws, "real.txt", "old\n")
    (ws.root / "alias.txt").symlink_to(target)
    write_file(ws, "alias.txt", "new\n")
    assert target.read_text() == "new\n" and (ws.root / "alias.txt").is_symlink()


def test_write_file_refuses_a_directory(ws: Workspace):
    (ws.root / "folder").mkdir()
    with pytest.raises(ToolError, match="directory"):
        write_file(ws, "folder", "x")


def test_write_file_preview_is_a_diff_and_writes_nothing(ws: Workspace):
    write(ws, "a.txt", "one\ntwo\n")
    diff = preview_write_file(ws, "a.txt", "one\n2\n")
    assert "--- a/a.txt" in diff and "+++ b/a.txt" in diff and "-two" in diff and "+2" in diff
    assert (ws.root / "a.txt").read_text() == "one\ntwo\n"
    new = preview_write_file(ws, "b.txt", "hello\n")
    assert "+++ b/b.txt" in new and "+hello" in new and not (ws.root / "b.txt").exists()


# -- edit_file --------------------------------------------------------------------------------

def test_edit_file_exact_single_replacement(ws: Workspace):
    write(ws, "a.py", "def f():\n    return 1\n")
    result = edit_file(ws, "a.py", "return 1", "return 2")
    assert (ws.root / "a.py").read_text() == "def f():\n    return 2\n"
    assert result.data == {"path": "a.py", "replacements": 1, "matched_by": "exact"}
    assert "     2\t    return 2" in result.output


def test_edit_file_several_exact_matches_need_context_or_replace_all(ws: Workspace):
    write(ws, "a.py", "x = 1\ny = 2\nx = 1\n")
    with pytest.raises(ToolError, match=r"matches 2 places.*lines 1, 3.*replace_all"):
        edit_file(ws, "a.py", "x = 1", "x = 3")
    result = edit_file(ws, "a.py", "x = 1", "x = 3", replace_all=True)
    assert (ws.root / "a.py").read_text() == "x = 3\ny = 2\nx = 3\n"
    assert result.data["replacements"] == 2


def test_edit_file_refuses_empty_and_identical_strings(ws: Workspace):
    write(ws, "a.py", "x = 1\n")
    with pytest.raises(ToolError, match="write_file"):
        edit_file(ws, "a.py", "", "y")
    with pytest.raises(ToolError, match="same"):
        edit_file(ws, "a.py", "x = 1", "x = 1")


@pytest.mark.parametrize("before, old, new, after, matched_by, said", [
    ("a = 1   \nb = 2\t\nc = 3\n", "a = 1\nb = 2\n", "a = 10\nb = 20\n", "a = 10\nb = 20\nc = 3\n",
     "trailing_whitespace", "matched after ignoring trailing whitespace"),
    ("class A:\n    def f(self):\n        return 1\n", "def f(self):\n    return 1", "def f(self):\n    x = 2\n    return x",
     "class A:\n    def f(self):\n        x = 2\n        return x\n", "surrounding_whitespace", "re-indented"),
], ids=["trailing whitespace", "indentation, the replacement re-indented"])
def test_edit_file_matches_ignoring_whitespace(ws: Workspace, before, old, new, after, matched_by, said):
    write(ws, "a.py", before)
    result = edit_file(ws, "a.py", old, new)
    assert (ws.root / "a.py").read_text() == after
    assert result.data["matched_by"] == matched_by
    assert said in result.output


def test_edit_file_reindents_deeper_lines_to_the_files_indent_width(ws: Workspace):
    write(ws, "a.py", "class A:\n    def f(self):\n        if x:\n            return 1\n        return 2\n")
    edit_file(ws, "a.py", "if x:\n  return 1\nreturn 2", "if x:\n  if y:\n    return 0\n  return 1\nreturn 2")
    assert (ws.root / "a.py").read_text().splitlines()[2:] == [
        "        if x:", "            if y:", "                return 0", "            return 1", "        return 2"]


def test_edit_file_with_no_match_in_a_big_file_is_quick_and_finds_the_closest_lines(ws: Workspace):
    write(ws, "big.py", "".join(f"value_{n} = compute({n}, 'some text')\n" for n in range(20_000)))
    old = "".join(f"value_{n} = compute({n}, 'other text')\n" for n in range(12_000, 12_030))
    with pytest.raises(ToolError, match=r"12001\tvalue_12000 = compute\(12000, 'some text'\)"):
        edit_file(ws, "big.py", old, "x")


def test_edit_file_matches_with_collapsed_whitespace(ws: Workspace):
    write(ws, "a.py", "total = price  *  count\nother = 1\n")
    result = edit_file(ws, "a.py", "total = price * count", "total = price * count * 2")
    assert (ws.root / "a.py").read_text() == "total = price * count * 2\nother = 1\n"
    assert result.data["matched_by"] == "normalised_whitespace"


def test_edit_file_refuses_an_ambiguous_tolerant_match(ws: Workspace):
    write(ws, "a.py", "if a:\n    go()\nif b:\n    go()  \n")
    with pytest.raises(ToolError, match=r"matches 2 places \(starting at lines 2, 4\)"):
        edit_file(ws, "a.py", "\tgo()", "\tstop()")
    assert (ws.root / "a.py").read_text() == "if a:\n    go()\nif b:\n    go()  \n"


def test_edit_file_with_no_match_shows_the_closest_lines(ws: Workspace):
    write(ws, "a.py", "import os\n\ndef load(path):\n    with open(path) as f:\n        return f.read()\n")
    with pytest.raises(ToolError) as error:
        edit_file(ws, "a.py", "def load(path):\n    with open(path, 'rb') as f:", "x")
    message = str(error.value)
    assert "not found" in message and "read_file" in message
    assert "     3\tdef load(path):" in message and "     4\t    with open(path) as f:" in message


def test_edit_file_preserves_crlf_and_a_missing_final_newline(ws: Workspace):
    write(ws, "win.txt", "one\r\ntwo\r\nthree")
    edit_file(ws, "win.txt", "two\nthree", "2\n3")
    assert (ws.root / "win.txt").read_bytes() == b"one\r\n2\r\n3"
    edit_file(ws, "win.txt", "3", "three")
    assert (ws.root / "win.txt").read_bytes() == b"one\r\n2\r\nthree"


def test_edit_file_keeps_permissions_and_refuses_binary_files(ws: Workspace):
    script = write(ws, "run.sh", "#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    edit_file(ws, "run.sh", "hi", "hello")
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    write(ws, "blob.bin", b"abc\x00def")
    with pytest.raises(ToolError, match="binary"):
        edit_file(ws, "blob.bin", "abc", "xyz")


def test_edit_file_preview_matches_what_the_edit_does(ws: Workspace):
    write(ws, "a.py", "x = 1\ny = 2\n")
    diff = preview_edit_file(ws, "a.py", "y = 2", "y = 3")
    assert "--- a/a.py" in diff and "-y = 2" in diff and "+y = 3" in diff
    assert (ws.root / "a.py").read_text() == "x = 1\ny = 2\n"
    with pytest.raises(ToolError, match="not found"):
        preview_edit_file(ws, "a.py", "zzz qqq", "y")
    assert TOOLS["edit_file"].preview is preview_edit_file and TOOLS["write_file"].preview is preview_write_file


# -- list_dir ---------------------------------------------------------------------------------

def test_list_dir_sorts_marks_folders_sizes_files_and_skips_git(ws: Workspace):
    git_init(ws.root)
    write(ws, "b.txt", "12345")
    write(ws, "a/inner.txt", "x")
    write(ws, "c.bin", b"\x00" * 2048)
    result = list_dir(ws, ".")
    assert result.output.splitlines()[1:] == ["a/", "b.txt  5 B", "c.bin  2.0 KB"]
    with pytest.raises(ToolError, match="read_file"):
        list_dir(ws, "b.txt")


def test_list_dir_caps_at_500_entries(ws: Workspace):
    for n in range(510):
        (ws.root / f"f{n:03}.txt").write_text("")
    result = list_dir(ws)
    assert "f499.txt" in result.output and "f500.txt" not in result.output
    assert "10 more entries not shown" in result.output


# -- glob -------------------------------------------------------------------------------------

def test_glob_regex_semantics():
    assert glob_regex("**/*.py").fullmatch("a.py") and glob_regex("**/*.py").fullmatch("x/y/a.py")
    assert not glob_regex("*.py").fullmatch("x/a.py")
    assert glob_regex("src/**").fullmatch("src/a/b.c") and not glob_regex("src/**").fullmatch("lib/a")
    assert glob_regex("*.{ts,tsx}").fullmatch("a.tsx") and not glob_regex("*.{ts,tsx}").fullmatch("a.js")
    assert glob_regex("test_?.py").fullmatch("test_1.py") and glob_regex("[ab].txt").fullmatch("b.txt")


def _tree(ws: Workspace) -> None:
    write(ws, "src/app.py", "print('app')\n")
    write(ws, "src/pkg/util.py", "def util():\n    return 'TODO'\n")
    write(ws, "README.md", "TODO: docs\n")
    write(ws, "build/out.py", "TODO generated\n")
    write(ws, ".gitignore", "build/\n")
    os.utime(ws.root / "src/app.py", (1_000_000, 1_000_000))


def test_glob_outside_git_walks_everything_newest_first(ws: Workspace):
    _tree(ws)
    os.utime(ws.root / "build/out.py", (2_000_000, 2_000_000))
    os.utime(ws.root / "src/pkg/util.py", (3_000_000, 3_000_000))
    result = glob(ws, "**/*.py")
    assert result.output.splitlines() == ["src/pkg/util.py", "build/out.py", "src/app.py", "(3 files, newest first)"]


def test_glob_in_a_git_repo_respects_gitignore(ws: Workspace):
    _tree(ws)
    git_init(ws.root)
    result = glob(ws, "**/*.py")
    assert sorted(result.output.splitlines()[:-1]) == ["src/app.py", "src/pkg/util.py"]
    assert glob(ws, "*.py", path="src").output.splitlines()[0] == "src/app.py"
    none = glob(ws, "*.py")
    assert none.data["count"] == 0 and "'**/'" in none.output


def test_glob_caps_at_500(ws: Workspace):
    for n in range(505):
        (ws.root / f"{n}.txt").write_text("")
    result = glob(ws, "*.txt")
    assert len(result.output.splitlines()) == 501 and "5 more files not shown" in result.output


# -- grep -------------------------------------------------------------------------------------

@pytest.fixture(params=["python", "ripgrep"])
def engine(request, monkeypatch):
    if request.param == "python":
        monkeypatch.setattr(search, "USE_RIPGREP", False)
    elif shutil.which("rg") is None:
        pytest.skip("ripgrep is not installed")
    return request.param


def test_grep_finds_lines_and_respects_gitignore(ws: Workspace, engine: str):
    _tree(ws)
    write(ws, "logo.bin", b"TODO\x00\x01\x02")
    git_init(ws.root)
    result = grep(ws, "TODO")
    assert result.output.splitlines() == [
        "README.md:1: TODO: docs",
        "src/pkg/util.py:2: return 'TODO'",
        "(2 matches in 2 files)",
    ]
    assert result.data == {"matches": 2, "files": 2, "capped": False}


def test_grep_without_git_searches_every_file_outside_dot_git(ws: Workspace, engine: str):
    _tree(ws)
    result = grep(ws, "todo", ignore_case=True)
    assert [line.split(":")[0] for line in result.output.splitlines()[:-1]] == ["README.md", "build/out.py", "src/pkg/util.py"]


def test_grep_glob_path_and_cap(ws: Workspace, engine: str):
    _tree(ws)
    git_init(ws.root)
    assert grep(ws, "TODO", glob="*.py").output.splitlines()[0] == "src/pkg/util.py:2: return 'TODO'"
    assert grep(ws, "TODO", path="src/pkg/util.py").data["matches"] == 1
    assert grep(ws, "TODO", path="src").data["files"] == 1
    write(ws, "many.txt", "hit\n" * 50)
    capped = grep(ws, "hit", max_results=10)
    assert len(capped.output.splitlines()) == 11 and capped.data["capped"]
    assert capped.output.splitlines()[-2] == "many.txt:10: hit" and "first 10 matches" in capped.output


def test_grep_truncates_long_lines_and_reports_no_matches(ws: Workspace, engine: str):
    write(ws, "wide.txt", "needle " + "x" * 1000 + "\n")
    line = grep(ws, "needle").output.splitlines()[0]
    assert line.startswith("wide.txt:1: needle") and len(line) < 330
    empty = grep(ws, "absent")
    assert not empty.is_error and "No matches" in empty.output


def test_grep_invalid_regex_is_a_tool_error(ws: Workspace, engine: str):
    write(ws, "a.txt", "x\n")
    with pytest.raises(ToolError, match="invalid regular expression"):
        grep(ws, "(unclosed")


def test_grep_accepts_python_regex_syntax_ripgrep_lacks(ws: Workspace, engine: str):
    write(ws, "a.py", "x = 1\nx = 2\n")
    assert grep(ws, r"x = (?=2)").output.splitlines()[0] == "a.py:2: x = 2"
