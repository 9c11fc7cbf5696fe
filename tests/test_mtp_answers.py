"""The base model's own answers as grafting data: requests made from source files, answers kept
and reused, and their share of the training chunks."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from agent.engine_tools.mtp_answers import (AnswerStore, answer_chunks, c_snippets, collect_answers, mixed, python_snippets,
                               requests)
from inference.code_corpus import find_sources, split

PROJECT = Path(__file__).resolve().parents[1]

PYTHON = '''
import os


def tiny():
    return 1


class Reader:
    def read_all(self, path: str, limit: int = 10) -> list[str]:
        """Read the lines of a file. More words here."""
        with open(path) as f:
            lines = f.readlines()
        return lines[:limit]
'''

C = '''#include <stdio.h>

/* Sum of the first n squares. */
static long sum_squares(int n)
{
    long total = 0;
    for (int i = 1; i <= n; i++)
        total += (long)i * i;
    return total;
}

int main(void) {
    printf("%ld\\n", sum_squares(10));
    return 0;
}
'''


def test_functions_are_found_with_their_signature_and_summary():
    (found,) = python_snippets(PYTHON)  # `tiny` is too short to ask about
    assert found.signature == "read_all(self, path: str, limit: int=10)"
    assert found.summary == "read the lines of a file" and found.code.startswith("def read_all(")
    assert python_snippets("def broken(:\n") == []
    squares, main = c_snippets(C, "C")
    assert squares.signature == "static long sum_squares(int n)" and squares.summary == "sum of the first n squares"
    assert squares.code.endswith("return total;\n}") and main.signature == "int main(void)" and main.summary == ""


def test_requests_are_made_from_the_files_in_a_fixed_order():
    train, _ = split(find_sources([PROJECT / "inference"]))
    first = list(itertools.islice(requests(train, seed=0), 12))
    assert first == list(itertools.islice(requests(train, seed=0), 12))
    assert first != list(itertools.islice(requests(train, seed=1), 12))
    assert all("\n```python\n" in r or "\n```c\n" in r or r.startswith(("Write a Python function `", "Write a C function `"))
               for r in first)


def test_answers_are_kept_and_not_generated_twice(tmp_path):
    store = AnswerStore(tmp_path / "answers.jsonl")
    asked = []

    def generate(request: str) -> list[int]:
        asked.append(request)
        return [len(request), 1, 2]

    some = iter(["a", "bb", "a", "ccc", "dddd"])
    assert collect_answers(generate, some, store, 3) == [[1, 1, 2], [2, 1, 2], [3, 1, 2]]
    assert asked == ["a", "bb", "ccc"]  # a repeated request is asked once
    with store.path.open("a") as f:
        f.write('{"request": "torn')  # a crash in the middle of a line
    assert collect_answers(generate, iter(["a", "eeeee"]), store, 4)[-1] == [5, 1, 2]
    assert asked == ["a", "bb", "ccc", "eeeee"] and len(store.load()) == 3  # the torn line is dropped


def test_answer_chunks_mix_in_at_their_share():
    answers = [[1] * 50, [2] * 70]
    chunks = list(itertools.islice(answer_chunks(answers, 32, seed=0), 20))  # round after round
    assert all(len(c) == 32 for c in chunks) and sum(int((c == 1).sum()) for c in chunks[:3]) >= 32
    code = (np.full(4, i) for i in itertools.count(100))
    taken = list(itertools.islice(mixed(code, (np.zeros(4) for _ in itertools.count()), 0.25), 40))
    from_answers = [i for i, c in enumerate(taken) if c[0] == 0]
    assert len(from_answers) == 10 and from_answers[:3] == [0, 4, 8]
