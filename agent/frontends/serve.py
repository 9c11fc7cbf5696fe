"""`agent serve`: the agent's model behind an OpenAI-compatible HTTP API, for Aider, OpenCode,
Continue or the openai SDK, with the embedded engine's grammar-constrained tool calls, speculative
decoding and prefix reuse (a conversation's next request reuses the KV cache of the one before).

Built on Starlette and uvicorn (well-kept, small, and what most Python OpenAI-compatible servers
run on; no request models to maintain beside serve_requests.py). One request decodes at a time
(the engine holds one KV cache); at most `max_waiting` more wait for it and the rest get 429. A
request whose client goes away stops decoding at its next token. Bound to loopback by default.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agent.backends.base import Backend, ModelError, ModelTurn, TurnOptions, TurnStats
from agent.core.stream import StreamSplitter
from agent.frontends.serve_requests import ChatRequest, RequestError, max_tokens, parse_chat, sampling, stops

MAX_BODY_BYTES = 32 * 1024 * 1024
DISCONNECT_POLL_S = 0.2


class Cancelled(Exception):
    """The client went away: decoding stops."""


@dataclass
class Outcome:
    turn: ModelTurn | None = None
    error: BaseException | None = None


class Gate:
    """One request decodes at a time; at most `max_waiting` wait for it, more are turned away."""

    def __init__(self, max_waiting: int):
        self.max_waiting = max_waiting
        self.decoding = threading.Lock()
        self._admitted = 0
        self._count = threading.Lock()

    def admit(self) -> bool:
        with self._count:
            if self._admitted > self.max_waiting:
                return False
            self._admitted += 1
            return True

    def leave(self) -> None:
        with self._count:
            self._admitted -= 1


class Server:
    def __init__(self, backend: Backend, api_key: str | None = None, max_waiting: int = 8):
        self.backend, self.api_key = backend, api_key
        self.gate = Gate(max_waiting)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/health", self.health, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
        ], exception_handlers={404: _not_found, 405: _not_allowed})

    # -- endpoints --------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def models(self, request: Request) -> Response:
        return await self._guarded(request, lambda _: JSONResponse({"object": "list", "data": [{
            "id": self.backend.model, "object": "model", "created": 0, "owned_by": "mtp-agent",
            "context_window": self.backend.context_window}]}))

    async def chat(self, request: Request) -> Response:
        async def answer(body: Any) -> Response:
            chat = parse_chat(body)
            run = lambda on_text, cancel: self._decode(chat, on_text, cancel)  # noqa: E731
            if chat.stream:
                return self._stream(run, _chat_chunks(self.backend.model, chat.include_usage))
            turn = await self._complete(request, run)
            return JSONResponse(_chat_completion(self.backend.model, turn))
        return await self._guarded(request, answer)

    async def completions(self, request: Request) -> Response:
        async def answer(body: Any) -> Response:
            if not hasattr(self.backend, "complete_text"):
                raise RequestError("/v1/completions needs the embedded engine", status=404, kind="not_found_error")
            if not isinstance(body, dict) or not isinstance(body.get("prompt"), str) or not body["prompt"]:
                raise RequestError("'prompt' must be a non-empty string", "prompt")
            run = lambda on_text, cancel: self._raw_decode(body, on_text, cancel)  # noqa: E731
            if body.get("stream"):
                return self._stream(run, _text_chunks(self.backend.model))
            turn = await self._complete(request, run)
            return JSONResponse(_text_completion(self.backend.model, turn))
        return await self._guarded(request, answer)

    # -- plumbing ---------------------------------------------------------------------------------

    async def _guarded(self, request: Request, answer: Callable[[Any], Any]) -> Response:
        """Authentication, the body, and every failure as an OpenAI-style error (never a crash)."""
        try:
            self._authenticate(request)
            body = None
            if request.method == "POST":
                if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
                    raise RequestError(f"the body is over {MAX_BODY_BYTES // 2**20} MiB", status=413)
                try:
                    body = json.loads(await request.body())
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    raise RequestError(f"the body is not JSON: {e}") from None
            result = answer(body)
            return await result if asyncio.iscoroutine(result) else result
        except RequestError as e:
            return JSONResponse(e.body(), status_code=e.status)
        except ModelError as e:
            return JSONResponse(RequestError(str(e)).body(), status_code=400)
        except Exception as e:  # noqa: BLE001 - the server stays up; the client gets a 500 it can read
            traceback.print_exc(file=sys.stderr)
            return JSONResponse(RequestError(f"internal error: {type(e).__name__}: {e}", status=500,
                                             kind="server_error").body(), status_code=500)

    def _authenticate(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.api_key}".encode()):
            raise RequestError("a valid API key is needed (Authorization: Bearer KEY)", status=401,
                               kind="authentication_error", code="invalid_api_key")

    def _start(self, run: Callable, on_text: Callable[[str], None], cancel: threading.Event,
               done: Callable[[Outcome], None]) -> None:
        """`run` in a thread once the gate admits it (429 otherwise); `done` hears how it ended."""
        if not self.gate.admit():
            raise RequestError(f"the server is busy ({self.gate.max_waiting} requests already wait); retry later",
                               status=429, kind="rate_limit_error", code="rate_limit_exceeded")

        def work() -> None:
            outcome = Outcome()
            try:
                with self.gate.decoding:
                    if cancel.is_set():
                        raise Cancelled
                    outcome.turn = run(on_text, cancel)
            except BaseException as e:  # noqa: BLE001 - reported to the request's handler
                outcome.error = e
            finally:
                self.gate.leave()
                done(outcome)
        threading.Thread(target=work, daemon=True).start()

    async def _complete(self, request: Request, run: Callable) -> ModelTurn:
        loop = asyncio.get_running_loop()
        finished: asyncio.Future = loop.create_future()
        cancel = threading.Event()
        self._start(run, lambda _: None, cancel, lambda o: loop.call_soon_threadsafe(finished.set_result, o))
        while not finished.done():
            await asyncio.wait({finished}, timeout=DISCONNECT_POLL_S)
            if not finished.done() and await request.is_disconnected():
                cancel.set()
        outcome: Outcome = finished.result()
        if outcome.error is not None:
            raise outcome.error
        return outcome.turn  # type: ignore[return-value]

    def _stream(self, run: Callable, chunks: Callable[[asyncio.Queue], AsyncIterator[str]]) -> Response:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()
        self._start(run, lambda delta: loop.call_soon_threadsafe(queue.put_nowait, delta), cancel,
                    lambda outcome: loop.call_soon_threadsafe(queue.put_nowait, outcome))

        async def events() -> AsyncIterator[str]:
            try:
                async for event in chunks(queue):
                    yield event
            finally:
                cancel.set()  # the client read to the end, or went away: either way decoding is over
        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    def _decode(self, chat: ChatRequest, on_text: Callable[[str], None], cancel: threading.Event) -> ModelTurn:
        return self.backend.complete(chat.messages, chat.tools, on_text=_cancellable(on_text, cancel),
                                     on_progress=_cancellable(lambda *_: None, cancel), max_tokens=chat.max_tokens,
                                     options=chat.options)

    def _raw_decode(self, body: dict[str, Any], on_text: Callable[[str], None], cancel: threading.Event) -> ModelTurn:
        options = TurnOptions(sampling=sampling(body), stop=stops(body.get("stop")))
        return self.backend.complete_text(body["prompt"], on_text=_cancellable(on_text, cancel),
                                          max_tokens=max_tokens(body) or 256, options=options)


def _cancellable(callback: Callable[..., None], cancel: threading.Event) -> Callable[..., None]:
    """`callback`, stopping the decoding (Cancelled) once the client has gone away."""
    def checked(*arguments: Any) -> None:
        if cancel.is_set():
            raise Cancelled
        callback(*arguments)
    return checked


# -- responses --------------------------------------------------------------------------------------

def _usage(stats: TurnStats) -> dict[str, Any]:
    return {"prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.generated_tokens,
            "total_tokens": stats.prompt_tokens + stats.generated_tokens,
            "prompt_tokens_details": {"cached_tokens": stats.reused_prompt_tokens},
            "speculative": {"drafted_tokens": stats.drafted_tokens, "accepted_tokens": stats.accepted_tokens,
                            "mtp_drafted_tokens": stats.mtp_drafted_tokens, "mtp_accepted_tokens": stats.mtp_accepted_tokens}}


def _timings(stats: TurnStats) -> dict[str, Any]:
    """llama-server's own timings (our OpenAI backend reads them for its rates)."""
    n = stats.generated_tokens
    return {"prompt_n": stats.prompt_tokens - stats.reused_prompt_tokens, "prompt_ms": stats.prefill_seconds * 1000,
            "predicted_n": n, "predicted_ms": stats.decode_seconds * 1000 * n / (n - 1) if n > 1 else 0.0}


def _calls(turn: ModelTurn) -> list[dict[str, Any]]:
    return [{"id": call.id or f"call_{number}", "type": "function",
             "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}}
            for number, call in enumerate(turn.tool_calls)]


def _finish(turn: ModelTurn) -> str:
    return "tool_calls" if turn.tool_calls else ("length" if turn.finish_reason == "length" else "stop")


def _content(turn: ModelTurn) -> str:
    return turn.raw if turn.format_error else turn.text  # a call that could not be read stays visible


def _envelope(model: str, kind: str) -> dict[str, Any]:
    return {"id": f"{'chatcmpl' if 'chat' in kind else 'cmpl'}-{uuid.uuid4().hex[:24]}", "object": kind,
            "created": int(time.time()), "model": model}


def _chat_completion(model: str, turn: ModelTurn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": _content(turn) or (None if turn.tool_calls else "")}
    if turn.tool_calls:
        message["tool_calls"] = _calls(turn)
    if turn.reasoning:
        message["reasoning_content"] = turn.reasoning
    return {**_envelope(model, "chat.completion"), "choices": [{"index": 0, "message": message,
                                                                "finish_reason": _finish(turn)}],
            "usage": _usage(turn.stats), "timings": _timings(turn.stats)}


def _text_completion(model: str, turn: ModelTurn) -> dict[str, Any]:
    return {**_envelope(model, "text_completion"),
            "choices": [{"index": 0, "text": turn.text, "finish_reason": _finish(turn), "logprobs": None}],
            "usage": _usage(turn.stats), "timings": _timings(turn.stats)}


def _sse(payload: Any) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _failure(error: BaseException) -> str:
    if isinstance(error, RequestError):
        return _sse(error.body())
    return _sse(RequestError(str(error), status=400 if isinstance(error, ModelError) else 500,
                             kind="invalid_request_error" if isinstance(error, ModelError) else "server_error").body())


def _chat_chunks(model: str, include_usage: bool) -> Callable[[asyncio.Queue], AsyncIterator[str]]:
    async def chunks(queue: asyncio.Queue) -> AsyncIterator[str]:
        envelope = _envelope(model, "chat.completion.chunk")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            return _sse({**envelope, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        yield chunk({"role": "assistant", "content": ""})
        splitter = StreamSplitter()  # tool-call markup is held back: the parsed calls come at the end
        shown = ""
        while isinstance(item := await queue.get(), str):
            for kind, text in splitter.feed(item):
                shown += text if kind == "text" else ""
                yield chunk({"reasoning_content" if kind == "think" else "content": text})
        if item.error is not None:
            yield _failure(item.error)
            return
        turn: ModelTurn = item.turn
        content = _content(turn)
        if content.startswith(shown) and len(content) > len(shown):  # what the splitter held back at the end
            yield chunk({"content": content[len(shown):]})
        if turn.tool_calls:
            yield chunk({"tool_calls": [dict(call, index=number) for number, call in enumerate(_calls(turn))]})
        yield chunk({}, _finish(turn))
        if include_usage:
            yield _sse({**envelope, "choices": [], "usage": _usage(turn.stats), "timings": _timings(turn.stats)})
        yield "data: [DONE]\n\n"
    return chunks


def _text_chunks(model: str) -> Callable[[asyncio.Queue], AsyncIterator[str]]:
    async def chunks(queue: asyncio.Queue) -> AsyncIterator[str]:
        envelope = _envelope(model, "text_completion")
        while isinstance(item := await queue.get(), str):
            yield _sse({**envelope, "choices": [{"index": 0, "text": item, "finish_reason": None, "logprobs": None}]})
        if item.error is not None:
            yield _failure(item.error)
            return
        yield _sse({**envelope, "choices": [{"index": 0, "text": "", "finish_reason": _finish(item.turn), "logprobs": None}],
                    "usage": _usage(item.turn.stats)})
        yield "data: [DONE]\n\n"
    return chunks


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse(RequestError(f"no such endpoint: {request.url.path}", status=404,
                                     kind="not_found_error").body(), status_code=404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return JSONResponse(RequestError(f"{request.method} is not allowed on {request.url.path}", status=405).body(),
                        status_code=405)
