"""The TUI driven with Pilot on the scripted backend: streaming, approvals, interrupts, every
slash command, resume, the ! escape and @path completion. Files are checked on disk."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from agent.core.session import Session, list_sessions
from agent.frontends.tui.screens import ApprovalScreen, HelpScreen, ResumeScreen
from agent.frontends.tui.widgets import AssistantBlock, Completions, PromptInput, ToolBlock
from tests.support.tui_support import (CALC, call, idle, key, make_app, make_repo, play, status_text, transcript_text,
                               type_and_send, wait_for)

FIX = call("edit_file", path="calc.py", old_string="a - b", new_string="a + b")
FIXED = "def add(a, b):\n    return a + b\n"


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MTP_AGENT_SESSIONS", str(tmp_path / "sessions"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return make_repo(tmp_path / "project")


def last_session(repo: Path) -> Session:
    return Session.load(repo, list_sessions(repo)[0].id)


def test_a_message_streams_text_and_renders_markdown(repo):
    app = make_app(repo, [{"text": "Here is **the plan**:\n\n```python\nx = 1\n```\n" + "word " * 40, "delay": 0.02}])

    async def scenario(pilot):
        await type_and_send(pilot, "What is this?")
        # part of the answer is on screen while the rest is still being generated
        await wait_for(pilot, lambda: "the plan" in transcript_text(app) and app.busy, what="streamed text")
        block = app.query_one(AssistantBlock)
        partial = block.answer_text
        assert partial and "word " * 40 not in partial
        await idle(pilot)
        assert block.answer_text.endswith("word")
        assert "```python" in block.answer.source, "the answer is Markdown with its code fence"
        assert "What is this?" in transcript_text(app)
        assert "ctx " in status_text(app) and "main" in status_text(app)

    play(app, scenario)


def test_reasoning_is_collapsed_and_tool_markup_hidden(repo):
    raw = "<think>Let me check the file.</think>I'll read it.\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"calc.py\"}}\n</tool_call>"
    app = make_app(repo, [{"raw": raw, "delay": 0.01}, {"text": "Done."}])

    async def scenario(pilot):
        await type_and_send(pilot, "look")
        await idle(pilot)
        first = app.query(AssistantBlock).first()
        assert first.thought == "Let me check the file." and first.reasoning.collapsed
        assert first.answer_text == "I'll read it." and "tool_call" not in first.answer.source
        tool = app.query_one(ToolBlock)
        assert tool.state == "ok" and "return a - b" in tool.output_text

    play(app, scenario)


def wait_for_approval(pilot):
    return wait_for(pilot, lambda: isinstance(pilot.app.screen, ApprovalScreen), what="the approval prompt")


def test_approve_once_applies_the_edit_after_showing_its_diff(repo):
    app = make_app(repo, [{"tool_calls": [FIX]}, {"text": "Fixed."}])

    async def scenario(pilot):
        await type_and_send(pilot, "fix add")
        await wait_for_approval(pilot)
        assert app.screen.request.diff and "+    return a + b" in app.screen.request.diff
        assert (repo / "calc.py").read_text() == CALC, "nothing is written before approval"
        await pilot.press("y")
        await idle(pilot)
        assert (repo / "calc.py").read_text() == FIXED
        assert not (repo / ".mtp-agent" / "config.toml").exists()

    play(app, scenario)


def test_always_allow_saves_the_rule_and_stops_asking(repo):
    second = call("edit_file", path="calc.py", old_string="a + b", new_string="b + a")
    app = make_app(repo, [{"tool_calls": [FIX]}, {"tool_calls": [second]}, {"text": "Done."}])

    async def scenario(pilot):
        await type_and_send(pilot, "fix add")
        await wait_for_approval(pilot)
        await pilot.press("a")
        await idle(pilot)
        assert (repo / "calc.py").read_text() == "def add(a, b):\n    return b + a\n", "the second edit ran without asking"
        config = (repo / ".mtp-agent" / "config.toml").read_text()
        assert 'allow = ["edit_file(calc.py)"]' in config

    play(app, scenario)


def test_deny_with_a_reason_leaves_the_file_and_tells_the_model(repo):
    app = make_app(repo, [{"tool_calls": [FIX]}, {"text": "Understood."}])

    async def scenario(pilot):
        await type_and_send(pilot, "fix add")
        await wait_for_approval(pilot)
        await pilot.press("n")
        await pilot.press(*"use multiplication", "enter")
        await idle(pilot)
        assert (repo / "calc.py").read_text() == CALC
        sent = app.interactive.agent.backend.requests[-1]
        assert sent[-1]["role"] == "tool" and "use multiplication" in sent[-1]["content"]
        assert app.query_one(ToolBlock).state == "denied"

    play(app, scenario)


def test_esc_at_the_approval_prompt_stops_the_turn(repo):
    app = make_app(repo, [{"tool_calls": [FIX]}, {"text": "Next answer."}])

    async def scenario(pilot):
        await type_and_send(pilot, "fix add")
        await wait_for_approval(pilot)
        await key(pilot, "escape")
        await idle(pilot)
        assert (repo / "calc.py").read_text() == CALC
        assert "Interrupted" in transcript_text(app)
        await type_and_send(pilot, "go on")
        await idle(pilot)
        assert "Next answer." in transcript_text(app)

    play(app, scenario)


def test_esc_interrupts_a_long_generation_and_the_next_message_works(repo):
    app = make_app(repo, [{"text": "counting " * 400, "delay": 0.02}, {"text": "Fresh answer."}])

    async def scenario(pilot):
        await type_and_send(pilot, "count")
        await wait_for(pilot, lambda: "counting counting" in transcript_text(app), what="generation to start")
        start = time.monotonic()
        await key(pilot, "escape")
        await idle(pilot)
        assert time.monotonic() - start < 2, "the interrupt takes effect at once"
        session = last_session(repo)
        interrupted = [m for m in session.messages if m.get("interrupted")]
        assert len(interrupted) == 1 and interrupted[0]["content"].startswith("counting")
        assert session.events[-1]["status"] == "interrupted"
        await type_and_send(pilot, "again")
        await idle(pilot)
        assert "Fresh answer." in transcript_text(app)
        assert app.interactive.agent.backend.requests[-1][-1] == {"role": "user", "content": "again"}

    play(app, scenario)


def test_esc_interrupts_a_long_shell_command(repo):
    marker = repo / "finished.txt"
    app = make_app(repo, [{"tool_calls": [call("shell", command=f"echo started; sleep 30; touch {marker}")]},
                          {"text": "After."}], permission_mode="yolo")

    async def scenario(pilot):
        await type_and_send(pilot, "run it")
        await wait_for(pilot, lambda: app.query(ToolBlock) and "started" in app.query_one(ToolBlock).output_text,
                       what="live shell output")
        start = time.monotonic()
        await key(pilot, "escape")
        await idle(pilot)
        assert time.monotonic() - start < 5
        assert not marker.exists()
        tool = [m for m in last_session(repo).messages if m["role"] == "tool"][-1]
        assert "interrupted by the user" in tool["content"] and tool["content"].startswith("started")
        await type_and_send(pilot, "next")
        await idle(pilot)
        assert "After." in transcript_text(app)

    play(app, scenario)


def test_prefill_progress_shows_instead_of_a_frozen_screen(repo):
    app = make_app(repo, [{"text": "ok", "prefill": [4096, 0.05]}])

    async def scenario(pilot):
        await type_and_send(pilot, "long")
        bar = app.query_one("#prefill")
        await wait_for(pilot, lambda: bar.display and "prefill " in status_text(app) and "/4096 tokens" in status_text(app),
                       what="prefill progress")
        await idle(pilot)
        assert not bar.display

    play(app, scenario)


def test_shell_escape_runs_the_command_and_sends_its_output_with_the_next_message(repo):
    app = make_app(repo, [{"text": "I see the output."}])

    async def scenario(pilot):
        await type_and_send(pilot, "!echo from-the-shell && ls")
        await idle(pilot)
        block = app.query_one(ToolBlock)
        assert "from-the-shell" in block.output_text and "calc.py" in block.output_text
        await type_and_send(pilot, "what did it print?")
        await idle(pilot)
        sent = app.interactive.agent.backend.requests[-1][-1]["content"]
        assert "from-the-shell" in sent and sent.endswith("what did it print?")

    play(app, scenario)


def test_at_path_completion_and_attachment(repo):
    app = make_app(repo, [{"text": "Read it."}])

    async def scenario(pilot):
        await pilot.press(*"look at @calcu")
        completions = app.query_one(Completions)
        await wait_for(pilot, lambda: completions.display, what="suggestions")
        assert completions.get_option_at_index(0).id == "@src/calculator_app.py"
        await pilot.press("tab")
        assert app.query_one(PromptInput).text == "look at @src/calculator_app.py "
        assert not completions.display
        await pilot.press("enter")
        await idle(pilot)
        sent = app.interactive.agent.backend.requests[-1][-1]["content"]
        assert "Contents of src/calculator_app.py" in sent and "print('hi')" in sent

    play(app, scenario)


def test_slash_completion_history_and_shift_tab(repo):
    app = make_app(repo, [{"text": "one"}])

    async def scenario(pilot):
        await pilot.press("/", "c")
        completions = app.query_one(Completions)
        await wait_for(pilot, lambda: completions.display, what="command suggestions")
        ids = [completions.get_option_at_index(i).id for i in range(completions.option_count)]
        assert ids == ["/clear", "/compact", "/commit"]
        await pilot.press("down", "tab")
        assert app.query_one(PromptInput).text == "/compact "
        app.query_one(PromptInput).text = ""
        await type_and_send(pilot, "first message")
        await idle(pilot)
        await pilot.press("up")
        assert app.query_one(PromptInput).text == "first message"
        modes = []
        for _ in range(4):
            await pilot.press("shift+tab")
            modes.append(app.interactive.permissions.mode)
        assert modes == ["accept-edits", "plan", "yolo", "ask"]
        assert " ask " in status_text(app) or "· ask ·" in status_text(app)

    play(app, scenario)


def test_help_and_quit(repo):
    app = make_app(repo, [])

    async def scenario(pilot):
        await type_and_send(pilot, "/help")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help screen")
        assert "/resume" in app.screen.text and "Shift+Tab" in app.screen.text
        await key(pilot, "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), what="the help screen to close")
        app.query_one(PromptInput).text = "/quit"
        await pilot.press("end", "enter")

    play(app, scenario)
    assert app.return_code == 0 and not app.is_running


def test_model_and_mode_commands(repo, tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"text": "from the other script"}) + "\n")
    app = make_app(repo, [])

    async def scenario(pilot):
        await type_and_send(pilot, "/model")
        await idle(pilot)
        assert "scripted backend" in transcript_text(app)
        await type_and_send(pilot, f"/model {other}")
        await idle(pilot)
        assert "switched to script:other.jsonl" in transcript_text(app) and "other.jsonl" in status_text(app)
        await type_and_send(pilot, "hello")
        await idle(pilot)
        assert "from the other script" in transcript_text(app)
        await type_and_send(pilot, "/mode plan")
        await idle(pilot)
        assert app.interactive.permissions.mode == "plan" and "plan" in status_text(app)
        await type_and_send(pilot, "/mode nonsense")
        await idle(pilot)
        assert "unknown mode 'nonsense'" in transcript_text(app)

    play(app, scenario)


def test_clear_compact_and_stats(repo):
    app = make_app(repo, [{"text": "first answer " * 30}, {"text": "Summary: the user asked once."}])

    async def scenario(pilot):
        await type_and_send(pilot, "/compact")
        await idle(pilot)
        assert "nothing to compact yet" in transcript_text(app)
        await type_and_send(pilot, "hi")
        await idle(pilot)
        await type_and_send(pilot, "/compact")
        await idle(pilot)
        session = last_session(repo)
        assert any(e["type"] == "compaction" for e in session.events)
        assert "Summary: the user asked once." in transcript_text(app), "the transcript shows the compacted history"
        await type_and_send(pilot, "/stats")
        await idle(pilot)
        assert "model turns" in transcript_text(app) and "generated tokens" in transcript_text(app)
        old_id = app.interactive.session.id
        await type_and_send(pilot, "/clear")
        await idle(pilot)
        assert app.interactive.session.id != old_id
        assert "first answer" not in transcript_text(app)
        assert [m["role"] for m in app.interactive.session.messages] == ["system"]

    play(app, scenario)


def test_diff_undo_and_commit(repo):
    app = make_app(repo, [{"tool_calls": [FIX]}, {"text": "Fixed."},
                          {"tool_calls": [call("git_commit", message="Fix add", all=True)]}, {"text": "Committed."}],
                   permission_mode="yolo")

    def git(*args):
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout

    async def scenario(pilot):
        await type_and_send(pilot, "/diff")
        await idle(pilot)
        assert "no uncommitted changes" in transcript_text(app)
        await type_and_send(pilot, "fix it")
        await idle(pilot)
        assert (repo / "calc.py").read_text() == FIXED
        await type_and_send(pilot, "/diff")
        await idle(pilot)
        assert "+    return a + b" in transcript_text(app)
        await type_and_send(pilot, "/undo")
        await idle(pilot)
        assert (repo / "calc.py").read_text() == CALC and "restored: calc.py" in transcript_text(app)
        (repo / "calc.py").write_text(FIXED)
        (repo / "notes.txt").write_text("new file\n")
        await type_and_send(pilot, "/commit Fix add and keep notes")
        await idle(pilot)
        assert git("log", "-1", "--format=%s").strip() == "Fix add and keep notes"
        assert git("status", "--porcelain") == "" and "notes.txt" in git("show", "--name-only", "HEAD")
        (repo / "calc.py").write_text(CALC)
        await type_and_send(pilot, "/commit")  # the agent writes the message
        await idle(pilot)
        assert git("log", "-1", "--format=%s").strip() == "Fix add"
        first_request = app.interactive.agent.backend.requests[-2][-1]["content"]
        assert "git_commit" in first_request

    play(app, scenario)


def test_resume_a_saved_session_at_start_and_with_the_picker(repo):
    first = make_app(repo, [{"text": "The first answer."}])

    async def earlier(pilot):
        await type_and_send(pilot, "first question")
        await idle(pilot)

    play(first, earlier)
    saved = list_sessions(repo)[0].id
    resumed = make_app(repo, [{"text": "Continuing."}], resume=saved)

    async def scenario(pilot):
        await pilot.pause(0.1)
        text = transcript_text(resumed)
        assert "first question" in text and "The first answer." in text and "(resumed)" in text
        await type_and_send(pilot, "and now?")
        await idle(pilot)
        sent = resumed.interactive.agent.backend.requests[-1]
        assert [m.get("content") for m in sent[-3:]] == ["first question", "The first answer.", "and now?"]
        await type_and_send(pilot, "/clear")
        await idle(pilot)
        await type_and_send(pilot, "/resume")
        await wait_for(pilot, lambda: isinstance(resumed.screen, ResumeScreen), what="the session picker")
        await pilot.press("enter")
        await idle(pilot)
        assert resumed.interactive.session.id == saved
        assert "and now?" in transcript_text(resumed)

    play(resumed, scenario)


def test_messages_typed_while_busy_are_queued(repo):
    app = make_app(repo, [{"text": "slow " * 30, "delay": 0.02}, {"text": "second"}])

    async def scenario(pilot):
        await type_and_send(pilot, "one")
        await wait_for(pilot, lambda: "slow" in transcript_text(app), what="the first answer")
        await type_and_send(pilot, "two")
        assert "queued" in transcript_text(app)
        await wait_for(pilot, lambda: "second" in transcript_text(app), what="the queued message's answer")
        await idle(pilot)

    play(app, scenario)


def test_themes_switch(repo):
    app = make_app(repo, [{"text": "hi"}])

    async def scenario(pilot):
        for theme in ("textual-light", "nord", "textual-dark"):
            app.theme = theme
            await pilot.pause()
            assert app.theme == theme
        await type_and_send(pilot, "hello")
        await idle(pilot)

    play(app, scenario)


def test_tool_titles_show_brackets_literally(repo):
    app = make_app(repo, [{"tool_calls": [call("shell", command="echo '[100%] [b]bold[/b]'")]}, {"text": "ok"}],
                   permission_mode="yolo")

    async def scenario(pilot):
        await type_and_send(pilot, "run")
        await idle(pilot)
        title = str(app.query_one(ToolBlock).query_one("CollapsibleTitle").render())
        assert "[100%] [b]bold[/b]" in title

    play(app, scenario)
