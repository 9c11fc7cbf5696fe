"""Snapshot tests (pytest-textual-snapshot) of the main screen, an approval prompt with a diff,
and the help screen. The repository path, session id and clock are fixed so the screens are
the same on every machine; `pytest --snapshot-update` rewrites them after a deliberate change.
The same screens are written to docs/ by `python -m tests.support.tui_screens`."""

from __future__ import annotations

import pytest

from tests.support.tui_screens import SIZE, approval_app, help_app, main_app


@pytest.fixture(autouse=True)
def fixed_world(monkeypatch, tmp_path):
    monkeypatch.setenv("MTP_AGENT_SESSIONS", str(tmp_path / "sessions"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr("agent.core.session.time.strftime", lambda fmt, *a: "20261128-120000")
    monkeypatch.setattr("agent.core.session.secrets.token_hex", lambda n: "abc123")


def test_main_screen(snap_compare):
    app, run_before = main_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_approval_prompt_with_a_diff(snap_compare):
    app, run_before = approval_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare):
    app, run_before = help_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
