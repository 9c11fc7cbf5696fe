"""Repeated actions are steered, not run: an identical call in an unchanged workspace, an
alternation, a near repeat of a failed call, a cycle; the turn after a steer is sampled with a
seed; after the steers run out the run ends as stuck (exit 4)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from agent.backends.base import ToolCall, TurnOptions, TurnSampling
from agent.core.loop import Limits
from agent.core.repetition import RepeatGuard, WorkspaceState, cycle_period, steered_sampling
from support.git_support import committed_project
from support.scripted_agent import run_scripted


@pytest.fixture
def repo(tmp_path) -> Path:
    return committed_project(tmp_path / "project", {"a.txt": "alpha\n", "b.txt": "beta\n"})


def call(name: str, **arguments) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def run(root: Path, turns: list[dict], limits: Limits | None = None, task: str = "Do the task."):
    return run_scripted(root, turns, task, limits or Limits())


def results(events: list) -> list:
    return [e for e in events if type(e).__name__ == "ToolResultEvent"]


def test_an_identical_call_in_an_unchanged_workspace_is_steered_and_the_next_turn_sampled(repo):
    append = call("shell", command="echo once >> log.txt")
    read = call("read_file", path="a.txt")
    _, backend, events, result = run(repo, [read, read, {"text": "Done."}], Limits(look_first=True))
    outputs = results(events)
    assert "alpha" in outputs[0].output and not outputs[0].is_error
    assert outputs[1].is_error and outputs[1].output.startswith("Not run: you made this exact call in turn 1")
    assert "result is above" in outputs[1].output and "alpha" not in outputs[1].output  # nothing to copy
    assert outputs[1].data == {"repeat": True}
    assert backend.options_requested == [TurnOptions(require_call=True), TurnOptions(),
                                         TurnOptions(sampling=steered_sampling(1), avoid_tools=frozenset({"read_file"}))]
    assert result.status == "done"
    # a command that appends is a change: running it again is not a repeat
    _, _, events, _ = run(repo, [append, append, {"text": "Done."}])
    assert not any(r.is_error for r in results(events)) and (repo / "log.txt").read_text() == "once\nonce\n"


def test_the_same_call_after_the_workspace_changed_runs_again(repo):
    read = call("read_file", path="a.txt")
    edit = call("edit_file", path="a.txt", old_string="alpha", new_string="gamma")
    _, _, events, _ = run(repo, [read, edit, read, {"text": "Done."}])
    outputs = results(events)
    assert not any(r.is_error for r in outputs) and "gamma" in outputs[2].output


def test_an_alternation_is_caught(repo):
    a, b = call("read_file", path="a.txt"), call("read_file", path="b.txt")
    _, _, events, _ = run(repo, [a, b, a, {"text": "Done."}])
    assert [r.is_error for r in results(events)] == [False, False, True]


def test_a_near_repeat_that_fails_the_same_way_is_steered(repo):
    # made-up paths, as small models make up clone URLs (no network needed to fail)
    first = call("shell", command="cat /home/yourusername/calc-project/setup.cfg")
    again = call("shell", command="cat /home/theirusername/calc-project/setup.cfg")
    _, _, events, _ = run(repo, [first, again, {"text": "Done."}])
    outputs = results(events)
    assert outputs[0].is_error and not outputs[0].data.get("repeat")
    assert outputs[1].is_error and outputs[1].data.get("repeat")  # it ran, and failed the same way
    assert "failed the same way as your call of turn 1" in outputs[1].output
    assert "calc-project" in outputs[1].output  # the command's own output is kept


def test_a_corrected_call_after_a_failure_is_not_a_repeat(repo):
    wrong = call("edit_file", path="a.txt", old_string="alpah", new_string="gamma")
    fixed = call("edit_file", path="a.txt", old_string="alpha", new_string="gamma")
    _, _, events, _ = run(repo, [wrong, fixed, {"text": "Done."}])
    outputs = results(events)
    assert outputs[0].is_error and not outputs[1].is_error and not outputs[1].data.get("repeat")


def test_a_different_call_after_a_failure_runs(repo):
    _, _, events, _ = run(repo, [call("read_file", path="missing.py"), call("read_file", path="a.txt"),
                                 {"text": "Done."}])
    outputs = results(events)
    assert outputs[0].is_error and not outputs[1].is_error


def test_after_the_steers_run_out_the_run_is_stuck_within_eight_turns(repo):
    a, b = call("read_file", path="a.txt"), call("read_file", path="b.txt")
    _, backend, _, result = run(repo, [a, b] * 6)
    assert (result.status, result.exit_code) == ("stuck", 4)
    assert result.turns <= 8 and "kept repeating" in result.error
    assert [o.sampling.seed for o in backend.options_requested if o.sampling] == [1, 2]  # each has its own seed


def test_a_call_that_runs_resets_the_steer_count(repo):
    a, b = call("read_file", path="a.txt"), call("read_file", path="b.txt")
    fresh = [call("list_dir", path="."), call("glob", pattern="*.txt"), call("grep", pattern="alpha")]
    _, _, _, result = run(repo, [a, a, a, fresh[0], a, a, fresh[1], a, fresh[2], {"text": "Done."}])
    assert result.status == "done"


def test_a_cycle_is_caught_even_when_the_workspace_keeps_changing(repo):
    # each call writes a new value: no state recurs, but the calls go round in a loop
    calls = [call("shell", command=f"date +%N >> {name}") for name in ("x", "y")]
    agent, _, events, result = run(repo, calls * 4)
    steered = [r for r in results(events) if r.data.get("repeat")]
    assert steered and "in a loop" in steered[0].output
    assert result.status == "stuck"


@pytest.mark.parametrize("signatures, period", [
    (["a", "a", "a"], 1), (["x", "a", "b", "a", "b", "a", "b"], 2), (["a", "b", "c"] * 3, 3),
    (["a", "b", "a", "b"], 0), (["a", "a", "b"], 0), (["a", "b", "c", "d"] * 3, 0),
])
def test_cycle_period(signatures, period):
    assert cycle_period(signatures) == period


def test_outside_git_the_state_counts_writes(tmp_path):
    state = WorkspaceState(tmp_path)
    before = state()
    assert state() == before
    state.note_write()
    assert state() != before


def test_in_git_the_state_follows_the_files(repo):
    state = WorkspaceState(repo)
    before = state()
    (repo / "a.txt").write_text("changed\n")
    changed = state()
    assert changed != before
    (repo / "new.txt").write_text("x")
    assert state() not in (before, changed)
    subprocess.run(["git", "checkout", "-q", "a.txt"], cwd=repo, check=True)
    (repo / "new.txt").unlink()
    assert state() == before
    (repo / "a.txt").write_text("changed\n")
    again = state()
    time.sleep(0.01)
    (repo / "a.txt").write_text("changed\n")  # written again as it was: a new time, the same files
    assert state() == again == changed


def test_the_guard_on_its_own():
    guard = RepeatGuard(lambda: "s")
    read = ToolCall("call_1", "read_file", {"path": "a.txt"})
    assert guard.steering(read, "s") is None
    guard.record(read, 1, "s", "alpha", False)
    assert guard.steering(read, "t") is None  # another workspace state
    assert guard.steering(read, "s").startswith("Not run: you made this exact call")
    assert "in a loop" in guard.steering(read, "u")  # a fourth attempt in a row is a cycle whatever the state


def test_the_embedded_backend_samples_a_steered_turn_with_its_seed(tiny_engine):
    from agent.backends.embedded import EmbeddedBackend

    backend = EmbeddedBackend(tiny_engine, "tiny", max_new_tokens=24)
    seen = []
    stream = tiny_engine.stream

    def spy(*args, **kwargs):
        seen.append(kwargs["sampling"])
        return stream(*args, **kwargs)

    tiny_engine.stream = spy
    try:
        messages = [{"role": "user", "content": "hi"}]
        first = backend.complete(messages, [], options=TurnOptions(sampling=TurnSampling(0.7, 0.9, seed=5)))
        again = backend.complete(messages, [], options=TurnOptions(sampling=TurnSampling(0.7, 0.9, seed=5)))
        backend.complete(messages, [])
    finally:
        del tiny_engine.stream
    assert [(p.temperature, p.top_p, p.seed) for p in seen] == [(0.7, 0.9, 5), (0.7, 0.9, 5), (0.0, 1.0, None)]
    assert first.raw == again.raw  # seeded: reproducible


def test_the_first_turn_of_a_task_must_look_before_it_answers(repo):
    read = call("read_file", path="a.txt")
    _, backend, _, _ = run(repo, [read, {"text": "Done."}], Limits(look_first=True))
    assert [o.require_call for o in backend.options_requested] == [True, False]
    _, backend, _, _ = run(repo, [{"text": "Hello."}], Limits(look_first=False), task="Say hello.")
    assert [o.require_call for o in backend.options_requested] == [False]


def test_look_first_comes_from_the_config(repo):
    from agent.core.setup import RunSettings, prepare

    script = repo.parent / "turns.jsonl"
    script.write_text('{"text": "hi"}\n')
    settings = RunSettings(backend="scripted", script=script)
    agent, _ = prepare(settings, repo, lambda e: None)
    assert agent.limits.look_first is False  # off unless asked for
    (repo / ".mtp-agent").mkdir()
    (repo / ".mtp-agent" / "config.toml").write_text("[agent]\nlook_first = true\n")
    agent, _ = prepare(settings, repo, lambda e: None)
    assert agent.limits.look_first is True


def test_steering_can_be_turned_off(repo):
    read = call("read_file", path="a.txt")
    _, _, events, _ = run(repo, [read, read, {"text": "Done."}], Limits(steer=False))
    assert not any(r.is_error for r in results(events)) and len(results(events)) == 2


def test_the_steer_and_look_first_flags_reach_the_limits(repo):
    from agent.core.setup import RunSettings, prepare

    script = repo.parent / "turns.jsonl"
    script.write_text('{"text": "hi"}\n')
    agent, _ = prepare(RunSettings(backend="scripted", script=script, steer=False, look_first=True), repo, lambda e: None)
    assert (agent.limits.steer, agent.limits.look_first) == (False, True)
