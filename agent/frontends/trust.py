"""The question asked before a folder's own settings may widen what runs (issue 21): a cloned
repository's .mtp-agent/config.toml can say `mode = "yolo"` or send prompts to another server."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from agent.core.config import PROJECT_CONFIG, trust_folder, untrusted_settings
from agent.core.setup import find_root


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


def cmd_trust(args: argparse.Namespace) -> int:
    """`agent trust`: show what this folder's config would widen and trust it (for the git hooks
    and headless runs, which never ask)."""
    root = find_root(Path.cwd())
    if not (root / PROJECT_CONFIG).is_file():
        print(f"{root} has no {PROJECT_CONFIG}: nothing to trust")
        return 0
    if not untrusted_settings(root):
        print(f"{root / PROJECT_CONFIG} widens nothing, or is trusted already as it is")
        return 0
    if args.yes or ask_trust(root, input, print):
        trust_folder(root)
        print(f"trusted {root / PROJECT_CONFIG} as it is now (a change to it asks again)")
        return 0
    print("not trusted: its widening settings stay ignored")
    return 1
