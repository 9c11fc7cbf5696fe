"""The embedded backend with the real default model: headless runs, and the KV cache kept across
turns so each turn prefills only what is new."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.backends.embedded import EmbeddedBackend
from agent.backends.scripted import ScriptedBackend
from agent.core.environment import Environment
from agent.core.loop import Agent, Limits
from agent.core.permissions import Permissions
from agent.core.session import Session
from agent.tools import TOOLS
from agent.tools.base import Workspace


@pytest.fixture(scope="module")
def backend(smollm2) -> EmbeddedBackend:
    from inference import Engine

    return EmbeddedBackend(Engine.load(smollm2, device="cpu", n_ctx=4096), smollm2.name, max_new_tokens=48)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    monkeypatch.setenv("MTP_AGENT_SESSIONS", str(tmp_path / "sessions"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return root


def test_headless_run_with_a_real_model(project, smollm2):
    (project / ".mtp-agent").mkdir()
    (project / ".mtp-agent" / "config.toml").write_text("[backend]\nmax_new_tokens = 64\n")
    agent = Path(sys.executable).with_name("agent")
    result = subprocess.run([str(agent), "run", "--model", "smollm2-135m", "--prompt", "Say hello in one short sentence.",
                             "--max-turns", "3", "--output-format", "stream-json"],
                            cwd=project, capture_output=True, text=True, timeout=600)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    final = events[-1]
    assert result.returncode in (0, 3), result.stderr  # done, or a limit: a 135M model may not stop calling tools
    assert final["type"] == "result" and final["status"] in ("done", "limit") and final["turns"] <= 3
    assert events[0]["backend"] == "embedded" and events[0]["model"] == smollm2.name
    stats = [e for e in events if e["type"] == "stats"]
    assert stats and all(s["generated_tokens"] > 0 and s["decode_tokens_per_second"] > 0 for s in stats)
    assert final["prompt_tokens"] == sum(s["prompt_tokens"] for s in stats)
    assert final["decode_tokens_per_second"] > 0 and final["duration_seconds"] > 0
    # speculation is on by default (prompt lookup for this model), and its counts add up
    assert final["drafted_tokens"] == sum(s["drafted_tokens"] for s in stats)
    assert final["accepted_tokens"] == sum(s["accepted_tokens"] for s in stats) <= final["drafted_tokens"]
    assert final["mtp_drafted_tokens"] == 0  # no MTP head: every draft is prompt lookup's, and not called MTP


def test_spec_off_reaches_the_engine(project, smollm2):
    from agent.core.config import load_config
    from agent.core.setup import RunSettings, make_backend

    settings = RunSettings(model=str(smollm2), device="cpu", ctx=1024, spec="off")
    backend = make_backend(settings, load_config(project))
    assert backend.engine.spec == "off"
    settings = RunSettings(model=str(smollm2), device="cpu", ctx=1024, spec="ngram", spec_n_max=5)
    backend = make_backend(settings, load_config(project))
    assert (backend.engine.spec, backend.engine.spec_n_max) == ("ngram", 5)


def test_second_turn_prefills_only_the_new_tokens(backend):
    """A tool round trip: the assistant's output goes back into the prompt exactly as generated,
    so the next prompt reuses the previous prompt and the whole answer from the KV cache."""
    backend.engine.reset()
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "List the files, please."}]
    first = backend.complete(messages, [])
    assert first.stats.reused_prompt_tokens == 0
    messages += [{"role": "assistant", "content": first.text, "raw": first.raw},
                 {"role": "tool", "tool_call_id": "call_1", "name": "list_dir", "content": "calc.py\nREADME.md"}]
    second = backend.complete(messages, [])
    prompt = backend.prompt_ids(messages, [])
    # everything before this turn was computed already: the first prompt and every generated
    # token that was run through the model (the last one was sampled but never fed back)
    assert second.stats.reused_prompt_tokens == first.stats.prompt_tokens + first.stats.generated_tokens - 1
    assert second.stats.prompt_tokens == len(prompt)
    new_tokens = second.stats.prompt_tokens - second.stats.reused_prompt_tokens
    assert 0 < new_tokens < 40  # the closing of the answer, the tool result and the next header


def test_reused_tokens_reach_the_stats_and_result_events(backend, project):
    """Two tasks in one session (as the TUI sends them): the second run's first turn reuses the
    whole first conversation, and the result event says so."""
    backend.engine.reset()
    events: list[dict] = []
    session = Session.create(project, {"backend": "embedded", "model": backend.model})
    session.add_message({"role": "system", "content": "You are a helpful assistant."})
    agent = Agent(backend, Environment(dict(TOOLS), Workspace(project), Permissions()), session,
                  lambda event: events.append(event.as_dict()), limits=Limits(max_turns=3, look_first=False))
    agent.run("Say hi.")  # (no call required first: the run should end on an answer the next prompt extends)
    last_turn_of_first_run = [e for e in events if e["type"] == "stats"][-1]
    events.clear()
    agent.run("Now say bye.")
    stats = [e for e in events if e["type"] == "stats"]
    result = events[-1]
    assert result["type"] == "result" and result["reused_prompt_tokens"] == stats[0]["reused_prompt_tokens"] + sum(
        s["reused_prompt_tokens"] for s in stats[1:])
    assert stats[0]["reused_prompt_tokens"] >= last_turn_of_first_run["prompt_tokens"]
    assert stats[0]["prompt_tokens"] - stats[0]["reused_prompt_tokens"] < 40


def test_templates_without_tools_get_the_text_protocol(backend):
    """SmolLM2's template ignores `tools`, so the tool list goes into the system prompt and tool
    results come back as user turns wrapped in <tool_response>."""
    assert not backend.native_tools
    specs = [TOOLS["read_file"].spec()]
    rendered = backend.engine.tokenizer.decode(backend.prompt_ids(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "u"},
         {"role": "assistant", "content": "", "raw": '<tool_call>{"name": "read_file", "arguments": {"path": "a"}}</tool_call>'},
         {"role": "tool", "tool_call_id": "call_1", "name": "read_file", "content": "file text"}], specs))
    assert "## read_file" in rendered and "<tool_call>" in rendered
    assert "<|im_start|>user\n<tool_response>\nfile text\n</tool_response>" in rendered


def test_scripted_backend_reports_its_requests():
    scripted = ScriptedBackend([{"text": "one"}])
    turn = scripted.complete([{"role": "user", "content": "hi"}], [])
    assert turn.text == "one" and scripted.requests == [[{"role": "user", "content": "hi"}]]


def test_prefill_progress_and_an_interrupt_from_the_stream(backend):
    """What the TUI relies on: the prompt's progress arrives, and an exception raised from the
    text callback (Esc) ends the turn at once without breaking the next one."""
    backend.engine.reset()
    messages = [{"role": "user", "content": "Count from one to twenty in words."}]
    progress: list[tuple[int, int]] = []
    first = backend.complete(messages, [], on_progress=lambda done, total: progress.append((done, total)))
    assert progress and progress[-1] == (first.stats.prompt_tokens, first.stats.prompt_tokens)

    class Stop(Exception):
        pass

    seen: list[str] = []

    def stop_after_three(delta: str) -> None:
        seen.append(delta)
        if len(seen) == 3:
            raise Stop

    backend.engine.reset()
    with pytest.raises(Stop):
        backend.complete(messages, [], on_text=stop_after_three)
    assert len(seen) == 3
    again = backend.complete(messages, [])
    assert again.raw == first.raw, "an interrupted turn leaves the cache consistent: greedy output is unchanged"


def test_a_turn_ends_where_its_stop_when_holds_and_counts_as_cut(backend):
    """A workflow's guard against a model running on: the engine stops at the first line end where
    the predicate holds, and the turn reads as cut at its bound."""
    from agent.backends.base import TurnOptions

    backend.engine.reset()
    messages = [{"role": "user", "content": "Write a Python function that adds two numbers, with a docstring."}]
    whole = backend.complete(messages, [], max_tokens=60)
    assert whole.raw.count("\n") >= 2, whole.raw
    backend.engine.reset()
    cut = backend.complete(messages, [], max_tokens=60, options=TurnOptions(stop_when=lambda text: text.count("\n") >= 2))
    assert cut.finish_reason == "length"
    assert cut.raw.count("\n") == 2 and whole.raw.startswith(cut.raw)
    assert cut.stats.generated_tokens < whole.stats.generated_tokens
