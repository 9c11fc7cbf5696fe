"""Chat templates from GGUF files, rendered in jinja2's immutable sandbox.

A template comes from whoever published the model file, so it is untrusted code: the sandbox
refuses attribute access to Python internals and mutation of the inputs, and every jinja error
becomes a ChatTemplateError that names the model file.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import ChatTemplateError

MAX_RENDERED_CHARS = 16 * 1024 * 1024


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(f"the chat template refused the conversation: {message}")


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class ChatTemplate:
    def __init__(self, source: str, bos_token: str = "", eos_token: str = "", origin: str = "chat template"):
        self.source = source
        self.origin = origin
        self.bos_token, self.eos_token = bos_token, eos_token
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = _strftime_now
        try:
            self._template = env.from_string(source)
        except jinja2.TemplateError as e:
            raise ChatTemplateError(f"the {origin} does not parse: {e}") from e

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
               add_generation_prompt: bool = True, **extra: Any) -> str:
        try:
            text = self._template.render(
                messages=messages, tools=tools, add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token, eos_token=self.eos_token, **extra,
            )
        except jinja2.exceptions.SecurityError as e:
            raise ChatTemplateError(
                f"the {self.origin} tried something the sandbox forbids ({e}); the model file may be malicious, "
                "so it was not run. Pass a trusted template with --chat-template FILE"
            ) from e
        except jinja2.TemplateError as e:
            raise ChatTemplateError(f"the {self.origin} failed to render: {e}") from e
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as e:
            raise ChatTemplateError(f"the {self.origin} failed to render: {type(e).__name__}: {e}") from e
        if len(text) > MAX_RENDERED_CHARS:
            raise ChatTemplateError(f"the {self.origin} produced {len(text):,} characters; refusing such a prompt")
        return text
