"""`agent eval`: run the agent headless on a suite of small tasks (benchmarks/tasks/) and check
each result with the task's own checker, one fresh git repository per task."""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.core.config import read_toml
from agent.core.repo import run_git
from agent.errors import AgentError

DEFAULT_TIME_LIMIT_S = 600.0
CHECK_TIME_LIMIT_S = 300.0
LOAD_MARGIN_S = 30.0  # of a task's time limit, kept for loading the model: the agent is told the rest (--max-time)
INTERRUPT_GRACE_S = 10.0  # after SIGINT the agent stops its shell commands and saves the session
CHECKER_NAMES = ("check.py", "check.sh")
# the agent runs pytest in the copy; its caches are not changes the agent made
IGNORED_IN_COPY = "__pycache__/\n.pytest_cache/\n*.pyc\n"


@dataclass
class EvalTask:
    name: str
    directory: Path
    prompt: str
    checker: Path
    kind: str
    time_limit: float
    answer_contains: list[list[str]] = field(default_factory=list)  # each entry: alternatives, one must appear


@dataclass
class TaskResult:
    task: str
    kind: str
    solved: bool
    status: str  # the agent's result status (done, error, limit, interrupted), or timeout / crashed
    exit_code: int | None
    turns: int
    tool_calls: int
    invalid_tool_calls: int
    seconds: float
    prompt_tokens: int
    generated_tokens: int
    check_output: str = ""
    error: str = ""  # why the agent stopped, when it did not finish (its result's error)
    steered: int = 0  # repeated calls the agent steered the model away from


# agent eval --ablate: the levers for small models added one at a time (issues 15 and 23); the flags
# each configuration adds to the model flags
ABLATION = (
    ("no constraints", ["--no-constrain", "--no-steer", "--no-auto-test", "--workflow", "free"]),
    ("constraints only", ["--no-steer", "--no-auto-test", "--workflow", "free"]),
    ("+ repeats steered", ["--no-auto-test", "--workflow", "free"]),
    ("+ validated edits", ["--workflow", "free"]),
    ("+ fix workflow (all)", ["--workflow", "auto"]),
)


@dataclass
class AgentRun:
    """What one headless run left behind, read from its stream-json events."""

    status: str
    exit_code: int | None
    answer: str
    events: list[dict[str, Any]]
    seconds: float

    def count(self, event_type: str) -> int:
        return sum(1 for e in self.events if e.get("type") == event_type)

    @property
    def result(self) -> dict[str, Any]:
        """The run's result event; for a run stopped before it wrote one (a timeout), its turns
        and tokens added up from the turns' stats events."""
        result = next((e for e in reversed(self.events) if e.get("type") == "result"), None)
        if result is not None:
            return result
        stats = [e for e in self.events if e.get("type") == "stats"]
        return {"turns": len(stats), "prompt_tokens": sum(int(e.get("prompt_tokens", 0)) for e in stats),
                "generated_tokens": sum(int(e.get("generated_tokens", 0)) for e in stats)}


def load_task(directory: Path) -> EvalTask:
    prompt_file = directory / "task.md"
    checkers = [directory / name for name in CHECKER_NAMES if (directory / name).is_file()]
    missing = [what for what, ok in (("task.md", prompt_file.is_file()), ("repo/", (directory / "repo").is_dir()),
                                     ("check.py or check.sh", bool(checkers))) if not ok]
    if missing:
        raise AgentError(f"the task {directory} has no {', '.join(missing)}; every task needs task.md, repo/ and a checker")
    meta_file = directory / "meta.toml"
    meta = read_toml(meta_file, "task file") if meta_file.is_file() else {}
    expected = meta.get("answer_contains", [])
    return EvalTask(name=directory.name, directory=directory, prompt=prompt_file.read_text(encoding="utf-8"),
                    checker=checkers[0], kind=str(meta.get("kind", "unknown")),
                    time_limit=float(meta.get("time_limit", DEFAULT_TIME_LIMIT_S)),
                    answer_contains=[[e] if isinstance(e, str) else list(e) for e in expected])


def load_suite(suite: Path, names: list[str] | None = None) -> list[EvalTask]:
    """The tasks under `suite` (folders starting with _ or . hold shared helpers), or the named ones."""
    if not suite.is_dir():
        raise AgentError(f"no task folder {suite}; give a folder of tasks (default benchmarks/tasks)")
    available = sorted(p for p in suite.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    if names:
        by_name = {p.name: p for p in available}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise AgentError(f"no task {', '.join(unknown)} in {suite}; there are: {', '.join(by_name) or 'none'}")
        available = [by_name[n] for n in names]
    if not available:
        raise AgentError(f"{suite} holds no tasks")
    return [load_task(p) for p in available]


def prepare_copy(task: EvalTask, workdir: Path) -> None:
    """The task's repository as a fresh git repository with one commit: the agent's checkpoints
    and undo need git, and checkers diff against that commit."""
    shutil.copytree(task.directory / "repo", workdir)
    run_git(workdir, "init", "-q")
    (workdir / ".git" / "info" / "exclude").write_text(IGNORED_IN_COPY)
    for key, value in (("user.name", "agent eval"), ("user.email", "eval@mtp-agent.invalid"), ("commit.gpgsign", "false")):
        run_git(workdir, "config", key, value)
    run_git(workdir, "add", "-A")
    run_git(workdir, "commit", "-qm", f"task {task.name}")


def _environment(sessions: Path) -> dict[str, str]:
    """The agent and the checkers find this interpreter's python and pytest first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "MTP_AGENT_SESSIONS": str(sessions), "PYTHONDONTWRITEBYTECODE": "1"}


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (the shell tool starts its commands in their own
    process groups, so killing the agent's group alone would leave them running)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _stop(process: subprocess.Popen) -> None:
    """SIGINT first (the agent kills its commands and saves the session), then SIGKILL to its group
    and to every process it started."""
    below = _descendants(process.pid)
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=INTERRUPT_GRACE_S)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    for pid in [process.pid, *below]:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    process.wait()


def run_agent(task: EvalTask, workdir: Path, scratch: Path, agent_flags: list[str], time_limit: float) -> AgentRun:
    events_file, log_file = scratch / "events.jsonl", scratch / "agent.log"
    command = [sys.executable, "-m", "agent", "run", str(task.directory / "task.md"), "--output-format", "stream-json",
               "--permission-mode", "yolo", "--max-time", f"{agent_time_limit(time_limit):g}", *agent_flags]
    start = time.monotonic()
    with events_file.open("wb") as out, log_file.open("wb") as err:
        process = subprocess.Popen(command, cwd=workdir, env=_environment(scratch / "sessions"), stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err, start_new_session=True)
        try:
            process.wait(timeout=time_limit)
            timed_out = False
        except subprocess.TimeoutExpired:
            _stop(process)
            timed_out = True
    seconds = time.monotonic() - start
    events = []
    for line in events_file.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut off by the kill
    result = next((e for e in reversed(events) if e.get("type") == "result"), {})
    status = "timeout" if timed_out else result.get("status", "crashed")
    return AgentRun(status=status, exit_code=None if timed_out else process.returncode,
                    answer=result.get("answer") or "", events=events, seconds=seconds)


def agent_time_limit(time_limit: float) -> float:
    """The --max-time a task's agent gets: its time limit less the model's loading, so that it
    stops on its own (its best validated edit in place) before it would be killed."""
    return round(max(time_limit - LOAD_MARGIN_S, time_limit * 0.75), 1)


def check_task(task: EvalTask, workdir: Path, answer: str, scratch: Path) -> tuple[bool, str]:
    """Whether the copy (and the final answer) solves the task: the checker exits 0 in the copy and
    the answer holds one of each `answer_contains` alternatives (case-insensitive)."""
    answer_file = scratch / "answer.txt"
    answer_file.write_text(answer, encoding="utf-8")
    runner = [sys.executable] if task.checker.suffix == ".py" else ["bash"]
    env = {**_environment(scratch / "sessions"), "EVAL_ANSWER_FILE": str(answer_file), "EVAL_TASK_DIR": str(task.directory)}
    try:
        done = subprocess.run([*runner, str(task.checker)], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=CHECK_TIME_LIMIT_S)
    except subprocess.TimeoutExpired:
        return False, f"the checker ran past {CHECK_TIME_LIMIT_S:.0f} s"
    output = (done.stdout + done.stderr).strip()
    lowered = answer.lower()
    missing = [alternatives for alternatives in task.answer_contains
               if not any(a.lower() in lowered for a in alternatives)]
    if missing:
        output += f"\nthe answer lacks {' or '.join(missing[0])!r}"
    return done.returncode == 0 and not missing, output[-2000:]


def evaluate_task(task: EvalTask, agent_flags: list[str], time_limit: float | None, keep: bool = False) -> TaskResult:
    scratch = Path(tempfile.mkdtemp(prefix=f"agent-eval-{task.name}-"))
    workdir = scratch / "repo"
    try:
        prepare_copy(task, workdir)
        run = run_agent(task, workdir, scratch, agent_flags, time_limit or task.time_limit)
        solved, check_output = check_task(task, workdir, run.answer, scratch)
        if run.status == "crashed":  # no result event: what the agent said on stderr is the only clue
            log = (scratch / "agent.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
            check_output = "\n".join(["agent crashed:", *log[-5:], check_output])
    finally:
        if keep:
            print(f"  kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    result = run.result
    return TaskResult(task=task.name, kind=task.kind, solved=solved, status=run.status, exit_code=run.exit_code,
                      turns=int(result.get("turns", 0)), tool_calls=run.count("tool_call"),
                      invalid_tool_calls=run.count("format_error"), seconds=round(run.seconds, 2),
                      prompt_tokens=int(result.get("prompt_tokens", 0)),
                      generated_tokens=int(result.get("generated_tokens", 0)), check_output=check_output,
                      error=str(result.get("error") or ""),
                      steered=sum(1 for e in run.events if e.get("type") == "tool_result" and (e.get("data") or {}).get("repeat")))


def agent_flags_from(args: Any) -> list[str]:
    """The `agent run` flags that pick and configure the model, from `agent eval`'s options; paths
    are made absolute because the agent runs in the task's copy."""
    flags: list[str] = []
    for dest, flag in (("backend", "--backend"), ("model", "--model"), ("script", "--script"), ("base_url", "--base-url"),
                       ("api_key", "--api-key"), ("temperature", "--temperature"), ("device", "--device"),
                       ("ctx", "--ctx"), ("weights", "--weights"), ("dtype", "--dtype"), ("prefill_dtype", "--prefill-dtype"),
                       ("activations", "--activations"), ("kv_cache", "--kv-cache"),
                       ("chat_template", "--chat-template"), ("spec", "--spec"),
                       ("spec_draft_n_max", "--spec-draft-n-max"), ("mtp", "--mtp"), ("max_turns", "--max-turns"),
                       ("workflow", "--workflow")):
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest in ("script", "chat_template", "mtp") or (dest == "model" and Path(value).exists()):
            value = Path(value).resolve()
        flags += [flag, str(value)]
    for dest, off in (("constrain", "--no-constrain"), ("steer", "--no-steer"), ("auto_test", "--no-auto-test")):
        if getattr(args, dest, None) is False:
            flags.append(off)
    if getattr(args, "look_first", None):
        flags.append("--look-first")
    return flags


def summarize(results: list[TaskResult]) -> dict[str, Any]:
    return {"solved": sum(r.solved for r in results), "total": len(results),
            "median_seconds": round(statistics.median(r.seconds for r in results), 2) if results else 0.0}


COLUMNS = (("task", 28), ("solved", 6), ("status", 11), ("turns", 5), ("calls", 5), ("invalid", 7), ("seconds", 8),
           ("prompt", 8), ("generated", 9))


def format_row(r: TaskResult) -> str:
    values = (r.task, "yes" if r.solved else "no", r.status, r.turns, r.tool_calls, r.invalid_tool_calls,
              f"{r.seconds:.1f}", r.prompt_tokens, r.generated_tokens)
    return "  ".join(f"{v!s:<{w}}" if i < 3 else f"{v!s:>{w}}" for i, (v, (_, w)) in enumerate(zip(values, COLUMNS)))


def run_suite(tasks: list[EvalTask], flags: list[str], args: Any) -> dict[str, Any]:
    """Every task with these agent flags, a row printed as each ends; the report of the suite."""
    print("  ".join(f"{name:<{w}}" if i < 3 else f"{name:>{w}}" for i, (name, w) in enumerate(COLUMNS)), flush=True)
    results = []
    for task in tasks:
        results.append(evaluate_task(task, flags, args.time_limit, keep=args.keep))
        print(format_row(results[-1]), flush=True)
    totals = summarize(results)
    print(f"solved {totals['solved']}/{totals['total']}, median {totals['median_seconds']:.1f} s per task")
    shown = [value for i, value in enumerate(flags)
             if value != "--api-key" and (i == 0 or flags[i - 1] != "--api-key")]  # no secrets in reports
    return {"agent_flags": shown, "rows": [asdict(r) for r in results], **totals}


def cmd_eval(args: Any) -> int:
    names = [n.strip() for n in args.tasks.split(",") if n.strip()] if args.tasks else None
    tasks = load_suite(Path(args.suite).resolve(), names)  # the agent and checkers run in copies elsewhere
    flags = agent_flags_from(args)
    if args.ablate is None:
        report = run_suite(tasks, flags, args)
    else:
        configurations = []
        for label, added in ablation_configurations(args.ablate):
            print(f"\n== {label}", flush=True)
            configurations.append({"configuration": label, **run_suite(tasks, flags + added, args)})
        print("\n" + format_ablation(configurations))
        report = {"ablation": configurations}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def ablation_configurations(chosen: str) -> list[tuple[str, list[str]]]:
    """The configurations `--ablate` runs: all, or those numbered (1-based, comma-separated), so a
    table too long for one sitting can be measured a few columns at a time."""
    if chosen == "all":
        return list(ABLATION)
    numbers = [n.strip() for n in chosen.split(",") if n.strip()]
    if not numbers or not all(n.isdigit() and 1 <= int(n) <= len(ABLATION) for n in numbers):
        listed = "; ".join(f"{i} {label}" for i, (label, _) in enumerate(ABLATION, 1))
        raise AgentError(f"--ablate takes configuration numbers from 1 to {len(ABLATION)} ({listed}), not '{chosen}'")
    return [ABLATION[int(n) - 1] for n in dict.fromkeys(numbers)]


def format_ablation(configurations: list[dict[str, Any]]) -> str:
    lines = [f"{'configuration':24} {'solved':>7} {'median s':>9} {'turns':>6} {'invalid':>8} {'steered':>8}"]
    for c in configurations:
        rows = c["rows"]
        turns = statistics.median(r["turns"] for r in rows) if rows else 0
        lines.append(f"{c['configuration']:24} {c['solved']:>3}/{c['total']:<3} {c['median_seconds']:>9.1f} {turns:>6.0f} "
                     f"{sum(r['invalid_tool_calls'] for r in rows):>8} {sum(r['steered'] for r in rows):>8}")
    return "\n".join(lines)


def add_parser(sub, parents: list) -> None:
    evaluate = sub.add_parser("eval", parents=parents, help="run the agent on a suite of tasks and check each result",
                              description="Each task's repo/ is copied into a fresh git repository, the agent runs "
                                          "headless on task.md (--permission-mode yolo), then the task's checker "
                                          "decides. Exit codes: 0 the evaluation ran, 2 bad input.")
    evaluate.add_argument("suite", nargs="?", default="benchmarks/tasks", metavar="DIR",
                          help="the folder of tasks (default benchmarks/tasks)")
    evaluate.add_argument("--tasks", metavar="A,B", help="run only these tasks (folder names, comma-separated)")
    evaluate.add_argument("--time-limit", type=float, metavar="SECONDS",
                          help="wall-clock limit per task, model loading included (default: each task's meta.toml, else 600); "
                               f"the agent is told it, less {LOAD_MARGIN_S:.0f} s for loading, as --max-time")
    evaluate.add_argument("--max-turns", type=int, metavar="N", help="passed to `agent run` (default 30)")
    evaluate.add_argument("--workflow", choices=["free", "fix", "auto"], help="passed to `agent run` (default: auto)")
    evaluate.add_argument("--ablate", nargs="?", const="all", metavar="N,M",
                          help="run the suite once per configuration, adding the small-model levers one at a time "
                               "(1 no constraints; 2 constraints only; 3 + repeats steered; 4 + validated edits; "
                               "5 + fix workflow), and print a table of what each adds; N,M runs only those")
    evaluate.add_argument("--json", metavar="FILE", help="also write the rows and totals to FILE")
    evaluate.add_argument("--keep", action="store_true", help="keep each task's copy, events and session (paths on stderr)")
