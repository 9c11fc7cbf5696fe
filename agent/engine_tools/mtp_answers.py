"""The base model's own answers to coding requests made from the training files, for grafting.

A head serves chat: answers with prose, markdown and code in fences, not raw source files. So
part of its training text is what the base model itself answers (greedily) when asked to write,
explain, review or test code taken from the training files. Answers are kept in a JSON-lines file
next to the checkpoint, one line per answer, so an interrupted run does not generate them again.
"""

from __future__ import annotations

import ast
import itertools
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from agent.prompts import render_prompt

MAX_SNIPPET_LINES = 40
MIN_SNIPPET_LINES = 4
C_FUNCTION = re.compile(r"^[A-Za-z_][\w \t\*&:<>,]*?\b(\w+)\s*\(([^;{}]*)\)\s*(const\s*)?\{?\s*$")


@dataclass(frozen=True)
class Snippet:
    language: str  # "Python", "C" or "C++"
    code: str
    signature: str
    summary: str  # what it does, from its docstring or comment; "" when unknown

    @property
    def fence(self) -> str:
        return {"Python": "python", "C": "c", "C++": "cpp"}[self.language]


def _first_sentence(text: str) -> str:
    line = text.strip().split("\n")[0].split(". ")[0].strip().rstrip(".")
    return line[:1].lower() + line[1:] if len(line) > 8 else ""


def python_snippets(text: str) -> list[Snippet]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.splitlines()
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.end_lineno is None:
            continue
        n_lines = node.end_lineno - node.lineno + 1
        if MIN_SNIPPET_LINES <= n_lines <= MAX_SNIPPET_LINES:
            code = "\n".join(lines[node.lineno - 1 : node.end_lineno])
            indent = len(code) - len(code.lstrip())
            code = "\n".join(line[indent:] for line in code.splitlines())
            found.append(Snippet("Python", code, f"{node.name}({ast.unparse(node.args)})",
                                 _first_sentence(ast.get_docstring(node) or "")))
    return found


def c_snippets(text: str, language: str) -> list[Snippet]:
    """Function definitions that start at column 0 and end at the next `}` there."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        match = C_FUNCTION.match(line)
        if not match or match.group(1) in {"if", "for", "while", "switch", "return", "sizeof"}:
            continue
        end = next((j for j in range(i + 1, min(i + MAX_SNIPPET_LINES, len(lines))) if lines[j].startswith("}")), None)
        if end is None or end - i + 1 < MIN_SNIPPET_LINES:
            continue
        comment = lines[i - 1].strip() if i else ""
        summary = _first_sentence(comment.strip("/*! ")) if comment.startswith(("//", "/*", "*")) else ""
        found.append(Snippet(language, "\n".join(lines[i : end + 1]), line.strip().rstrip("{").strip(), summary))
    return found


def snippets(path: Path) -> list[Snippet]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    if path.suffix == ".py":
        return python_snippets(text)
    return c_snippets(text, "C" if path.suffix in (".c", ".h") else "C++")


TASKS = ("write_function", "explain", "improve", "test", "trace")


def requests(files: Iterable, seed: int) -> Iterator[str]:
    """Coding requests, one per file that has a function to ask about, in a seeded random order."""
    rng = random.Random(seed)
    order = list(files)
    rng.shuffle(order)
    for f in order:
        found = snippets(f.path)
        if not found:
            continue
        snippet = rng.choice(found)
        tasks = [t for t in TASKS if t != "write_function" or snippet.summary]
        task = rng.choice(tasks)
        yield render_prompt(f"graft/{task}.md", language=snippet.language, fence=snippet.fence, code=snippet.code,
                            signature=snippet.signature, summary=snippet.summary)


@dataclass
class AnswerStore:
    """Answers as JSON lines {"request": ..., "tokens": [prompt + answer token ids]}; a torn last
    line (a crash mid-write) is dropped when read."""

    path: Path

    def load(self) -> list[dict]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return rows

    def add(self, row: dict) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def collect_answers(generate: Callable[[str], list[int]], requests: Iterator[str], store: AnswerStore, count: int,
                    on_progress: Callable[[int, int, int], None] = lambda done, total, tokens: None) -> list[list[int]]:
    """`count` answers: those in the store, then new ones from generate(request) -> token ids
    (the chat prompt followed by the answer), stored as they come."""
    rows = store.load()[:count]
    asked = {row["request"] for row in rows}
    tokens = sum(len(row["tokens"]) for row in rows)
    for request in requests:
        if len(rows) >= count:
            break
        if request in asked:
            continue
        row = {"request": request, "tokens": generate(request)}
        store.add(row)
        rows.append(row)
        asked.add(request)
        tokens += len(row["tokens"])
        on_progress(len(rows), count, tokens)
    return [row["tokens"] for row in rows]


def answer_chunks(answers: list[list[int]], seq_len: int, seed: int) -> Iterator[np.ndarray]:
    """The answers in a seeded order, packed into chunks of seq_len tokens, round after round."""
    rng = random.Random(seed)
    pending: list[int] = []
    while answers:
        order = list(answers)
        rng.shuffle(order)
        for tokens in order:
            pending += tokens
            while len(pending) >= seq_len:
                yield np.asarray(pending[:seq_len], dtype=np.int64)
                pending = pending[seq_len:]


def mixed(code: Iterator[np.ndarray], answers: Iterator[np.ndarray], answer_share: float) -> Iterator[np.ndarray]:
    """Code chunks with answer chunks among them, answer_share of the whole, evenly spread."""
    taken = 0.0
    for step in itertools.count():
        if answer_share > 0 and taken < answer_share * (step + 1):
            taken += 1
            chunk = next(answers, None)
        else:
            chunk = next(code, None)
        if chunk is None:
            return
        yield chunk
