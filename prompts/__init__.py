"""Every prompt the agent uses, as a text file in this folder (installed as `agent.prompts`)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Sandboxed: the values rendered into prompts come from repositories and models.
_environment = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True,
                                             trim_blocks=True, lstrip_blocks=True)


def load_prompt(name: str) -> str:
    """The text of prompts/<name>, e.g. load_prompt("bench/code_python.txt")."""
    return resources.files(__name__).joinpath(*name.split("/")).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def _template(name: str):
    """Compiled once: the tool protocol is rendered every time a conversation's tokens are counted."""
    return _environment.from_string(load_prompt(name))


def render_prompt(name: str, **values: object) -> str:
    """prompts/<name> rendered as a jinja template, stripped of surrounding whitespace."""
    return _template(name).render(**values).strip()
