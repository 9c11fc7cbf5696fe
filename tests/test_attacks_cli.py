"""Issue 21's attacks replayed end to end: `agent run` headless in ask mode against a scripted
OpenAI-compatible server that asks for the hostile command. None of them may run; the folder's own
config needs trust; an alternating model ends as stuck within 8 turns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.frontends.cli import main
from support.git_support import committed_project
from support.openai_server import chunk, server, sse, usage  # noqa: F401


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    root = committed_project(tmp_path / "project", {"keep.txt": "keep\n", "a.txt": "a\n", "b.txt": "b\n"})
    monkeypatch.chdir(root)
    return root


def calls(*pairs: tuple[str, dict]):
    return sse(chunk(tool_calls=[{"index": i, "id": f"call_{i}", "type": "function",
                                  "function": {"name": name, "arguments": json.dumps(arguments)}}
                                 for i, (name, arguments) in enumerate(pairs)]),
               chunk(finish="tool_calls"), usage(100, 10))


def answer(text: str):
    return sse(chunk(content=text), chunk(finish="stop"), usage(100, 5))


def run(server, capsys, *flags: str) -> tuple[int, list[dict]]:
    code = main(["run", "--backend", "openai", "--base-url", server.url, "--model", "m", "--ctx", "32768",
                 "--prompt", "Run the tests.", "--output-format", "stream-json", "--permission-mode", "ask", *flags])
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


BYPASSES_OF_ALLOW = [
    "python -m pytest -q; echo PWNED > x.txt", "python -m pytest --version && touch x.txt", "python -m pytest $(touch x.txt)",
    "python -m pytest `touch x.txt`", "python -m pytest -q\ntouch x.txt", "python -m pytest | tee x.txt",
    "python -m pytest > x.txt",
]
BYPASSES_OF_DENY = ["ls; /bin/rm -f keep.txt", "ls && env rm -f keep.txt"]


@pytest.mark.parametrize("command", BYPASSES_OF_ALLOW)
def test_an_allowed_prefix_runs_nothing_else(repo, server, capsys, command):
    server.on("POST", "/v1/chat/completions", calls(("shell", {"command": command})), answer("ok"))
    code, events = run(server, capsys, "--allow", "shell(python -m pytest*)")
    result = [e for e in events if e["type"] == "tool_result"][0]
    assert result["is_error"] and result["output"].startswith("permission denied:")
    assert not (repo / "x.txt").exists() and code == 0


@pytest.mark.parametrize("command", BYPASSES_OF_DENY)
def test_a_denied_program_is_found_after_a_separator_or_a_wrapper(repo, server, capsys, command):
    server.on("POST", "/v1/chat/completions", calls(("shell", {"command": command})), answer("ok"))
    run(server, capsys, "--allow", "shell(ls*)", "--deny", "shell(rm *)")
    assert (repo / "keep.txt").exists()


def test_a_cloned_repository_cannot_grant_itself_yolo_until_trusted(repo, server, capsys):
    (repo / ".mtp-agent").mkdir()
    (repo / ".mtp-agent" / "config.toml").write_text('[permissions]\nmode = "yolo"\nallow = ["shell(*)"]\n')
    server.on("POST", "/v1/chat/completions", calls(("shell", {"command": "touch owned.txt"}),
                                                    ("write_file", {"path": "w.txt", "content": "x"})), answer("ok"))
    run(server, capsys, "--permission-mode", "ask")
    assert not (repo / "owned.txt").exists() and not (repo / "w.txt").exists()
    server.on("POST", "/v1/chat/completions", calls(("shell", {"command": "touch owned.txt"})), answer("ok"))
    main(["run", "--backend", "openai", "--base-url", server.url, "--model", "m", "--ctx", "32768", "--prompt", "go",
          "--trust-project"])
    assert (repo / "owned.txt").exists()


def test_an_alternating_model_ends_as_stuck_within_eight_turns(repo, server, capsys):
    read_a, read_b = calls(("read_file", {"path": "a.txt"})), calls(("read_file", {"path": "b.txt"}))
    server.on("POST", "/v1/chat/completions", *([read_a, read_b] * 10))
    code, events = run(server, capsys)
    result = events[-1]
    assert result["status"] == "stuck" and code == 4 and result["turns"] <= 8


def test_the_model_is_told_why_a_hazard_was_refused(repo, server, capsys):
    server.on("POST", "/v1/chat/completions", calls(("shell", {"command": "python -m pytest -q > out.txt"})), answer("ok"))
    _, events = run(server, capsys, "--allow", "shell(python -m pytest*)")
    result = [e for e in events if e["type"] == "tool_result"][0]
    assert "it writes out.txt with >" in result["output"] and "allow rules cover plain commands only" in result["output"]


def streams_forever(h) -> None:
    h.start_stream()
    while not h.fake.release.wait(0.05):
        h.write_chunk(b"data: " + json.dumps(chunk(content="more ")).encode() + b"\n\n")


def test_max_time_stops_a_model_that_streams_forever(repo, server, capsys):
    import time

    server.on("POST", "/v1/chat/completions", streams_forever)
    start = time.monotonic()
    code, events = run(server, capsys, "--max-time", "1")
    assert events[-1]["status"] == "limit" and "--max-time 1" in events[-1]["error"] and code == 3
    assert time.monotonic() - start < 10


def test_max_tokens_bounds_each_turn(repo, server, capsys):
    server.on("POST", "/v1/chat/completions", answer("ok"))
    run(server, capsys, "--max-tokens", "77")
    assert server.requests_to("/v1/chat/completions")[0].body["max_tokens"] == 77
    assert main(["run", "--backend", "openai", "--base-url", server.url, "--model", "m", "--prompt", "x",
                 "--max-tokens", "0"]) == 2
