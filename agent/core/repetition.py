"""Repeated actions: a call that would run into a result the model already has is not run.

Greedy decoding repeats a failed action forever: a small model reads the same file, or clones the
same made-up URL, turn after turn. Each call is fingerprinted with the state of the workspace it
ran in (git's view of the changed files, or a counter of writes outside git). A call is steered
instead of run when
- the same call (name and arguments) already ran in the same workspace state: its result would be
  the same (an A-B-A-B alternation between reads meets this at its third call);
- the recent calls are a cycle (period up to 3, three rounds), whatever the workspace did.
A call that nearly repeats one that failed in the same state (the same command with another
made-up argument) runs, since it may be the correction; if it fails the same way, that counts as a
steer too. The model is told in one short line where the earlier result is (repeating its text invites a
small model to copy it into its next call: seen with a 1.5B writing the line into a file), and its
next turn is sampled
rather than greedy, without the steered call's tool (the loop's turn options); after a few steers
with no new action in between, the run ends as stuck.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Callable

from agent.backends.base import ToolCall, TurnSampling

NEAR_REPEAT_RATIO = 0.8  # arguments and error at least this similar to a failed call's: the same idea, failed again
CYCLE_ROUNDS = 3
MAX_CYCLE_PERIOD = 3


def steered_sampling(steer: int) -> TurnSampling:
    """How the turn after a steer is generated: sampled, so that it can leave the greedy rut, and
    seeded by the steer's number, so that a run is reproducible."""
    return TurnSampling(temperature=0.7, top_p=0.9, seed=steer)


@dataclass
class PastCall:
    turn: int
    signature: str
    name: str
    arguments: str
    state: str  # the workspace state the call ran in
    output: str
    is_error: bool


@dataclass
class RepeatGuard:
    """Remembers what ran in which workspace state and says when a call should not run again."""

    workspace_state: Callable[[], str]
    history: list[PastCall] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)  # signatures of every call made, run or not

    def steering(self, call: ToolCall, state: str) -> str | None:
        """None when `call` may run in workspace `state`; else the line that tells the model why it does not."""
        signature = call_signature(call)
        self.attempts.append(signature)
        for past in reversed(self.history):
            if past.state != state:
                continue
            if past.signature == signature:
                return (f"Not run: you made this exact call in turn {past.turn} and nothing has changed since; its "
                        f"result is above{' (an error)' if past.is_error else ''}. Do something else.")
        period = cycle_period(self.attempts)
        if period:
            return (f"Not run: your last {period * CYCLE_ROUNDS} calls repeat the same {period} call"
                    f"{'s' if period > 1 else ''} in a loop. Try a different approach.")
        return None

    def record(self, call: ToolCall, turn: int, state: str, output: str, is_error: bool) -> str | None:
        """A call that ran, in the workspace state it ran in (taken before it ran). Returns a
        steering line when it failed the way a nearly identical call already failed in that state."""
        arguments = json.dumps(call.arguments, sort_keys=True, ensure_ascii=False)
        same_failure = next((past for past in reversed(self.history) if is_error and past.is_error
                             and past.state == state and past.name == call.name
                             and _similar(past.arguments, arguments) and _similar(past.output, output)), None)
        self.history.append(PastCall(turn, call_signature(call), call.name, arguments, state, output, is_error))
        if same_failure is None:
            return None
        return (f"This failed the same way as your call of turn {same_failure.turn}. Variations of it will not work "
                "either: try a different approach.")


def call_signature(call: ToolCall) -> str:
    return json.dumps([call.name, call.arguments], sort_keys=True, ensure_ascii=False)


def cycle_period(signatures: list[str]) -> int:
    """The period (1..MAX_CYCLE_PERIOD) of a cycle repeated CYCLE_ROUNDS times at the end of the
    list, or 0."""
    for period in range(1, MAX_CYCLE_PERIOD + 1):
        span = period * CYCLE_ROUNDS
        if len(signatures) < span:
            break
        tail = signatures[-span:]
        if len(set(tail[:period])) == period and all(tail[i] == tail[i % period] for i in range(span)):
            return period
    return 0


def _similar(a: str, b: str) -> bool:
    return SequenceMatcher(None, a, b).ratio() >= NEAR_REPEAT_RATIO


MAX_HASHED_BYTES = 1 << 20  # changed files up to this size are fingerprinted by content, bigger ones by size and time


class WorkspaceState:
    """A fingerprint of the workspace's files: in a git repository the changed and untracked
    files with their contents (cheap: only what differs from HEAD, plus HEAD itself); elsewhere a
    counter the agent bumps whenever a call may have written."""

    def __init__(self, root: Path):
        self.root = root
        self.writes = 0
        self.is_git = (root / ".git").exists()
        self._hashes: dict[Path, tuple[tuple[int, int], bytes]] = {}  # path -> ((size, mtime), content hash)

    def note_write(self) -> None:
        self.writes += 1

    def __call__(self) -> str:
        if not self.is_git:
            return f"writes:{self.writes}"
        try:
            head = subprocess.run(["git", "rev-parse", "-q", "--verify", "HEAD"], cwd=self.root, capture_output=True,
                                  text=True, timeout=30).stdout.strip()
            status = subprocess.run(["git", "status", "--porcelain=v1", "-z", "-uall"], cwd=self.root,
                                    capture_output=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError):
            return f"writes:{self.writes}"
        digest = hashlib.sha256(head.encode() + b"\0" + status)
        for entry in status.split(b"\0"):
            path = self.root / os.fsdecode(entry[3:]) if len(entry) > 3 else None
            if path is not None and path.is_file():
                stat = path.stat()
                digest.update(self._fingerprint(path, stat.st_size, stat.st_mtime_ns))
        return digest.hexdigest()

    def _fingerprint(self, path: Path, size: int, mtime_ns: int) -> bytes:
        """A changed file's content hash (a file written again as it was is unchanged), read again
        only when its size or time moved; a big file's size and time."""
        if size > MAX_HASHED_BYTES:
            return f"{size}:{mtime_ns}".encode()
        known = self._hashes.get(path)
        if known is None or known[0] != (size, mtime_ns):
            known = self._hashes[path] = ((size, mtime_ns), hashlib.sha256(path.read_bytes()).digest())
        return known[1]
