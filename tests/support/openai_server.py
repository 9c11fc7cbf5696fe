"""A scripted OpenAI-compatible server on loopback: each (method, path) answers with its
behaviours in turn (server-sent events, JSON, a stall, a hang-up)."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

Behaviour = Callable[["Handler"], None]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeServer:
    """Answers each (method, path) with its scripted behaviours in turn; the last one repeats."""
    routes: dict[tuple[str, str], list[Behaviour]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)  # ends stalled handlers at teardown
    httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def on(self, method: str, path: str, *behaviours: Behaviour) -> None:
        self.routes[(method, path)] = list(behaviours)

    def next_behaviour(self, method: str, path: str) -> Behaviour | None:
        queue = self.routes.get((method, path))
        if not queue:
            return None
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer
    fake: FakeServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.handle_request("GET")

    def do_POST(self) -> None:
        self.handle_request("POST")

    def handle_request(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.fake.received.append(Received(method, self.path, dict(self.headers),
                                           json.loads(raw) if raw else None))
        behaviour = self.fake.next_behaviour(method, self.path)
        if behaviour is None:
            send_json(self, 404, {"error": {"message": f"no route {self.path}"}})
        else:
            behaviour(self)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def server():
    fake = FakeServer()
    handler = type("BoundHandler", (Handler,), {"fake": fake})
    fake.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    fake.httpd.daemon_threads = True
    thread = threading.Thread(target=fake.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    fake.httpd.shutdown()
    fake.httpd.server_close()


# -- scripted behaviours ------------------------------------------------------------------------

def chunk(content: str | None = None, reasoning: str | None = None, tool_calls: list | None = None,
          finish: str | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion, "prompt_tokens_details": {"cached_tokens": cached}}}


def sse(*events: dict[str, Any], done: bool = True) -> Behaviour:
    def behave(h: Handler) -> None:
        h.start_stream()
        h.write_chunk(b": keepalive\n\n")
        for event in events:
            h.write_chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        if done:
            h.write_chunk(b"data: [DONE]\n\n")
        h.end_stream()
    return behave


def send_json(h: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def respond(status: int, body: Any) -> Behaviour:
    return lambda h: send_json(h, status, body)


def then_stall(*events: dict[str, Any]) -> Behaviour:
    def behave(h: Handler) -> None:
        h.start_stream()
        for event in events:
            h.write_chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        h.fake.release.wait(10)
    return behave


def then_hang_up(*events: dict[str, Any]) -> Behaviour:
    def behave(h: Handler) -> None:
        h.start_stream()
        for event in events:
            h.write_chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        h.connection.shutdown(socket.SHUT_RDWR)
        h.close_connection = True
    return behave
