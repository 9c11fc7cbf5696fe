"""The chat-template renderer's child process (see chat_template.py): a standalone script that
imports only jinja2 and the standard library, so it starts in a fraction of a second, and runs
every template in jinja2's immutable sandbox under an address-space and a recursion limit.

Requests and answers are length-prefixed JSON on stdin and stdout: {"source", "origin",
"bos_token", "eos_token", "variables"} -> {"text"} or {"error"}; variables None only parses.
"""

from __future__ import annotations

import json
import struct
import sys
from datetime import datetime
from typing import Any, BinaryIO

MEMORY_BYTES = 2 * 1024**3  # the child's address space (the interpreter and jinja2 take ~60 MB of it)
RECURSION_LIMIT = 400  # nested blocks and macro calls, well below where the C stack could overflow
MAX_RENDERED_CHARS = 16 * 1024 * 1024
_HEADER = struct.Struct(">I")


def write_message(stream: BinaryIO, payload: dict[str, Any]) -> None:
    data = json.dumps(payload, ensure_ascii=True, default=str).encode("ascii")  # lone surrogates travel escaped
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    return json.loads(data) if len(data) == size else None


class Refused(Exception):
    """A template's failure, in words for the user (the parent raises it as ChatTemplateError)."""


def _raise_exception(message: str) -> None:
    raise Refused(f"the chat template refused the conversation: {message}")


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def compile_template(source: str, origin: str) -> Any:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    try:
        return env.from_string(source)
    except jinja2.TemplateError as e:
        raise Refused(f"the {origin} does not parse: {e}") from e


def render(template: Any, origin: str, variables: dict[str, Any]) -> str:
    import jinja2

    try:
        text = template.render(**variables)
    except jinja2.exceptions.SecurityError as e:
        raise Refused(f"the {origin} tried something the sandbox forbids ({e}); the model file may be malicious, "
                      "so it was not run. Pass a trusted template with --chat-template FILE") from e
    except jinja2.TemplateError as e:
        raise Refused(f"the {origin} failed to render: {e}") from e
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, ArithmeticError) as e:
        raise Refused(f"the {origin} failed to render: {type(e).__name__}: {e}") from e
    if len(text) > MAX_RENDERED_CHARS:
        raise Refused(f"the {origin} produced {len(text):,} characters; refusing such a prompt")
    return text


def serve() -> None:
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    except (ValueError, OSError):
        pass  # not enforced here: the parent's deadline still holds
    sys.setrecursionlimit(RECURSION_LIMIT)
    compiled: dict[str, Any] = {}
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (request := read_message(stdin)) is not None:
        origin = str(request.get("origin", "chat template"))
        try:
            source = request["source"]
            if source not in compiled:
                compiled.clear()  # one model's template at a time
                compiled[source] = compile_template(source, origin)
            variables = request.get("variables")
            text = "" if variables is None else render(compiled[source], origin, variables)
            write_message(stdout, {"text": text})
        except Refused as e:
            write_message(stdout, {"error": str(e)})
        except RecursionError:
            write_message(stdout, {"error": f"the {origin} nests or recurses too deep (past {RECURSION_LIMIT} levels); "
                                            "refusing it"})
        except MemoryError:
            compiled.clear()
            write_message(stdout, {"error": f"the {origin} asked for more memory than a chat prompt needs "
                                            f"(over {MEMORY_BYTES // 1024**3} GiB); refusing it"})


if __name__ == "__main__":
    serve()
