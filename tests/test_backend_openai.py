"""OpenAIBackend against scripted HTTP servers on loopback: streaming, tool calls, errors, discovery."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from agent.backends.base import ModelError
from agent.backends.openai import DEFAULT_CONTEXT_WINDOW, OpenAIBackend, to_wire_messages
from support.openai_server import (FakeServer, chunk, respond, send_json, server, sse, then_hang_up, then_stall,  # noqa: F401
                                   usage)


TOOLS = [{"type": "function", "function": {"name": name, "description": name, "parameters": {"type": "object"}}}
         for name in ("read_file", "bash")]
USER = [{"role": "user", "content": "hi"}]


def backend_for(server: FakeServer, **options: Any) -> OpenAIBackend:
    options.setdefault("context_window", 32768)
    return OpenAIBackend(server.url, "test-model", **options)


# -- streaming ----------------------------------------------------------------------------------

def test_streams_text_in_order_with_usage_and_cached_tokens(server):
    server.on("POST", "/v1/chat/completions", sse(
        chunk(reasoning="thinking "), chunk(reasoning="hard"),
        chunk(content="Hel"), chunk(content="lo, "), chunk(content="world"),
        chunk(finish="stop"), usage(prompt=120, completion=4, cached=100)))
    pieces: list[str] = []
    turn = backend_for(server).complete(USER, [], on_text=pieces.append)

    assert pieces == ["Hel", "lo, ", "world"]
    assert turn.text == turn.raw == "Hello, world"
    assert turn.reasoning == "thinking hard"
    assert turn.tool_calls == [] and turn.format_error is None
    assert turn.finish_reason == "stop"
    assert (turn.stats.prompt_tokens, turn.stats.generated_tokens, turn.stats.reused_prompt_tokens) == (120, 4, 100)
    assert turn.stats.seconds > 0


def test_streamed_tool_calls_split_across_chunks(server):
    server.on("POST", "/v1/chat/completions", sse(
        chunk(content="Let me look."),
        chunk(tool_calls=[{"index": 0, "id": "call_a", "type": "function",
                           "function": {"name": "read_file", "arguments": ""}}]),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"pa'}}]),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": 'th": "a.py"}'}}]),
        chunk(tool_calls=[{"index": 1, "id": "call_b", "type": "function",
                           "function": {"name": "bash", "arguments": '{"command":'}}]),
        chunk(tool_calls=[{"index": 1, "function": {"arguments": ' "ls -l"'}}]),
        chunk(tool_calls=[{"index": 1, "function": {"arguments": "}"}}]),
        chunk(finish="tool_calls"), usage(50, 30)))
    turn = backend_for(server).complete(USER, TOOLS)

    assert [c.as_dict() for c in turn.tool_calls] == [
        {"id": "call_a", "name": "read_file", "arguments": {"path": "a.py"}},
        {"id": "call_b", "name": "bash", "arguments": {"command": "ls -l"}},
    ]
    assert turn.text == "Let me look."
    assert turn.finish_reason == "tool_calls"
    assert turn.format_error is None
    assert turn.raw.startswith("Let me look.")
    assert "read_file" in turn.raw and "ls -l" in turn.raw


def test_tool_call_markup_left_in_content_is_parsed(server):
    markup = '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}}\n</tool_call>'
    server.on("POST", "/v1/chat/completions", sse(
        chunk(content=markup[:20]), chunk(content=markup[20:]), chunk(finish="stop"), usage(40, 20)))
    turn = backend_for(server).complete(USER, TOOLS)

    assert [(c.name, c.arguments) for c in turn.tool_calls] == [("read_file", {"path": "a.py"})]
    assert turn.raw == markup
    assert "<tool_call>" not in turn.text
    assert turn.finish_reason == "tool_calls"


def test_invalid_json_arguments_become_a_format_error(server):
    server.on("POST", "/v1/chat/completions", sse(
        chunk(tool_calls=[{"index": 0, "id": "call_a", "type": "function",
                           "function": {"name": "bash", "arguments": '{"command": "ls'}}]),
        chunk(finish="tool_calls"), usage(50, 10)))
    turn = backend_for(server).complete(USER, TOOLS)

    assert turn.tool_calls == []
    assert turn.format_error is not None
    assert "bash" in turn.format_error and "not valid JSON" in turn.format_error
    assert '{"command": "ls' in turn.format_error
    assert '{"command": "ls' in turn.raw


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, message, expect", [
    (500, "CUDA out of memory", "HTTP 500"),
    (401, "Invalid API key provided", "API key"),
    (404, "The model `test-model` does not exist.", "model name"),
])
def test_http_errors_carry_the_servers_message(server, status, message, expect):
    server.on("POST", "/v1/chat/completions", respond(status, {"error": {"message": message, "code": status}}))
    with pytest.raises(ModelError) as error:
        backend_for(server).complete(USER, [])
    text = str(error.value)
    assert message in text and expect in text and server.url in text
    assert "\n" not in text
    assert len(server.requests_to("/v1/chat/completions")) == 1  # not retried


def test_a_stalled_stream_fails_after_the_read_timeout(server):
    server.on("POST", "/v1/chat/completions", then_stall(chunk(content="partial")))
    started = time.monotonic()
    with pytest.raises(ModelError) as error:
        backend_for(server, read_timeout=1).complete(USER, [])
    assert time.monotonic() - started < 4
    assert "stopped sending after 1 s" in str(error.value)
    assert "7 characters" in str(error.value)


def test_a_connection_dropped_mid_stream_reports_the_partial_output(server):
    server.on("POST", "/v1/chat/completions", then_hang_up(chunk(content="Hello"), chunk(content=" there")))
    pieces: list[str] = []
    with pytest.raises(ModelError) as error:
        backend_for(server).complete(USER, [], on_text=pieces.append)
    assert "11 characters" in str(error.value)
    assert pieces == ["Hello", " there"]
    assert len(server.requests_to("/v1/chat/completions")) == 1  # text had streamed: never retried


def test_connection_refused_fails_quickly():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the request: nothing listens there
    backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", context_window=4096)
    backend.retry_backoff = 0.05
    started = time.monotonic()
    with pytest.raises(ModelError) as error:
        backend.complete(USER, [])
    assert time.monotonic() - started < 3
    assert "not reachable" in str(error.value) and f"127.0.0.1:{port}" in str(error.value)


def test_a_503_before_any_data_is_retried(server):
    server.on("POST", "/v1/chat/completions",
              respond(503, {"error": {"message": "loading model"}}),
              sse(chunk(content="ok"), chunk(finish="stop"), usage(5, 1)))
    backend = backend_for(server)
    backend.retry_backoff = 0.01
    turn = backend.complete(USER, [])
    assert turn.text == "ok"
    assert len(server.requests_to("/v1/chat/completions")) == 2


def test_a_503_that_persists_gives_up_after_the_retries(server):
    server.on("POST", "/v1/chat/completions", respond(503, {"error": {"message": "loading model"}}))
    backend = backend_for(server)
    backend.retry_backoff = 0.01
    with pytest.raises(ModelError, match="loading model"):
        backend.complete(USER, [])
    assert len(server.requests_to("/v1/chat/completions")) == 3


def test_an_error_event_mid_stream_is_reported(server):
    server.on("POST", "/v1/chat/completions",
              sse(chunk(content="a"), {"error": {"message": "context length exceeded"}}, done=False))
    with pytest.raises(ModelError, match="context length exceeded"):
        backend_for(server).complete(USER, [])


def test_a_stream_without_done_or_finish_reason_is_an_error(server):
    server.on("POST", "/v1/chat/completions", sse(chunk(content="abc"), done=False))
    with pytest.raises(ModelError, match="3 characters"):
        backend_for(server).complete(USER, [])


# -- context window -----------------------------------------------------------------------------

def test_context_window_from_v1_models(server):
    server.on("GET", "/v1/models", respond(200, {"object": "list", "data": [
        {"id": "other", "max_model_len": 4096}, {"id": "test-model", "max_model_len": 131072}]}))
    backend = OpenAIBackend(server.url, "test-model")
    assert backend.context_window == 131072
    assert backend.context_window_source == "server:/v1/models"
    backend.context_window
    assert len(server.requests_to("/v1/models")) == 1  # asked once


def test_context_window_from_llama_server_props(server):
    server.on("GET", "/v1/models", respond(200, {"data": [{"id": "test-model", "meta": {"n_ctx_train": 262144}}]}))
    server.on("GET", "/props", respond(200, {"default_generation_settings": {"n_ctx": 16384}}))
    backend = OpenAIBackend(server.url, "test-model")
    assert (backend.context_window, backend.context_window_source) == (16384, "server:/props")


def test_context_window_from_ollama_show(server):
    server.on("POST", "/api/show", respond(200, {"model_info": {"qwen2.context_length": 32768},
                                                  "parameters": "stop \"<|im_end|>\""}))
    backend = OpenAIBackend(server.url, "test-model")
    assert (backend.context_window, backend.context_window_source) == (32768, "server:/api/show")
    assert server.requests_to("/api/show")[0].body == {"model": "test-model"}


def test_context_window_defaults_when_nothing_answers(server):
    backend = OpenAIBackend(server.url, "test-model")
    assert (backend.context_window, backend.context_window_source) == (DEFAULT_CONTEXT_WINDOW, "default")


def test_context_window_given_explicitly_asks_nothing(server):
    backend = OpenAIBackend(server.url, "test-model", context_window=1000)
    assert (backend.context_window, backend.context_window_source) == (1000, "flag")
    assert server.received == []


# -- the request --------------------------------------------------------------------------------

def test_the_request_body_the_server_receives(server):
    server.on("POST", "/v1/chat/completions", sse(chunk(content="done"), chunk(finish="stop"), usage(90, 1)))
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": "", "reasoning": "hmm", "raw": "<tool_call>...</tool_call>",
         "tool_calls": [{"id": "call_1", "name": "bash", "arguments": {"command": "ls"}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "bash", "content": "a.py\n"},
    ]
    backend = backend_for(server, api_key="sk-test", max_tokens=256, temperature=0.2)
    backend.complete(messages, TOOLS)

    request = server.requests_to("/v1/chat/completions")[0]
    assert request.headers["Authorization"] == "Bearer sk-test"
    body = request.body
    assert body["model"] == "test-model"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["tools"] == TOOLS and body["tool_choice"] == "auto"
    assert (body["max_tokens"], body["temperature"]) == (256, 0.2)
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a.py\n"},
    ]


def test_a_requests_max_tokens_overrides_the_backends_for_that_request(server):
    server.on("POST", "/v1/chat/completions", sse(chunk(content="x"), chunk(finish="stop")))
    backend = backend_for(server, max_tokens=256)
    backend.complete(USER, [], max_tokens=64)
    backend.complete(USER, [])
    bodies = [request.body for request in server.requests_to("/v1/chat/completions")]
    assert [body["max_tokens"] for body in bodies] == [64, 256]


def test_no_tools_key_when_there_are_no_tools(server):
    server.on("POST", "/v1/chat/completions", sse(chunk(content="x"), chunk(finish="stop")))
    backend_for(server).complete(USER, [])
    body = server.requests_to("/v1/chat/completions")[0].body
    assert "tools" not in body and "temperature" not in body
    # no bound given: the room the context has left (32,768 minus the prompt), so a server cannot stream forever
    assert 32000 < body["max_tokens"] < 32768
    assert "Authorization" not in server.requests_to("/v1/chat/completions")[0].headers


# -- tokens and settings ------------------------------------------------------------------------

def test_count_tokens_calibrates_on_the_last_usage(server):
    server.on("POST", "/v1/chat/completions", sse(chunk(content="hello"), chunk(finish="stop"), usage(1000, 2)))
    backend = backend_for(server)
    assert 0 < backend.count_tokens(USER, TOOLS) < 1000
    backend.complete(USER, TOOLS)
    added = [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "and now?"}]
    count = backend.count_tokens(USER + added, TOOLS)
    assert 1000 < count < 1000 + len(json.dumps(to_wire_messages(added)))
    assert backend.count_tokens(USER, TOOLS) == 1000
    assert backend.count_tokens([{"role": "user", "content": "different"}], TOOLS) < 1000


def test_settings_resolve_flags_then_env_then_config():
    env = {"MTP_AGENT_BASE_URL": "http://env:1/v1", "OPENAI_BASE_URL": "http://openai-env:1/v1",
           "OPENAI_API_KEY": "sk-env", "MTP_AGENT_MODEL": "env-model"}
    config = {"base_url": "http://config:1/v1", "api_key": "sk-config", "model": "config-model", "context_window": 4096}

    backend = OpenAIBackend.from_settings({"base_url": "http://flag:1/v1", "model": None}, env, config)
    assert (backend.base_url, backend.api_key, backend.model) == ("http://flag:1/v1", "sk-env", "env-model")
    assert backend.context_window == 4096

    backend = OpenAIBackend.from_settings({}, {"OPENAI_BASE_URL": "http://openai-env:1/v1"}, config)
    assert (backend.base_url, backend.api_key, backend.model) == ("http://openai-env:1/v1", "sk-config", "config-model")

    backend = OpenAIBackend.from_settings({}, {}, config)
    assert backend.base_url == "http://config:1/v1"


def test_settings_missing_url_or_model_say_what_to_set():
    with pytest.raises(ValueError, match="--base-url.*MTP_AGENT_BASE_URL"):
        OpenAIBackend.from_settings({}, {}, {"model": "m"})
    with pytest.raises(ValueError, match="--model.*MTP_AGENT_MODEL"):
        OpenAIBackend.from_settings({}, {"OPENAI_BASE_URL": "http://x:1/v1"}, {})
    with pytest.raises(ValueError, match="http://localhost"):
        OpenAIBackend("localhost:8000", "m")


def test_a_server_that_ignores_stream_true_still_works(server):
    server.on("POST", "/v1/chat/completions", respond(200, {
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function",
                            "function": {"name": "bash", "arguments": '{"command": "pwd"}'}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5}}))
    turn = backend_for(server).complete(USER, TOOLS)
    assert [(c.id, c.name, c.arguments) for c in turn.tool_calls] == [("c1", "bash", {"command": "pwd"})]
    assert turn.stats.prompt_tokens == 10


def test_reasoning_left_in_the_content_is_separated(server):
    server.on("POST", "/v1/chat/completions",
              sse(chunk(content="<think>plan</think>"), chunk(content="Answer."), chunk(finish="stop")))
    turn = backend_for(server).complete(USER, [])
    assert turn.text.strip() == "Answer."
    assert turn.reasoning.strip() == "plan"
    assert turn.stats.prompt_tokens > 0  # no usage from the server: estimated


def test_a_turns_sampling_replaces_the_backends_for_that_request(server):
    from agent.backends.base import TurnOptions, TurnSampling

    server.on("POST", "/v1/chat/completions", sse(chunk(content="x"), chunk(finish="stop")))
    backend = backend_for(server, temperature=0.0)
    backend.complete(USER, [], options=TurnOptions(sampling=TurnSampling(temperature=0.7, top_p=0.9, seed=2)))
    backend.complete(USER, [])
    first, second = (request.body for request in server.requests_to("/v1/chat/completions"))
    assert (first["temperature"], first["top_p"], first["seed"]) == (0.7, 0.9, 2)
    assert second["temperature"] == 0.0 and "top_p" not in second and "seed" not in second


def test_a_required_call_is_asked_for_with_tool_choice(server):
    from agent.backends.base import TurnOptions

    server.on("POST", "/v1/chat/completions", sse(chunk(content="x"), chunk(finish="stop")))
    backend_for(server).complete(USER, TOOLS, options=TurnOptions(require_call=True))
    assert server.requests_to("/v1/chat/completions")[0].body["tool_choice"] == "required"


def test_rates_come_only_from_the_servers_own_timings(server):
    server.on("POST", "/v1/chat/completions", sse(chunk(content="hi"), chunk(finish="stop"), usage(prompt=120, completion=11)))
    turn = backend_for(server).complete(USER, [])
    assert turn.stats.prefill_seconds == 0 and turn.stats.decode_seconds == 0  # no rate made up from a wait
    timings = {"prompt_n": 20, "prompt_ms": 100.0, "predicted_n": 11, "predicted_ms": 550.0}
    server.on("POST", "/v1/chat/completions", sse(chunk(content="hi"), dict(chunk(finish="stop"), timings=timings),
                                                  usage(prompt=120, completion=11)))
    stats = backend_for(server).complete(USER, []).stats
    assert stats.prefill_seconds == 0.1 and stats.reused_prompt_tokens == 100  # 20 of 120 computed: 200 tok/s
    assert abs(stats.decode_seconds - 0.5) < 1e-9  # the 10 tokens after the first: 20 tok/s


def test_a_turn_ends_where_its_stop_when_holds(server):
    from agent.backends.base import TurnOptions

    server.on("POST", "/v1/chat/completions", sse(
        chunk(content="one\n"), chunk(content="two\n"), chunk(content="three\n"), chunk(content="four\n"), chunk(finish="stop")))
    turn = backend_for(server).complete(USER, [], options=TurnOptions(stop_when=lambda text: "two\n" in text))
    assert turn.raw == "one\ntwo\n" and turn.finish_reason == "length"
