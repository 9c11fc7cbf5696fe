"""A real MCP server written with the official SDK, for the client's tests: `python mcp_demo.py`
serves it over stdio; `http_app()` gives its streamable-HTTP app."""

from __future__ import annotations

from mcp.server import MCPServer

server = MCPServer("demo")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper()


@server.tool()
def broken() -> str:
    """Always fails."""
    raise ValueError("broken on purpose")


def http_app():
    return server.streamable_http_app()


if __name__ == "__main__":
    server.run()
