"""Chat templates: rendering with tools and generation prompts, and the sandbox holding."""

from __future__ import annotations

import pytest

from inference.chat_template import ChatTemplate
from inference.errors import ChatTemplateError

TOOLS_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\nTools:\n{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}<|im_end|>\n{% endif %}"
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MALICIOUS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('touch {marker}') }}",
    "{{ messages.__class__.__base__.__subclasses__() }}",
    "{% set x = messages.append({'role': 'system'}) %}{{ x }}",
    "{{ self._TemplateReference__context }}{{ lipsum.__globals__['os'].popen('touch {marker}').read() }}",
]


def test_smollm2_template_renders_conversations(smollm2_engine):
    template = smollm2_engine.chat_template
    messages = [{"role": "user", "content": "hi"}]
    text = template.render(messages, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert not template.render(messages, add_generation_prompt=False).endswith("assistant\n")


def test_tools_reach_the_template():
    tools = [{"type": "function", "function": {"name": "read_file", "description": "Read a file — with ünïcode",
                                               "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}]
    text = ChatTemplate(TOOLS_TEMPLATE).render([{"role": "user", "content": "go"}], tools=tools)
    assert '"name": "read_file"' in text and "ünïcode" in text  # tojson keeps non-ASCII, as transformers does


def test_chat_prompt_tokens_use_special_tokens(smollm2_engine):
    ids = smollm2_engine.chat_prompt([{"role": "user", "content": "hello"}])
    im_start = smollm2_engine.tokenizer.literal_ids["<|im_start|>"]
    assert ids[0] == im_start and ids.count(im_start) == 3


@pytest.mark.parametrize("source", MALICIOUS)
def test_sandbox_refuses_python_internals(source, tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(ChatTemplateError, match="sandbox forbids") as e:
        template = ChatTemplate(source.replace("{marker}", str(marker)), origin="chat template of evil.gguf")
        template.render([{"role": "user", "content": "x"}])
    assert "evil.gguf" in str(e.value)
    assert not marker.exists()


def test_template_can_raise_its_own_error():
    template = ChatTemplate("{{ raise_exception('System role not supported') }}")
    with pytest.raises(ChatTemplateError, match="System role not supported"):
        template.render([{"role": "system", "content": "x"}])


def test_syntax_error_is_reported():
    with pytest.raises(ChatTemplateError, match="does not parse"):
        ChatTemplate("{% for m in messages %}{{ m.content }")


def test_huge_output_is_refused():
    with pytest.raises(ChatTemplateError, match="refusing"):
        ChatTemplate("{% for i in range(99999) %}{{ 'x' * 1000 }}{% endfor %}").render([])
