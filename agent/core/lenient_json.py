"""JSON as local models write it: strict first, then repaired (trailing commas, Python literals,
missing closing brackets), several values in a row, or a single-quoted Python-style dict."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

_JSON_STRING = re.compile(r'("(?:[^"\\]|\\.)*")', re.DOTALL)
_ANY_STRING = re.compile(r'("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')', re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_PYTHON_LITERALS = {"True": "true", "False": "false", "None": "null"}
_JSON_LITERALS = {v: k for k, v in _PYTHON_LITERALS.items()}


def flatten(values: list[Any]) -> list[Any]:
    return [item for value in values for item in (value if isinstance(value, list) else [value])]


def load_json(text: str) -> tuple[list[Any], str | None]:
    """The JSON values in `text`, repairing what local models commonly get wrong, or the error
    of the strict parse (the most useful one to show the model)."""
    try:
        return _load_json(text)
    except (RecursionError, MemoryError):  # a model (or a server) nesting brackets thousands deep
        return [], "the JSON is nested too deep to read; write flat arguments"


def _load_json(text: str) -> tuple[list[Any], str | None]:
    try:
        return [json.loads(text)], None
    except json.JSONDecodeError as e:
        error = f"{e.msg} at line {e.lineno} column {e.colno}"
    repaired = repair_json(text)
    try:
        return [json.loads(repaired)], None
    except json.JSONDecodeError:
        pass
    values = json_sequence(repaired)
    if values:
        return values, None
    value = python_literal(text)
    if value is not None:
        return [value], None
    return [], error


def repair_json(text: str) -> str:
    """Trailing commas and Python's True/False/None fixed, and missing closing brackets added
    when the text stops outside a string."""
    pieces = _JSON_STRING.split(text)
    stack: list[str] = []
    for i in range(0, len(pieces), 2):  # even pieces are outside strings
        piece = _TRAILING_COMMA.sub(r"\1", pieces[i])
        piece = re.sub(r"\b(True|False|None)\b", lambda m: _PYTHON_LITERALS[m.group(1)], piece)
        pieces[i] = piece
        for char in piece:
            if char in "{[":
                stack.append("}" if char == "{" else "]")
            elif char in "}]" and stack and stack[-1] == char:
                stack.pop()
    repaired = "".join(pieces)
    if '"' not in pieces[-1]:  # a quote here opens a string that never closes: nothing to balance
        repaired = repaired.rstrip().rstrip(",") + "".join(reversed(stack))
    return repaired


def json_sequence(text: str) -> list[Any]:
    """Several JSON values one after another (some models put two calls in one block)."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos == len(text):
            return values if len(values) > 1 else []
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return []
        values.append(value)


def python_literal(text: str) -> Any:
    """Last resort for single-quoted, Python-style dicts. literal_eval evaluates no code."""
    if not any("'" in piece for piece in _JSON_STRING.split(text)[::2]):
        return None  # nothing single-quoted; Python would only add surprises like "a" "b" == "ab"
    pieces = _ANY_STRING.split(text)
    for i in range(0, len(pieces), 2):
        pieces[i] = re.sub(r"\b(true|false|null)\b", lambda m: _JSON_LITERALS[m.group(1)], pieces[i])
    try:
        value = ast.literal_eval("".join(pieces))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) and is_json_like(value) else None


def is_json_like(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_json_like(v) for k, v in value.items())
    if isinstance(value, list):
        return all(is_json_like(item) for item in value)
    return value is None or isinstance(value, (str, bool, int, float))


def json_kind(value: Any) -> str:
    kinds = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)
