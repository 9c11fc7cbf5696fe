"""The TUI's screens in fixed states, for the snapshot tests and the screenshots in docs/.

    python -m tests.support.tui_screens docs/screenshots    # writes main.svg, approval.svg, help.svg
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from agent.frontends.tui.screens import ApprovalScreen, HelpScreen
from tests.support.tui_support import call, idle, make_app, make_repo, play, type_and_send, wait_for

SIZE = (110, 36)
FIXED_ROOT = Path("/tmp/mtp-agent-screens/project")  # shown on screen, so it must not vary

ANSWER = """The bug is in `add`: it subtracts.

```python
def add(a, b):
    return a + b
```

I'll fix it and run the tests."""


def fresh_repo() -> Path:
    shutil.rmtree(FIXED_ROOT.parent, ignore_errors=True)
    return make_repo(FIXED_ROOT)


def main_app():
    repo = fresh_repo()
    turns = [{"raw": "<think>The test says add(2, 3) should be 5.</think>" + ANSWER +
              "\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"calc.py\"}}\n</tool_call>"},
             {"text": "", "tool_calls": [call("shell", command="echo 'collected 1 item'; echo 'test_calc.py .  [100%]'")]},
             {"text": "Fixed: `add` now returns **a + b** and the test passes."}]
    app = make_app(repo, turns, "demo.jsonl", permission_mode="yolo")

    async def run_before(pilot) -> None:
        await type_and_send(pilot, "Why does test_calc fail? Fix it.")
        await idle(pilot)
        app.query_one("#prompt").text = "next: add @src/"

    return app, run_before


def approval_app():
    repo = fresh_repo()
    app = make_app(repo, script_name="demo.jsonl", turns=[{"text": "I'll fix the sign.", "tool_calls": [
        call("edit_file", path="calc.py", old_string="    return a - b", new_string="    return a + b")]}])

    async def run_before(pilot) -> None:
        await type_and_send(pilot, "fix add")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), what="the approval prompt")
        await pilot.pause(0.3)  # the transcript behind it finishes rendering the streamed Markdown

    return app, run_before


def help_app():
    repo = fresh_repo()
    app = make_app(repo, [], "demo.jsonl")

    async def run_before(pilot) -> None:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help screen")

    return app, run_before


def _save(factory, path: Path) -> None:
    app, run_before = factory()

    async def steps(pilot) -> None:
        await run_before(pilot)
        await pilot.pause(0.2)
        app.save_screenshot(str(path))

    play(app, steps, SIZE)


def main(out: Path) -> None:
    os.environ.setdefault("MTP_AGENT_SESSIONS", tempfile.mkdtemp(prefix="mtp-agent-screens-"))
    out.mkdir(parents=True, exist_ok=True)
    for name, factory in (("main", main_app), ("approval", approval_app), ("help", help_app)):
        _save(factory, out / f"{name}.svg")
        print(out / f"{name}.svg")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
