"""The grammar of one assistant turn when tools are offered: a plain answer, or text followed by
tool calls in the model's own call format whose arguments match the offered tools' schemas.

Written in llguidance's Lark dialect. Small models often open a call as a bare JSON object or a
```json block instead of the template's tags (Qwen2.5-Coder-0.5B puts 95% of its first token on
those): a turn that opens that way is held to the same schemas, so it becomes a valid call in the
envelope the model chose (the parser reads both). A plain answer may not contain call markup or an
object whose first key is "name", and may not open with a JSON object; an empty turn is not a turn.
"""

from __future__ import annotations

import json
from typing import Any

HERMES = "hermes"  # <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call> (Qwen2.5, Qwen3, our protocol prompt)
QWEN_XML = "qwen-xml"  # <tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n</function>\n</tool_call>
FORMATS = (HERMES, QWEN_XML)

_MARKUP = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")
# Text that is a call written outside the call format: an object whose first key is "name" (a call,
# or a tool definition copied out), and text that opens with a JSON object or a code fence.
_CALL_OBJECT = r'\{\s*"name"\s*:'
_CALL_START = r"\s*(```[A-Za-z_]*\s*)?\{"
# the separators of json.dumps, which is how chat templates serialise calls (`tojson`)
_JSON_STYLE = {"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": False}


def call_format(template_source: str | None) -> str:
    """The call format a chat template teaches (HERMES when it renders no tools itself: our
    protocol prompt teaches that one)."""
    if template_source and "<function=" in template_source and "<parameter=" in template_source:
        return QWEN_XML
    return HERMES


def tool_turn_grammar(tools: list[dict[str, Any]], call_format: str = HERMES, parallel_calls: bool = True,
                      thinking: bool = False, require_call: bool = False) -> str:
    """The Lark grammar of an assistant turn offered `tools` (OpenAI-style specs). `thinking`
    allows a `...</think>` block first (for templates that open one in the prompt);
    `require_call` leaves out the plain answer (OpenAI's tool_choice "required")."""
    if call_format not in FORMATS:
        raise ValueError(f"unknown tool-call format '{call_format}' (known: {', '.join(FORMATS)})")
    functions = [tool.get("function", tool) for tool in tools]
    if not functions:
        raise ValueError("a tool-call grammar needs at least one tool")
    forbidden = _MARKUP + (("<think>", "</think>") if thinking else ())
    contains = "|".join(_regex_literal(m) for m in forbidden)
    # a call's head ends with its opening tag, so only the other markup is forbidden in it
    contains_in_head = "|".join(_regex_literal(m) for m in forbidden if m != "<tool_call>")
    lines = [
        "%llguidance {}",
        f"start: {'reasoning? ' if thinking else ''}({'' if require_call else 'ANSWER | '}calls | loose_call)",
        f"calls: call{'+' if parallel_calls else ''}",
        'loose_call: body | fence body "\\n```"',
        "fence[lazy]: /```(json|tool_call)?[ \\t]{0,4}\\n/",  # bounded: a model cannot pad the fence forever
        # text before a call ends at the first opening tag: lazy, so the tag cannot be swallowed;
        # a required call starts at once (else prose could run on and never open one)
        'head: "<tool_call>"' if require_call else "head[lazy]: HEAD",
        f"HEAD: /(?s:.*)<tool_call>/ & ~/(?s:.*)({contains_in_head}|{_CALL_OBJECT})(?s:.*)/ & ~/{_CALL_START}(?s:.*)/",
        _answer_terminal(contains),
    ]
    if thinking:
        lines.append("reasoning[lazy]: /(?s:.*)<\\/think>/")
    lines.append(_json_body(functions))
    lines += _hermes_calls() if call_format == HERMES else _xml_calls(functions)
    return "\n".join(lines) + "\n"


def _answer_terminal(forbidden: str) -> str:
    """Prose: not empty, none of the `forbidden` alternatives, no call object, not opening as code."""
    return f"ANSWER: /(?s:.*)\\S(?s:.*)/ & ~/(?s:.*)({forbidden}|{_CALL_OBJECT})(?s:.*)/ & ~/{_CALL_START}(?s:.*)/"


def reply_grammar(kind: str, language: str = "", schema: dict[str, Any] | None = None) -> str:
    """The grammar of a turn answered in a fixed shape: `text`, prose with no calls; `code`, one
    fenced block opened with `language` and nothing after it; `json`, one JSON value matching
    `schema`."""
    if kind == "text":
        forbidden = "|".join(_regex_literal(m) for m in _MARKUP + ("```",))
        return f"%llguidance {{}}\nstart: ANSWER\n{_answer_terminal(forbidden)}\n"
    if kind == "code":
        # lazy: the block ends at the first closing fence
        return "\n".join(["%llguidance {}", f"start: {_lark_string('```' + language + chr(10))} code",
                          "code[lazy]: /(?s:.*)\\n```/"]) + "\n"
    if kind == "json":
        return f"%llguidance {{}}\nstart: %json {json.dumps({**(schema or {}), 'x-guidance': _JSON_STYLE}, ensure_ascii=False)}\n"
    raise ValueError(f"a reply is 'text', 'code' or 'json', not '{kind}'")


def _json_body(functions: list[dict[str, Any]]) -> str:
    """One call as a JSON object: {"name": one of the tools, "arguments": matching its schema}."""
    variants = [{
        "type": "object",
        "properties": {"name": {"const": f["name"]}, "arguments": _closed(f.get("parameters") or {})},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    } for f in functions]
    schema = {"anyOf": variants, "x-guidance": _JSON_STYLE}
    return f"body: %json {json.dumps(schema, ensure_ascii=False)}"


def _hermes_calls() -> list[str]:
    return ['call: head "\\n" body "\\n</tool_call>"']


def _xml_calls(functions: list[dict[str, Any]]) -> list[str]:
    names = [f"fn_{i}" for i in range(len(functions))]
    lines = [f'call: head "\\n<function=" ({" | ".join(names)}) "\\n</function>\\n</tool_call>"',
             'value[lazy]: /(?s:.*)\\n<\\/parameter>/']
    for rule, f in zip(names, functions):
        parameters = f.get("parameters") or {}
        required = set(parameters.get("required", []))
        parts = [_lark_string(f["name"] + ">")]
        for name in parameters.get("properties", {}):
            # the value is the parameter's text as it is, up to the closing tag
            param = f'("\\n<parameter=" {_lark_string(name + ">")} "\\n" value)'
            parts.append(param if name in required else param + "?")
        lines.append(f"{rule}: {' '.join(parts)}")
    return lines


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """An object schema that does not say otherwise takes no arguments beyond its properties."""
    if schema.get("type", "object") == "object" and "additionalProperties" not in schema:
        return {"type": "object", **schema, "additionalProperties": False}
    return schema


def _regex_literal(text: str) -> str:
    return "".join("\\" + c if c in "\\/.*+?()[]{}|^$" else c for c in text)


def _lark_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
