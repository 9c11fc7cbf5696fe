"""A backend for any OpenAI-compatible /v1/chat/completions server (vLLM, SGLang, llama-server,
Ollama, LM Studio): streamed over HTTP with the standard library, tool calls and usage included."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from agent.core.toolcalls import CONTENT_MARKUP, format_tool_call, parse_tool_calls
from agent.backends.base import Message, ModelError, ModelTurn, ToolCall, TurnOptions, TurnStats, ends_here
from agent.backends.openai_wire import (
    DONE,
    PendingCall,
    add_call_fragment,
    as_chunk,
    estimate_tokens,
    hermes_text,
    model_entry,
    one_line,
    os_error,
    parse_arguments,
    positive_int,
    server_message,
    sse_events,
    to_wire_messages,
    truncate,
)

DEFAULT_CONTEXT_WINDOW = 8192
MAX_RETRIES = 2
RETRY_STATUSES = {502, 503, 504}
MIN_TURN_TOKENS = 256  # a turn's token bound never goes below this, even when the estimate says the context is full


class _Retryable(Exception):
    """A failure before anything streamed, worth another try (connection refused, 502/503/504)."""


@dataclass
class _Stream:
    """What has arrived so far on one streamed answer."""
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: list[PendingCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None  # llama-server's own prefill and decode times
    done: bool = False

    def received_chars(self) -> int:
        return (sum(map(len, self.content)) + sum(map(len, self.reasoning))
                + sum(len(a) for c in self.calls for a in c.arguments))


class OpenAIBackend:
    name = "openai"
    retry_backoff = 0.25  # seconds before the first retry; doubles after

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 context_window: int | None = None, read_timeout: float = 120.0,
                 connect_timeout: float = 10.0, max_tokens: int | None = None,
                 temperature: float | None = None) -> None:
        parts = urllib.parse.urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL {base_url!r} is not an http(s) URL: "
                             f"give one like http://localhost:8000/v1")
        if not model:
            raise ValueError("no model name given: set --model or MTP_AGENT_MODEL")
        self.base_url = base_url.strip().rstrip("/")
        self.model = model
        self.api_key = api_key or None
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path.rstrip("/")
        self._context_window = context_window
        self._context_window_source = "flag" if context_window else ""
        # calibration for count_tokens: the last request's messages (serialised) and what the server counted
        self._last_messages: list[str] = []
        self._last_tools = ""
        self._last_prompt_tokens = 0

    @classmethod
    def from_settings(cls, flags: Mapping[str, Any], env: Mapping[str, str],
                      config: Mapping[str, Any]) -> "OpenAIBackend":
        """Explicit flags first, then the environment, then the config file."""
        def pick(flag: str, env_names: tuple[str, ...] = ()) -> Any:
            if flags.get(flag) not in (None, ""):
                return flags[flag]
            for env_name in env_names:
                if env.get(env_name):
                    return env[env_name]
            return config.get(flag) if config.get(flag) not in (None, "") else None

        base_url = pick("base_url", ("MTP_AGENT_BASE_URL", "OPENAI_BASE_URL"))
        if not base_url:
            raise ValueError("no server URL for the OpenAI-compatible backend: pass --base-url "
                             "(for example http://localhost:8000/v1), or set MTP_AGENT_BASE_URL "
                             "or OPENAI_BASE_URL, or base_url in the config file")
        model = pick("model", ("MTP_AGENT_MODEL",))
        if not model:
            raise ValueError(f"no model name for the server at {base_url}: pass --model, or set "
                             f"MTP_AGENT_MODEL, or model in the config file")
        context_window = flags.get("context_window") or config.get("context_window")
        settings = {k: flags.get(k) if flags.get(k) is not None else config.get(k)
                    for k in ("read_timeout", "max_tokens", "temperature")}
        return cls(str(base_url), str(model), api_key=pick("api_key", ("MTP_AGENT_API_KEY", "OPENAI_API_KEY")),
                   context_window=int(context_window) if context_window else None,
                   **{k: v for k, v in settings.items() if v is not None})

    # -- context window -------------------------------------------------------------------------

    @property
    def context_window(self) -> int:
        """Asked of the server once, on first use, unless it was given."""
        return self._known_context_window()[0]

    @property
    def context_window_source(self) -> str:
        """Where context_window came from: "flag", "server:/v1/models", "server:/props",
        "server:/api/show", or "default" (a guess)."""
        return self._known_context_window()[1]

    def _known_context_window(self) -> tuple[int, str]:
        if self._context_window is None:
            self._context_window, self._context_window_source = self._discover_context_window()
        return self._context_window, self._context_window_source

    def _discover_context_window(self) -> tuple[int, str]:
        root = self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url
        # llama-server's /v1/models only knows the training length; its /props has the running n_ctx
        trained = None
        listing = self._get_json("GET", f"{self.base_url}/models")
        entry = model_entry(listing, self.model)
        if entry:
            for key in ("max_model_len", "context_length", "context_window", "max_context_length"):
                if positive_int(entry.get(key)):
                    return int(entry[key]), "server:/v1/models"
            if isinstance(entry.get("meta"), dict):
                trained = positive_int(entry["meta"].get("n_ctx_train"))

        props = self._get_json("GET", f"{root}/props")
        if isinstance(props, dict):
            settings = props.get("default_generation_settings")
            n_ctx = positive_int(settings.get("n_ctx")) if isinstance(settings, dict) else None
            n_ctx = n_ctx or positive_int(props.get("n_ctx"))
            if n_ctx:
                return n_ctx, "server:/props"
        if trained:
            return trained, "server:/v1/models"

        show = self._get_json("POST", f"{root}/api/show", {"model": self.model})
        if isinstance(show, dict):
            # num_ctx is what Ollama actually runs with; context_length is what the model was trained for
            for line in str(show.get("parameters") or "").splitlines():
                words = line.split()
                if len(words) == 2 and words[0] == "num_ctx" and positive_int(words[1]):
                    return int(words[1]), "server:/api/show"
            info = show.get("model_info")
            if isinstance(info, dict):
                for key, value in info.items():
                    if key.endswith(".context_length") and positive_int(value):
                        return int(value), "server:/api/show"
        return DEFAULT_CONTEXT_WINDOW, "default"

    def _get_json(self, method: str, url: str, body: Any = None) -> Any:
        """One small JSON request for discovery; None on any failure (discovery never raises)."""
        try:
            parts = urllib.parse.urlsplit(url)
            conn = self._connection(min(self.connect_timeout, 5.0))
            try:
                conn.connect()
                conn.sock.settimeout(min(self.read_timeout, 10.0))
                payload = json.dumps(body).encode() if body is not None else None
                conn.request(method, parts.path, body=payload, headers=self._headers("application/json"))
                resp = conn.getresponse()
                data = resp.read(4 << 20)
                return json.loads(data) if resp.status == 200 else None
            finally:
                conn.close()
        except Exception:
            return None

    # -- tokens ---------------------------------------------------------------------------------

    def count_tokens(self, messages: list[Message], tools: list[dict[str, Any]]) -> int:
        serialised = [json.dumps(m, ensure_ascii=False) for m in to_wire_messages(messages)]
        tools_json = json.dumps(tools, ensure_ascii=False)
        known = len(self._last_messages)
        if (self._last_prompt_tokens and tools_json == self._last_tools and len(serialised) >= known
                and serialised[:known] == self._last_messages):
            added = serialised[known:]
            return self._last_prompt_tokens + (estimate_tokens("[" + ",".join(added) + "]") if added else 0)
        return estimate_tokens("[" + ",".join(serialised) + "]" + tools_json)

    # -- one turn -------------------------------------------------------------------------------

    def complete(self, messages: list[Message], tools: list[dict[str, Any]],
                 on_text: Callable[[str], None] | None = None,
                 on_progress: Callable[[int, int], None] | None = None,  # servers do not report prefill
                 max_tokens: int | None = None, options: TurnOptions = TurnOptions()) -> ModelTurn:
        wire_messages = to_wire_messages(messages)
        body: dict[str, Any] = {"model": self.model, "messages": wire_messages, "stream": True,
                                "stream_options": {"include_usage": True}}
        if tools:
            # "auto": an answer or calls, as the embedded backend's grammar allows; the server's own
            # parser (llama-server --jinja, vLLM's tool parsers) then returns structured calls
            body["tools"], body["tool_choice"] = tools, "required" if options.require_call else "auto"
        if options.reply is not None:
            if tools:
                body["tool_choice"] = "none"  # a workflow's question: the tools stay in the prompt, unused
            if options.reply.kind == "json":
                body["response_format"] = {"type": "json_schema",
                                           "json_schema": {"name": "reply", "schema": options.reply.schema}}
        limit = self.max_tokens if max_tokens is None else max_tokens
        if limit is None:  # the room the context has left: a server that never stops still ends the turn
            limit = max(self.context_window - self.count_tokens(messages, tools), MIN_TURN_TOKENS)
        body["max_tokens"] = limit
        if options.stop:
            body["stop"] = list(options.stop)
        if self.temperature is not None:
            body["temperature"] = self.temperature
        sampling = options.sampling
        if sampling is not None:
            body.update(temperature=sampling.temperature, top_p=sampling.top_p)
            if sampling.seed is not None:
                body["seed"] = sampling.seed

        started = time.monotonic()
        conn, resp = self._open_stream(json.dumps(body, ensure_ascii=False).encode())
        try:
            stream = self._read_stream(resp, on_text, options)
        finally:
            conn.close()
        ended = time.monotonic()
        measured = bool(stream.usage and stream.usage.get("prompt_tokens"))
        if measured:
            self._last_messages = [json.dumps(m, ensure_ascii=False) for m in wire_messages]
            self._last_tools = json.dumps(tools, ensure_ascii=False)
            self._last_prompt_tokens = int(stream.usage["prompt_tokens"])
        else:  # the server sent no usage: estimate it
            stream.usage = dict(stream.usage or {}, prompt_tokens=self.count_tokens(messages, tools))
        return self._turn_from_stream(stream, tools, started, ended)

    def _where(self) -> str:
        return f"the model server at {self.base_url}"

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": accept, "User-Agent": "mtp-agent"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _open_stream(self, payload: bytes) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send the request and wait for the response headers, retrying only failures that happen
        before any answer has streamed (nothing has been shown to the user yet)."""
        reason = ""
        for attempt in range(MAX_RETRIES + 1):
            try:
                return self._send(f"{self._path}/chat/completions", payload)
            except _Retryable as e:
                reason = str(e)
            if attempt < MAX_RETRIES:
                time.sleep(self.retry_backoff * 2 ** attempt)
        raise ModelError(f"{reason} (tried {MAX_RETRIES + 1} times)")

    def _send(self, path: str, payload: bytes) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._connection(self.connect_timeout)
        try:
            try:
                conn.connect()
            except (socket.timeout, TimeoutError):
                raise _Retryable(f"{self._where()} did not accept a connection within "
                                 f"{self.connect_timeout:g} s") from None
            except ConnectionError as e:
                raise _Retryable(f"{self._where()} is not reachable ({os_error(e)}): "
                                 f"is the server running?") from None
            except OSError as e:
                raise ModelError(f"{self._where()} is not reachable ({os_error(e)}): "
                                 f"check the host name in the base URL") from None
            conn.sock.settimeout(self.read_timeout)
            try:
                conn.request("POST", path, body=payload, headers=self._headers("text/event-stream"))
                resp = conn.getresponse()
            except (socket.timeout, TimeoutError):
                raise ModelError(f"{self._where()} did not answer within {self.read_timeout:g} s "
                                 f"(read timeout); it may be busy or stuck") from None
            except (ConnectionError, http.client.RemoteDisconnected) as e:
                raise _Retryable(f"{self._where()} closed the connection before answering "
                                 f"({os_error(e)})") from None
            except (OSError, http.client.HTTPException) as e:
                raise ModelError(f"{self._where()} failed before answering: {os_error(e)}") from None
            if resp.status < 300:
                return conn, resp
            try:
                error_body = resp.read(65536)
            except (OSError, http.client.HTTPException):
                error_body = b""
            if resp.status in RETRY_STATUSES:
                raise _Retryable(self._http_error(resp.status, error_body, path))
            raise ModelError(self._http_error(resp.status, error_body, path))
        except BaseException:
            conn.close()
            raise

    def _http_error(self, status: int, body: bytes, path: str) -> str:
        detail = server_message(body)
        said = f": {detail}" if detail else ""
        if status in (401, 403):
            return (f"{self._where()} refused the request with HTTP {status}{said}. Check the API key "
                    f"(--api-key, MTP_AGENT_API_KEY or OPENAI_API_KEY)")
        if status == 404:
            hint = "" if self.base_url.endswith("/v1") else " (most servers want it to end in /v1)"
            return (f"{self._where()} answered HTTP 404 for POST {path}{said}. Check the model name "
                    f"{self.model!r} and the base URL{hint}")
        return f"{self._where()} answered HTTP {status}{said}"

    def _read_stream(self, resp: http.client.HTTPResponse, on_text: Callable[[str], None] | None,
                     options: TurnOptions = TurnOptions()) -> _Stream:
        stream = _Stream()
        if (resp.getheader("Content-Type") or "").startswith("application/json"):
            # the server ignored stream: true and sent one whole completion
            try:
                events: Iterator[dict[str, Any]] = iter([as_chunk(json.loads(resp.read()))])
            except (OSError, ValueError, http.client.HTTPException) as e:
                raise ModelError(f"{self._where()} sent an unreadable answer: {e}") from None
            stream.done = True
        else:
            events = sse_events(resp)
        try:
            for event in events:
                if event is DONE:
                    stream.done = True
                    break
                received = len(stream.content)
                self._apply_event(stream, event, on_text)
                if len(stream.content) > received and ends_here(options, "".join(stream.content), stream.content[-1]):
                    stream.finish_reason = "length"  # the turn ends it here; closing the connection stops the server
                    break
        except (socket.timeout, TimeoutError):
            raise ModelError(f"{self._where()} stopped sending after {self.read_timeout:g} s of silence, "
                             f"with {stream.received_chars()} characters of the answer received; it may be "
                             f"stuck: try again, or raise the read timeout") from None
        except (OSError, http.client.HTTPException) as e:
            raise ModelError(f"the connection to {self._where()} dropped mid-answer ({os_error(e)}) after "
                             f"{stream.received_chars()} characters of the answer had arrived; try again") from None
        if not stream.done and stream.finish_reason is None:
            raise ModelError(f"{self._where()} ended the stream before the answer was finished (no [DONE], "
                             f"no finish_reason) after {stream.received_chars()} characters of the answer "
                             f"had arrived; the connection may have dropped: try again")
        return stream

    def _apply_event(self, stream: _Stream, event: dict[str, Any], on_text: Callable[[str], None] | None) -> None:
        if event.get("error"):
            error = event["error"]
            detail = error.get("message") if isinstance(error, dict) else error
            raise ModelError(f"{self._where()} reported an error mid-answer: {one_line(str(detail))}")
        if event.get("usage"):
            stream.usage = event["usage"]
        if isinstance(event.get("timings"), dict):
            stream.timings = event["timings"]
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if thought:
                stream.reasoning.append(thought)
            if piece:
                stream.content.append(piece)
                if on_text:
                    on_text(piece)
            for position, fragment in enumerate(delta.get("tool_calls") or []):
                add_call_fragment(stream.calls, fragment, position)
            if choice.get("finish_reason"):
                stream.finish_reason = choice["finish_reason"]

    def _turn_from_stream(self, stream: _Stream, tools: list[dict[str, Any]],
                          started: float, ended: float) -> ModelTurn:
        content = "".join(stream.content)
        reasoning = "".join(stream.reasoning)
        turn = ModelTurn(text=content, raw=content, reasoning=reasoning,
                         finish_reason=stream.finish_reason or "stop")
        if stream.calls:
            turn.text = content.strip()
            # the structured calls appended in Hermes form, so the raw transcript holds everything said
            raw_parts = [content] if content else []
            errors = []
            for number, pending in enumerate(stream.calls):
                arguments = "".join(pending.arguments)
                parsed, error = parse_arguments(arguments)
                if error:
                    errors.append(f"the call to {pending.name or '(unnamed tool)'} has arguments that are not "
                                  f"valid JSON ({error}): {truncate(arguments, 300)}")
                    raw_parts.append(hermes_text(pending.name, arguments))
                elif not pending.name:
                    errors.append(f"a tool call came without a tool name (arguments: {truncate(arguments, 300)})")
                    raw_parts.append(hermes_text("", arguments))
                else:
                    turn.tool_calls.append(ToolCall(pending.id or f"call_{number}", pending.name, parsed))
                    raw_parts.append(format_tool_call(pending.name, parsed))
            turn.raw = "\n".join(part.rstrip("\n") if i < len(raw_parts) - 1 else part
                                  for i, part in enumerate(raw_parts))
            if errors:
                # a turn with a broken call runs none of its calls: the model is asked to repeat them all
                turn.format_error = "; ".join(errors)
                turn.tool_calls = []
        elif any(marker in content for marker in CONTENT_MARKUP):
            names = {t.get("function", {}).get("name") or t.get("name") for t in tools} - {None}
            parsed_output = parse_tool_calls(content, names or None)
            turn.text = parsed_output.text
            turn.tool_calls = list(parsed_output.calls)
            turn.format_error = parsed_output.error
            if parsed_output.reasoning and not turn.reasoning:
                turn.reasoning = parsed_output.reasoning
        if turn.tool_calls and turn.finish_reason == "stop":
            turn.finish_reason = "tool_calls"
        turn.stats = self._stats(stream, turn, started, ended)
        return turn

    def _stats(self, stream: _Stream, turn: ModelTurn, started: float, ended: float) -> TurnStats:
        usage = stream.usage or {}
        details = usage.get("prompt_tokens_details") or {}
        stats = TurnStats(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          reused_prompt_tokens=int(details.get("cached_tokens") or 0),
                          generated_tokens=int(usage.get("completion_tokens") or 0),
                          seconds=ended - started)
        if not stats.generated_tokens:
            stats.generated_tokens = estimate_tokens(turn.raw + turn.reasoning) if (turn.raw or turn.reasoning) else 0
        # rates only from what the server measured (llama-server's timings): a wait for the first
        # byte mixes the network, the queue and the server's own cache, and can be zero
        timings = stream.timings or {}
        try:
            prompt_ms, predicted_ms = float(timings.get("prompt_ms") or 0), float(timings.get("predicted_ms") or 0)
        except (TypeError, ValueError):
            prompt_ms = predicted_ms = 0.0
        if prompt_ms > 0 and timings.get("prompt_n") is not None:
            stats.prefill_seconds = prompt_ms / 1000
            stats.reused_prompt_tokens = max(stats.prompt_tokens - int(timings["prompt_n"]), stats.reused_prompt_tokens)
        if predicted_ms > 0 and timings.get("predicted_n"):
            # decode_seconds covers the tokens after the first (events.StatsEvent)
            n = int(timings["predicted_n"])
            stats.decode_seconds = predicted_ms / 1000 * (n - 1) / n if n > 1 else 0.0
        return stats


