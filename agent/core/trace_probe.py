"""Run one failing test (or a script) and print what the functions of the watched files did: the
arguments of each call, the values its locals ended with, what it returned or where it raised.

The fix workflow runs this file with the workspace's own `python`, through the shell tool, so it
uses the standard library only:

    python trace_probe.py WATCHED.py ... -- -m pytest -q tests/test_x.py::test_y
    python trace_probe.py WATCHED.py ... -- script.py ARG ...

With `--lines` it prints instead the statements inside the watched files' functions that never ran.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import reprlib
import runpy
import shlex
import sys
import types
from pathlib import Path

HEADER = "what the code did:"
UNRUN_HEADER = "never run:"
ALL_RUN = "every line ran"
CO_OPTIMIZED = 0x1
MAX_CALLS = 6
MAX_LOCALS = 8
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxset = 8
_SHORT.maxdict = 6
_SHORT.maxlevel = 3
_NOT_VALUES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)


class Call:
    def __init__(self, frame: types.FrameType, path: str) -> None:
        code = frame.f_code
        count = code.co_argcount + code.co_kwonlyargcount + bool(code.co_flags & 4) + bool(code.co_flags & 8)
        self.parameters = code.co_varnames[:count]
        self.head = (f"{path}:{code.co_firstlineno} {code.co_name}("
                     + ", ".join(f"{name}={_value(frame.f_locals.get(name))}" for name in self.parameters) + ")")
        self.lines: list[str] = []
        self.raised: str | None = None

    def on_event(self, frame: types.FrameType, event: str, arg: object):
        if event == "line":
            self.raised = None  # a line runs after an exception only when the function caught it
        elif event == "exception" and self.raised is None:
            kind, error, _ = arg
            self.raised = f"line {frame.f_lineno} raised {kind.__name__}: {_value(error, plain=True)}"
        elif event == "return":
            values = [f"{name} = {_value(value)}" for name, value in frame.f_locals.items()
                      if name not in self.parameters and not name.startswith("@") and not isinstance(value, _NOT_VALUES)]
            self.lines = values[:MAX_LOCALS]
            self.lines.append(self.raised or f"returned {_value(arg)}")
        return self.on_event

    def text(self) -> str:
        return "\n".join([self.head] + [f"    {line}" for line in self.lines or ["(did not return)"]])


def _value(value: object, plain: bool = False) -> str:
    try:
        return str(value)[:120] if plain else _SHORT.repr(value)
    except Exception:  # a repr that fails says nothing useful about the bug
        return "<?>"


def trace(watched: list[str], command: list[str]) -> list[Call]:
    names = {os.path.realpath(path): path for path in watched}
    calls: list[Call] = []

    def on_call(frame: types.FrameType, event: str, arg: object):
        path = _watched_path(names, frame.f_code.co_filename)
        # functions only: not a module's or a class's body, nor a comprehension's
        function = frame.f_code.co_flags & CO_OPTIMIZED and not frame.f_code.co_name.startswith("<")
        if path is None or not function or len(calls) >= MAX_CALLS:
            return None
        calls.append(Call(frame, path))
        return calls[-1].on_event

    _run(command, on_call)
    return calls


def unrun_lines(watched: list[str], command: list[str]) -> list[str]:
    """The statements inside the watched files' functions that the command never ran, as
    `path:line: code` (a test-writing task's tests that leave a branch alone pin nothing there)."""
    names = {os.path.realpath(path): path for path in watched}
    ran: set[tuple[str, int]] = set()

    def on_call(frame: types.FrameType, event: str, arg: object):
        path = _watched_path(names, frame.f_code.co_filename)
        if path is None:
            return None

        def on_line(frame: types.FrameType, event: str, arg: object):
            if event == "line":
                ran.add((path, frame.f_lineno))
            return on_line
        return on_line

    _run(command, on_call)
    unrun = []
    for path in watched:
        source = Path(path).read_text(errors="replace")
        lines = source.split("\n")
        for line in _function_statements(source):
            if (path, line) not in ran:
                unrun.append(f"{path}:{line}: {lines[line - 1].strip()[:120]}")
    return unrun


_RESOLVED: dict[str, str] = {}


def _watched_path(names: dict[str, str], filename: str) -> str | None:
    """The watched path a code object's file is, if any; resolved once per file name (realpath on
    every call pytest makes was most of the probe's time)."""
    resolved = _RESOLVED.get(filename)
    if resolved is None:
        resolved = _RESOLVED[filename] = os.path.realpath(filename)
    return names.get(resolved)


def _function_statements(source: str) -> list[int]:
    """The first line of each statement inside a function, docstrings left out."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found = set()
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = function.body[1:] if ast.get_docstring(function) is not None else function.body
            for statement in body:
                found |= {n.lineno for n in ast.walk(statement) if isinstance(n, ast.stmt)
                          and not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return sorted(found)


def _run(command: list[str], tracer) -> None:
    """Run `-m MODULE ARGS` or `SCRIPT ARGS` here, with its output swallowed, under `tracer`."""
    sys.argv = command[1:] if command[0] == "-m" else command
    sys.path.insert(0, os.getcwd() if command[0] == "-m" else os.path.dirname(os.path.abspath(command[0])))
    sys.dont_write_bytecode = True  # the probe leaves the workspace as it found it
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        sys.settrace(tracer)
        try:
            if command[0] == "-m":
                runpy.run_module(command[1], run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(command[0], run_name="__main__")
        except BaseException:  # a failure is often the point; what matters is what was recorded
            pass
        finally:
            sys.settrace(None)


def _python_command(command: str) -> list[str] | None:
    """`command` as words when it runs Python (`python ...`, `python3 ...`; a bare `pytest` as
    `python -m pytest`), None otherwise."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if words[:1] == ["pytest"]:
        words = ["python", "-m", *words]
    if len(words) < 2 or not re.fullmatch(r"python(3(\.\d+)?)?", words[0]):
        return None
    return words


def probe_command(command: str, output: str, watched: list[str]) -> str | None:
    """The command that traces `command` (pytest: its first failing test in `output`; a Python
    script or module) with the watched files; None for anything else."""
    words = _python_command(command)
    if words is None or not watched:
        return None
    if words[1:3] == ["-m", "pytest"]:
        failed = re.search(r"^FAILED (\S+::\S+)", output, re.MULTILINE)
        if failed is None:
            return None
        target = ["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", failed.group(1)]
    elif words[1] == "-m" or words[1].endswith(".py"):
        target = words[1:]
    else:
        return None
    return shlex.join([words[0], str(Path(__file__).resolve()), *watched, "--", *target])


def coverage_command(command: str, watched: list[str]) -> str | None:
    """The command that finds what `command` (pytest) leaves unrun in the watched files."""
    words = _python_command(command)
    if words is None or not watched or words[1:3] != ["-m", "pytest"]:
        return None
    return shlex.join([words[0], str(Path(__file__).resolve()), "--lines", *watched, "--", "-m", "pytest", "-q",
                       "-p", "no:cacheprovider", *words[3:]])


def main(argv: list[str]) -> int:
    lines = argv[:1] == ["--lines"]
    argv = argv[1:] if lines else argv
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: trace_probe.py [--lines] WATCHED.py ... -- (-m MODULE | SCRIPT) [ARG ...]", file=sys.stderr)
        return 2
    split = argv.index("--")
    if lines:
        unrun = unrun_lines(argv[:split], argv[split + 1:])
        print("\n".join([UNRUN_HEADER, *unrun] if unrun else [ALL_RUN]))
        return 0
    calls = trace(argv[:split], argv[split + 1:])
    if calls:
        print(HEADER)
        print("\n".join(call.text() for call in calls))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
