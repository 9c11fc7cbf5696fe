"""Streamed model text, sorted as it arrives: reasoning, answer text, and tool-call markup (hidden
until the parsed turn replaces it). The markers are tool-call parsing's own."""

from __future__ import annotations

from agent.core.toolcalls import CALL_STARTS, THINK_CLOSE, THINK_OPEN


class StreamSplitter:
    """Sorts streamed model text into reasoning (inside <think>) and answer text, and hides
    tool-call markup; the final, parsed turn replaces what was shown. A marker split across two
    deltas is held back until it is whole."""

    def __init__(self) -> None:
        self.in_think = False
        self.in_call = False
        self.pending = ""

    def feed(self, delta: str) -> list[tuple[str, str]]:
        """[(kind, text)] with kind "think" or "text"."""
        self.pending += delta
        out: list[tuple[str, str]] = []
        while self.pending and not self.in_call:
            marker = THINK_CLOSE if self.in_think else THINK_OPEN
            markers = [marker] + ([] if self.in_think else list(CALL_STARTS))
            found = [(self.pending.find(m), m) for m in markers if m in self.pending]
            if found:
                index, hit = min(found)
                self._emit(out, self.pending[:index])
                self.pending = self.pending[index + len(hit):]
                if hit == THINK_OPEN:
                    self.in_think = True
                elif hit == THINK_CLOSE:
                    self.in_think = False
                else:
                    self.in_call = True
                continue
            keep = max((k for m in markers for k in range(1, len(m)) if self.pending.endswith(m[:k])), default=0)
            self._emit(out, self.pending[:len(self.pending) - keep])
            self.pending = self.pending[len(self.pending) - keep:]
            break
        if self.in_call:
            self.pending = ""
        return out

    def _emit(self, out: list[tuple[str, str]], text: str) -> None:
        if text:
            out.append(("think" if self.in_think else "text", text))
