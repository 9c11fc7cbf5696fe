"""The question asked before a folder's own settings may widen what runs (issue 21): a cloned
repository's .mtp-agent/config.toml can say `mode = "yolo"` or send prompts to another server."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from agent.core.config import PROJECT_CONFIG, untrusted_settings


def ask_trust(root: Path, read: Callable[[str], str | None], write: Callable[[str], None]) -> bool:
    """Show what the folder's config would widen and ask once; True when the user trusts it (the
    run then remembers it for this content of the file). Nothing to ask: False."""
    settings = untrusted_settings(root)
    if not settings:
        return False
    write(f"{root / PROJECT_CONFIG} (from the repository, not from you) sets:")
    for setting in settings:
        write(f"  {setting}")
    write("These decide what runs without asking and where your code and prompts are sent. Trust them only "
          "if you trust this repository; otherwise they are ignored (deny rules still apply).")
    answer = read("Trust this folder's settings? [y/N] ")
    return (answer or "").strip().lower() in ("y", "yes")
