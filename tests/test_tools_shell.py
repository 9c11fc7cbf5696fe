"""The shell tool: exit codes, merged output, the head-and-tail cap, and timeouts that stop
every process the command started."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent.tools import TOOLS, Workspace, run_tool
from agent.tools.shell import HEAD_BYTES, TAIL_BYTES, OutputBuffer, clip_middle, shell


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def processes_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def processes_left(marker: str, grace: float = 3.0) -> list[int]:
    """Processes with `marker` still running after `grace` seconds (killed ones take a moment to go)."""
    deadline = time.monotonic() + grace
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return processes_with(marker)


def test_runs_in_the_workspace_and_reports_exit_code(ws: Workspace):
    result = shell(ws, "pwd; echo out; echo err >&2")
    assert result.output.splitlines() == [str(ws.root), "out", "err", "[exit code 0]"]
    assert not result.is_error
    assert result.data == {"exit_code": 0, "timed_out": False, "interrupted": False, "output_bytes": len(str(ws.root)) + 9}


def test_non_zero_exit_is_an_error_result_not_an_exception(ws: Workspace):
    result = shell(ws, "echo failing; exit 3")
    assert result.is_error and result.data["exit_code"] == 3
    assert result.output == "failing\n[exit code 3]"
    assert run_tool(TOOLS["shell"], ws, {"command": "exit 4"}).data["exit_code"] == 4


def test_environment_disables_pagers_and_prompts_and_stdin_is_empty(ws: Workspace):
    result = shell(ws, 'echo "$PAGER $GIT_PAGER $GIT_TERMINAL_PROMPT"; cat; echo done')
    assert result.output.splitlines()[:2] == ["cat cat 0", "done"]


def test_huge_output_keeps_head_and_tail_and_says_what_was_omitted(ws: Workspace):
    started = time.monotonic()
    result = shell(ws, "printf 'FIRST\\n'; yes | head -c 10000000; printf 'LAST\\n'")
    assert time.monotonic() - started < 20
    assert result.data["output_bytes"] == 10_000_011
    assert result.output.startswith("FIRST\n") and result.output.endswith("LAST\n[exit code 0]")
    omitted = 10_000_011 - HEAD_BYTES - TAIL_BYTES
    assert f"[... {omitted} bytes omitted ...]" in result.output
    assert len(result.output) < HEAD_BYTES + TAIL_BYTES + 200


def test_invalid_utf8_is_replaced_not_fatal(ws: Workspace):
    result = shell(ws, "printf 'caf\\xe9\\n'")
    assert result.output.startswith("caf\ufffd")


def test_timeout_kills_the_whole_process_group(ws: Workspace):
    marker = f"300.{os.getpid()}"
    started = time.monotonic()
    result = shell(ws, f"sleep {marker} & sleep {marker} & echo started; wait", timeout=1)
    assert time.monotonic() - started < 6
    assert result.is_error and result.data["timed_out"]
    assert "timed out after 1 s" in result.output and "started" in result.output and "exit code" in result.output
    assert processes_left(f"sleep {marker}") == []


def test_timeout_also_kills_children_that_ignore_sigterm(ws: Workspace):
    marker = f"301.{os.getpid()}"
    started = time.monotonic()
    result = shell(ws, f"trap '' TERM; bash -c \"trap '' TERM; sleep {marker}\" & wait", timeout=1)
    assert time.monotonic() - started < 8 and result.data["timed_out"]
    assert processes_left(f"sleep {marker}") == []


def test_background_process_holding_the_pipe_does_not_hang_the_tool(ws: Workspace):
    marker = f"302.{os.getpid()}"
    started = time.monotonic()
    result = shell(ws, f"sleep {marker} & echo quick")
    try:
        assert time.monotonic() - started < 5
        assert not result.data["timed_out"] and result.data["exit_code"] == 0
        assert result.output.startswith("quick") and "still running" in result.output
    finally:
        for pid in processes_with(f"sleep {marker}"):
            os.kill(pid, 9)


def test_timeout_is_capped_and_validated(ws: Workspace):
    assert run_tool(TOOLS["shell"], ws, {"command": "true", "timeout": 0}).is_error
    assert not shell(ws, "true", timeout=10_000).is_error


def test_output_buffer_and_clip_middle():
    buffer = OutputBuffer()
    for _ in range(100):
        buffer.add(b"0123456789" * 100)
    assert buffer.total == 100_000 and len(buffer.head) == HEAD_BYTES and len(buffer.tail) == TAIL_BYTES
    assert clip_middle("short") == "short"
    assert "bytes omitted" in clip_middle("x" * 100_000)


def test_cancel_stops_the_command_and_everything_it_started_at_once(ws: Workspace):
    marker = f"cancel-marker-{os.getpid()}"
    seen: list[str] = []
    ws.on_output = seen.append
    timer = __import__("threading").Timer(0.5, ws.cancel.set)
    timer.start()
    start = time.monotonic()
    result = shell(ws, f"echo started; (sleep 30; echo {marker}) & sleep 30")
    elapsed = time.monotonic() - start
    assert elapsed < 5, "the command should stop within the grace period, not run its 30 s"
    assert result.is_error and result.data["interrupted"] and not result.data["timed_out"]
    assert result.output.startswith("started\n")
    assert "[interrupted by the user; the command and every process it started were stopped]" in result.output
    assert processes_with(marker) == []
    assert "".join(seen) == "started\n", "live output reaches the watcher as it is printed"


def test_live_output_is_decoded_across_chunk_boundaries(ws: Workspace):
    seen: list[str] = []
    ws.on_output = seen.append
    result = shell(ws, "printf '\\xc3'; sleep 0.3; printf '\\xa9 done\\n'")
    assert "".join(seen) == "é done\n"
    assert result.output.startswith("é done")
