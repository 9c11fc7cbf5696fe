"""One function of a Python file rewritten by the model and put back in place (plain `ast`, nothing
runs). Asked for a whole file, a 1.5B copied it unchanged on every draw (fix_median,
fix_config_keyerror, fix_slugify in run 11); asked for the one function its diagnosis names, it
writes a fifth of the tokens and that function is all it looks at."""

from __future__ import annotations

import ast
import re

DEFINITION_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _tree(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _definitions(tree: ast.Module) -> dict[str, Definition]:
    return {node.name: node for node in tree.body if isinstance(node, DEFINITION_TYPES)}


def _span(node: ast.stmt) -> tuple[int, int]:
    """0-based first line (a definition's decorators included) and the line after its end."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
    return first, node.end_lineno or node.lineno


def focus_function(source: str, diagnosis: str) -> str | None:
    """The one top-level function of `source` the diagnosis names (as `name` or name()); None when
    it names none or several, or the file does not parse."""
    tree = _tree(source)
    if tree is None:
        return None
    functions = [name for name, node in _definitions(tree).items() if not isinstance(node, ast.ClassDef)]
    named = [name for name in functions if re.search(rf"(?<![\w.]){re.escape(name)}\b", diagnosis)]
    return named[0] if len(named) == 1 else None


def function_source(source: str, name: str) -> str:
    tree = _tree(source)
    node = _definitions(tree).get(name) if tree else None
    if node is None:
        return ""
    first, end = _span(node)
    return "".join(source.splitlines(keepends=True)[first:end])


def splice_function(source: str, name: str, reply: str) -> str | None:
    """`source` with the definitions in `reply` put in: `name` and any other definition the file has
    replace theirs, new ones go after `name`, imports the file lacks go after its imports. None
    when the reply does not parse or has no `name`."""
    original, new = _tree(source), _tree(reply)
    if original is None or new is None or name not in _definitions(new):
        return None
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    reply_lines = reply.splitlines(keepends=True)

    def text_of(node: ast.stmt) -> list[str]:
        first, end = _span(node)
        chunk = reply_lines[first:end]
        return [line if line.endswith("\n") else line + "\n" for line in chunk]

    existing = _definitions(original)
    replacements: dict[str, list[str]] = {}
    added: list[str] = []
    imports: list[str] = []
    present = {ast.unparse(node) for node in original.body if isinstance(node, (ast.Import, ast.ImportFrom))}
    for node in new.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if ast.unparse(node) not in present:
                imports += text_of(node)
        elif isinstance(node, DEFINITION_TYPES):
            if node.name in existing:
                replacements[node.name] = text_of(node)
            else:
                added += ["\n", "\n"] + text_of(node)
    # from the bottom up, so earlier line numbers stay valid
    for def_name, node in sorted(existing.items(), key=lambda item: -item[1].lineno):
        if def_name in replacements:
            first, end = _span(node)
            lines[first:end] = replacements[def_name] + (added if def_name == name else [])
    if imports:
        import_ends = [node.end_lineno or node.lineno for node in original.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        docstring = (original.body and isinstance(original.body[0], ast.Expr)
                     and isinstance(original.body[0].value, ast.Constant) and isinstance(original.body[0].value.value, str))
        at = max(import_ends) if import_ends else (original.body[0].end_lineno or 0) if docstring else 0
        lines[at:at] = (["\n"] if at and not import_ends else []) + imports
    return "".join(lines)
