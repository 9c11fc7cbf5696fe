"""Chat templates from GGUF files, rendered in jinja2's immutable sandbox, in a child process.

A template comes from whoever published the model file, so it is untrusted code. The sandbox
refuses attribute access to Python internals and mutation of the inputs; but not work: nested
`range` loops, `pow` on huge numbers, `'x' * 10**9`, recursive macros or `wordwrap` on a huge
string hung the agent or took gigabytes before failing. So templates run in one long-lived child
interpreter (inference/template_child.py: jinja2 and the standard library only) under an
address-space and a recursion limit, and the parent stops waiting after RENDER_SECONDS: it kills
the child and starts a fresh one for the next render. Every failure is one ChatTemplateError
naming the template. A real template renders in milliseconds (tests render SmolLM2's, Qwen2.5's
and Qwen3.5's with tools); the round trip to the child adds well under a millisecond per turn.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from .errors import ChatTemplateError
from .template_child import MEMORY_BYTES, read_message, write_message

RENDER_SECONDS = 10.0  # a parse or a render past this is stopped
CHILD = Path(__file__).with_name("template_child.py")


class _Renderer:
    """The parent's side: one child per process, started on first use, replaced after a failure."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def request(self, payload: dict[str, Any], origin: str) -> str:
        with self._lock:
            process = self._start()
            expired = threading.Event()
            deadline = threading.Timer(RENDER_SECONDS, lambda: (expired.set(), process.kill()))
            deadline.start()
            try:
                write_message(process.stdin, payload)
                answer = read_message(process.stdout)
            except (OSError, ValueError):
                answer = None
            finally:
                deadline.cancel()
            if answer is None:  # killed at the deadline, or the child died
                self._stop()
                why = (f"ran past {RENDER_SECONDS:g} s" if expired.is_set()
                       else f"took its renderer down (past {MEMORY_BYTES // 1024**3} GiB of memory, or a crash)")
                raise ChatTemplateError(f"the {origin} {why}, far beyond what any chat prompt needs; refusing it")
            if "error" in answer:
                raise ChatTemplateError(answer["error"])
            return answer["text"]

    def _start(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            # -I: no environment variables, no user site, no current directory on the path
            self._process = subprocess.Popen([sys.executable, "-I", str(CHILD)], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True,
                                             cwd=os.path.dirname(CHILD))
        return self._process

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


_RENDERER = _Renderer()


class ChatTemplate:
    def __init__(self, source: str, bos_token: str = "", eos_token: str = "", origin: str = "chat template"):
        self.source = source
        self.origin = origin
        self.bos_token, self.eos_token = bos_token, eos_token
        self._request(None)  # parsed now, so a broken template fails at load

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
               add_generation_prompt: bool = True, **extra: Any) -> str:
        return self._request({"messages": messages, "tools": tools, "add_generation_prompt": add_generation_prompt,
                              "bos_token": self.bos_token, "eos_token": self.eos_token, **extra})

    def _request(self, variables: dict[str, Any] | None) -> str:
        return _RENDERER.request({"source": self.source, "origin": self.origin, "variables": variables}, self.origin)
