"""Turns answered in a fixed shape (a workflow's questions): the grammars of a prose, code and JSON
reply, what the embedded backend does with them, and calls cut off before their JSON closes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.backends.base import Reply, TurnOptions
from agent.backends.embedded import STOP_STRINGS, EmbeddedBackend
from agent.backends.tool_grammar import reply_grammar
from agent.core.toolcalls import format_tool_call, parse_tool_calls
from agent.tools import TOOLS
from inference import SamplingParams
from inference.gguf_file import GGUFFile
from inference.grammar import GrammarConstraint
from inference.tokenizer import Tokenizer
from support.gguf_builder import TinyModel

FILES = {"type": "array", "items": {"enum": ["calc.py", "ops.py"]}, "minItems": 1, "maxItems": 2}


@pytest.fixture(scope="module")
def tokenizer(tiny_llama: Path) -> Tokenizer:
    return Tokenizer.from_gguf(GGUFFile(tiny_llama))


def admits(tokenizer: Tokenizer, grammar: str, text: str) -> bool:
    """Whether the grammar takes `text` token by token and then the end of the turn."""
    constraint = GrammarConstraint(tokenizer, grammar)
    for token in tokenizer.encode(text) + [tokenizer.special.eot]:
        if not constraint.allowed(token):
            return False
        constraint.advance(token)
    return True


@pytest.mark.parametrize("text, admitted", [
    ("```python\ndef add(a, b):\n    return a + b\n```", True),
    ("```python\n```", False),  # the block's text ends with a line break before the fence
    ("```python\nx = 1\n```\nThat is the fix.", False),  # nothing after the block
    ("Here it is:\n```python\nx = 1\n```", False),  # nothing before it
    ("```js\nx = 1\n```", False),  # the language asked for
])
def test_a_code_reply_is_one_block_in_the_language_asked(tokenizer, text, admitted):
    assert admits(tokenizer, reply_grammar("code", "python"), text) is admitted


@pytest.mark.parametrize("text, admitted", [
    ('["calc.py"]', True), ('["ops.py", "calc.py"]', True),
    ("[]", False), ('["test_calc.py"]', False), ('["calc.py", "ops.py", "calc.py"]', False), ("calc.py", False),
])
def test_a_json_reply_matches_its_schema(tokenizer, text, admitted):
    assert admits(tokenizer, reply_grammar("json", schema=FILES), text) is admitted


@pytest.mark.parametrize("text, admitted", [
    ("median() adds the wrong middle element: use middle - 1.", True),
    ("", False),
    (format_tool_call("read_file", {"path": "calc.py"}), False),
    ('{"name": "read_file", "arguments": {}}', False),
    ("Change it:\n```python\nx = 1\n```", False),  # prose means no code yet
])
def test_a_prose_reply_holds_no_calls_and_no_code(tokenizer, text, admitted):
    assert admits(tokenizer, reply_grammar("text"), text) is admitted


def test_replies_know_their_shapes():
    with pytest.raises(ValueError, match="'text', 'code' or 'json'"):
        Reply("yaml")
    with pytest.raises(ValueError, match="schema"):
        Reply("json")


@pytest.fixture(scope="module")
def backend(tmp_path_factory) -> EmbeddedBackend:
    from inference import Engine

    path = TinyModel(arch="llama", context=4096).write(tmp_path_factory.mktemp("tiny") / "tiny-4k.gguf")
    return EmbeddedBackend(Engine.load(path, device="cpu"), "tiny", SamplingParams(temperature=1.0, seed=3),
                           max_new_tokens=40)


MESSAGES = [{"role": "system", "content": "You fix code."}, {"role": "user", "content": "Write calc.py."}]


def test_a_random_model_asked_for_code_writes_one_block_or_runs_out_of_tokens(backend):
    for seed in range(3):
        backend.sampling = SamplingParams(temperature=1.0, seed=seed)
        turn = backend.complete(MESSAGES, [], options=TurnOptions(reply=Reply("code", language="python")))
        assert turn.raw.startswith("```python\n")
        assert turn.finish_reason == "length" or turn.raw.endswith("\n```")


def test_a_constrained_turn_is_not_cut_by_the_stop_strings(backend, monkeypatch):
    """A model copying a file into a call's string may write `<tool_response>` there: the grammar ends
    the turn, a stop string would cut the call in half."""
    seen = []
    original = backend.engine.stream

    def stream(*args, **kwargs):
        seen.append((kwargs["stop"], kwargs["grammar"] is not None))
        return original(*args, **kwargs)

    monkeypatch.setattr(backend.engine, "stream", stream)
    tools = [TOOLS["write_file"].spec()]
    backend.complete(MESSAGES, tools)
    backend.constrain = False
    try:
        backend.complete(MESSAGES, tools)
    finally:
        backend.constrain = True
    assert seen == [((), True), (STOP_STRINGS, False)]


def test_a_call_whose_json_never_closes_is_a_format_error_not_an_answer():
    cut = '{"name": "write_file", "arguments": {"path": "stats.py", "content": "'
    parsed = parse_tool_calls(cut, {"write_file"})
    assert parsed.calls == [] and "cut off" in parsed.error and "write_file" in parsed.error
    assert parse_tool_calls('The object {"a": 1} stays prose.', {"write_file"}).error is None
