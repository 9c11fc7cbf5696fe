"""Every prompt the agent uses, as a text file in this folder (installed as `agent.prompts`)."""

from __future__ import annotations

from importlib import resources


def load_prompt(name: str) -> str:
    """The text of prompts/<name>, e.g. load_prompt("bench/code_python.txt")."""
    return resources.files(__name__).joinpath(*name.split("/")).read_text(encoding="utf-8")


def render_prompt(name: str, **values: object) -> str:
    """prompts/<name> rendered as a jinja template (our own files, so no sandbox)."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(load_prompt(name)).render(**values).strip()
