"""What `agent serve` accepts: an OpenAI chat or completions request checked and turned into our
messages, tools and turn options; a bad one is a RequestError (400, an OpenAI-style error body)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.backends.base import Message, Reply, TurnOptions, TurnSampling
from agent.core.toolcalls import format_tool_call

ROLES = {"system", "developer", "user", "assistant", "tool"}


class RequestError(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400,
                 kind: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.param, self.status, self.kind, self.code = param, status, kind, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}


@dataclass
class ChatRequest:
    messages: list[Message]
    tools: list[dict[str, Any]] = field(default_factory=list)
    options: TurnOptions = field(default_factory=TurnOptions)
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False


def parse_chat(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list", "messages")
    if body.get("n", 1) != 1:
        raise RequestError("only n = 1 is supported", "n")
    tools = _tools(body.get("tools"))
    tools, require_call = _tool_choice(body.get("tool_choice"), tools)
    stream_options = body.get("stream_options") or {}
    return ChatRequest(messages=[from_wire(m, i) for i, m in enumerate(messages)], tools=tools,
                       options=TurnOptions(sampling=sampling(body), require_call=require_call,
                                           reply=_reply(body.get("response_format")), stop=stops(body.get("stop"))),
                       max_tokens=max_tokens(body), stream=bool(body.get("stream")),
                       include_usage=isinstance(stream_options, dict) and bool(stream_options.get("include_usage")))


def from_wire(message: Any, index: int) -> Message:
    """An OpenAI message as ours: content parts joined, an assistant's calls kept both as calls and
    as the text the model would have written (what the embedded backend puts in the prompt)."""
    where = f"messages[{index}]"
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise RequestError(f"{where} needs a role, one of {', '.join(sorted(ROLES))}", where)
    role = "system" if message["role"] == "developer" else message["role"]
    content = _content(message.get("content"), where)
    if role == "tool":
        return {"role": "tool", "content": content, "tool_call_id": str(message.get("tool_call_id") or ""),
                "name": message.get("name")}
    if role != "assistant" or not message.get("tool_calls"):
        return {"role": role, "content": content}
    calls = []
    for number, call in enumerate(message["tool_calls"]):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RequestError(f"{where}.tool_calls[{number}] needs function.name", f"{where}.tool_calls")
        arguments = function.get("arguments") or "{}"
        try:
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        except json.JSONDecodeError:
            raise RequestError(f"{where}.tool_calls[{number}].function.arguments is not JSON", where) from None
        calls.append({"id": call.get("id") or f"call_{index}_{number}", "name": function["name"], "arguments": arguments})
    raw = "\n".join([content] * bool(content) + [format_tool_call(c["name"], c["arguments"]) for c in calls])
    return {"role": "assistant", "content": content, "raw": raw, "tool_calls": calls}


def _content(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):  # content parts: only text can reach a text model
        texts = [part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        if len(texts) != len(content):
            raise RequestError(f"{where}.content: only text parts are supported", where)
        return "".join(texts)
    raise RequestError(f"{where}.content must be a string or a list of text parts", where)


def _tools(tools: Any) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise RequestError("'tools' must be a list", "tools")
    for number, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RequestError(f"tools[{number}] must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}", "tools")
    return tools


def _tool_choice(choice: Any, tools: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    if choice in (None, "auto"):
        return tools, False
    if choice == "none":
        return [], False
    if choice == "required":
        if not tools:
            raise RequestError("tool_choice 'required' needs tools", "tool_choice")
        return tools, True
    name = ((choice or {}).get("function") or {}).get("name") if isinstance(choice, dict) else None
    chosen = [t for t in tools if t["function"]["name"] == name]
    if not chosen:
        raise RequestError(f"tool_choice names no offered tool ({name!r})", "tool_choice")
    return chosen, True


def _reply(response_format: Any) -> Reply | None:
    if response_format is None or response_format.get("type") == "text":
        return None
    if response_format.get("type") == "json_object":
        return Reply("json", schema={"type": "object"})
    schema = (response_format.get("json_schema") or {}).get("schema")
    if response_format.get("type") == "json_schema" and isinstance(schema, dict):
        return Reply("json", schema=schema)
    raise RequestError("response_format must be text, json_object or json_schema with a schema", "response_format")


def sampling(body: dict[str, Any]) -> TurnSampling | None:
    temperature, top_p, seed = body.get("temperature"), body.get("top_p"), body.get("seed")
    for name, value, low, high in (("temperature", temperature, 0, 2), ("top_p", top_p, 0, 1)):
        if value is not None and (not isinstance(value, (int, float)) or not low <= value <= high):
            raise RequestError(f"'{name}' must be a number from {low} to {high}", name)
    if seed is not None and not isinstance(seed, int):
        raise RequestError("'seed' must be an integer", "seed")
    if temperature is None and top_p is None and seed is None:
        return None
    return TurnSampling(temperature=float(1.0 if temperature is None else temperature),
                        top_p=float(1.0 if top_p is None else top_p), seed=seed)


def stops(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        return tuple(s for s in stop if s)
    raise RequestError("'stop' must be a string or a list of at most 4 strings", "stop")


def max_tokens(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise RequestError("'max_tokens' must be a positive integer", "max_tokens")
    return value
