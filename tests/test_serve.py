"""`agent serve` with the official openai SDK as the client (issue 18): chat and completions,
streaming, grammar-constrained tool calls, usage with cached and speculative counts, errors as
OpenAI error bodies, the queue bound, cancellation, and our own agent pointed at it."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from agent.backends.scripted import ScriptedBackend
from agent.core.config import Config
from agent.core.setup import RunSettings, make_backend
from agent.frontends.serve import Server
from support.serve_support import serving

# an enum keeps a random model's string short: the grammar decides the shape, the model only picks
READ_FILE = {"type": "function", "function": {"name": "read_file", "description": "Read a file", "parameters": {
    "type": "object", "properties": {"path": {"type": "string", "enum": ["a.py", "b.py"]}}, "required": ["path"]}}}


@pytest.fixture(scope="module")
def tiny_server(tiny_llama):
    backend = make_backend(RunSettings(model=str(tiny_llama), device="cpu", spec="ngram"), Config())
    with serving(Server(backend)) as url:
        yield url, openai.OpenAI(base_url=url, api_key="unused", max_retries=0)


def test_models_and_health(tiny_server):
    url, client = tiny_server
    assert [m.id for m in client.models.list().data] == ["tiny-llama.gguf"]
    assert httpx.get(url.removesuffix("/v1") + "/health").json() == {"status": "ok"}


def test_a_chat_completion_with_usage_and_the_prefix_reused(tiny_server):
    _, client = tiny_server
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say something."}]
    first = client.chat.completions.create(model="any", messages=messages, max_tokens=8)
    assert first.choices[0].finish_reason in ("stop", "length") and isinstance(first.choices[0].message.content, str)
    assert first.usage.completion_tokens <= 8 and first.usage.prompt_tokens > 10
    follow = messages + [{"role": "assistant", "content": first.choices[0].message.content},
                         {"role": "user", "content": "More."}]
    second = client.chat.completions.create(model="any", messages=follow, max_tokens=4)
    # the second turn of the conversation reuses the first one's KV cache: only the new tokens are computed
    assert second.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 2
    assert "speculative" in second.usage.model_extra


def test_streaming_sends_deltas_then_the_finish_and_usage(tiny_server):
    _, client = tiny_server
    stream = client.chat.completions.create(model="any", messages=[{"role": "user", "content": "Hi"}], max_tokens=6,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage.completion_tokens <= 6 and not chunks[-1].choices


@pytest.mark.parametrize("stream", [False, True])
def test_tool_choice_required_gives_a_call_that_matches_the_schema(tiny_server, stream):
    _, client = tiny_server
    request = dict(model="any", messages=[{"role": "user", "content": "Read a.py"}], tools=[READ_FILE],
                   tool_choice="required", max_tokens=300, temperature=0)
    if stream:
        calls = [c for chunk in client.chat.completions.create(**request, stream=True) if chunk.choices
                 for c in chunk.choices[0].delta.tool_calls or []]
        name, arguments = calls[0].function.name, calls[0].function.arguments
    else:
        choice = client.chat.completions.create(**request).choices[0]
        assert choice.finish_reason == "tool_calls"
        name, arguments = choice.message.tool_calls[0].function.name, choice.message.tool_calls[0].function.arguments
    # a random tiny model, held by the grammar: a well-formed call of the offered tool
    assert name == "read_file" and json.loads(arguments)["path"] in ("a.py", "b.py")


def test_a_raw_completion(tiny_server):
    _, client = tiny_server
    completion = client.completions.create(model="any", prompt="def add(a, b):", max_tokens=5)
    assert completion.choices[0].finish_reason in ("stop", "length") and completion.usage.completion_tokens <= 5


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": 9}, "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}, "tool_choice"),
    ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, "tools"),
    ({"messages": [{"role": "user", "content": "x" * 20000}]}, None),  # past the context: the backend says so
])
def test_a_bad_request_is_a_400_with_an_openai_error_body(tiny_server, body, param):
    url, _ = tiny_server
    response = httpx.post(url + "/chat/completions", json=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"] and error["param"] == param


def test_malformed_json_and_unknown_routes(tiny_server):
    url, _ = tiny_server
    assert httpx.post(url + "/chat/completions", content=b"{not json", timeout=10).status_code == 400
    missing = httpx.get(url + "/nothing", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert httpx.get(url + "/chat/completions", timeout=10).status_code == 405


def test_an_api_key_is_required_when_set():
    backend = ScriptedBackend([{"text": "ok"}])
    with serving(Server(backend, api_key="s3cret")) as url:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url, api_key="wrong", max_retries=0).models.list()
        assert openai.OpenAI(base_url=url, api_key="s3cret", max_retries=0).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]).choices[0].message.content == "ok"


def test_fifty_concurrent_requests_get_an_answer_or_a_429_none_lost():
    backend = ScriptedBackend([{"text": "one two three", "delay": 0.02}] * 50)
    results: list[int] = []
    with serving(Server(backend, max_waiting=3)) as url:
        def ask() -> None:
            try:
                results.append(httpx.post(url + "/chat/completions", timeout=60,
                                          json={"messages": [{"role": "user", "content": "hi"}]}).status_code)
            except httpx.HTTPError as e:
                results.append(-1)
                raise AssertionError(e)
        threads = [threading.Thread(target=ask) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 50 and set(results) <= {200, 429}
    assert results.count(200) >= 4 and results.count(429) >= 1


def test_a_client_that_goes_away_stops_the_decoding(tmp_path):
    long_turn = {"text": "word " * 400, "delay": 0.02}  # 8 s if it ran to the end
    backend = ScriptedBackend([long_turn, {"text": "next"}])
    with serving(Server(backend, max_waiting=0)) as url:
        with httpx.stream("POST", url + "/chat/completions", timeout=30,
                          json={"messages": [{"role": "user", "content": "hi"}], "stream": True}) as response:
            for line in response.iter_lines():
                if '"content": "word' in line:
                    break  # the client leaves after the first words
        start = time.monotonic()
        while True:  # the decode lock frees as soon as the cancelled turn notices
            answer = httpx.post(url + "/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}, timeout=30)
            if answer.status_code == 200:
                break
            assert time.monotonic() - start < 3, "the abandoned request kept decoding"
            time.sleep(0.05)
        assert answer.json()["choices"][0]["message"]["content"] == "next"


def test_our_own_agent_runs_a_tool_using_task_through_agent_serve(tmp_path, monkeypatch, capsys):
    from agent.frontends.cli import main
    from support.git_support import committed_project

    repo = committed_project(tmp_path / "project", {"a.txt": "the secret word is pelican\n"})
    monkeypatch.chdir(repo)
    served = ScriptedBackend([{"tool_calls": [{"name": "read_file", "arguments": {"path": "a.txt"}}]},
                              {"text": "The word is pelican."}])
    with serving(Server(served)) as url:
        code = main(["run", "--backend", "openai", "--base-url", url, "--model", "m", "--ctx", "32768",
                     "--prompt", "What is the secret word in a.txt?", "--output-format", "json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["answer"] == "The word is pelican."
    # the second request carried the tool's result back through the wire format
    tool_messages = [m for m in served.requests[1] if m["role"] == "tool"]
    assert "pelican" in tool_messages[0]["content"] and tool_messages[0]["tool_call_id"]
    assistant = [m for m in served.requests[1] if m["role"] == "assistant"][0]
    assert assistant["tool_calls"][0]["name"] == "read_file" and "<tool_call>" in assistant["raw"]


def test_our_own_agent_runs_a_tool_using_task_through_agent_serve_on_a_tiny_model(tmp_path, monkeypatch, capsys):
    """The whole way with the real engine: our openai backend -> agent serve -> the embedded
    engine's template, grammar and decoding on a tiny GGUF model whose weights script the
    conversation (support/scripted_model.py): it calls read_file, and answers once the result is in."""
    from agent.frontends.cli import main
    from support.git_support import committed_project
    from support.scripted_model import write_scripted_model

    model = write_scripted_model(tmp_path / "scripted.gguf", '\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n',
                                 "The word is pelican.")
    repo = committed_project(tmp_path / "project", {"a.txt": "the secret word is pelican\n"})
    monkeypatch.chdir(repo)
    backend = make_backend(RunSettings(model=str(model), device="cpu", ctx=16384), Config())
    with serving(Server(backend)) as url:
        code = main(["run", "--backend", "openai", "--base-url", url, "--model", "scripted", "--ctx", "16384",
                     "--prompt", "What is the secret word in a.txt?", "--output-format", "stream-json"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and events[-1]["status"] == "done" and events[-1]["answer"] == "The word is pelican."
    calls = [e for e in events if e["type"] == "tool_call"]
    results = [e for e in events if e["type"] == "tool_result"]
    assert [(c["name"], c["arguments"]) for c in calls] == [("read_file", {"path": "a.txt"})]
    assert not results[0]["is_error"] and "pelican" in results[0]["output"]
    # the second request reused the first one's prompt in the served engine's cache
    stats = [e for e in events if e["type"] == "stats"]
    assert len(stats) == 2 and stats[1]["reused_prompt_tokens"] > 0
