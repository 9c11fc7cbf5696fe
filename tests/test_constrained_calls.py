"""Tool calls constrained by a grammar: what the grammar of a tool-offering turn admits and refuses
(token by token, as the decoder meets it), that the parser reads everything it admits, that
sampling under it always yields a usable turn, and that it is lossless under speculation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.backends.embedded import EmbeddedBackend
from agent.backends.tool_grammar import HERMES, QWEN_XML, call_format, tool_turn_grammar
from agent.core.toolcalls import format_tool_call, parse_tool_calls
from agent.tools import TOOLS
from inference import Engine, SamplingParams
from inference.gguf_file import GGUFFile
from inference.grammar import GrammarConstraint
from inference.tokenizer import Tokenizer
from support.gguf_builder import TinyModel
from support.qwen35_fixtures import FIXTURES

TOOL_SPECS = [tool.spec() for tool in TOOLS.values()]
TOOL_NAMES = set(TOOLS)
READ = format_tool_call("read_file", {"path": "calc.py"})
EDIT = format_tool_call("edit_file", {"path": "calc.py", "old_string": "a - b", "new_string": "a + b"})


@pytest.fixture(scope="module")
def tokenizer(tiny_llama: Path) -> Tokenizer:
    return Tokenizer.from_gguf(GGUFFile(tiny_llama))


def refused_at(tokenizer: Tokenizer, grammar: str, text: str, end_turn: bool = True) -> str | None:
    """None when the grammar admits `text` (and then the end of the turn) token by token; else the
    text up to the first refused token, and that token."""
    constraint = GrammarConstraint(tokenizer, grammar)
    tokens = tokenizer.encode(text) + ([tokenizer.special.eot] if end_turn else [])
    for i, token in enumerate(tokens):
        if not constraint.allowed(token):
            return f"{tokenizer.decode(tokens[:i])!r} then {tokenizer.decode([token])!r}"
        constraint.advance(token)
    return None


ADMITTED = {
    "a call": READ,
    "text, then a call": "Let me look at the file first.\n" + READ,
    "two calls": READ + "\n" + EDIT,
    "a call without arguments": format_tool_call("git_status", {}),
    "an answer": "The bug was in add(): it subtracted. Fixed, and the tests pass.",
    "an answer with inline code": "It returns `{'a': 1}` for one key.",
    "an answer opening with a code block": "```python\ndef add(a, b):\n    return a + b\n```\nThat is the fix.",
    "a bare JSON call": '{"name": "shell", "arguments": {"command": "pytest -q"}}',
    "a fenced JSON call": '```json\n{"name": "read_file", "arguments": {"path": "calc.py", "limit": 20}}\n```',
}

REFUSED = {
    "a file as the tool name": format_tool_call("calc.py", {"path": "calc.py"}),
    "an argument the tool does not have": format_tool_call("read_file", {"file": "calc.py"}),
    "a string where an integer goes": format_tool_call("read_file", {"path": "calc.py", "offset": "ten"}),
    "an integer below the minimum": format_tool_call("read_file", {"path": "calc.py", "offset": 0}),
    "a required argument missing": format_tool_call("edit_file", {"path": "calc.py", "old_string": "a"}),
    "a key beside name and arguments": '<tool_call>\n{"name": "git_status", "arguments": {}, "id": 1}\n</tool_call>',
    "an unclosed call": '<tool_call>\n{"name": "git_status", "arguments": {}}',
    "a call object in prose": 'I will call {"name": "read_file", "arguments": {"path": "calc.py"}} now.',
    "a fenced call to a tool that does not exist": '```json\n{"name": "pytest", "arguments": {}}\n```',
    "a copied tool definition": '{"name": "median", "description": "Read a file"}',
    "an invented envelope": '<tools>\n{"name": "read_file"}</tools>',
    "an invented tool response": "The tests pass.\n<tool_response>\nok\n</tool_response>",
    "an empty turn": "",
    "only whitespace": "\n\n",
}


@pytest.mark.parametrize("text", ADMITTED.values(), ids=ADMITTED.keys())
def test_the_grammar_admits_answers_and_valid_calls(tokenizer, text):
    assert refused_at(tokenizer, tool_turn_grammar(TOOL_SPECS), text) is None


@pytest.mark.parametrize("text", REFUSED.values(), ids=REFUSED.keys())
def test_the_grammar_refuses_unusable_calls(tokenizer, text):
    assert refused_at(tokenizer, tool_turn_grammar(TOOL_SPECS), text) is not None


@pytest.mark.parametrize("text", ADMITTED.values(), ids=ADMITTED.keys())
def test_whatever_the_grammar_admits_the_parser_reads_without_error(text):
    parsed = parse_tool_calls(text, TOOL_NAMES)
    assert parsed.error is None
    assert parsed.calls or parsed.text


def test_one_call_per_turn_when_parallel_calls_are_off(tokenizer):
    grammar = tool_turn_grammar(TOOL_SPECS, parallel_calls=False)
    assert refused_at(tokenizer, grammar, READ) is None
    assert refused_at(tokenizer, grammar, READ + "\n" + EDIT) is not None


def test_only_the_offered_tools_are_admitted(tokenizer):
    grammar = tool_turn_grammar([TOOLS["read_file"].spec()])
    assert refused_at(tokenizer, grammar, READ) is None
    assert refused_at(tokenizer, grammar, EDIT) is not None


XML_READ = "<tool_call>\n<function=read_file>\n<parameter=path>\ncalc.py\n</parameter>\n</function>\n</tool_call>"


@pytest.mark.parametrize("text, admitted", [
    (XML_READ, True),
    ("I'll read it.\n" + XML_READ, True),
    (XML_READ.replace("read_file", "cat"), False),
    (XML_READ.replace("=path>", "=file>"), False),
    ("<tool_call>\n<function=edit_file>\n<parameter=path>\ncalc.py\n</parameter>\n</function>\n</tool_call>", False),
    ("All done.", True),
], ids=["call", "text then call", "unknown function", "unknown parameter", "required parameters missing", "answer"])
def test_the_qwen_xml_call_format(tokenizer, text, admitted):
    grammar = tool_turn_grammar(TOOL_SPECS, QWEN_XML)
    assert (refused_at(tokenizer, grammar, text) is None) == admitted


def test_reasoning_comes_first_when_the_template_thinks(tokenizer):
    grammar = tool_turn_grammar(TOOL_SPECS, thinking=True)
    assert refused_at(tokenizer, grammar, "The test fails in add.\n</think>\n\n" + READ) is None
    assert refused_at(tokenizer, grammar, "Done.") is None
    assert refused_at(tokenizer, grammar, "Done.\n</think>\nMore.\n</think>") is not None


def test_the_call_format_follows_the_template():
    assert call_format(None) == HERMES
    assert call_format("{{ '<tool_call>\\n' }}{{ tool_call | tojson }}") == HERMES
    assert call_format("<tool_call>\n<function={{ name }}>\n<parameter={{ k }}>") == QWEN_XML
    templates = Path(__file__).parent / "fixtures" / "templates"  # the real ones: Qwen3 hermes, Qwen3.5 XML
    assert call_format((templates / "qwen3.jinja").read_text()) == HERMES
    assert call_format((templates / "qwen3.5-4b.jinja").read_text()) == QWEN_XML


def test_a_grammar_needs_tools_and_a_known_format():
    with pytest.raises(ValueError, match="at least one tool"):
        tool_turn_grammar([])
    with pytest.raises(ValueError, match="unknown tool-call format"):
        tool_turn_grammar(TOOL_SPECS, "yaml")


# -- decoding under the grammar -------------------------------------------------------------

FEW_TOOLS = [TOOLS[name].spec() for name in ("read_file", "edit_file", "git_status")]
MESSAGES = [{"role": "system", "content": "You are a coding agent."}, {"role": "user", "content": "Fix calc.py."}]


@pytest.fixture(scope="module")
def random_engine(tmp_path_factory) -> Engine:
    """A random model with room for the tool protocol prompt (its tiny vocabulary spells it long)."""
    path = TinyModel(arch="llama", context=4096).write(tmp_path_factory.mktemp("tiny") / "tiny-4k.gguf")
    return Engine.load(path, device="cpu")


SEEDS = range(6)


@pytest.fixture(scope="module")
def sampled_turns(random_engine) -> dict[int, object]:
    """One turn per seed, sampled (temperature 1) by the random model within the tool grammar."""
    backend = EmbeddedBackend(random_engine, "tiny")
    prompt, grammar = backend.prompt_ids(MESSAGES, FEW_TOOLS), backend.grammar(FEW_TOOLS)
    return {seed: random_engine.generate(prompt, max_new_tokens=300, grammar=grammar,
                                         sampling=SamplingParams(temperature=1.0, seed=seed)) for seed in SEEDS}


@pytest.mark.parametrize("seed", SEEDS)
def test_sampled_turns_of_a_random_model_are_always_usable(random_engine, sampled_turns, seed):
    """A random model writes noise; within the grammar every token it emits is admitted, and a turn
    it ends is an answer or valid calls."""
    completion = sampled_turns[seed]
    replay = GrammarConstraint(random_engine.tokenizer, EmbeddedBackend(random_engine, "tiny").grammar(FEW_TOOLS))
    for token in completion.token_ids:
        assert replay.allowed(token)
        replay.advance(token)
    if completion.finish_reason == "eos":
        parsed = parse_tool_calls(completion.text, {spec["function"]["name"] for spec in FEW_TOOLS})
        assert parsed.error is None, completion.text
        assert parsed.calls or parsed.text
        for call in parsed.calls:
            arguments = TOOLS[call.name].parameters
            assert set(call.arguments) <= set(arguments["properties"]), call
            assert set(arguments["required"]) <= set(call.arguments), call


def test_some_sampled_turns_end_within_the_token_bound(sampled_turns):
    """The test above checks ended turns; make sure it sees some."""
    ended = sum(completion.finish_reason == "eos" for completion in sampled_turns.values())
    assert ended >= 2


def test_without_constraints_the_same_model_writes_unusable_turns(random_engine):
    """The counterpart of the test above: the grammar is what makes the difference."""
    usable = 0
    for seed in range(6):
        backend = EmbeddedBackend(random_engine, "tiny", SamplingParams(temperature=1.0, seed=seed), max_new_tokens=60,
                                  constrain=False)
        turn = backend.complete(MESSAGES, FEW_TOOLS)
        usable += bool(turn.tool_calls)
    assert usable == 0


def test_the_backend_constrains_only_turns_that_offer_tools(tiny_engine):
    backend = EmbeddedBackend(tiny_engine, "tiny")
    assert backend.grammar([]) is None
    assert "read_file" in backend.grammar(TOOL_SPECS)
    assert backend.grammar(TOOL_SPECS) is backend.grammar(json.loads(json.dumps(TOOL_SPECS)))  # built once per tool set
    assert EmbeddedBackend(tiny_engine, "tiny", constrain=False).grammar(TOOL_SPECS) is None


@pytest.mark.parametrize("model, spec", [
    ("qwen35-dense-F32", "mtp"), ("qwen35-dense-F32", "ngram"), ("qwen35-dense-mtpfit-F32", "auto"),
    ("qwen35moe-F32", "mtp"),
])
def test_constrained_greedy_output_is_identical_with_and_without_speculation(model, spec):
    path = FIXTURES / f"{model}.gguf"
    grammar = tool_turn_grammar(TOOL_SPECS, parallel_calls=True)
    prompt = list(range(40, 90)) * 2
    plain = Engine.load(path, device="cpu", spec="off").generate(prompt, max_new_tokens=80, grammar=grammar)
    drafted = Engine.load(path, device="cpu", spec=spec).generate(prompt, max_new_tokens=80, grammar=grammar)
    assert drafted.token_ids == plain.token_ids
    assert drafted.stats.speculative["drafted"] > 0  # drafts were made, cut by the grammar and verified


def test_constrained_greedy_is_lossless_with_prompt_lookup_on_smollm2(smollm2_engine):
    """The agent re-emitting a file in an edit call: lookup drafts pass the grammar and are accepted."""
    source = (Path(__file__).parent.parent / "prompts" / "bench" / "code_python.txt").read_text()[:600]
    messages = [{"role": "user", "content": f"Here is calc.py:\n\n{source}\n\nWrite it back unchanged with write_file, "
                                            f"as <tool_call>{{\"name\": \"write_file\", ...}}</tool_call>."}]
    grammar = tool_turn_grammar([TOOLS["write_file"].spec()])
    engine = smollm2_engine
    try:
        runs = {}
        for spec in ("off", "ngram"):
            engine.spec = spec
            engine.reset()
            runs[spec] = engine.generate(messages=messages, max_new_tokens=100, grammar=grammar)
    finally:
        engine.spec = "auto"
    assert runs["ngram"].token_ids == runs["off"].token_ids
    assert runs["ngram"].stats.speculative["accepted"] > 0


def test_a_required_call_leaves_out_the_plain_answer(tokenizer):
    grammar = tool_turn_grammar(TOOL_SPECS, require_call=True)
    assert refused_at(tokenizer, grammar, "The port is 8080.") is not None
    assert refused_at(tokenizer, grammar, READ) is None
    assert refused_at(tokenizer, grammar, "1000, from fetch.py", end_turn=False) is not None  # no prose first
    assert refused_at(tokenizer, grammar, '{"name": "list_dir", "arguments": {}}') is None


def test_a_turn_can_offer_tools_it_does_not_let_the_model_call(random_engine):
    from agent.backends.base import TurnOptions

    backend = EmbeddedBackend(random_engine, "tiny")
    grammar = backend.grammar(FEW_TOOLS, TurnOptions(avoid_tools=frozenset({"read_file"})))
    assert '"read_file"' not in grammar and '"edit_file"' in grammar
    assert backend.grammar(FEW_TOOLS, TurnOptions(avoid_tools=frozenset(TOOLS))) is None  # nothing left to call
    assert backend.prompt_ids(MESSAGES, FEW_TOOLS)  # the prompt is built from every offered tool either way
