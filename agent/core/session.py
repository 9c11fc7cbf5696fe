"""Sessions: the trajectory of a conversation as an append-only JSONL file, one per session, in
the user data directory and grouped by repository. Every message is written (and flushed to disk)
the moment it joins the conversation, so a crash or a lost connection never loses a step.

Records: {"type": "meta", ...} first; then {"type": "message", "message": {...}}, {"type":
"event", "event": {...}} (results, checkpoints, compactions); {"type": "replace", "messages":
[...]} after a compaction rewrote the history.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from agent.backends.base import Message
from agent.core.events import Event, json_line
from agent.errors import AgentError


def sessions_root() -> Path:
    override = os.environ.get("MTP_AGENT_SESSIONS")
    return Path(override) if override else Path(platformdirs.user_data_dir("mtp-agent")) / "sessions"


def repository_key(root: Path) -> str:
    """A directory name per repository: its folder name plus a hash of its absolute path."""
    resolved = str(Path(root).resolve())
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(resolved).name) or "root"
    return f"{name}-{hashlib.sha256(resolved.encode()).hexdigest()[:10]}"


def sessions_dir(root: Path) -> Path:
    return sessions_root() / repository_key(root)


@dataclass
class Session:
    id: str
    path: Path
    messages: list[Message] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # as saved: each event's as_dict()

    @classmethod
    def create(cls, root: Path, meta: dict[str, Any]) -> "Session":
        directory = sessions_dir(root)
        directory.mkdir(parents=True, exist_ok=True)
        session_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        session = cls(session_id, directory / f"{session_id}.jsonl", meta=dict(meta, root=str(Path(root).resolve())))
        session._write({"type": "meta", "id": session_id, "created": time.time(), **session.meta})
        return session

    @classmethod
    def load(cls, root: Path, session_id: str) -> "Session":
        path = sessions_dir(root) / f"{session_id}.jsonl"
        if not path.is_file():
            known = ", ".join(s.id for s in list_sessions(root)[:5]) or "none"
            raise AgentError(f"no session '{session_id}' for {root} (recent: {known}); see `agent sessions`")
        session = cls(session_id, path)
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()  # a damaged byte costs a character
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):  # cut short by a crash while writing; it was never acted on
                    break
                raise AgentError(f"session file {path} is damaged at line {number}") from None
            kind = record.get("type")
            if kind == "meta":
                session.meta = {k: v for k, v in record.items() if k != "type"}
            elif kind == "message":
                session.messages.append(record["message"])
            elif kind == "replace":
                session.messages = list(record["messages"])
            elif kind == "event":
                session.events.append(record["event"])
        return session

    @classmethod
    def latest(cls, root: Path) -> "Session":
        sessions = list_sessions(root)
        if not sessions:
            raise AgentError(f"there is no earlier session for {root} to continue; start one without --continue")
        return cls.load(root, sessions[0].id)

    def _write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json_line(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def add_message(self, message: Message) -> None:
        self.messages.append(message)
        self._write({"type": "message", "message": message})

    def replace_messages(self, messages: list[Message]) -> None:
        self.messages = list(messages)
        self._write({"type": "replace", "messages": self.messages})

    def add_event(self, event: Event) -> None:
        record = event.as_dict()
        self.events.append(record)
        self._write({"type": "event", "event": record})


@dataclass(frozen=True)
class SessionSummary:
    id: str
    path: Path
    modified: float
    first_task: str


def list_sessions(root: Path) -> list[SessionSummary]:
    """This repository's sessions, newest first."""
    directory = sessions_dir(root)
    if not directory.is_dir():
        return []
    out = []
    for path in directory.glob("*.jsonl"):
        first_task = ""
        with path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break
                message = record.get("message", {})
                if record.get("type") == "message" and message.get("role") == "user":
                    first_task = str(message.get("content", ""))[:80]
                    break
        out.append(SessionSummary(path.stem, path, path.stat().st_mtime, first_task))
    return sorted(out, key=lambda s: (s.modified, s.id), reverse=True)
