"""ASGI apps (`agent serve`'s, an MCP server's) run by uvicorn in a thread on a free loopback port."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

import uvicorn

from agent.frontends.serve import Server


@contextmanager
def serving(server: Server) -> Iterator[str]:
    """The base URL (http://127.0.0.1:PORT/v1) while the server runs."""
    with serving_app(server.app(), lifespan="off") as root:
        yield root + "/v1"


@contextmanager
def serving_app(app, lifespan: str = "auto") -> Iterator[str]:
    """Any ASGI app on a free loopback port: its root URL while it runs."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan=lifespan)
    http = uvicorn.Server(config)
    thread = threading.Thread(target=http.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not http.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = http.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        http.should_exit = True
        thread.join(timeout=10)
