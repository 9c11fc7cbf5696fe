"""Time to first token through `agent serve` as a conversation grows: each turn reuses the KV
cache of the one before, so its wait should follow its new tokens, not the whole conversation.

For each turn, the same request is also sent once more after the cache was emptied (a cold
prefill of the whole conversation), in the same run, for the ratio.

    python benchmarks/serve_ttft.py [--model qwen2.5-coder-0.5b] [--turns 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from agent.core.config import Config  # noqa: E402
from agent.core.setup import RunSettings, make_backend  # noqa: E402
from agent.frontends.serve import Server  # noqa: E402
from support.serve_support import serving  # noqa: E402

FILE = (ROOT / "agent" / "core" / "locate.py").read_text()[:6000]


def first_token(client: openai.OpenAI, messages: list[dict]) -> tuple[float, str, object]:
    start = time.perf_counter()
    waited, text, usage = None, [], None
    for chunk in client.chat.completions.create(model="m", messages=messages, max_tokens=24, stream=True,
                                                stream_options={"include_usage": True}, temperature=0):
        if chunk.choices and chunk.choices[0].delta.content and waited is None:
            waited = time.perf_counter() - start
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    return waited or time.perf_counter() - start, "".join(text), usage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--turns", type=int, default=4)
    args = parser.parse_args()
    backend = make_backend(RunSettings(model=args.model, device="cpu", spec="off"), Config())
    with serving(Server(backend)) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        messages = [{"role": "system", "content": "You are a code reviewer."},
                    {"role": "user", "content": f"Here is a file:\n\n{FILE}\n\nWhat does find_command do?"}]
        print(f"{'turn':>4} {'prompt':>7} {'cached':>7} {'new':>5} {'TTFT s':>7} {'cold TTFT s':>11} {'ratio':>6}")
        for turn in range(1, args.turns + 1):
            warm, reply, usage = first_token(client, messages)
            backend.engine.reset()  # the same request from an empty cache; it leaves the cache at this turn
            cold, _, _ = first_token(client, messages)
            cached = usage.prompt_tokens_details.cached_tokens
            print(f"{turn:>4} {usage.prompt_tokens:>7} {cached:>7} {usage.prompt_tokens - cached:>5} {warm:>7.2f} "
                  f"{cold:>11.2f} {cold / warm:>6.1f}x", flush=True)
            messages += [{"role": "assistant", "content": reply},
                         {"role": "user", "content": f"And in one line: what does turn {turn} change?"}]


if __name__ == "__main__":
    main()
