"""Tool calls in model text: parsing what local models write, tolerantly, and the prompts that
teach a model without template tool support how to write them."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Union

from agent.backends.base import ToolCall
from agent.core.lenient_json import flatten, json_kind, load_json
from agent.prompts import render_prompt

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
FUNCTION_OPEN = "<function="
CALL_STARTS = (CALL_OPEN, FUNCTION_OPEN)  # where a turn's tool-call markup starts
# What a server without a tool or reasoning parser leaves in the content when the model called a
# tool or reasoned: worth parsing the content for.
CONTENT_MARKUP = (CALL_OPEN.removesuffix(">"), FUNCTION_OPEN, "```json", "```tool", THINK_CLOSE, '"name"')

_FUNCTION = re.compile(r"<function=([^>\n]*)>(.*?)(?:</function>|(?=<function=)|\Z)", re.DOTALL)
_PARAMETER = re.compile(r"<parameter=([^>\n]*)>(.*?)(?:</parameter>|(?=<parameter=)|\Z)", re.DOTALL)
# ```json / ```tool_call / plain ``` blocks; the language word may be followed by the JSON on the same line
_FENCE = re.compile(r"```[ \t]*([A-Za-z_]*)[ \t]*\n?(.*?)```", re.DOTALL)
_CALL_FENCES = {"json", "tool_call", ""}
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_OPEN_TAG = re.compile(r"<([A-Za-z_][\w-]*)>")
_CUT_CALL = re.compile(r'\{\s*"name"\s*:\s*"([^"\n]{1,80})"\s*,\s*"arguments"\s*:')  # a call whose JSON may never close
_FILE_NAME = re.compile(r"[/\\]|\.[A-Za-z0-9]{1,5}$")  # a path or an extension: a file, never a tool

@dataclass
class ParsedOutput:
    text: str  # the visible answer, tool-call markup and <think> blocks removed
    reasoning: str = ""  # the content of <think>...</think>, if any
    calls: list[ToolCall] = field(default_factory=list)
    error: str | None = None  # set when the text tries to call a tool but it cannot be parsed


# One call found in the text, in order: (name, arguments), or the message saying why it is unusable.
_Found = Union[tuple[str, dict[str, Any]], str]


def parse_tool_calls(text: str, tool_names: set[str] | None = None) -> ParsedOutput:
    """Split a model's raw output into visible text, reasoning and tool calls.

    Recognises Hermes/Qwen `<tool_call>{json}</tool_call>`, Qwen3-Coder `<function=...>` XML, and
    (when no tags are present) a fenced or bare JSON object that is clearly a call. `error` is set
    when markup is present but unusable, names a tool outside `tool_names`, or when the text tries
    to call a tool in a shape that cannot be run (a call object in prose naming no offered tool, a
    copied tool definition, calls in an invented envelope such as `<tools>`); the calls that did
    parse are kept."""
    visible, reasoning = split_reasoning(text)
    spans, found = _tagged_calls(visible)
    if not found:
        spans, found = _fenced_calls(visible, tool_names)
    if not found:
        spans, found = _bare_calls(visible)
    if found:
        visible = _remove_spans(visible, spans)
    else:
        # Qwen3 sometimes writes the call before closing its <think>; honour it when nothing is outside.
        reasoning_spans, found = _tagged_calls(reasoning)
        if found:
            reasoning = _remove_spans(reasoning, reasoning_spans)
    visible = visible.replace(CALL_CLOSE, "").strip()

    calls: list[ToolCall] = []
    errors: list[str] = []
    for item in found:
        if isinstance(item, str):
            errors.append(item)
        elif tool_names is not None and item[0] not in tool_names:
            errors.append(_unknown_tool(item[0], tool_names))
        else:
            calls.append(ToolCall(id=f"call_{len(calls) + 1}", name=item[0], arguments=item[1]))
    return ParsedOutput(text=visible, reasoning=reasoning, calls=calls, error="; ".join(errors) or None)


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """A call in the canonical Hermes form: what the protocol prompt teaches and what the parser reads best."""
    return f"{CALL_OPEN}\n{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}\n{CALL_CLOSE}"


def tool_protocol_prompt(tools: list[dict[str, Any]]) -> str:
    """A system-prompt section that lists `tools` (OpenAI-style specs) and teaches the call format,
    for models whose chat template cannot render tools. Empty when there are no tools."""
    functions = [tool.get("function", tool) for tool in tools]
    if not functions:
        return ""
    listed = [{"name": f["name"], "description": (f.get("description") or "").strip(),
               "parameters": json.dumps(f.get("parameters") or {}, ensure_ascii=False, separators=(",", ":"))}
              for f in functions]
    example = format_tool_call(functions[0]["name"], _example_arguments(functions[0].get("parameters") or {}))
    return render_prompt("tool_protocol.md", tools=listed, example=example)


def format_error_message(error: str, tool_names: list[str]) -> str:
    """The correction sent back to the model after a call that could not be used."""
    # The example names the tool the model was reaching for when the error mentions one.
    mentioned = [name for name in tool_names if f"'{name}'" in error]
    example = _example_call(mentioned or tool_names)
    return render_prompt("format_error.md", error=error, tool_names=tool_names, example=example)


def no_answer_message(tool_names: list[str], reasoned: bool) -> str:
    """The nudge sent after a turn with neither an answer nor a tool call."""
    return render_prompt("no_answer.md", reasoned=reasoned, example=_example_call(tool_names) if tool_names else "")


# realistic arguments for the correction's example: given `{"argument_name": "value"}`, small
# models copied it word for word into their next call
EXAMPLE_ARGUMENTS: dict[str, dict[str, Any]] = {
    "read_file": {"path": "src/app.py"}, "write_file": {"path": "notes.md", "content": "# Notes\n"},
    "edit_file": {"path": "src/app.py", "old_string": "return a - b", "new_string": "return a + b"},
    "list_dir": {"path": "src"}, "glob": {"pattern": "**/*.py"}, "grep": {"pattern": "def main"},
    "shell": {"command": "python -m pytest -q"}, "git_status": {}, "git_diff": {"staged": True},
    "git_log": {"count": 5}, "git_commit": {"message": "Fix the sum in add()", "all": True},
}


def _example_call(tool_names: list[str]) -> str:
    name = (tool_names or ["read_file"])[0]
    return format_tool_call(name, EXAMPLE_ARGUMENTS.get(name, {"path": "src/app.py"}))


# -- reasoning --------------------------------------------------------------------------------

def split_reasoning(text: str) -> tuple[str, str]:
    """(visible text, reasoning). Handles a `</think>` without its opening tag (Qwen3 templates put
    `<think>` in the prompt) and an unclosed `<think>` (the model stopped while thinking)."""
    visible: list[str] = []
    reasoning: list[str] = []
    pos = 0
    first_open, first_close = text.find(THINK_OPEN), text.find(THINK_CLOSE)
    if first_close != -1 and (first_open == -1 or first_close < first_open):
        reasoning.append(text[:first_close])
        pos = first_close + len(THINK_CLOSE)
    while True:
        start = text.find(THINK_OPEN, pos)
        if start == -1:
            visible.append(text[pos:])
            break
        visible.append(text[pos:start])
        end = text.find(THINK_CLOSE, start + len(THINK_OPEN))
        if end == -1:
            reasoning.append(text[start + len(THINK_OPEN):])
            break
        reasoning.append(text[start + len(THINK_OPEN):end])
        pos = end + len(THINK_CLOSE)
    return "".join(visible), "\n\n".join(part.strip() for part in reasoning if part.strip())


def _remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    pieces, pos = [], 0
    for start, end in spans:
        pieces.append(text[pos:start])
        pos = end
    pieces.append(text[pos:])
    return "\n\n".join(piece.strip() for piece in pieces if piece.strip())


# -- tagged calls -----------------------------------------------------------------------------

def _tagged_calls(text: str) -> tuple[list[tuple[int, int]], list[_Found]]:
    """Every `<tool_call>` block, and every bare `<function=...>` block outside one."""
    spans: list[tuple[int, int]] = []
    found: list[_Found] = []
    pos = 0
    # the next occurrence of each tag, searched again only once passed (linear in the text: a
    # server that sends thousands of calls in one turn does not cost quadratic time)
    next_at = {CALL_OPEN: -2, FUNCTION_OPEN: -2}

    def find(tag: str) -> int:
        if next_at[tag] == -2 or 0 <= next_at[tag] < pos:
            next_at[tag] = text.find(tag, pos)
        return next_at[tag]

    while True:
        call_at, function_at = find(CALL_OPEN), find(FUNCTION_OPEN)
        if call_at == -1 and function_at == -1:
            return spans, found
        if call_at != -1 and (function_at == -1 or call_at < function_at):
            body_start = call_at + len(CALL_OPEN)
            close, next_open = text.find(CALL_CLOSE, body_start), text.find(CALL_OPEN, body_start)
            if close == -1 or (next_open != -1 and next_open < close):
                # unclosed: the model stopped (or started the next call) before the closing tag
                body_end = end = next_open if next_open != -1 else len(text)
            else:
                body_end, end = close, close + len(CALL_CLOSE)
            found.extend(_parse_call_body(text[body_start:body_end], CALL_OPEN))
            spans.append((call_at, end))
        else:
            match = _FUNCTION.match(text, function_at)
            if match is None:  # "<function=" never closed by ">": prose, not a call
                end = function_at + len(FUNCTION_OPEN)
            else:
                found.extend(_parse_functions(match.group(0)))
                spans.append((function_at, match.end()))
                end = match.end()
        pos = end


def _parse_call_body(body: str, where: str) -> list[_Found]:
    body = _strip_partial_close(body.strip()).strip()
    if body.startswith("```"):  # some models fence the JSON inside the tags too
        body = re.sub(r"^```[A-Za-z_]*\s*|\s*```$", "", body)
    if not body:
        return [f'the {where} is empty: put {{"name": ..., "arguments": {{...}}}} inside it']
    if body.startswith(FUNCTION_OPEN):
        return _parse_functions(body)
    values, error = load_json(body)
    if error is not None:
        return [f"the JSON inside {where} is invalid: {error}"]
    return [_call_from_json(value, where) for value in flatten(values)]


def _strip_partial_close(body: str) -> str:
    """Drop a closing tag cut short by a stop sequence or the token limit, e.g. a final `</tool_`."""
    for size in range(len(CALL_CLOSE) - 1, 0, -1):
        if body.endswith(CALL_CLOSE[:size]):
            return body[:-size]
    return body


def _parse_functions(body: str) -> list[_Found]:
    """Qwen3-Coder's XML form: `<function=NAME><parameter=KEY>VALUE</parameter>...</function>`."""
    found: list[_Found] = []
    for match in _FUNCTION.finditer(body):
        name = match.group(1).strip().strip("\"'")
        if not name:
            found.append("the <function=...> tag has no tool name: write <function=TOOL_NAME>")
            continue
        arguments: dict[str, Any] = {}
        problem = None
        for parameter in _PARAMETER.finditer(match.group(2)):
            key = parameter.group(1).strip().strip("\"'")
            if not key:
                problem = f"a <parameter=...> tag of '{name}' has no parameter name: write <parameter=NAME>"
                break
            arguments[key] = _xml_value(parameter.group(2))
        found.append(problem or (name, arguments))
    return found or ["the <function=...> tag is incomplete: write <function=TOOL_NAME> and close it with </function>"]


def _xml_value(raw: str) -> Any:
    value = raw[1:] if raw.startswith("\n") else raw
    value = value[:-1] if value.endswith("\n") else value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    if isinstance(parsed, (bool, dict, list)) or (isinstance(parsed, (int, float)) and math.isfinite(parsed)):
        return parsed
    return value  # strings and null stay exactly as written


# -- fenced and bare JSON ---------------------------------------------------------------------

def _fenced_calls(text: str, tool_names: set[str] | None) -> tuple[list[tuple[int, int]], list[_Found]]:
    """Calls written as JSON in a code block, or as the whole answer. A ```tool_call block is
    markup, so its problems are reported; other JSON counts only when it is clearly a call, or an
    attempt at one: the whole turn, or a call object naming a file."""
    spans: list[tuple[int, int]] = []
    found: list[_Found] = []
    fences = list(_FENCE.finditer(text))
    for match in fences:
        language, body = match.group(1).lower(), match.group(2).strip()
        if language not in _CALL_FENCES:
            continue
        if language == "tool_call":
            found.extend(_parse_call_body(body, "```tool_call block"))
            spans.append(match.span())
            continue
        values = _obvious_calls(body, tool_names)
        # with prose around it, a call to an unknown tool is more likely an example than an attempt
        alone = len(fences) == 1 and not _remove_spans(text, [match.span()])
        if not values and (alone or _names_a_file(body)):
            values = _attempted_calls(body)
        if values:
            found.extend(_call_from_json(value, "```json block") for value in values)
            spans.append(match.span())
    if not found:
        whole = text.strip()
        values = (_obvious_calls(whole, tool_names) or _attempted_calls(whole)) if whole[:1] in "{[" else []
        if values:
            start = text.find(whole)
            found.extend(_call_from_json(value, "JSON call") for value in values)
            spans.append((start, start + len(whole)))
    return spans, found


def _obvious_calls(body: str, tool_names: set[str] | None) -> list[Any]:
    """The JSON values in `body` when every one is a call object naming a known tool, else []."""
    values, error = load_json(body)
    if error is not None:
        return []
    values = flatten(values)
    if values and all(_looks_like_call(value, tool_names) for value in values):
        return values
    return []


def _attempted_calls(body: str) -> list[Any]:
    """The JSON values in `body` when one of them tries to call a tool (whatever its name), else []."""
    values, error = load_json(body)
    values = [] if error is not None else flatten(values)
    return values if any(_is_call_shaped(value) or _is_tool_schema(value) for value in values) else []


def _looks_like_call(value: Any, tool_names: set[str] | None) -> bool:
    if not isinstance(value, dict) or _is_tool_schema(value):
        return False
    value = _unwrap(value)
    name = value.get("name")
    return (isinstance(name, str) and ("arguments" in value or "parameters" in value)
            and (tool_names is None or name.strip() in tool_names))


def _is_call_shaped(value: Any) -> bool:
    """A "name" with "arguments" (or "parameters" that are not a schema): call vocabulary, any name."""
    if not isinstance(value, dict) or _is_tool_schema(value):
        return False
    value = _unwrap(value)
    return isinstance(value.get("name"), str) and ("arguments" in value or isinstance(value.get("parameters"), dict))


def _is_tool_schema(value: Any) -> bool:
    """A tool definition copied from a tool list: `{"type": "function", "function": {...}}` or a
    name with a JSON-schema "parameters", and no "arguments"."""
    if not isinstance(value, dict):
        return False
    inner = _unwrap(value)
    if not isinstance(inner.get("name"), str) or "arguments" in inner:
        return False
    parameters = inner.get("parameters")
    if isinstance(parameters, dict) and (isinstance(parameters.get("properties"), dict) or parameters.get("type") == "object"):
        return True
    return value.get("type") == "function" and isinstance(value.get("function"), dict) and "parameters" not in inner \
        and "description" in inner


def _names_a_file(body: str) -> bool:
    """Whether a call object in `body` names a file or path as its tool (shape 1 of the failures doc)."""
    values, error = load_json(body)
    names = [_unwrap(value).get("name") for value in flatten(values) if error is None and _is_call_shaped(value)]
    return any(isinstance(name, str) and _FILE_NAME.search(name.strip()) for name in names)


# -- JSON in prose ----------------------------------------------------------------------------

def _bare_calls(text: str) -> tuple[list[tuple[int, int]], list[_Found]]:
    """Call objects written in the prose itself, outside code blocks and `inline code` (which quote
    rather than act). A call to an offered tool runs, as in a ```json block; anything else that
    tries to call a tool is reported, and calls in an invented envelope like `<tools>` run none."""
    masked = _mask(text, [m.span() for m in _FENCE.finditer(text)])
    masked = _mask(masked, [m.span() for m in _INLINE_CODE.finditer(masked)])
    decoder = json.JSONDecoder()
    spans: list[tuple[int, int]] = []
    found: list[_Found] = []
    envelopes: list[str] = []
    pos = masked.find("{")
    while pos != -1:
        try:
            value, end = decoder.raw_decode(masked, pos)
        except json.JSONDecodeError:
            cut = _CUT_CALL.match(masked, pos)
            if cut:  # a call that stops before its JSON closes (the turn ended or was cut in it)
                spans.append((pos, len(masked)))
                found.append(f"the call to '{cut.group(1)}' is cut off: its JSON never closes")
                break
            pos = masked.find("{", pos + 1)
            continue
        if _is_call_shaped(value) or _is_tool_schema(value):
            spans.append((pos, end))
            found.append(_call_from_json(value, "JSON call"))
            envelopes.extend(tag for tag in [_open_tag(masked, pos)] if tag and tag not in envelopes)
        pos = masked.find("{", end)
    if envelopes:
        tags = ", ".join(f"<{tag}>" for tag in envelopes)
        found = [f"the calls are wrapped in {tags}, which is not a call format: write one call at a time in the "
                 "form below, and wait for its result before the calls that depend on it"]
    return spans, found


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with the spans blanked out, positions unchanged."""
    pieces, pos = [], 0
    for start, end in spans:
        pieces.append(text[pos:start] + " " * (end - start))
        pos = end
    return "".join(pieces) + text[pos:]


def _open_tag(text: str, pos: int) -> str | None:
    """The name of an XML-like tag opened before `pos` and not closed before it, if any."""
    for match in reversed(list(_OPEN_TAG.finditer(text, 0, pos))):
        if f"</{match.group(1)}>" not in text[match.end():pos]:
            return match.group(1)
    return None


# -- JSON, tolerantly -------------------------------------------------------------------------

def _call_from_json(value: Any, where: str) -> _Found:
    if _is_tool_schema(value):
        name = _unwrap(value)["name"].strip()
        return (f"'{name}' is written as a tool definition (a \"parameters\" schema), which is neither a call nor an "
                "answer: to answer, write plain text; to call a tool, give its arguments as below")
    if not isinstance(value, dict):
        return f'the {where} must hold a JSON object like {{"name": ..., "arguments": {{...}}}}, not {json_kind(value)}'
    value = _unwrap(value)
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        return f'the {where} has no tool name: the object needs a "name" field with the tool to call'
    name = name.strip()
    arguments = value["arguments"] if "arguments" in value else value.get("parameters")
    if isinstance(arguments, str):  # some models JSON-encode the arguments a second time
        if not arguments.strip():
            arguments = None
        else:
            decoded, error = load_json(arguments)
            if error is not None or len(decoded) != 1:
                return f"the arguments of '{name}' are a string that is not one JSON object: {error or 'several values'}"
            arguments = decoded[0]
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return f"the arguments of '{name}' must be a JSON object with one field per parameter, not {json_kind(arguments)}"
    return name, arguments


def _unwrap(value: dict[str, Any]) -> dict[str, Any]:
    """`{"function": {"name", "arguments"}}` (OpenAI's shape) and `{"function": "name", ...}`."""
    inner = value.get("function")
    if isinstance(inner, dict):
        return {**{k: v for k, v in value.items() if k != "function"}, **inner}
    if isinstance(inner, str) and "name" not in value:
        return {**value, "name": inner}
    return value


def _unknown_tool(name: str, tool_names: set[str]) -> str:
    if not tool_names:
        return f"there is no tool named '{name}'; no tools are available, so answer without a tool call"
    return f"there is no tool named '{name}'; the available tools are: {', '.join(sorted(tool_names))}"


# -- prompts ----------------------------------------------------------------------------------

def _example_arguments(parameters: dict[str, Any]) -> dict[str, Any]:
    placeholders = {"string": "...", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
    properties = parameters.get("properties") or {}
    names = parameters.get("required") or list(properties)[:1]
    return {name: placeholders.get((properties.get(name) or {}).get("type"), "...") for name in names}
