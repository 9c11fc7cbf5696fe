"""Finding what a task is about without the model: the command that shows the problem, and the
files the task and that command's output point at.

A 0.5B-1.5B model rarely runs the failing command on its own and often reads files at random; the
workflow (core/workflow.py) does these steps for it from plain evidence: paths written in the task
or in a traceback, the modules a failing test imports, and the files that define the names the
task mentions.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from agent.core.repo import repository_files

COMMAND_WORDS = ("pytest", "python", "python3", "npm", "make", "cargo", "go", "node", "bash", "sh", "./")
# short tracebacks: each failure's assertion and error without the whole test function (a
# third of the tokens on a four-failure run), which a small model reads twice: as the result, then in the diagnosis request
TEST_COMMAND = "python -m pytest -q --tb=short"
MAX_LOCATED_FILES = 5
MAX_SEARCHED_FILES = 2000  # a big repository's files past this are not searched for the task's names
MAX_SEARCHED_BYTES = 200_000  # nor the tail of a big file
SMALL_REPOSITORY = 8  # source files: with no better evidence, a repository this small is read whole
SOURCE_SUFFIXES = {".py", ".js", ".ts", ".go", ".rs", ".rb", ".java", ".c", ".h", ".cpp", ".sh", ".toml", ".cfg",
                   ".ini", ".json", ".yaml", ".yml", ".md", ".txt", ".csv", ".env"}
_CHANGE_VERB = re.compile(r"\b(fix|change|add|implement|rename|write|update|remove|delete|refactor|make|edit|create)\b")
_DEFECT = re.compile(r"\b(crash\w*|fail\w*|bug\w*|broken|wrong|error\w*|should|must|put|move|replace|extract|raise|lower|support|handle)\b")
_NEGATED = re.compile(r"\b(?:don't|do not|never|no|without)\s+(?:\w+\s+)?\w+")
_NEW_TESTS = re.compile(r"\b(?:add|write|cover\b[^.]*?\bwith)\s+(?:(?:a|an|some|more|new|unit)\s+)*tests?\b")
_BACKTICKED = re.compile(r"`([^`\n]+)`")
_PATH = re.compile(r"[\w./-]+\.[A-Za-z]{1,4}\b")
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.MULTILINE)
# names worth looking up: `backticked` identifiers, and words that can only be identifiers
_IDENTIFIER = re.compile(r"^[A-Za-z_][\w.]*$")
_CODE_WORD = re.compile(r"\b(?:[A-Za-z]+_[\w]+|[A-Z][a-z]+[A-Z]\w*|[A-Z]{2,}(?:_[A-Z0-9]+)+)\b")
# what a command should print: "should print `no rows`", "outputs `OK`"
_NAMED = re.compile(r"^(--?[A-Za-z][\w-]*|[A-Za-z_]\w*)(?:\(.*\)|\s+[A-Z]+)?$")  # `name`, `f(x)`, `--flag N`
_EXPECTED_OUTPUT = re.compile(r"\b(?:print|prints|printing|output|outputs|display|displays|say|says)\s+`([^`\n]+)`")
# a file the task asks to rename or move: "rename helpers.py to text_utils.py"
_MOVE = re.compile(r"\b(?:rename|move)\s+(?:the\s+(?:module|file)\s+)?`?([\w./-]+\.[A-Za-z]{1,4})`?\s+(?:to|as|into)\s+`?([\w./-]+\.[A-Za-z]{1,4})`?",
                   re.IGNORECASE)


def find_command(task: str, root: Path) -> str | None:
    """The command that shows the problem: one the task names in backticks, else the test suite
    when the repository has Python tests; None when there is neither."""
    for snippet in _BACKTICKED.findall(task):
        words = snippet.split()
        if words and words[0].startswith(COMMAND_WORDS):
            return TEST_COMMAND if words == ["pytest"] else snippet
    return test_command(root)


def command_inputs(command: str, task: str, root: Path) -> list[str]:
    """Files a command reads (`python report.py empty.csv`: empty.csv), unless the task names them
    outside the command too: like a failing test, they show the problem and are not the fix."""
    named = _PATH.findall(command)[1:]  # the first is the script the command runs
    elsewhere = set(_PATH.findall(task.replace(command, " ")))
    return [p for p in (_inside(root, n) for n in named if n not in elsewhere) if p]


def expected_outputs(task: str) -> list[str]:
    """What the task says its command should print, each in backticks."""
    return [text for text in _EXPECTED_OUTPUT.findall(task) if text.strip()]


def introduced_names(task: str, root: Path) -> list[str]:
    """Names the task quotes that no file of the repository has yet (`--skip-blank`, `currency`):
    a change that passes the tests without them has not done what was asked. Programs (`pytest`)
    are tools to use, not names to add."""
    names = []
    for snippet in _BACKTICKED.findall(task):
        named = _NAMED.match(snippet.strip())
        if named and not snippet.strip().startswith(COMMAND_WORDS) and not shutil.which(named.group(1)):
            names.append(named.group(1))
    return missing_names(list(dict.fromkeys(names)), root)


def missing_names(names: list[str], root: Path) -> list[str]:
    """The names no repository file mentions (as a whole word)."""
    if not names:
        return []
    texts = [_text(root / f) for f in repository_files(root, limit=MAX_SEARCHED_FILES) if not (root / f).is_symlink()]
    return [name for name in names
            if not any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) for text in texts)]


def file_moves(task: str, root: Path) -> list[tuple[str, str]]:
    """Files the task asks to rename or move: (existing file, new path that is free)."""
    moves = []
    for source, target in _MOVE.findall(task):
        source_path, target_path = _inside(root, source), Path(target)
        if source_path and not target_path.is_absolute() and ".." not in target_path.parts \
                and not (root / target_path).exists():
            moves.append((source_path, target_path.as_posix()))
    return moves


def test_command(root: Path) -> str | None:
    if any(root.glob("test_*.py")) or any(root.glob("tests/**/test_*.py")) or any(root.glob("*_test.py")):
        return TEST_COMMAND
    return None


def is_question(task: str) -> bool:
    """A task that asks something and asks for no change ("don't change anything" is not one)."""
    return "?" in task and not _CHANGE_VERB.search(_plain(task))


def asks_for_change(task: str) -> bool:
    """Whether the task asks for a change to the code: a verb such as fix, add or rename, or a
    described defect or wish ("crashes", "the tests fail", "should print"), not negated and not
    inside `code`."""
    plain = _plain(task)
    return bool(_CHANGE_VERB.search(plain) or _DEFECT.search(plain))


def asks_for_tests(task: str) -> bool:
    """Whether the task asks for new tests ("add a test for it", "cover it with a test", "write
    tests for"), not only for the existing ones to pass."""
    return bool(_NEW_TESTS.search(_plain(task)))


def _plain(task: str) -> str:
    return _NEGATED.sub(" ", _BACKTICKED.sub(" ", task).lower())


def is_test(path: str) -> bool:
    name = Path(path).name
    return name.startswith("test_") or name.endswith("_test.py") or "tests" in Path(path).parts


def new_files(task: str, root: Path) -> list[str]:
    """Files the task names that are not there yet (to be written)."""
    named: list[str] = []
    for match in _PATH.findall(task):
        path = Path(match)
        if path.is_absolute() or ".." in path.parts or path.suffix not in SOURCE_SUFFIXES:
            continue
        if not (root / path).exists() and not (len(path.parts) == 1 and any(root.glob(f"*/{path}"))) \
                and path.as_posix() not in named:
            named.append(path.as_posix())
    return named


def located_files(task: str, output: str, root: Path, read_small_repository: bool = False) -> list[str]:
    """Repository files the task and the failure point at, most relevant first: code before tests;
    the task's and the failure's paths, then what the tests among them import, then the files
    that define, then use, the names the task uses; a small repository is read whole when nothing
    points anywhere, or when asked (a question)."""
    found: list[str] = []

    def add(relative: str | None) -> None:
        if relative and relative not in found:
            found.append(relative)

    for text in (task, output):
        for match in _PATH.findall(text):
            add(_inside(root, match))
    files = [f for f in repository_files(root, limit=MAX_SEARCHED_FILES)
             if Path(f).suffix in SOURCE_SUFFIXES and not (root / f).is_symlink()]
    names = task_names(task)
    for name in names:
        for path in _defining(root, files, name):
            add(path)
    for name in names:  # a rename changes every file that uses the name
        for path in _mentioning(root, files, name):
            add(path)
    # a module to rename or move: every file that imports it changes
    moved = {_module_name(source) for source, _ in file_moves(task, root) if source.endswith(".py")}
    for path in files:
        if path.endswith(".py") and moved & {m.split(".")[0] for m in _imported_modules(root / path)}:
            add(path)
    for test in [p for p in found if is_test(p)]:
        for module in _imported_modules(root / test):
            add(_inside(root, module.replace(".", "/") + ".py"))
    modules = {_module_name(p) for p in found if not is_test(p) and p.endswith(".py")}
    for test in [f for f in files if is_test(f) and f.endswith(".py")]:  # the tests of the code found
        if modules & {m.split(".")[-1] for m in _imported_modules(root / test)}:
            add(test)
    code_files = [f for f in files if Path(f).suffix not in (".md", ".txt", ".toml")]
    # a question's answer is often one call away from where its names are: read a small repository whole
    nothing_found = not [p for p in found if not is_test(p)]
    if (nothing_found or read_small_repository) and len(code_files) <= SMALL_REPOSITORY:
        for path in code_files:
            add(path)
    code = [p for p in found if not is_test(p)]
    tests = [p for p in found if is_test(p)]
    return (code + tests)[:MAX_LOCATED_FILES]


def task_names(task: str) -> list[str]:
    """Identifiers the task mentions: backticked ones (not commands or paths) and words that can
    only be code (snake_case, CamelCase, CONSTANT_CASE)."""
    names: list[str] = []
    for snippet in _BACKTICKED.findall(task):
        word = snippet.strip().removesuffix("()")
        if _IDENTIFIER.match(word) and not _PATH.fullmatch(word) and not word.startswith(COMMAND_WORDS):
            names.append(word.split(".")[-1])
    prose = _PATH.sub(" ", _BACKTICKED.sub(" ", task))
    names += [w for w in _CODE_WORD.findall(prose) if not _PATH.fullmatch(w)]
    return list(dict.fromkeys(names))


def _defining(root: Path, files: list[str], name: str) -> list[str]:
    definition = re.compile(rf"^\s*(?:def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*[:=]", re.MULTILINE)
    return [f for f in files if definition.search(_text(root / f))]


def _mentioning(root: Path, files: list[str], name: str) -> list[str]:
    word = re.compile(rf"\b{re.escape(name)}\b")
    return [f for f in files if word.search(_text(root / f))]


def _text(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_SEARCHED_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _inside(root: Path, name: str) -> str | None:
    path = Path(name)
    candidates = [path] if path.is_absolute() else [root / path]
    if not path.is_absolute() and "/" not in name:
        candidates += sorted(root.glob(f"*/{name}"))[:1]
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
            relative = resolved.relative_to(root.resolve())
        except (OSError, ValueError):
            continue
        if resolved.is_file() and ".git" not in relative.parts:
            return relative.as_posix()
    return None


def _module_name(path: str) -> str:
    return Path(path).stem if Path(path).stem != "__init__" else Path(path).parent.name


def _imported_modules(path: Path) -> list[str]:
    return [a or b for a, b in _IMPORT.findall(_text(path))]
