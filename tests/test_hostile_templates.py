"""Hostile chat templates (issue 19): each is refused with one line naming the template, within a
time bound, with the parent's memory untouched; real templates render well inside the budget."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from inference import chat_template
from inference.chat_template import ChatTemplate
from inference.errors import ChatTemplateError

TEMPLATES = Path(__file__).parent / "fixtures" / "templates"
BUDGET_S = 2.0  # the deadline in these tests (10 s by default)
MESSAGES = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Fix calc.py"},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
                "name": "read_file", "arguments": {"path": "calc.py"}}}]},
            {"role": "tool", "content": "def add(a, b):\n    return a - b\n"}]
TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "Read a file",
                                           "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                                                          "required": ["path"]}}}]

# (what it tries, the template): hangs, memory hogs and deep recursion found by trying, and variants
HOSTILE = [
    ("nested range loops", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
    ("loops over a list it built", "{% set l = range(3000)|list %}{% for a in l %}{% for b in l %}{% for c in l %}"
                                   "{% endfor %}{% endfor %}{% endfor %}"),
    ("pow on a huge number", "{{ 10 ** (10 ** 9) }}"),  # jinja's ** groups to the left
    ("a gigabyte string", "{{ 'x' * 10**10 }}"),
    ("nested string multiplication", "{{ ('x' * 10**5) * 10**6 }}"),
    ("a huge list", "{% set l = [0] * 10**10 %}{{ l|length }}"),
    ("doubling a string", "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                          "{% endfor %}{{ ns.s|length }}"),
    ("wordwrap on a huge string", "{{ ('word ' * 10**7)|wordwrap(3) }}"),
    ("recursive macro", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
    ("deep nesting", "{% if true %}" * 2000 + "x" + "{% endif %}" * 2000),
    ("a prompt past 16 MiB", "{{ 'x' * (17 * 1024 * 1024) }}"),
    ("centering to a huge width", "{{ 'x'|center(10**10) }}"),
]


@pytest.fixture(autouse=True)
def short_deadline(monkeypatch):
    monkeypatch.setattr(chat_template, "RENDER_SECONDS", BUDGET_S)


@pytest.mark.parametrize(("what", "source"), HOSTILE, ids=[what for what, _ in HOSTILE])
def test_a_hostile_template_is_refused_in_one_line_within_the_budget(what, source):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    with pytest.raises(ChatTemplateError) as refused:
        ChatTemplate(source, origin="chat template of hostile.gguf").render(MESSAGES, TOOLS)
    elapsed = time.monotonic() - start
    message = str(refused.value)
    assert "chat template of hostile.gguf" in message and "\n" not in message and "Traceback" not in message
    assert elapsed < BUDGET_S + 5
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100, f"the parent grew by {grown_mib:.0f} MiB"  # the work happened in the child


def test_the_renderer_recovers_after_a_template_it_had_to_stop():
    with pytest.raises(ChatTemplateError, match="ran past"):
        ChatTemplate(HOSTILE[0][1]).render(MESSAGES)
    assert ChatTemplate("{{ messages[1].content }}").render(MESSAGES) == "Fix calc.py"


@pytest.mark.parametrize("name", ["smollm2", "qwen2.5-coder", "qwen3", "qwen3.5-4b", "qwen3.5"])
def test_real_templates_render_with_tools_well_inside_the_budget(name):
    template = ChatTemplate((TEMPLATES / f"{name}.jinja").read_text(), "<s>", "</s>", origin=name)
    start = time.monotonic()
    text = template.render(MESSAGES, TOOLS)
    assert time.monotonic() - start < 0.5 and "Fix calc.py" in text
    if name in ("qwen2.5-coder", "qwen3"):  # hermes: the tools as JSON, the call as <tool_call> JSON
        assert '"name": "read_file"' in text and "<tool_call>" in text and "<tool_response>" in text
    if name == "qwen3.5-4b":  # Qwen3.5's XML calls
        assert "<function=read_file>" in text and "<parameter=path>" in text and "<tool_response>" in text


def test_invalid_unicode_in_a_message_reaches_the_template_intact():
    text = ChatTemplate("{{ messages[0].content }}").render([{"role": "user", "content": "bad \ud800 surrogate"}])
    assert text == "bad \ud800 surrogate"


@pytest.mark.parametrize(("what", "source"), [HOSTILE[0], HOSTILE[3], HOSTILE[8]], ids=["hang", "memory", "recursion"])
def test_the_cli_refuses_a_hostile_template_with_one_line_and_exit_2(what, source, tiny_llama, tmp_path, capsys):
    from agent.frontends.cli import main

    template = tmp_path / "hostile.jinja"
    template.write_text(source)
    assert main(["generate", "--chat", "hi", "-n", "2", "--model", str(tiny_llama), "--chat-template", str(template)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("agent: error: ") and "Traceback" not in err
