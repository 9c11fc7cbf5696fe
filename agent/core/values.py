"""Values worked out from Python code without running it, as an editor's inlay hints show them.

Asked what a value is, a 1.5B model copies the right lines and then gets the arithmetic wrong:
8001 for `BASE_PORT + PUBLIC_OFFSET` (8000 + 80) or 6 for `range(RETRIES + 1)` (measured:
docs/benchmarks.md). So the agent folds what can be folded safely: module-level constants
(across `from module import NAME` between the files shown), expressions over them inside
functions, and the length of a `range` over constants. Nothing is imported or executed; an
expression that is not made of literals, known names and arithmetic is left alone.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from pathlib import PurePosixPath

MAX_HINTS = 16
MAX_TEXT = 80  # a string value longer than this is not shown (nor built)
MAX_NUMBER = 10**18  # arithmetic past this is not folded
Value = int | float | str | bool | None | tuple

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


class NotConstant(Exception):
    pass


@dataclass
class _Module:
    path: str
    tree: ast.Module
    names: dict[str, Value]
    variable: set[str]  # bound more than once, or declared global somewhere: not a constant


def value_hints(files: dict[str, str]) -> list[str]:
    """One line per value worked out in these files (path -> text; non-Python files are skipped):
    `path:line  expression = value`."""
    modules = _parse(files)
    _resolve(modules)
    hints: list[str] = []
    for module in modules.values():
        hints += _module_hints(module)
    return list(dict.fromkeys(hints))[:MAX_HINTS]


def _parse(files: dict[str, str]) -> dict[str, _Module]:
    modules = {}
    for path, text in files.items():
        if not path.endswith(".py"):
            continue
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        dotted = ".".join(PurePosixPath(path).with_suffix("").parts)
        modules[dotted.removesuffix(".__init__")] = _Module(path, tree, {}, _variables(tree))
    return modules


def _variables(tree: ast.Module) -> set[str]:
    bound: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.With)):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            bound += [n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound += [alias.asname or alias.name.split(".")[0] for alias in node.names]
    declared = {name for n in ast.walk(tree) if isinstance(n, ast.Global) for name in n.names}
    return {name for name in bound if bound.count(name) > 1} | declared


def _resolve(modules: dict[str, _Module]) -> None:
    """Module constants, imported ones included; repeated until nothing new is learned, so the
    order of the files does not matter."""
    for _ in range(len(modules) + 1):
        learned = False
        for module in modules.values():
            for node in module.tree.body:
                for name, value in _bindings(node, module, modules):
                    if name not in module.names and name not in module.variable:
                        module.names[name] = value
                        learned = True
        if not learned:
            return


def _bindings(node: ast.stmt, module: _Module, modules: dict[str, _Module]) -> list[tuple[str, Value]]:
    if isinstance(node, ast.ImportFrom) and node.module:
        source = modules.get(node.module) or modules.get(node.module.split(".")[-1])
        if source is None:
            return []
        return [(alias.asname or alias.name, source.names[alias.name])
                for alias in node.names if alias.name in source.names]
    target, value = _assignment(node)
    if target is None:
        return []
    try:
        return [(target, _fold(value, module.names))]
    except NotConstant:
        return []


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        return node.target.id, node.value
    return None, None


def _module_hints(module: _Module) -> list[str]:
    hints = []
    for node in module.tree.body:
        target, value = _assignment(node)
        if target in module.names and _uses_name(value):
            hints.append(_hint(module.path, node.lineno, f"{target} = {ast.unparse(value)}", module.names[target]))
    # where a function uses a name whose value is not written next to it, the value is shown there
    hidden = {name for node in module.tree.body if isinstance(node, ast.ImportFrom)
              for alias in node.names for name in [alias.asname or alias.name] if name in module.names}
    hidden |= {target for node in module.tree.body for target, value in [_assignment(node)]
               if target in module.names and _uses_name(value)}
    hidden = {name for name in hidden if not isinstance(module.names[name], tuple)}
    for function in ast.walk(module.tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            hints += _function_hints(module, function, hidden)
    return hints


def _function_hints(module: _Module, function: ast.FunctionDef | ast.AsyncFunctionDef, hidden: set[str]) -> list[str]:
    """Foldable expressions that use a known name, outermost first, and the hidden names as used;
    a function's own assignments hide the module's names of the same spelling."""
    local = {a.arg for a in function.args.args + function.args.kwonlyargs + function.args.posonlyargs}
    local |= {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names = {k: v for k, v in module.names.items() if k not in local}
    hints, covered = [], set()
    for node in ast.walk(function):
        if id(node) in covered or not isinstance(node, ast.expr):
            continue
        if _is_range(node):
            try:
                bounds = [_fold(arg, names) for arg in node.args]
                if any(_uses_name(arg) for arg in node.args) and all(isinstance(b, int) for b in bounds):
                    count = len(range(*bounds))
                    hints.append(f"{module.path}:{node.lineno}  {ast.unparse(node)} = range({', '.join(map(str, bounds))}): "
                                 f"{count} {'pass' if count == 1 else 'passes'}")
                    covered |= {id(n) for n in ast.walk(node)}
            except (NotConstant, TypeError, ValueError):
                pass
        elif isinstance(node, ast.BinOp) and _uses_name(node):
            try:
                value = _fold(node, names)
            except NotConstant:
                continue
            hints.append(_hint(module.path, node.lineno, ast.unparse(node), value))
            covered |= {id(n) for n in ast.walk(node)}
        elif isinstance(node, ast.Name) and node.id in hidden and node.id in names:
            hints.append(_hint(module.path, node.lineno, node.id, names[node.id]))
            hidden = hidden - {node.id}  # once per function is enough
    return hints


def _hint(path: str, line: int, expression: str, value: Value) -> str:
    return f"{path}:{line}  {expression} = {value!r}"


def _is_range(node: ast.expr) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and 1 <= len(node.args) <= 3 and not node.keywords)


def _uses_name(node: ast.expr) -> bool:
    return any(isinstance(n, ast.Name) for n in ast.walk(node))


def _fold(node: ast.expr | None, names: dict[str, Value]) -> Value:
    """The value of a constant expression; NotConstant for anything else, or anything too big."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return _bounded(node.value)
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Tuple):
        return tuple(_fold(item, names) for item in node.elts)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        operand = _fold(node.operand, names)
        if isinstance(operand, (int, float)) and not isinstance(operand, bool):
            return _UNARY[type(node.op)](operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _fold(node.left, names), _fold(node.right, names)
        return _bounded(_arithmetic(type(node.op), left, right))
    raise NotConstant


def _arithmetic(op: type, left: Value, right: Value) -> Value:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
    if numbers:
        if op is ast.Pow and (abs(right) > 64 or abs(left) > MAX_NUMBER):
            raise NotConstant
        try:
            return _BINARY[op](left, right)
        except (ZeroDivisionError, OverflowError):
            raise NotConstant from None
    if op is ast.Add and isinstance(left, str) and isinstance(right, str):
        return left + right
    if op is ast.Mult and {type(left), type(right)} == {str, int}:
        text, times = (left, right) if isinstance(left, str) else (right, left)
        if 0 <= times and len(text) * times <= MAX_TEXT:
            return text * times
    raise NotConstant


def _bounded(value: Value) -> Value:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise NotConstant
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        raise NotConstant
    return value
