"""Tool-call parsing on real-looking local-model output, and the protocol and correction prompts."""

from __future__ import annotations

import json

import pytest

from agent.core.toolcalls import format_error_message, format_tool_call, parse_tool_calls, tool_protocol_prompt

TOOLS = {"read_file", "write_file", "bash", "search"}


def calls_of(text: str, tool_names: set[str] | None = TOOLS) -> list[tuple[str, str, dict]]:
    parsed = parse_tool_calls(text, tool_names)
    assert parsed.error is None, parsed.error
    return [(call.id, call.name, call.arguments) for call in parsed.calls]


# -- Hermes / Qwen ---------------------------------------------------------------------------

def test_qwen3_answer_with_thinking_and_two_calls():
    text = (
        "<think>\nThe user wants the failing test fixed. I should look at the test and the module first.\n</think>\n\n"
        "I'll start by reading the test and the module.\n"
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "tests/test_parser.py"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "src/parser.py", "offset": 40}}\n</tool_call>'
    )
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.error is None
    assert parsed.text == "I'll start by reading the test and the module."
    assert parsed.reasoning == "The user wants the failing test fixed. I should look at the test and the module first."
    assert [(c.id, c.name, c.arguments) for c in parsed.calls] == [
        ("call_1", "read_file", {"path": "tests/test_parser.py"}),
        ("call_2", "read_file", {"path": "src/parser.py", "offset": 40}),
    ]


def test_text_after_the_call_is_kept_and_markup_removed():
    text = 'Checking.\n<tool_call>{"name": "bash", "arguments": {"command": "ls"}}</tool_call>\nThen I will decide.'
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.text == "Checking.\n\nThen I will decide."
    assert "<tool_call>" not in parsed.text and parsed.calls[0].arguments == {"command": "ls"}


def test_canonical_form_round_trips():
    arguments = {"path": "notes/ünïcode.md", "content": 'line 1\nline "2"\n'}
    text = format_tool_call("write_file", arguments)
    assert text == ('<tool_call>\n{"name": "write_file", "arguments": {"path": "notes/ünïcode.md", '
                    '"content": "line 1\\nline \\"2\\"\\n"}}\n</tool_call>')
    assert calls_of(text) == [("call_1", "write_file", arguments)]


# -- Qwen3-Coder XML ---------------------------------------------------------------------------

def test_qwen3_coder_xml_call_converts_json_values():
    text = (
        "Let me look at the top of the file.\n\n<tool_call>\n<function=read_file>\n"
        "<parameter=path>\nsrc/app.py\n</parameter>\n<parameter=offset>\n3\n</parameter>\n"
        "<parameter=options>\n{\"numbered\": true}\n</parameter>\n"
        "</function>\n</tool_call>"
    )
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.error is None and parsed.text == "Let me look at the top of the file."
    assert parsed.calls[0].name == "read_file"
    assert parsed.calls[0].arguments == {"path": "src/app.py", "offset": 3, "options": {"numbered": True}}


def test_qwen3_coder_multiline_value_keeps_inner_newlines():
    body = "def add(a, b):\n    return a + b\n\n"
    text = (f"<tool_call>\n<function=write_file>\n<parameter=path>\ncalc.py\n</parameter>\n"
            f"<parameter=content>\n{body}\n</parameter>\n</function>\n</tool_call>")
    assert calls_of(text) == [("call_1", "write_file", {"path": "calc.py", "content": body})]


@pytest.mark.parametrize("raw, value", [
    ("true", True), ("12", 12), ("2.5", 2.5), ("[1, 2]", [1, 2]),
    ("null", "null"), ('"quoted"', '"quoted"'), ("NaN", "NaN"), ("ls -la | head", "ls -la | head"),
])
def test_qwen3_coder_value_conversion(raw, value):
    text = f"<tool_call><function=bash><parameter=command>{raw}</parameter></function></tool_call>"
    assert calls_of(text)[0][2] == {"command": value}


def test_qwen3_coder_without_outer_tags_or_closing_function():
    text = "<function=bash>\n<parameter=command>\npytest -q\n</parameter>\n"
    assert calls_of(text) == [("call_1", "bash", {"command": "pytest -q"})]


def test_qwen3_coder_missing_function_name_is_an_error():
    parsed = parse_tool_calls("<tool_call><function=><parameter=path>a.py</parameter></function></tool_call>", TOOLS)
    assert parsed.calls == [] and "no tool name" in parsed.error


# -- fenced JSON -------------------------------------------------------------------------------

@pytest.mark.parametrize("fence", ["json", "tool_call", ""])
def test_qwen25_coder_fenced_json_call(fence):
    text = ("I'll search the code base for the handler.\n\n"
            f"```{fence}\n{{\"name\": \"search\", \"arguments\": {{\"pattern\": \"def handle_request\"}}}}\n```")
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.error is None and parsed.text == "I'll search the code base for the handler."
    assert [(c.name, c.arguments) for c in parsed.calls] == [("search", {"pattern": "def handle_request"})]


def test_fenced_json_on_one_line_with_parameters_key():
    text = '```json {"name": "bash", "parameters": {"command": "git status"}} ```'
    assert calls_of(text) == [("call_1", "bash", {"command": "git status"})]


def test_bare_json_answer_is_a_call():
    assert calls_of('{"name": "bash", "arguments": {"command": "make test"}}') == [("call_1", "bash", {"command": "make test"})]


@pytest.mark.parametrize("answer", [
    # a package.json in an answer: has a name, but no arguments
    'Here is the config:\n\n```json\n{\n  "name": "my-app",\n  "version": "1.0.0",\n  "scripts": {"test": "jest"}\n}\n```',
    # looks like a call, but names no tool this agent has
    'An OpenAI tool call looks like this:\n```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
    # Python that happens to build such a dict
    '```python\ncall = {"name": "read_file", "arguments": {"path": "a.py"}}\n```',
    # broken JSON in an ordinary block is just code, not a malformed call
    '```json\n{"name": "read_file", "arguments": \n```',
])
def test_ordinary_json_in_an_answer_is_not_a_call(answer):
    parsed = parse_tool_calls(answer, TOOLS)
    assert parsed.calls == [] and parsed.error is None
    assert parsed.text == answer.strip()


# -- tolerated failures ------------------------------------------------------------------------

@pytest.mark.parametrize("body, arguments", [
    ('{"name": "read_file", "arguments": {"path": "a.py", "offset": 3,},}', {"path": "a.py", "offset": 3}),
    ('{"name": "search", "arguments": {"pattern": "x", "paths": ["a", "b",]}}', {"pattern": "x", "paths": ["a", "b"]}),
    ('{"name": "read_file", "parameters": {"path": "a.py"}}', {"path": "a.py"}),
    ('{"name": "read_file", "arguments": "{\\"path\\": \\"a.py\\"}"}', {"path": "a.py"}),
    ('{"function": {"name": "read_file", "arguments": {"path": "a.py"}}}', {"path": "a.py"}),
    ('{"type": "function", "function": {"name": "read_file", "arguments": "{\\"path\\": \\"a.py\\"}"}}', {"path": "a.py"}),
    ('{"name": "search", "arguments": {"pattern": "x", "regex": True, "limit": None}}', {"pattern": "x", "regex": True, "limit": None}),
    ("{'name': 'read_file', 'arguments': {'path': \"it's.py\", 'follow': true}}", {"path": "it's.py", "follow": True}),
    ('{"name": "bash", "arguments": {"command": "echo \'True, None,}\'"}}', {"command": "echo 'True, None,}'"}),
    ('{"name": "read_file", "arguments": {"path": "a.py"}', {"path": "a.py"}),  # one closing brace short
    ('{"name": "bash"}', {}),
    ('```json\n{"name": "bash", "arguments": {"command": "ls"}}\n```', {"command": "ls"}),
])
def test_tolerated_json_mistakes(body, arguments):
    assert calls_of(f"<tool_call>\n{body}\n</tool_call>") == [("call_1", body_name(body), arguments)]


def body_name(body: str) -> str:
    return next(name for name in TOOLS if name in body)


@pytest.mark.parametrize("ending", ["", "\n", "\n</tool_", "</"])
def test_unclosed_tool_call_at_the_end(ending):
    text = 'Running the tests now.\n<tool_call>\n{"name": "bash", "arguments": {"command": "pytest -x"}}' + ending
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.error is None and parsed.text == "Running the tests now."
    assert [(c.name, c.arguments) for c in parsed.calls] == [("bash", {"command": "pytest -x"})]


def test_unclosed_call_followed_by_another_call():
    text = ('<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}}\n'
            '<tool_call>\n{"name": "read_file", "arguments": {"path": "b.py"}}\n</tool_call>')
    assert [c[2]["path"] for c in calls_of(text)] == ["a.py", "b.py"]


def test_two_objects_in_one_block():
    text = ('<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}}\n'
            '{"name": "read_file", "arguments": {"path": "b.py"}}\n</tool_call>')
    assert [(c[0], c[2]["path"]) for c in calls_of(text)] == [("call_1", "a.py"), ("call_2", "b.py")]


def test_call_inside_think_when_none_outside():
    text = ("<think>\nI need to see the directory first.\n"
            '<tool_call>\n{"name": "bash", "arguments": {"command": "ls src"}}\n</tool_call>\n</think>\n\n')
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.error is None and parsed.text == ""
    assert parsed.reasoning == "I need to see the directory first."
    assert [(c.id, c.name, c.arguments) for c in parsed.calls] == [("call_1", "bash", {"command": "ls src"})]


def test_call_outside_think_wins_over_one_inside():
    text = ('<think>maybe <tool_call>{"name": "bash", "arguments": {"command": "ls"}}</tool_call></think>'
            '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>')
    parsed = parse_tool_calls(text, TOOLS)
    assert [c.name for c in parsed.calls] == ["read_file"] and "<tool_call>" in parsed.reasoning


# -- reasoning ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, visible, reasoning", [
    ("<think>\nSimple question.\n</think>\n\nThe answer is 4.", "The answer is 4.", "Simple question."),
    # the chat template already wrote <think>, so the output starts inside the reasoning
    ("The user asks for the sum.\nIt is 4.\n</think>\n\nThe answer is 4.", "The answer is 4.", "The user asks for the sum.\nIt is 4."),
    # stopped (token limit) while still thinking
    ("<think>\nLet me consider the options: first", "", "Let me consider the options: first"),
    ("<think></think>\n\nDone.", "Done.", ""),
])
def test_reasoning_is_separated(text, visible, reasoning):
    parsed = parse_tool_calls(text, TOOLS)
    assert (parsed.text, parsed.reasoning, parsed.calls, parsed.error) == (visible, reasoning, [], None)


def test_plain_text_is_unchanged_apart_from_surrounding_whitespace():
    answer = "  \nThe bug is in `parse()`: it ignores the last line.\n\n```python\nfor line in lines:\n    pass\n```\n\n"
    parsed = parse_tool_calls(answer, TOOLS)
    assert (parsed.text, parsed.reasoning, parsed.calls, parsed.error) == (answer.strip(), "", [], None)


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, expected", [
    ('{"name": "read_file" "arguments": {"path": "a.py"}}',
     "the JSON inside <tool_call> is invalid: Expecting ',' delimiter at line 1 column 22"),
    ("read_file(path='a.py')", "the JSON inside <tool_call> is invalid: Expecting value at line 1 column 1"),
    ('{"arguments": {"path": "a.py"}}', 'the <tool_call> has no tool name: the object needs a "name" field'),
    ('{"name": "", "arguments": {}}', "has no tool name"),
    ('{"name": "read_file", "arguments": ["a.py"]}', "the arguments of 'read_file' must be a JSON object with one field per parameter, not a list"),
    ('{"name": "read_file", "arguments": "path=a.py"}', "the arguments of 'read_file' are a string that is not one JSON object"),
    ('"read_file"', "must hold a JSON object"),
    ("", "the <tool_call> is empty"),
    ("<function=bash", "the <function=...> tag is incomplete"),
])
def test_garbage_inside_tags_gives_a_specific_error(body, expected):
    parsed = parse_tool_calls(f"Reading it.\n<tool_call>\n{body}\n</tool_call>", TOOLS)
    assert parsed.calls == [] and parsed.text == "Reading it."
    assert parsed.error is not None and expected in parsed.error


def test_unknown_tool_names_the_tool_and_the_available_ones():
    parsed = parse_tool_calls('<tool_call>{"name": "run_shell", "arguments": {"cmd": "ls"}}</tool_call>', TOOLS)
    assert parsed.calls == []
    assert parsed.error == "there is no tool named 'run_shell'; the available tools are: bash, read_file, search, write_file"


def test_unknown_tool_is_accepted_when_no_tool_names_are_given():
    text = '<tool_call>{"name": "run_shell", "arguments": {"cmd": "ls"}}</tool_call>'
    assert calls_of(text, tool_names=None) == [("call_1", "run_shell", {"cmd": "ls"})]


def test_good_calls_are_kept_when_another_is_broken():
    text = ('<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>\n'
            '<tool_call>{"name": "bash", "arguments": {"command": "ls" "-la"}}</tool_call>\n'
            '<tool_call>{"name": "read_file", "arguments": {"path": "b.py"}}</tool_call>')
    parsed = parse_tool_calls(text, TOOLS)
    assert [(c.id, c.arguments["path"]) for c in parsed.calls] == [("call_1", "a.py"), ("call_2", "b.py")]
    assert parsed.error == "the JSON inside <tool_call> is invalid: Expecting ',' delimiter at line 1 column 48"


def test_broken_tool_call_fence_is_reported():
    parsed = parse_tool_calls('```tool_call\n{"name": "bash", "arguments": {"command": }}\n```', TOOLS)
    assert parsed.calls == [] and parsed.error.startswith("the JSON inside ```tool_call block is invalid: Expecting value")


# -- prompts -----------------------------------------------------------------------------------

SPECS = [
    {"type": "function", "function": {
        "name": "read_file", "description": "Read a text file, with line numbers.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "offset": {"type": "integer"}}, "required": ["path"]}}},
    {"type": "function", "function": {
        "name": "bash", "description": "Run a shell command in the workspace.",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}},
]


def test_tool_protocol_prompt_lists_tools_and_teaches_the_format():
    prompt = tool_protocol_prompt(SPECS)
    for spec in SPECS:
        function = spec["function"]
        assert function["name"] in prompt and function["description"] in prompt
        assert json.dumps(function["parameters"], separators=(",", ":")) in prompt  # compact schema
    example = format_tool_call("read_file", {"path": "..."})
    assert example in prompt
    assert calls_of(example) == [("call_1", "read_file", {"path": "..."})]  # the example itself parses
    assert "{%" not in prompt and "{{" not in prompt
    assert len(prompt) < 1500  # small models have small contexts


def test_tool_protocol_prompt_without_tools_is_empty():
    assert tool_protocol_prompt([]) == ""


def test_format_error_message_states_the_problem_and_the_format():
    error = "the JSON inside <tool_call> is invalid: Expecting ',' delimiter at line 1 column 40"
    message = format_error_message(error, ["read_file", "bash"])
    assert error in message
    assert format_tool_call("read_file", {"path": "src/app.py"}) in message  # a real call, not "argument_name"
    assert "argument_name" not in message
    assert "read_file, bash" in message and "only the corrected tool call" in message


def test_format_error_example_uses_the_tool_the_model_reached_for():
    message = format_error_message("the arguments of 'bash' must be a JSON object, not a list", ["read_file", "bash"])
    assert '{"name": "bash"' in message


# -- attempted calls that cannot run (docs: small-model-failures.md, shapes 1-4) ---------------

FILE_AS_TOOL = '{"name": "test_calc.py", "arguments": {"path": "test_calc.py"}}'


@pytest.mark.parametrize("text, expected", [
    # 1: a file as the tool name, as the whole turn, after prose, or alone in a ```json block
    (FILE_AS_TOOL, "there is no tool named 'test_calc.py'; the available tools are: bash, read_file"),
    ('I will fix the test.\n{"name": "test_x.py", "arguments": {"offset": 1000}}', "no tool named 'test_x.py'"),
    (f"```json\n{FILE_AS_TOOL}\n```", "no tool named 'test_calc.py'"),
    (f"Reading the test.\n```json\n{FILE_AS_TOOL}\n```", "no tool named 'test_calc.py'"),
    ('```json\n{"name": "fix_test", "parameters": {"path": "a.py"}}\n```', "no tool named 'fix_test'"),
    # 2: right tools in an invented envelope, several at once
    ('<tools>\n{"name": "read_file", "arguments": {"path": "a.py"}}\n'
     '{"name": "write_file", "arguments": {"path": "a.py", "content": "x"}}\n</tools>',
     "the calls are wrapped in <tools>, which is not a call format"),
    # 4: an answer inside a regurgitated tool definition
    ('{"type": "function", "function": {"name": "parse_args", "description": "Read a text file.", '
     '"parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}',
     "'parse_args' is written as a tool definition"),
    ('The function is:\n{"name": "parse_args", "description": "Read a text file.", '
     '"parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}',
     "'parse_args' is written as a tool definition"),
    ('```json\n{"name": "read_file", "description": "Read a text file.", "parameters": {"type": "object", '
     '"properties": {"path": {"type": "string"}}}}\n```', "'read_file' is written as a tool definition"),
])
def test_attempted_call_that_cannot_run_is_an_error(text, expected):
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.calls == [] and parsed.error is not None and expected in parsed.error


@pytest.mark.parametrize("text, visible", [
    ('Let me read it. {"name": "read_file", "arguments": {"path": "a.py"}}', "Let me read it."),
    ('I will read the file.\n\n{"name": "read_file", "parameters": {"path": "a.py"}}\nThen fix it.',
     "I will read the file.\n\nThen fix it."),
])
def test_call_to_an_offered_tool_in_prose_runs(text, visible):
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.error is None and parsed.text == visible
    assert [(c.name, c.arguments) for c in parsed.calls] == [("read_file", {"path": "a.py"})]


@pytest.mark.parametrize("answer", [
    'The settings file is JSON: {"name": "app", "version": 2, "debug": false}. Set "debug" to true.',
    'The parser reads the "name" and "arguments" fields of each call; `parse_args` does it.',
    'A call is written as `{"name": "read_file", "arguments": {"path": "a.py"}}` inside the tags.',
    'Use this config:\n```json\n{"name": "svc", "parameters": {"retries": 3}}\n```\nand restart.',
    'A tool definition looks like:\n```json\n{"name": "get_weather", "parameters": {"type": "object", "properties": {}}}\n```',
    '```js\nconst call = {"name": "x.py", "arguments": {}};\n```',
    "The loop is `{i: i * 2 for i in range(3)}`, and {braces} in prose are fine.",
])
def test_answers_that_mention_json_are_still_answers(answer):
    parsed = parse_tool_calls(answer, TOOLS)
    assert (parsed.text, parsed.calls, parsed.error) == (answer.strip(), [], None)


def test_every_tool_has_a_realistic_example_its_schema_accepts():
    from agent.core.toolcalls import EXAMPLE_ARGUMENTS
    from agent.tools import TOOLS

    assert set(EXAMPLE_ARGUMENTS) == set(TOOLS)
    for name, arguments in EXAMPLE_ARGUMENTS.items():
        properties, required = TOOLS[name].parameters["properties"], TOOLS[name].parameters.get("required", [])
        assert set(required) <= set(arguments) <= set(properties), name
