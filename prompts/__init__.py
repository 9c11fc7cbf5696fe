"""Every prompt the agent uses, as a text file in this folder (installed as `agent.prompts`)."""

from __future__ import annotations

from importlib import resources


def load_prompt(name: str) -> str:
    """The text of prompts/<name>, e.g. load_prompt("bench/code_python.txt")."""
    return resources.files(__name__).joinpath(*name.split("/")).read_text(encoding="utf-8")
