"""The agent loop: messages -> model -> tool calls -> results -> model, until the model answers
without a tool call or a limit stops it. Outcomes travel as exceptions (mini-swe-agent's design);
every message is saved as it is added, and every run ends with one `result` event."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agent.core import context
from agent.backends.base import Backend, Message, ModelError, ModelTurn, ToolCall, TurnOptions, TurnStats
from agent.core.checkpoints import CheckpointError, take as take_checkpoint
from agent.core.permissions import DENIED
from agent.core.repetition import RepeatGuard, WorkspaceState, steered_sampling
from agent.core.toolcalls import format_tool_call
from agent.core.autotest import AutoTest
from agent.core.workflow import FixWorkflow, choose_workflow
from agent.core.environment import Environment
from agent.core.events import (AssistantEvent, CheckpointEvent, CompactionEvent, Event, EventSink, FormatErrorEvent,
                               PermissionEvent, PrefillProgressEvent, ResultEvent, StatsEvent, TextDeltaEvent,
                               ToolCallEvent, ToolResultEvent)
from agent.core.session import Session
from agent.core.toolcalls import format_error_message, no_answer_message
from agent.tools import run_tool
from agent.tools.base import Tool

EVENT_OUTPUT_CHARS = 4000  # tool output copied into events; the model sees the whole result
EVENT_DIFF_CHARS = 200_000  # an edit's diff is added to its tool_call event up to this size
MAX_CALLS_PER_TURN = 32  # more in one turn is a runaway model or server, not a plan: sent back as a format error
NO_ANSWER = "the turn has neither an answer nor a tool call"


class AgentExit(Exception):
    status = "error"
    exit_code = 1

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = message


class Done(AgentExit):
    status, exit_code = "done", 0


class LimitReached(AgentExit):
    status, exit_code = "limit", 3


class ModelFailure(AgentExit):
    status, exit_code = "error", 1


class Interrupted(AgentExit):
    status, exit_code = "interrupted", 130


class Stuck(AgentExit):
    status, exit_code = "stuck", 4


@dataclass
class Limits:
    max_turns: int = 30
    max_seconds: float | None = None
    look_first: bool = False  # the first turn of a task must call a tool: no answer before looking
    workflow: str = "auto"  # "free", "fix" or "auto" (core/workflow.py)
    steer: bool = True  # repeated calls are steered away (core/repetition.py) instead of run
    auto_test: bool = True  # after an edit in the free loop, the task's command or the tests run (core/autotest.py)
    steers: int = 3  # repeated calls steered away (core/repetition.py) with no new call between, before the run is stuck
    format_errors: int = 3  # malformed tool calls in a row before giving up
    reserve_tokens: int = 2048  # room kept for the model's answer and a compaction summary (at most a quarter of the window)


@dataclass
class RunResult:
    status: str
    exit_code: int
    answer: str
    error: str
    turns: int
    totals: TurnStats = field(default_factory=TurnStats)  # the run's turns summed
    duration_seconds: float = 0.0

    def event(self, session_id: str) -> ResultEvent:
        return ResultEvent(self.status, self.exit_code, self.answer, self.error, self.turns, session_id,
                           self.totals, self.duration_seconds)


class Agent:
    def __init__(self, backend: Backend, env: Environment, session: Session, on_event: EventSink,
                 limits: Limits | None = None):
        self.backend, self.env, self.session, self.on_event = backend, env, session, on_event
        self.limits = limits or Limits()
        self.turns = 0
        self.totals = TurnStats()
        self._workspace_state = WorkspaceState(env.workspace.root)
        self.repeats = RepeatGuard(self._workspace_state)
        self._steers = 0  # calls steered away since the last call that ran
        self._steers_total = 0  # in this agent's life: seeds the sampled turns
        self._steered_tools: set[str] = set()  # tools of the calls steered away this turn
        self.workflow: FixWorkflow | None = None
        self.auto_test: AutoTest | None = None
        self._own_calls = 0  # calls the agent made itself (a workflow's steps)
        self._format_errors = 0
        self._empty_turns = 0  # turns in a row with neither an answer nor a call
        self._checkpointed_turn = -1
        self._start = time.monotonic()
        self._first_turn = 0
        self._streamed = ""  # the current turn's text so far, kept if the user interrupts it

    def interrupt(self) -> None:
        """Stop the running task as soon as possible (from any thread): the model's turn or the
        running tool ends, and run() returns an interrupted result with the session consistent."""
        self.env.workspace.cancel.set()

    def _check_interrupt(self) -> None:
        if self.env.workspace.cancel.is_set():
            raise Interrupted("interrupted by the user")

    @property
    def messages(self) -> list[Message]:
        return self.session.messages

    def add(self, message: Message) -> None:
        self.session.add_message(message)

    def emit(self, event: Event) -> None:
        self.on_event(event)

    # -- the loop -----------------------------------------------------------------------------

    def run(self, task: str) -> RunResult:
        """One task: the limits and the totals in the result count this run; turn numbers keep
        counting across the runs of a session (a TUI sends several tasks to one agent)."""
        self._start = time.monotonic()
        self._first_turn = self.turns
        self.totals = TurnStats()
        self._empty_turns = 0
        self.env.workspace.cancel.clear()
        self.add({"role": "user", "content": task})
        try:
            self.workflow = choose_workflow(self.limits.workflow, task, self.env.workspace.root,
                                            getattr(self.backend, "model_parameters", None))
            if self.limits.auto_test:
                self.auto_test = AutoTest.for_task(task, self.env.workspace.root, self.workspace_state())
            if self.workflow is not None:
                self.workflow.start(self)
            while True:
                self.step()
        except KeyboardInterrupt:
            result = self._interrupted(Interrupted("interrupted by the user"))
        except Interrupted as outcome:
            result = self._interrupted(outcome)
        except AgentExit as outcome:
            if not isinstance(outcome, Done) and self.workflow is not None:
                self.workflow.abandon(self)  # a limit mid-attempt leaves the last validated files, not half an edit
            result = self._result(outcome)
        self.env.workspace.cancel.clear()
        event = result.event(self.session.id)
        self.session.add_event(event)
        self.emit(event)
        return result

    def step(self) -> None:
        self._check_limits()
        self.compact()
        if self.workflow is not None:
            self.workflow.before_turn(self)
        turn = self.query()
        self.turns += 1
        if self.workflow is not None and self.workflow.expects_reply():
            self._reply(turn)
            return
        if len(turn.tool_calls) > MAX_CALLS_PER_TURN and not turn.format_error:
            turn.format_error = (f"{len(turn.tool_calls)} tool calls in one turn; make at most {MAX_CALLS_PER_TURN}, "
                                 "then look at their results")
        # a malformed turn keeps its text (the model should see what it wrote) but runs no calls
        calls = [] if turn.format_error else turn.tool_calls
        self.add({"role": "assistant", "content": turn.text, "raw": turn.raw or turn.text, "reasoning": turn.reasoning,
                  "tool_calls": [c.as_dict() for c in calls]})
        self.emit(AssistantEvent(self.turns, turn.text, turn.reasoning))
        self.emit(StatsEvent(self.turns, turn.stats))
        if turn.format_error:
            self._format_error(turn)
            return
        self._format_errors = 0
        if not turn.tool_calls:
            self._finish(turn)
            return
        self._empty_turns = 0
        for call in turn.tool_calls:
            self.execute(call)
        if self.workflow is not None:
            self.workflow.after_turn(self, turn.tool_calls)
        if self.auto_test is not None and (self.workflow is None or not self.workflow.expects_reply()):
            self.auto_test.after_turn(self, turn.tool_calls)

    def _reply(self, turn: ModelTurn) -> None:
        """A workflow's question answered in its fixed shape: the reply stays as the model wrote it,
        with the calls it stands for (a rewritten file is a write_file), which then run."""
        assert self.workflow is not None
        raw = turn.raw or turn.text
        if turn.finish_reason == "length" and not self.workflow.cut_reply_is_fine():
            salvaged = self.workflow.salvage_cut_reply(raw)
            if salvaged is not None:
                raw = salvaged
            elif self.workflow.on_cut_reply(self, turn.stats.generated_tokens):
                self.emit(AssistantEvent(self.turns, raw, turn.reasoning))  # seen, then undone with its attempt
                self.emit(StatsEvent(self.turns, turn.stats))
                return
            else:
                raise LimitReached(f"the model's reply stopped at its token limit ({turn.stats.generated_tokens} tokens)")
        answer = self.workflow.stage == "answer"
        calls = [] if answer else self.workflow.on_reply(self, raw)
        self.add({"role": "assistant", "content": raw, "raw": raw, "reasoning": turn.reasoning,
                  "tool_calls": [c.as_dict() for c in calls]})
        self.emit(AssistantEvent(self.turns, raw, turn.reasoning))
        self.emit(StatsEvent(self.turns, turn.stats))
        if answer:
            raise Done(self.workflow.final_answer(raw))
        for call in calls:  # the workflow's calls: a known result is its to judge, not the repeat guard's
            self.execute(call, own=True)
        self.workflow.after_turn(self, calls)

    def rewind(self, length: int) -> None:
        """Cut the conversation back to its first `length` messages (the session file keeps the
        whole record); a workflow undoes a failed attempt this way."""
        self.session.replace_messages(self.messages[:length])

    def workspace_state(self) -> str:
        """A fingerprint of the workspace's files (see core/repetition.py)."""
        return self._workspace_state()

    def may_act_unasked(self, name: str, arguments: dict[str, Any]) -> bool:
        """Whether a call of the agent's own would run without asking anyone (yolo, or an allow rule)."""
        tool = self.env.tools.get(name)
        return tool is not None and self.env.permissions.check(tool, arguments, self.env.workspace).action == "allow"

    def act(self, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
        """A call the agent makes itself (a workflow step): it sits in the conversation as an
        assistant call, runs through permissions like the model's, and returns (output, is_error)."""
        self._own_calls += 1
        call = ToolCall(f"agent_{self._own_calls}", name, arguments)
        raw = format_tool_call(name, arguments)
        self.add({"role": "assistant", "content": "", "raw": raw, "reasoning": "", "tool_calls": [call.as_dict()]})
        self.emit(AssistantEvent(self.turns, "", ""))
        return self.execute(call, own=True)

    def query(self) -> ModelTurn:
        self._streamed = ""
        self._check_interrupt()
        try:
            options = self._turn_options()
            # a reply in a fixed shape calls no tools: leaving their definitions out of the prompt
            # saves a small model a thousand tokens of prefill per task
            tools = [] if options.reply else self.env.tool_specs()
            turn = self.backend.complete(self.messages, tools, on_text=self._on_text,
                                         on_progress=self._on_prefill, options=options,
                                         max_tokens=options.reply.max_tokens if options.reply else None)
        except ModelError as e:
            raise ModelFailure(f"the model failed: {e}") from e
        self._streamed = ""
        self.totals.add(turn.stats)
        return turn

    def _turn_options(self) -> TurnOptions:
        """The first turn of a task must call a tool (look_first). The turn after a steer is
        sampled, not greedy, and cannot call the tools whose calls were steered away: the same
        prompt, but the model's greedy rut is out of reach for one turn."""
        steered, self._steered_tools = self._steered_tools, set()
        planned = self.workflow.turn_options() if self.workflow is not None else None
        require_call = planned.require_call if planned else (self.limits.look_first and self.turns == self._first_turn)
        avoid = (planned.avoid_tools if planned else frozenset()) | steered
        if avoid >= set(self.env.tools) and require_call:
            avoid = frozenset()  # a call is required and every tool is out of reach: let the steer go
        sampling = steered_sampling(self._steers_total) if steered else (planned.sampling if planned else None)
        return TurnOptions(sampling=sampling, require_call=require_call, avoid_tools=avoid,
                           reply=planned.reply if planned else None, stop_when=planned.stop_when if planned else None)

    def _on_text(self, delta: str) -> None:
        self._check_interrupt()
        self._check_time()  # --max-time holds while a model streams, not only between turns
        self._streamed += delta
        self.emit(TextDeltaEvent(delta))

    def _on_prefill(self, done: int, total: int) -> None:
        self._check_interrupt()
        self._check_time()
        self.emit(PrefillProgressEvent(done, total))

    def execute(self, call: ToolCall, own: bool = False) -> tuple[str, bool]:
        """Run one call; `own`: the agent's call (a workflow step), which is never steered away."""
        diff = self.env.preview(call)
        shown_diff = diff if diff and len(diff) <= EVENT_DIFF_CHARS else None
        self.emit(ToolCallEvent(self.turns, call.id, call.name, call.arguments, shown_diff))
        state = self._workspace_state()
        steering = self.repeats.steering(call, state) if self.limits.steer and not own else None
        if steering:
            return self._steer(call, steering)
        tool = self.env.tools.get(call.name)
        if tool is None:
            return self._tool_message(call, f"unknown tool '{call.name}'; available: {', '.join(self.env.tools)}", True, {})
        denial = self._permission(tool, call, diff)
        if denial:
            return self._tool_message(call, f"{DENIED} {denial}", True, {"denied": True})
        if tool.access != "read":
            self._checkpoint()
        result = run_tool(tool, self.env.workspace, call.arguments)
        if tool.access != "read":
            self._workspace_state.note_write()
        failed_again = self.repeats.record(call, self.turns, state, result.output, result.is_error)
        failed_again = failed_again if self.limits.steer and not own else None
        if failed_again:
            outcome = self._steer(call, failed_again, result.output + "\n\n" + failed_again, result.data)
        else:
            self._steers = 0
            outcome = self._tool_message(call, result.output, result.is_error, result.data)
        self._check_interrupt()
        return outcome

    def _steer(self, call: ToolCall, steering: str, output: str | None = None,
               data: dict[str, Any] | None = None) -> tuple[str, bool]:
        """A repeated call is answered with `steering` instead of run (or, when it ran and failed as
        before, its `output` carries the steering line); the next turn is sampled and cannot call
        that tool (see _turn_options); after `limits.steers` of them with no new call in between,
        the run is stuck."""
        self._steers += 1
        self._steers_total += 1
        outcome = self._tool_message(call, steering if output is None else output, True, {**(data or {}), "repeat": True})
        if self._steers >= self.limits.steers:
            raise Stuck(f"the model kept repeating calls ({self._steers} steered away in a row; last: {call.name})")
        self._steered_tools.add(call.name)
        return outcome

    # -- helpers --------------------------------------------------------------------------------

    def _tool_message(self, call: ToolCall, output: str, is_error: bool, data: dict[str, Any]) -> tuple[str, bool]:
        self.add({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": output})
        shown = output if len(output) <= EVENT_OUTPUT_CHARS else output[:EVENT_OUTPUT_CHARS] + f"\n[... {len(output) - EVENT_OUTPUT_CHARS} more characters]"
        self.emit(ToolResultEvent(self.turns, call.id, call.name, is_error, shown, data))
        return output, is_error

    def _permission(self, tool: Tool, call: ToolCall, diff: str | None) -> str | None:
        """None when the call may run, else the reason it may not (which goes to the model)."""
        env = self.env
        decision = env.permissions.check(tool, call.arguments, env.workspace)
        if decision.action == "ask":
            if env.approver is None:
                decision_text = (f"{decision.reason}, and nobody can approve it in a headless run; the user can allow "
                                 "it with --allow or --permission-mode")
                self.emit(PermissionEvent(call.id, call.name, "deny", decision_text))
                return decision_text
            approval = env.approver(tool, call.arguments, decision, diff)
            if approval.always_rule:
                env.permissions.remember(approval.always_rule)
            verdict = "allow" if approval.allow else "deny"
            reason = approval.reason or ("approved by the user" if approval.allow else "the user declined")
            self.emit(PermissionEvent(call.id, call.name, verdict, reason))
            return None if approval.allow else reason
        if decision.action == "deny":
            self.emit(PermissionEvent(call.id, call.name, "deny", decision.reason))
            return decision.reason
        return None

    def _checkpoint(self) -> None:
        """Before the first call of a turn that may change files: a snapshot `agent undo` restores."""
        if self._checkpointed_turn == self.turns:
            return
        self._checkpointed_turn = self.turns
        try:
            checkpoint = take_checkpoint(self.env.workspace.root, self.session.id, f"turn {self.turns}")
        except CheckpointError as e:
            self.emit(CheckpointEvent(None, error=str(e)))
            return
        event = CheckpointEvent(checkpoint.ref, checkpoint.label)
        self.session.add_event(event)
        self.emit(event)

    def _format_error(self, turn: ModelTurn) -> None:
        self._format_errors += 1
        self.emit(FormatErrorEvent(self.turns, turn.format_error or ""))
        if self._format_errors >= self.limits.format_errors:
            raise ModelFailure(f"the model wrote {self._format_errors} malformed tool calls in a row "
                               f"(last: {turn.format_error}); try a model with better tool calling")
        self.add({"role": "user", "content": format_error_message(turn.format_error or "", list(self.env.tools))})

    def _finish(self, turn: ModelTurn) -> None:
        """A turn without calls ends the run as done only when it holds an answer: a turn cut by the
        token limit stops the run, and an empty one gets one nudge before the run fails."""
        if turn.finish_reason == "length":
            raise LimitReached(f"the model's turn stopped at its token limit ({turn.stats.generated_tokens} tokens) "
                               "before it finished its answer or call")
        if turn.text.strip():
            raise Done(turn.text)
        self._empty_turns += 1
        self.emit(FormatErrorEvent(self.turns, NO_ANSWER))
        if self._empty_turns > 1:
            raise ModelFailure(f"the model ended its turn without an answer, {self._empty_turns} times in a row"
                               + (" (it only reasoned)" if turn.reasoning.strip() else ""))
        self.add({"role": "user", "content": no_answer_message(list(self.env.tools), bool(turn.reasoning.strip()))})

    def _check_limits(self) -> None:
        turns = self.turns - self._first_turn
        if turns >= self.limits.max_turns:
            raise LimitReached(f"stopped after {turns} model turns (--max-turns {self.limits.max_turns})")
        self._check_time()

    def _check_time(self) -> None:
        left = self.time_left()
        if left is not None and left < 0:
            raise LimitReached(f"stopped after {self.elapsed():.0f} s (--max-time {self.limits.max_seconds:.0f})")

    def elapsed(self) -> float:
        """Seconds since this run began."""
        return time.monotonic() - self._start

    def time_left(self) -> float | None:
        """Seconds this run has left under --max-time; None without a limit."""
        return None if self.limits.max_seconds is None else self.limits.max_seconds - self.elapsed()

    def context_tokens(self) -> int:
        """How many tokens the conversation takes now (what the next request would send)."""
        return self.backend.count_tokens(self.messages, self.env.tool_specs())

    def compact(self, force: bool = False) -> CompactionEvent | None:
        """Shrink the conversation when it no longer leaves room to answer (or, with force, now):
        old tool outputs are elided first, then the history is summarised by the model. Returns
        the compaction event, or None when nothing was done."""
        specs = self.env.tool_specs()
        window = self.backend.context_window
        reserve = min(self.limits.reserve_tokens, window // 4)
        before = self.backend.count_tokens(self.messages, specs)
        if not force and not context.needs_compaction(before, window, reserve):
            return None
        messages, elided = context.elide_tool_outputs(self.messages)
        summarized = False
        if force or context.needs_compaction(self.backend.count_tokens(messages, specs), window, reserve):
            try:
                summary = self.backend.complete(context.compaction_request(messages), []).text
            except ModelError as e:
                raise ModelFailure(f"the conversation no longer fits the context and summarising it failed: {e}") from e
            messages, summarized = context.compacted_conversation(messages, summary), True
        after = self.backend.count_tokens(messages, specs)
        if context.needs_compaction(after, window, reserve):
            raise LimitReached(f"the conversation needs {after} tokens even after compaction; the context holds {window}")
        self.session.replace_messages(messages)
        event = CompactionEvent(elided, summarized, before, after)
        self.session.add_event(event)
        self.emit(event)
        return event

    def _interrupted(self, outcome: Interrupted) -> RunResult:
        """Record the interrupted turn as it stood: the text the model had streamed (marked as
        cut short), and a result for every call that did not get one."""
        if self._streamed:
            self.add({"role": "assistant", "content": self._streamed, "raw": self._streamed, "interrupted": True,
                      "tool_calls": []})
            self._streamed = ""
        self._answer_pending_calls("interrupted by the user before it ran")
        return self._result(outcome)

    def _answer_pending_calls(self, note: str) -> None:
        """Keep the conversation valid after an interrupt: every tool call gets a result."""
        last = next((m for m in reversed(self.messages) if m["role"] == "assistant"), None)
        if last is None:
            return
        answered = {m.get("tool_call_id") for m in self.messages if m["role"] == "tool"}
        for call in last.get("tool_calls", []):
            if call["id"] not in answered:
                self.add({"role": "tool", "tool_call_id": call["id"], "name": call["name"], "content": note})

    def _result(self, outcome: AgentExit) -> RunResult:
        answer = outcome.message if isinstance(outcome, Done) else ""
        error = "" if isinstance(outcome, Done) else outcome.message
        return RunResult(outcome.status, outcome.exit_code, answer, error, self.turns - self._first_turn,
                         self.totals, time.monotonic() - self._start)
