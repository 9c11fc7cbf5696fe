"""shell: runs a bash command in the workspace in its own process group, with a timeout that
stops everything it started, and output kept to its head and tail however much it prints."""

from __future__ import annotations

import codecs
import os
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

from agent.tools.base import ToolError, ToolResult, Workspace
from agent.tools.interactive import interactive_reason
from agent.tools.network import offline_refusal

HEAD_BYTES = 15_000
TAIL_BYTES = 15_000
MAX_TIMEOUT_S = 600
KILL_GRACE_S = 2.0  # between SIGTERM and SIGKILL
DRAIN_S = 1.0  # how long to keep reading after the command exits, for output still in flight
CANCEL_POLL_S = 0.05  # how often a running command checks whether the user interrupted it


@dataclass
class OutputBuffer:
    """The first HEAD_BYTES and the last TAIL_BYTES of a stream, and how long it was."""

    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, chunk: bytes) -> None:
        with self.lock:
            self.total += len(chunk)
            room = HEAD_BYTES - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail += chunk
                del self.tail[:-TAIL_BYTES]

    def render(self) -> str:
        with self.lock:
            omitted = self.total - len(self.head) - len(self.tail)
            head = self.head.decode("utf-8", "replace")
            tail = self.tail.decode("utf-8", "replace")
        if omitted <= 0:
            # decoded together so a character split between head and tail survives
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", "replace")
        return f"{head}\n[... {omitted} bytes omitted ...]\n{tail}"


def clip_middle(text: str) -> str:
    """`text` kept to its head and tail, as shell output is."""
    buffer = OutputBuffer()
    buffer.add(text.encode("utf-8"))
    return buffer.render()


def _pump(stream: IO[bytes], buffer: OutputBuffer, stop: threading.Event, on_output: Callable[[str], None] | None) -> None:
    # select with a timeout rather than a blocking read, so the thread can be told to stop while
    # a background process it does not own still holds the pipe open
    fd = stream.fileno()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    try:
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                buffer.add(chunk)
                if on_output is not None:
                    on_output(decoder.decode(chunk))
    finally:
        stream.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg also counts zombies, which linger where the init process does not reap orphans;
    # on Linux, look for a member that is still running
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def kill_group(process: subprocess.Popen) -> None:
    """SIGTERM to the command's whole process group, SIGKILL to whatever is left after a grace."""
    pgid = process.pid  # start_new_session made the shell the leader of its own group
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline:
        process.poll()  # reap the shell, or its zombie keeps the group alive
        if not _group_alive(pgid):
            break
        time.sleep(0.05)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"exit code {code} (killed by {name})"
    return f"exit code {code}"


def shell(ws: Workspace, command: str, timeout: float = 120) -> ToolResult:
    if not command.strip():
        raise ToolError("the command is empty")
    reason = interactive_reason(command) or offline_refusal(command, ws.network)
    if reason:
        raise ToolError(f"not run: {reason}")
    if timeout <= 0:
        raise ToolError(f"timeout must be a positive number of seconds (got {timeout})")
    limit = min(float(timeout), MAX_TIMEOUT_S)
    env = {**os.environ, "PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"}
    try:
        process = subprocess.Popen(["bash", "-c", command], cwd=ws.root, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except FileNotFoundError:
        raise ToolError("bash is not installed on this machine, so shell commands cannot run") from None
    assert process.stdout is not None
    buffer, stop = OutputBuffer(), threading.Event()
    reader = threading.Thread(target=_pump, args=(process.stdout, buffer, stop, ws.on_output), daemon=True)
    reader.start()
    timed_out = interrupted = False
    deadline = time.monotonic() + limit
    try:
        while True:
            try:
                process.wait(timeout=CANCEL_POLL_S)  # returns as soon as the command ends
                break
            except subprocess.TimeoutExpired:
                pass
            interrupted = ws.cancel.is_set()
            timed_out = not interrupted and time.monotonic() >= deadline
            if interrupted or timed_out:
                kill_group(process)
                break
    except BaseException:  # e.g. KeyboardInterrupt: never leave the command running
        kill_group(process)
        stop.set()
        raise
    reader.join(timeout=DRAIN_S)
    still_held = reader.is_alive()
    stop.set()
    reader.join(timeout=1.0)

    code = process.returncode
    output = buffer.render().rstrip("\n") or "(no output)"
    notes = []
    if interrupted:
        notes.append("[interrupted by the user; the command and every process it started were stopped]")
    elif timed_out:
        capped = f" (capped from {timeout:g} s)" if timeout > MAX_TIMEOUT_S else ""
        notes.append(f"[timed out after {limit:g} s{capped}; the command and every process it started were stopped]")
    elif still_held:
        notes.append("[background processes started by the command are still running and hold its output; "
                     "later output is not shown. Redirect their output to a file to keep it]")
    notes.append(f"[{_describe_exit(code)}]")
    return ToolResult(
        output + "\n" + "\n".join(notes),
        is_error=timed_out or interrupted or code != 0,
        data={"exit_code": code, "timed_out": timed_out, "interrupted": interrupted, "output_bytes": buffer.total},
    )
