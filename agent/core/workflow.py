"""A fixed workflow for small models (Agentless-like): reproduce -> locate -> edit -> validate.

A 0.5B-1.5B model in a free loop rarely runs the failing command on its own, reads the same file
again instead of editing it, and copies line numbers or a tool result into the file it writes.
With `--workflow fix` (or `auto`), the agent itself runs the command the task names (else the test
suite) and reads the files the task and the failure point at (core/locate.py); it asks the model
only what a small model is good at, each in a fixed shape held by the grammar: which of those
files to change (a JSON list, when there is a choice), what must change in them (a sentence or
two; asked for a whole file at once, a 1.5B copies it unchanged), then each file's whole new text
as one code block, or the one function the diagnosis names (splice.py), which the agent writes
with write_file. Then it runs the command again. With the
diagnosis request goes what the code did in the failing run (trace_probe.py); with a question's,
the values folded from the code (values.py). A rewrite that comes out as code known to fail is
drawn again with a seed before it is written.

An attempt that fails is undone (files and conversation back to where the attempt began) and the
next attempt samples the diagnosis with a seed of its own, so the attempts are independent draws
and the command picks the one that works (best-of-n with the tests as the judge). Shown its failed
attempt and the new output, a 1.5B wrote the same diagnosis again word for word (measured:
docs/benchmarks.md), so a failed attempt is not kept as feedback. Once the command passes, or for a question once the files
are read, the model writes the answer. The agent's own steps go through the same tools,
permissions and events as the model's calls. After MAX_ATTEMPTS, or when a file is too big to
write whole, the free loop takes over; under --max-time, attempts go on while the longest one so
far still fits in the time left (best-of-n with n set by the budget, not a count). `free` is the
plain loop.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.backends.base import Reply, ToolCall, TurnOptions, TurnSampling
from agent.core.locate import (asks_for_change, asks_for_tests, command_inputs, expected_outputs, file_moves, find_command,
                               introduced_names, is_question, is_test, located_files, missing_names, new_files,
                               test_command)
from agent.core.permissions import DENIED
from agent.core.splice import focus_function, function_source, splice_function
from agent.core.trace_probe import HEADER as PROBE_HEADER
from agent.core.trace_probe import UNRUN_HEADER, coverage_command, probe_command
from agent.core.values import value_hints
from agent.core.workflow_text import (code_block, defines, error_lines, failing_tests, file_text, language_of,
                                      parsing_prefix, progress, runs_away, tests_in, trimmed, unnumbered,
                                      without_line_number, without_repeats)
from agent.prompts import render_prompt

if TYPE_CHECKING:
    from agent.core.loop import Agent

WORKFLOWS = ("auto", "fix", "free")
SMALL_MODEL_PARAMETERS = 4_000_000_000
MAX_ATTEMPTS = 6  # independent attempts before the free loop takes over, without --max-time
MAX_REWRITE_LINES = 300  # a longer file is edited in the free loop, not written whole
NEW_FILE_TOKENS = 800  # a rewrite's token bound: this for a new file, more for a long one
README_NAMES = ("README.md", "README.rst", "README.txt", "README")
MAX_README_LINES = 60  # its opening says what a repository is
DIAGNOSIS_TOKENS = 160
MAX_LESSONS = 3  # errors of earlier attempts shown with a diagnosis request
ANSWER_TOKENS = 400
ATTEMPT_SAMPLING = (0.8, 0.95)  # temperature, top-p of the diagnoses after the first (greedy) one
MAX_COVERAGE_ROUNDS = 2  # attempts after tests that pass but leave code unrun, when the task asks for tests
MAX_REWRITE_SAMPLES = 2  # an attempt's rewrites that come out as code known to fail are drawn again this often
# the lengths bounded so that the answer is reached: a 1.5B's working repeated itself to the token limit
WORKED_ANSWER = {"type": "object", "additionalProperties": False, "required": ["relevant_code", "working", "answer"],
                 "properties": {"relevant_code": {"type": "array", "items": {"type": "string", "maxLength": 200},
                                                  "minItems": 1, "maxItems": 8},
                                "working": {"type": "string", "maxLength": 600},
                                "answer": {"type": "string", "maxLength": 400}}}


@dataclass
class FixWorkflow:
    """Stages: reproduce and locate happen in start(); then `choose` (which files to change),
    `diagnose` (what must change), `rewrite` (one file per turn) and validation after the last
    file, which starts a new attempt or leads to `answer`; `free` when the model is on its own."""

    task: str
    command: str | None
    stage: str = "diagnose"
    question: bool = False
    candidates: list[str] = field(default_factory=list)  # files the model may change or create
    targets: list[str] = field(default_factory=list)  # chosen; rewritten in order
    written: int = 0  # targets written in this attempt
    original: dict[str, str | None] = field(default_factory=dict)  # each file's text before the edits (None: new)
    failure: str = ""  # the command's output before the edits
    attempt: int = 0  # attempts that failed so far
    attempt_start: int = 0  # the conversation's length where each attempt starts
    failed_states: set[str] = field(default_factory=set)  # workspace states the command failed in
    lessons: list[str] = field(default_factory=list)  # errors of failed attempts that the original output lacks
    moved: set[str] = field(default_factory=set)  # files the task renamed, by their old paths
    introduced: list[str] = field(default_factory=list)  # names the task quotes that no file has yet
    trace: str = ""  # what the code to change did in the failing run (trace_probe.py)
    failed_edits: list[dict[str, str | None]] = field(default_factory=list)  # the targets' texts in failed attempts
    resampled: int = 0  # rewrites of this attempt drawn again
    coverage_rounds: int = 0  # attempts that followed tests leaving code unrun
    _retract: int | None = None  # the conversation's length before a reply that is drawn again
    _copied: str | None = None  # a file the last rewrite copied unchanged, to be said so
    initial: dict[str, str | None] = field(default_factory=dict)  # the candidates' texts before any attempt
    repair: tuple | None = None  # while only the new tests are rewritten: the state to go back to
    new_tests_failing: list[str] = field(default_factory=list)  # the new tests a test repair is about
    diagnosis: str = ""  # this attempt's: what must change
    attempt_began: float = 0.0  # the run's seconds when this attempt began
    longest_attempt: float = 0.0  # seconds the longest attempt so far took
    _asked: bool = False  # this stage's request is in the conversation

    def start(self, agent: Agent) -> None:
        root = agent.env.workspace.root
        self.question = is_question(self.task)
        output, failed, _ = self._check(agent) if self.command and not self.question else ("", False, [])
        if output.startswith(DENIED):
            self.stage = "free"  # the command may not run here (ask mode, headless): no way to validate
            return
        self.failure = output if failed else ""
        located = located_files(self.task, output, root, read_small_repository=self.question)
        if not self.question:
            located = self._move_files(agent, located)
            self.introduced = introduced_names(self.task, root)
        elif not located:  # a question about the repository as a whole: what it says of itself
            located = [name for name in README_NAMES if (root / name).is_file()][:1]
        # the code to change is read last, so it is what the model saw most recently
        read = [path for path in reversed(located) if self._read(agent, path)]
        if self.question:  # answered from what was read; with nothing found, the model looks itself
            self._enter("answer" if read else "free")
            return
        # the tests a failing command runs are the task's specification, not something to change
        spec = {p for p in located if is_test(p)} if failed else set()
        spec |= set(command_inputs(self.command, self.task, root)) if self.command else set()
        self.candidates = [p for p in located if p not in spec and p in self.original]
        self.candidates += [p for p in new_files(self.task, root) if p not in self.candidates and p not in self.moved]
        for path in self.candidates:
            self.original.setdefault(path, None)
        self.initial = {path: self.original[path] for path in self.candidates}
        self.trace = self._trace(agent)
        if not self.candidates:
            self._enter("free")
        elif len(self.candidates) == 1:
            self._set_targets(list(self.candidates))
            self._begin_attempt(agent)
        else:
            self._enter("choose")

    # -- the loop's hooks ------------------------------------------------------------------------

    def before_turn(self, agent: Agent) -> None:
        """Put this stage's request in the conversation (once per request)."""
        if self._retract is not None:  # the reply drawn again leaves the conversation; the request stays
            agent.rewind(self._retract)
            self._retract = None
        if self._copied is not None:  # a copy stays, and the model is told it is one
            agent.add({"role": "user", "content": render_prompt("workflow/rewrite_unchanged.md", path=self._copied,
                                                                language=language_of(self._copied), command=self.command,
                                                                function=self._focus(self._copied))})
            self._copied = None
        if self._asked or self.stage == "free":
            return
        self._asked = True
        if self.stage == "choose":
            text = render_prompt("workflow/choose_files.md", candidates=self.candidates)
        elif self.stage == "diagnose":
            shown = self.targets + [p for p in (self.repair[1] if self.repair else []) if p not in self.targets]
            files = [(path, language_of(path), self.original.get(path)) for path in shown]
            text = render_prompt("workflow/diagnose.md", files=files, failure=trimmed(self.failure),
                                 command=self.command, task=self.task, lessons=self.lessons, trace=self.trace,
                                 new_tests_failing=self.new_tests_failing, tests_only=self.repair is not None)
        elif self.stage == "rewrite":
            path = self.targets[self.written]
            text = render_prompt("workflow/rewrite_file.md", path=path, language=language_of(path),
                                 failure=bool(self.failure), command=self.command, function=self._focus(path),
                                 adds_tests=is_test(path) and asks_for_tests(self.task))
        else:
            values = value_hints({p: t for p, t in self.original.items() if t}) if self.question else []
            text = render_prompt("workflow/answer.md", question=self.question, command=self.command, task=self.task,
                                 values=values)
        agent.add({"role": "user", "content": text})

    def turn_options(self) -> TurnOptions | None:
        if self.stage == "choose":
            schema = {"type": "array", "items": {"enum": self.candidates}, "minItems": 1,
                      "maxItems": len(self.candidates)}
            return TurnOptions(reply=Reply("json", schema=schema))
        if self.stage == "diagnose":
            sampling = TurnSampling(*ATTEMPT_SAMPLING, seed=self.attempt) if self.attempt else None
            return TurnOptions(sampling=sampling, reply=Reply("text", max_tokens=DIAGNOSIS_TOKENS))
        if self.stage == "rewrite":
            path = self.targets[self.written]
            before = self.original.get(path)
            # bounded so that a model repeating itself costs one attempt, not the run's time
            limit = NEW_FILE_TOKENS if before is None else max(NEW_FILE_TOKENS, len(before) // 2 + 512)
            function = self._focus(path)
            if function:
                limit = max(NEW_FILE_TOKENS // 2, len(function_source(before or "", function)) // 2 + 256)
            sampling = TurnSampling(*ATTEMPT_SAMPLING, seed=100 * self.attempt + self.resampled) if self.resampled else None
            language = language_of(path)
            return TurnOptions(sampling=sampling, reply=Reply("code", language=language, max_tokens=limit),
                               stop_when=runs_away if language == "python" else None)
        if self.stage == "answer" and self.question:
            # the grammar has it quote and work through the code before it answers: asked in
            # prose to do so, a 1.5B gave the first constant it saw (8000 for BASE_PORT + 80)
            return TurnOptions(reply=Reply("json", schema=WORKED_ANSWER, max_tokens=ANSWER_TOKENS))
        if self.stage == "answer":
            return TurnOptions(reply=Reply("text", max_tokens=ANSWER_TOKENS))
        return None

    def expects_reply(self) -> bool:
        return self.stage != "free"

    def final_answer(self, reply: str) -> str:
        """The run's answer from the answer reply: a worked answer reads as its steps, then the answer."""
        if not self.question:
            return reply.strip()
        try:
            worked = json.loads(reply)
            # the lines as the file has them, without the read_file numbers a model copies along
            lines = "\n".join("    " + without_line_number(line) for line in worked["relevant_code"])
            return f"{worked['answer'].strip()}\n\nFrom the code:\n{lines}\n{worked['working'].strip()}"
        except (ValueError, KeyError, TypeError):
            return reply.strip()  # cut at its bound: what was written

    def cut_reply_is_fine(self) -> bool:
        return self.stage in ("diagnose", "answer")  # prose cut at its bound still says what it found

    def salvage_cut_reply(self, reply: str) -> str | None:
        """A rewrite cut at its bound, or where it ran on repeating a line, kept without its
        unfinished tail and repeats when what is left parses (a small model writing tests often runs
        on repeating them); None when nothing can be kept."""
        if self.stage != "rewrite":
            return None
        language = language_of(self.targets[self.written])
        kept = parsing_prefix(without_repeats(code_block(reply))) if language == "python" else None
        return f"```{language}\n{kept}```" if kept else None

    def on_cut_reply(self, agent: Agent, tokens: int) -> bool:
        """A reply cut at its token limit: a rewrite that ran on fails its attempt (True); elsewhere
        the run stops (False)."""
        if self.stage != "rewrite":
            return False
        self._learn([f"`{self.targets[self.written]}` ran past {tokens} tokens; write it shorter"])
        self._fail_attempt(agent)
        return True

    def on_reply(self, agent: Agent, text: str) -> list[ToolCall]:
        """The calls a reply stands for: a rewrite is a write_file of the block's text; a choice
        of files sets the targets; a diagnosis leads to the rewrites."""
        if self.stage == "choose":
            chosen = [p for p in self.candidates if f'"{p}"' in text]
            self._set_targets(chosen or list(self.candidates))
            self._begin_attempt(agent)
            return []
        if self.stage == "diagnose":
            self.diagnosis = text
            self._enter("rewrite")
            return []
        path = self.targets[self.written]
        content = code_block(text)
        function = self._focus(path)
        if function:
            content = splice_function(self.original[path] or "", function, content) or ""
            if not content:
                self._learn([f"the reply for `{path}` had no `def {function}` that parses"])
                self._fail_attempt(agent)
                return []
        if content and not content.endswith("\n"):
            content += "\n"
        if self._known_to_fail(agent, path, content) and self.resampled < MAX_REWRITE_SAMPLES:
            # greedy decoding wrote code that failed before (a 1.5B wrote the same broken merge
            # three attempts in a row, each after a new diagnosis): drawn again, with a seed. A
            # copy of the file as it is comes back the same when only drawn again (measured:
            # settings.py three times), so the model is told that it copied.
            self.resampled += 1
            if content == self.original.get(path):
                self._copied = path
            else:
                self._retract = len(agent.messages)
            return []
        return [ToolCall(f"rewrite_{self.attempt}_{self.written}", "write_file", {"path": path, "content": content})]

    def after_turn(self, agent: Agent, calls: list[ToolCall]) -> None:
        """After the last file of an attempt: validate, and undo the attempt when it fails."""
        if self.stage != "rewrite" or not calls:
            return
        self.written += 1
        self._asked = False
        if self.written < len(self.targets):
            return
        root = agent.env.workspace.root
        self.command = self.command or test_command(root)  # tests the model may have written
        if self.command is None:
            output, failed, unmet = "", False, []
        elif agent.workspace_state() in self.failed_states:
            output, failed, unmet = "", True, []  # as before, or as in an attempt that failed: the verdict is known
        else:
            output, failed, unmet = self._check(agent)
        if not failed:  # the tests pass; what the task asked for must be there too
            unmet = [f"the task asks for `{name}`, and no file has it" for name in missing_names(self.introduced, root)]
            tests = [p for p in self.targets if is_test(p)]
            if asks_for_tests(self.task) and (tests_in(file_text(root, p) for p in tests)
                                              <= tests_in(self.initial.get(p) for p in tests)):
                unmet.append("the task asks for a new test, and no test was added")
            elif asks_for_tests(self.task) and not unmet and self.repair is None and self._untested(root, tests):
                # the code may be right: the tests are rewritten alone, once; after that passing
                # tests that exercise it some other way (the function, not the flag) are kept
                lesson = f"the task asks for a test of {self._untested(root, tests)}, and no test uses it"
                self._repair_tests(agent, "", [], [lesson])
                return
            failed = bool(unmet)
        if not failed and asks_for_tests(self.task) and self.coverage_rounds < MAX_COVERAGE_ROUNDS:
            unrun = self._unrun(agent)
            if unrun:  # the passing tests are the base of another attempt, told what they leave unrun
                self.coverage_rounds += 1
                self._keep_attempt(agent, "", [f"no test runs {line}" for line in unrun[:MAX_LESSONS]])
                return
        if not failed:
            self._enter("answer")
            return
        new_failing = self._only_new_tests_fail(output) if self.repair is None and not unmet else []
        if new_failing:
            self._repair_tests(agent, output, new_failing)
            return
        if progress(self.failure, output):
            self._keep_attempt(agent, output)
            return
        self._learn(error_lines(output) + unmet)
        self._fail_attempt(agent)

    # -- steps -----------------------------------------------------------------------------------

    def _known_to_fail(self, agent: Agent, path: str, content: str) -> bool:
        """Whether the attempt's files, with `content` as the last of them, are as they were when
        the command failed: before any edit, or in an earlier attempt."""
        if self.written < len(self.targets) - 1:
            return False
        root = agent.env.workspace.root
        edit = {p: file_text(root, p) for p in self.targets[:-1]} | {path: content}
        unchanged = {p: self.original.get(p) for p in self.targets}
        return (bool(self.failure) and edit == unchanged) or edit in self.failed_edits

    def _focus(self, path: str) -> str | None:
        """The one function of `path` to rewrite, when the diagnosis names one (else the whole file
        is): Python code, not tests, in a task that neither renames nor adds a name, in attempts
        0, 2, 4; in a test repair, the one new test that fails."""
        before = self.original.get(path)
        if self.repair is not None and len(self.new_tests_failing) == 1 and before and path.endswith(".py"):
            return focus_function(before, self.new_tests_failing[0])  # the one new test that fails
        # every other attempt writes the whole file: the change may lie outside the function named
        # (fix_empty_report's `no rows` belongs in render(), its diagnosis named summarize())
        if self.attempt % 2 or not before or not path.endswith(".py") or is_test(path) or self.introduced or self.moved:
            return None
        return focus_function(before, self.diagnosis)

    def _learn(self, errors: list[str]) -> None:
        """Keep what went wrong in an attempt, when the original output did not show it already."""
        known = set(error_lines(self.failure)) | set(self.lessons)
        self.lessons += [line for line in errors if line not in known][:MAX_LESSONS - len(self.lessons)]

    def _fail_attempt(self, agent: Agent) -> None:
        root = agent.env.workspace.root
        self.failed_edits.append({p: file_text(root, p) for p in self.targets})
        if self.repair is not None:  # the code was not right after all: back to before its attempt
            learned = self.lessons  # what the repair met stays known to the next attempts
            self.original, self.targets, self.failure, self.lessons, self.trace = self.repair
            self._learn(learned)
            self.repair, self.new_tests_failing = None, []
            self.written = len(self.targets) - 1
        self._undo(agent)
        self._next_attempt(agent)

    def _only_new_tests_fail(self, output: str) -> list[str]:
        """The failing tests, when each is one this attempt added to a test file it rewrote next to
        the code (the other tests pass); [] otherwise."""
        tests = [p for p in self.targets if is_test(p)]
        if not tests or len(tests) == len(self.targets) or "\nERROR " in output:
            return []
        failing = failing_tests(output)
        new = [name for path, name in failing if path in tests and not defines(self.initial.get(path), name)]
        return list(dict.fromkeys(new)) if failing and len(new) == len(failing) else []

    def _repair_tests(self, agent: Agent, output: str, names: list[str], lessons: list[str] | None = None) -> None:
        """Only tests the attempt added fail (`names`), or its tests leave out what the task adds
        (`lessons`): keep its code and rewrite just the tests, once (a 1.5B's --limit was right,
        and its new test expected `3 three` from a text with one "three"); when that fails too,
        everything goes back to before the attempt."""
        self.repair = (dict(self.original), list(self.targets), self.failure, list(self.lessons), self.trace)
        self.new_tests_failing = names
        self._keep_attempt(agent, output, lessons, only_tests=True)

    def _untested(self, root: Path, tests: list[str]) -> str:
        """The names the task adds, quoted, when the tests use none of them (a 1.5B asked to cover
        a new --skip-blank flag with a test added one that never passed it); "" otherwise."""
        texts = [file_text(root, p) or "" for p in tests]
        if not self.introduced or any(name in text for name in self.introduced for text in texts):
            return ""
        return " or ".join(f"`{name}`" for name in self.introduced)

    def _next_attempt(self, agent: Agent) -> None:
        self.attempt += 1
        self.longest_attempt = max(self.longest_attempt, agent.elapsed() - self.attempt_began)
        if self._out_of_attempts(agent.time_left()):
            self._enter("free")
        else:
            self._begin_attempt(agent)

    def _out_of_attempts(self, time_left: float | None) -> bool:
        """Without a time limit, MAX_ATTEMPTS; with one, whether another attempt as long as the
        longest so far no longer fits (fix_slugify and merge_intervals ended 6 failed attempts with
        half of their 300 s left)."""
        if time_left is None:
            return self.attempt >= MAX_ATTEMPTS
        return time_left < self.longest_attempt

    def _set_targets(self, targets: list[str]) -> None:
        """The files to rewrite; a test file among them when the task asks for a test (a 1.5B that
        picked only the code wrote no test)."""
        if asks_for_tests(self.task) and not any(is_test(p) for p in targets):
            targets += [p for p in self.candidates if is_test(p)][:1]
        self.targets = targets

    def _keep_attempt(self, agent: Agent, output: str, lessons: list[str] | None = None,
                      only_tests: bool = False) -> None:
        """An attempt that went forward (more tests pass and fewer fail, or tests the task asked for
        pass) is the base of the next ones: its files are shown as the code, its output as the
        failure and `lessons` as what is left, in a conversation back at the attempt's start (shown
        its own attempt in place, a 1.5B wrote the same diagnosis again). `only_tests`: the next
        attempt rewrites the test files alone, with no trace."""
        for path in self.targets:
            self.original[path] = file_text(agent.env.workspace.root, path)
        self.failure, self.lessons = output, lessons or []
        if only_tests:
            self.targets, self.trace = [p for p in self.targets if is_test(p)], ""
        else:
            self.trace = self._trace(agent)
        agent.rewind(self.attempt_start)
        self._next_attempt(agent)

    def _enter(self, stage: str) -> None:
        self.stage, self._asked = stage, False

    def _begin_attempt(self, agent: Agent) -> None:
        self.written = self.resampled = 0
        self.attempt_began = agent.elapsed()
        self.attempt_start = len(agent.messages)
        self._enter("diagnose")

    def abandon(self, agent: Agent) -> None:
        """The run stops (a limit) while an attempt has written some of its files: they go back to
        the last state the command judged (a 1.5B's add_cli_skip_blank ended at --max-time with
        countlines.py half rewritten)."""
        if self.stage == "rewrite" and self.written > 0:
            self._undo(agent)

    def _undo(self, agent: Agent) -> None:
        """Put the targets back as they were (a file the attempt created is removed) and the
        conversation where the attempt began."""
        root = agent.env.workspace.root
        for path in self.targets[:self.written + 1]:
            before = self.original.get(path)
            if before is not None:
                agent.act("write_file", {"path": path, "content": before})
            elif (root / path).is_file():
                agent.act("shell", {"command": f"rm -f -- {shlex.quote(path)}"})
        agent.rewind(self.attempt_start)

    def _move_files(self, agent: Agent, located: list[str]) -> list[str]:
        """Do the renames the task asks for (`mv`, through the tools); the located files by their new names."""
        for source, target in file_moves(self.task, agent.env.workspace.root):
            parent = str(Path(target).parent)
            command = f"mv -- {shlex.quote(source)} {shlex.quote(target)}"
            if parent != ".":
                command = f"mkdir -p -- {shlex.quote(parent)} && {command}"
            if not agent.act("shell", {"command": command})[1]:
                self.moved.add(source)
                located = [target if path == source else path for path in located]
                located += [] if target in located else [target]
        return located

    def _check(self, agent: Agent) -> tuple[str, bool, list[str]]:
        """Run the command: its output, whether it failed (a non-zero exit, or, when the task names
        the command and what it should print, an output without it) and what it did not print."""
        state = agent.workspace_state()
        output, failed = agent.act("shell", {"command": self.command})
        unmet = []
        if not failed and self.command in self.task:
            printed = output.strip().split("\n")[0][:120]
            unmet = [f"`{self.command}` printed `{printed}`, not `{text}`"
                     for text in expected_outputs(self.task) if text not in output]
            if unmet:
                failed = True
                output += "\n" + "\n".join(unmet)
        if failed:
            self.failed_states.add(state)
        return output, failed, unmet

    def _trace(self, agent: Agent) -> str:
        """What the functions of the Python files to change did in the failing run: their arguments,
        the values their locals ended with, what they returned (a 1.5B that read `start = page *
        per_page` as right saw the bug once shown `page=1 ... start = 10`); "" when there is none."""
        command = probe_command(self.command or "", self.failure, self._python_code(agent)) if self.failure else None
        return self._probe(agent, command, PROBE_HEADER)

    def _unrun(self, agent: Agent) -> list[str]:
        """The statements in the functions of the code under test that the passing tests never
        ran (a 1.5B's tests for clamp() left its `raise ValueError` untested)."""
        found = self._probe(agent, coverage_command(self.command or "", self._python_code(agent)), UNRUN_HEADER)
        return [line for line in found.split("\n") if line.strip()]

    def _python_code(self, agent: Agent) -> list[str]:
        """The Python files among the candidates that exist and are not tests: what the probes watch."""
        root = agent.env.workspace.root
        return [p for p in self.candidates if p.endswith(".py") and not is_test(p) and (root / p).is_file()]

    def _probe(self, agent: Agent, command: str | None, header: str) -> str:
        """Run a trace_probe.py command where it needs nobody's approval (it is an extra); what it
        printed after `header`, "" when it did not run, failed or found nothing."""
        if command is None or not agent.may_act_unasked("shell", {"command": command}):
            return ""
        output, failed = agent.act("shell", {"command": command})
        found = output.split(header, 1)
        return "" if failed or len(found) < 2 else found[1].strip().removesuffix("[exit code 0]").strip()

    def _read(self, agent: Agent, path: str) -> bool:
        """Read `path` through the tools (its permissions hold) and keep its text; whether it could be read."""
        # a file too long to write whole is shown only in part (and so is not offered for rewriting)
        limit = MAX_README_LINES if path in README_NAMES else MAX_REWRITE_LINES
        output, failed = agent.act("read_file", {"path": path, "limit": limit})
        text = None if failed else unnumbered(output)
        if text is not None:
            self.original[path] = text
        return not failed


def choose_workflow(name: str, task: str, root: Path, model_parameters: int | None = None) -> FixWorkflow | None:
    """The workflow for a task: None for the free loop. `auto` gives the fix workflow to models of
    at most SMALL_MODEL_PARAMETERS, for tasks that ask for a change or ask a question, and leaves
    larger models, models of unknown size behind a server, and anything else to the free loop. The catalog's 0.5B and 1.5B solve more with it (docs/benchmarks.md);
    the size past which the free loop wins is not measured, 4B is a guess."""
    if name not in WORKFLOWS:
        raise ValueError(f"unknown workflow '{name}'; use one of {', '.join(WORKFLOWS)}")
    small = model_parameters is not None and model_parameters <= SMALL_MODEL_PARAMETERS
    if name == "free" or (name == "auto" and not (small and (asks_for_change(task) or is_question(task)))):
        return None  # auto: a greeting or a request that is neither is the model's to handle
    return FixWorkflow(task, find_command(task, root))
