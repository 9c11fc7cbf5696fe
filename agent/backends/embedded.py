"""The in-process backend: our own engine, with the KV cache kept between turns.

The prompt is rendered from the whole conversation each turn, and the engine reuses the longest
prefix its cache already holds. For that prefix to survive, history is rendered exactly as the
model produced it: an assistant turn goes back into the template as its raw output (tool-call
markup included, which is what sits in the cache), never re-serialised from parsed calls.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Callable

from inference import Engine, EngineError, SamplingParams

from agent.backends.base import Message, ModelError, ModelTurn, TurnOptions, TurnStats, ends_here
from agent.backends.tool_grammar import call_format, reply_grammar, tool_turn_grammar
from agent.core.toolcalls import THINK_CLOSE, parse_tool_calls, tool_protocol_prompt

# A model that invents a tool's answer instead of waiting for it has stopped doing useful work.
STOP_STRINGS = ("<tool_response>",)


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, engine: Engine, model: str, sampling: SamplingParams | None = None, max_new_tokens: int = 2048,
                 constrain: bool = True):
        self.engine = engine
        self.model = model
        self.sampling = sampling or SamplingParams()
        self.max_new_tokens = max_new_tokens
        self.constrain = constrain  # turns offered tools are generated within the grammar of those tools
        template = engine.chat_template
        # templates that take a `tools` argument render tool definitions and calls their own way
        self.native_tools = template is not None and "tools" in template.source
        source = template.source if self.native_tools else None
        self.call_format = call_format(source)
        self.thinking = source is not None and THINK_CLOSE in source
        self._grammars: dict[str, str] = {}
        self.model_parameters = engine.parameter_count  # `--workflow auto` gives small models the fix workflow

    def grammar(self, tools: list[dict[str, Any]], options: TurnOptions = TurnOptions()) -> str | None:
        """The grammar a turn offered `tools` is generated in (None: unconstrained)."""
        reply = options.reply
        if reply is not None:  # a fixed shape is the whole turn; without constraints the prompt asks for it
            return reply_grammar(reply.kind, reply.language, reply.schema) if self.constrain else None
        callable_tools = [t for t in tools if t["function"]["name"] not in options.avoid_tools]
        if not (self.constrain and callable_tools):
            return None
        key = json.dumps([callable_tools, options.require_call], sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = tool_turn_grammar(callable_tools, self.call_format, thinking=self.thinking,
                                                    require_call=options.require_call)
        return self._grammars[key]

    @property
    def context_window(self) -> int:
        return self.engine.cache.max_tokens

    def _template_messages(self, messages: list[Message], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for m in messages:
            role, content = m["role"], m.get("content") or ""
            if role == "assistant":
                out.append({"role": "assistant", "content": m.get("raw") or content})
            elif role == "tool":
                if self.native_tools:
                    out.append({"role": "tool", "name": m.get("name"), "tool_call_id": m.get("tool_call_id"), "content": content})
                else:
                    out.append({"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"})
            elif role == "system" and tools and not self.native_tools:
                out.append({"role": "system", "content": content + "\n\n" + tool_protocol_prompt(tools)})
            else:
                out.append({"role": role, "content": content})
        return out

    def prompt_ids(self, messages: list[Message], tools: list[dict[str, Any]]) -> list[int]:
        try:
            return self.engine.chat_prompt(self._template_messages(messages, tools),
                                           tools=tools if (tools and self.native_tools) else None)
        except EngineError as e:
            raise ModelError(str(e)) from e

    def count_tokens(self, messages: list[Message], tools: list[dict[str, Any]]) -> int:
        return len(self.prompt_ids(messages, tools))

    def complete(self, messages: list[Message], tools: list[dict[str, Any]],
                 on_text: Callable[[str], None] | None = None,
                 on_progress: Callable[[int, int], None] | None = None,
                 max_tokens: int | None = None, options: TurnOptions = TurnOptions()) -> ModelTurn:
        ids = self.prompt_ids(messages, tools)
        room = self.context_window - len(ids)
        if room < 16:
            raise ModelError(f"the prompt takes {len(ids)} of the {self.context_window} tokens of context; nothing is left to answer in")
        limit = self.max_new_tokens if max_tokens is None else max_tokens
        grammar = self.grammar(tools, options)
        completion, stats = self._generate(ids, min(limit, room), options, grammar, on_text, on_progress)
        parsed = parse_tool_calls(completion.text, {t["function"]["name"] for t in tools})
        return ModelTurn(text=parsed.text, tool_calls=parsed.calls, raw=completion.text, reasoning=parsed.reasoning,
                         format_error=parsed.error, finish_reason=completion.finish_reason, stats=stats)

    def complete_text(self, prompt: str, on_text: Callable[[str], None] | None = None, max_tokens: int | None = None,
                      options: TurnOptions = TurnOptions()) -> ModelTurn:
        """A raw prompt continued, without chat template or tools (agent serve's /v1/completions)."""
        limit = self.max_new_tokens if max_tokens is None else max_tokens
        completion, stats = self._generate(prompt, limit, options, None, on_text, None, stop=())
        return ModelTurn(text=completion.text, raw=completion.text, finish_reason=completion.finish_reason, stats=stats)

    def _generate(self, prompt: list[int] | str, limit: int, options: TurnOptions, grammar: str | None,
                  on_text: Callable[[str], None] | None, on_progress: Callable[[int, int], None] | None,
                  stop: tuple[str, ...] = STOP_STRINGS) -> tuple[Any, TurnStats]:
        """The engine's completion of `prompt` with this turn's sampling and stop strings (none
        under a grammar), and its stats as a turn's."""
        start = time.perf_counter()
        try:
            sampling = options.sampling
            params = self.sampling if sampling is None else replace(
                self.sampling, temperature=sampling.temperature, top_p=sampling.top_p, seed=sampling.seed)
            stream = self.engine.stream(prompt, sampling=params, max_new_tokens=limit,
                                        stop=(() if grammar else stop) + options.stop, on_prefill=on_progress,
                                        grammar=grammar)
            text, halted = "", False
            for delta in stream:
                if on_text:
                    on_text(delta)
                text += delta
                if ends_here(options, text, delta):
                    stream.stop()
                    halted = True
        except EngineError as e:
            raise ModelError(str(e)) from e
        completion = stream.completion if not halted else replace(stream.completion, finish_reason="length")
        s = completion.stats
        spec = s.speculative or {}
        return completion, TurnStats(prompt_tokens=s.prompt_tokens, reused_prompt_tokens=s.reused_prompt_tokens,
                                     generated_tokens=s.generated_tokens, prefill_seconds=s.prefill_seconds,
                                     decode_seconds=s.decode_seconds, seconds=time.perf_counter() - start,
                                     drafted_tokens=spec.get("drafted", 0), accepted_tokens=spec.get("accepted", 0),
                                     mtp_drafted_tokens=spec.get("drafts_by", {}).get("mtp", 0),
                                     mtp_accepted_tokens=spec.get("accepted_by", {}).get("mtp", 0))
