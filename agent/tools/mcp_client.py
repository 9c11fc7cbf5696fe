"""Tools from MCP servers (the official `mcp` SDK), offered to the model as `server__tool`.

Servers come from the config (`[mcp.servers.NAME]`: `command` and optional `args`/`env` for stdio,
or `url` for streamable HTTP). Each runs in one background event loop, in a task of its own that
holds its client for the agent's life; a tool call from the agent's thread is sent to that loop and
waited for. Every call goes through the same permissions as the built-in tools (access "exec":
asked in ask mode; rules `mcp(server__tool)` or the tool's own name). A server that fails to start
costs one warning line, not the session.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from agent.errors import AgentError
from agent.tools.base import Tool, ToolError, ToolResult, Workspace

START_SECONDS = 30.0
CALL_SECONDS = 120.0
SEPARATOR = "__"


@dataclass(frozen=True)
class McpServerConfig:
    name: str
    command: list[str] | None = None
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def servers_from_config(table: dict[str, Any], source: str = "config") -> list[McpServerConfig]:
    servers = table.get("servers", {})
    if not isinstance(servers, dict):
        raise AgentError(f"{source}: [mcp.servers.NAME] tables are expected, one per server")
    out = []
    for name, spec in servers.items():
        where = f"{source}: [mcp.servers.{name}]"
        if not isinstance(spec, dict) or not name.replace("-", "_").isidentifier() or SEPARATOR in name:
            raise AgentError(f"{where} needs a name of letters, digits, - and _ (no '__') and a table")
        unknown = set(spec) - {"command", "args", "url", "env"}
        if unknown:
            raise AgentError(f"{where} has unknown keys {sorted(unknown)}; use command (+ args, env) or url")
        command = spec.get("command")
        command = [command] if isinstance(command, str) else command
        if command is not None:
            command = [*command, *spec.get("args", [])]
        if (command is None) == (spec.get("url") is None) or (command is not None and not all(isinstance(c, str) for c in command)):
            raise AgentError(f"{where} needs either command = [\"program\", \"arg\"...] (stdio) or url = \"http://...\"")
        out.append(McpServerConfig(name, command, spec.get("url"), {str(k): str(v) for k, v in spec.get("env", {}).items()}))
    return out


@dataclass(frozen=True)
class McpTool(Tool):
    """A server's tool: its description comes from the server, not from prompts/tools/."""

    summary: str = ""
    server: str = ""

    @property
    def description(self) -> str:
        return self.summary or f"{self.name} (from the MCP server '{self.server}')"


class McpHub:
    """The servers' clients on one background event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mcp", daemon=True)
        self.thread.start()
        self.clients: dict[str, Any] = {}
        self._stops: list[asyncio.Event] = []
        self._logs: list[Any] = []

    def start(self, configs: list[McpServerConfig]) -> tuple[list[Tool], list[str]]:
        """The tools of the servers that started, and one warning per server that did not."""
        tools: list[Tool] = []
        warnings: list[str] = []
        for config in configs:
            try:
                listed = asyncio.run_coroutine_threadsafe(self._connect(config), self.loop).result(START_SECONDS)
            except FutureTimeout:
                warnings.append(f"MCP server '{config.name}' did not answer within {START_SECONDS:.0f} s; its tools are not offered")
                continue
            except Exception as e:  # noqa: BLE001 - any failure of a server is its own, not the session's
                log = f", log: {log_path(config.name)}" if config.command else ""
                warnings.append(f"MCP server '{config.name}' did not start ({_reason(e)}{log}); its tools are not offered")
                continue
            tools += [self._tool(config.name, tool) for tool in listed]
        return tools, warnings

    async def _connect(self, config: McpServerConfig) -> list[Any]:
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client

        target: Any = config.url
        if config.command is not None:
            # the server's stderr goes to a log file: on the terminal it would tear through the TUI
            log = log_path(config.name)
            log.parent.mkdir(parents=True, exist_ok=True)
            errlog = log.open("a", encoding="utf-8")
            self._logs.append(errlog)
            target = stdio_client(StdioServerParameters(command=config.command[0], args=config.command[1:],
                                                        env=config.env or None), errlog=errlog)
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        self._stops.append(stop)

        async def hold() -> None:  # the client is entered and left in this one task, as the SDK requires
            try:
                async with Client(target, read_timeout_seconds=CALL_SECONDS) as client:
                    self.clients[config.name] = client
                    ready.set_result((await client.list_tools()).tools)
                    await stop.wait()
            except BaseException as e:  # noqa: BLE001 - reported through `ready` while starting
                if not ready.done():
                    ready.set_exception(e)
            finally:
                self.clients.pop(config.name, None)
        asyncio.get_running_loop().create_task(hold())
        return await ready

    def _tool(self, server: str, listed: Any) -> Tool:
        name = f"{server}{SEPARATOR}{listed.name}"
        schema = dict(listed.input_schema or {"type": "object", "properties": {}})
        schema.setdefault("properties", {})

        def call(workspace: Workspace, **arguments: Any) -> ToolResult:
            return self.call(server, listed.name, arguments)
        return McpTool(name, call, schema, access="exec", summary=(listed.description or "").strip(), server=server)

    def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolResult:
        client = self.clients.get(server)
        if client is None:
            raise ToolError(f"the MCP server '{server}' is no longer running")
        try:
            result = asyncio.run_coroutine_threadsafe(client.call_tool(tool, arguments), self.loop).result(CALL_SECONDS + 5)
        except FutureTimeout:
            raise ToolError(f"{server}{SEPARATOR}{tool} did not answer within {CALL_SECONDS:.0f} s") from None
        except Exception as e:  # noqa: BLE001 - a server's failure is a tool result the model can read
            raise ToolError(f"{server}{SEPARATOR}{tool} failed: {_reason(e)}") from None
        text = "\n".join(_text(block) for block in result.content) or "(no output)"
        return ToolResult(text, is_error=bool(result.is_error))

    def close(self) -> None:
        for stop in self._stops:
            self.loop.call_soon_threadsafe(stop.set)
        self._stops = []


def log_path(server: str) -> Path:
    return Path(platformdirs.user_log_dir("mtp-agent")) / f"mcp-{server}.log"


def _text(block: Any) -> str:
    kind = getattr(block, "type", "")
    if kind == "text":
        return block.text
    if kind == "resource":
        return getattr(block.resource, "text", None) or f"[resource {getattr(block.resource, 'uri', '')}]"
    return f"[{kind or 'content'} not shown: this agent reads text]"


def _reason(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:  # anyio task groups wrap the cause
        error = error.exceptions[0]
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]


_HUB: McpHub | None = None


def mcp_tools(configs: list[McpServerConfig]) -> tuple[list[Tool], list[str]]:
    """The configured servers' tools (one hub per process, closed at exit) and warnings."""
    global _HUB
    if not configs:
        return [], []
    if _HUB is None:
        _HUB = McpHub()
        atexit.register(_HUB.close)
    return _HUB.start(configs)
