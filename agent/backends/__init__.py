"""Model backends behind one small protocol (base.Backend): embedded, openai, scripted."""

from agent.backends.base import Backend, Message, ModelError, ModelTurn, ToolCall, TurnStats

BACKENDS = ("embedded", "openai", "scripted")

__all__ = ["BACKENDS", "Backend", "Message", "ModelError", "ModelTurn", "ToolCall", "TurnStats"]
