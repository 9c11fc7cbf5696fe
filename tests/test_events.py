"""The event contract: every event type is one class in one registry, and the stream-json objects
`agent run` writes keep their exact keys, key order and values (docs/headless.md)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from agent.backends.base import TurnStats
from agent.core import events
from agent.core.events import EVENT_TYPES, CheckpointEvent, Event, ResultEvent, StatsEvent, ToolCallEvent
from agent.frontends.cli import main
from tests.support.tui_support import make_repo, write_script

KEYS = {
    "init": ["type", "session_id", "backend", "model", "root", "permission_mode", "tools", "resumed", "context_window",
             "warnings"],
    "assistant": ["type", "turn", "text", "reasoning"],
    "stats": ["type", "turn", "prompt_tokens", "reused_prompt_tokens", "generated_tokens", "prefill_tokens_per_second",
              "decode_tokens_per_second", "seconds", "drafted_tokens", "accepted_tokens", "mtp_drafted_tokens",
              "mtp_accepted_tokens"],
    "format_error": ["type", "turn", "error"],
    "tool_call": ["type", "turn", "id", "name", "arguments"],
    "tool_call+diff": ["type", "turn", "id", "name", "arguments", "diff"],
    "checkpoint": ["type", "ref", "label"],
    "tool_result": ["type", "turn", "id", "name", "is_error", "output", "data"],
    "permission": ["type", "id", "name", "decision", "reason"],
    "compaction": ["type", "elided", "summarized", "tokens_before", "tokens_after"],
    "result": ["type", "status", "exit_code", "answer", "error", "turns", "session_id", "prompt_tokens",
               "reused_prompt_tokens", "generated_tokens", "drafted_tokens", "accepted_tokens", "mtp_drafted_tokens",
               "mtp_accepted_tokens", "duration_seconds",
               "prefill_tokens_per_second", "decode_tokens_per_second"],
}


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    root = make_repo(tmp_path / "project")
    (root / "big.txt").write_text("".join(f"line {i} of a long file\n" for i in range(400)))
    monkeypatch.setenv("MTP_AGENT_SESSIONS", str(tmp_path / "sessions"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(root)
    return root


def call(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def test_stream_json_pins_every_loop_event(repo, capsys):
    turns = [
        {"raw": '<tool_call>{"name": "read_file", "arguments": {"path": calc.py}}</tool_call>'},
        {"text": "Fixing the sign.", "reasoning": "add subtracts", "timing": [0.5, 2.0],
         "tool_calls": [call("edit_file", path="calc.py", old_string="a - b", new_string="a + b")]},
        {"tool_calls": [call("shell", command="rm -rf build")]},
        {"tool_calls": [call("read_file", path="big.txt", offset=1, limit=200)]},
        {"tool_calls": [call("read_file", path="big.txt", offset=201, limit=200)]},
        {"text": "SUMMARY: fixed add, read big.txt."},  # the compaction's summary
        {"text": "Done: add adds.", "timing": [0.25, 1.0]},
    ]
    script = write_script(repo.parent / "script.jsonl", turns)
    # 7000 tokens of context: the first 200-line read fits, the second needs a compaction (~700 tokens of slack each way)
    code = main(["run", "--backend", "scripted", "--script", str(script), "--prompt", "Fix add.", "--ctx", "7000",
                 "--permission-mode", "accept-edits", "--output-format", "stream-json"])
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    loop_turn = ["assistant", "stats"]
    assert [e["type"] for e in emitted] == (
        ["init"] + loop_turn + ["format_error"] + loop_turn + ["tool_call", "checkpoint", "tool_result"]
        + loop_turn + ["tool_call", "permission", "tool_result"] + 2 * (loop_turn + ["tool_call", "tool_result"])
        + ["compaction"] + loop_turn + ["result"])
    for event in emitted:
        kind = "tool_call+diff" if event["type"] == "tool_call" and event["name"] == "edit_file" else event["type"]
        assert list(event) == KEYS[kind], kind

    init, result = emitted[0], emitted[-1]
    assert init["backend"] == "scripted" and init["model"] == "script:script.jsonl" and init["context_window"] == 7000
    assert init["permission_mode"] == "accept-edits" and init["resumed"] is False and "edit_file" in init["tools"]
    assert result["session_id"] == init["session_id"] and init["root"] == str(repo)
    edit = next(e for e in emitted if e["type"] == "tool_call" and e["name"] == "edit_file")
    assert edit["turn"] == 2 and edit["id"] == "call_1" and "-    return a - b\n+    return a + b" in edit["diff"]
    checkpoint = next(e for e in emitted if e["type"] == "checkpoint")
    assert checkpoint["label"] == "turn 2" and checkpoint["ref"].startswith("refs/mtp-agent/checkpoints/")
    permission = next(e for e in emitted if e["type"] == "permission")
    assert (permission["name"], permission["decision"]) == ("shell", "deny")
    compaction = next(e for e in emitted if e["type"] == "compaction")
    assert compaction["summarized"] is True and compaction["elided"] == 0
    assert compaction["tokens_after"] < compaction["tokens_before"]

    # rates come from the scripted seconds, rounded to 2 places; a turn without seconds has none
    stats = [e for e in emitted if e["type"] == "stats"]
    timed = stats[1]
    assert timed["turn"] == 2 and timed["seconds"] >= 0
    assert timed["prefill_tokens_per_second"] == round(timed["prompt_tokens"] / 0.5, 2)
    assert timed["decode_tokens_per_second"] == round((timed["generated_tokens"] - 1) / 2.0, 2)
    assert stats[0]["prefill_tokens_per_second"] == 0.0 and stats[0]["decode_tokens_per_second"] == 0.0
    assert result["status"] == "done" and result["exit_code"] == 0 and result["answer"] == "Done: add adds."
    assert result["error"] == "" and result["turns"] == 6 and result["drafted_tokens"] == 0
    assert result["prompt_tokens"] == sum(s["prompt_tokens"] for s in stats)
    assert result["prefill_tokens_per_second"] == round(result["prompt_tokens"] / 0.75, 2)
    assert result["decode_tokens_per_second"] == round((result["generated_tokens"] - 6) / 3.0, 2)


def all_subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct} | all_subclasses(direct)}


SAMPLES = {"str": "x", "int": 1, "bool": True, "float": 1.5, "list[str]": ["a"], "dict[str, Any]": {"k": 1},
           "str | None": "x", "TurnStats": TurnStats()}


def sample(cls: type[Event]) -> Event:
    return cls(**{f.name: SAMPLES[f.type] for f in dataclasses.fields(cls)})


def test_every_event_class_is_declared_in_the_registry():
    assert set(EVENT_TYPES.values()) == all_subclasses(Event)
    assert len(EVENT_TYPES) == 14
    for name, cls in EVENT_TYPES.items():
        as_dict = sample(cls).as_dict()
        assert as_dict["type"] == name == cls.type and next(iter(as_dict)) == "type"
        assert json.loads(json.dumps(as_dict)) == as_dict


def test_optional_fields_are_left_out_while_unset():
    assert list(ToolCallEvent(1, "c", "read_file", {}).as_dict()) == KEYS["tool_call"]
    assert CheckpointEvent(None, error="not a git repository").as_dict() == {
        "type": "checkpoint", "ref": None, "error": "not a git repository"}
    assert list(CheckpointEvent("refs/x", "turn 1").as_dict()) == KEYS["checkpoint"]


def test_rates_are_computed_from_seconds():
    turn = TurnStats(prompt_tokens=1000, reused_prompt_tokens=200, generated_tokens=51, prefill_seconds=0.3,
                     decode_seconds=2.5, seconds=2.91234)
    stats = StatsEvent(3, turn).as_dict()
    assert (stats["prefill_tokens_per_second"], stats["decode_tokens_per_second"], stats["seconds"]) == (2666.67, 20.0, 2.91)
    assert StatsEvent(1, TurnStats(generated_tokens=1, decode_seconds=0.5)).as_dict()["decode_tokens_per_second"] == 0.0
    totals = TurnStats()
    for _ in range(2):
        totals.add(turn)
    result = ResultEvent("done", 0, "ok", "", 2, "s", totals, 6.12345).as_dict()
    assert (result["prompt_tokens"], result["prefill_tokens_per_second"]) == (2000, 2666.67)
    assert (result["decode_tokens_per_second"], result["duration_seconds"]) == (20.0, 6.123)
    assert events.tokens_per_second(10, 0.0) == 0.0
