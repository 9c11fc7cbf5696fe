"""Time to first token of each turn on a hybrid (Gated DeltaNet + attention) model: a growing
conversation, then a workflow that goes back to the same request for each attempt. The recurrent
state cannot be truncated like a KV cache, so what a turn recomputes depends on the checkpoints
the cache keeps (inference/hybrid_cache.py); each turn is also timed from an empty cache (cold).

    python benchmarks/hybrid_turns.py [--model FILE] [--turns 6] [--attempts 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from inference import Engine  # noqa: E402
from support.qwen35_fixtures import FIXTURES  # noqa: E402

TOOL_RESULT = (ROOT / "agent" / "core" / "locate.py").read_text()[:1500]


def first_token(engine: Engine, messages: list[dict]) -> tuple[float, object]:
    start = time.perf_counter()
    generation = engine.stream(messages=messages, max_new_tokens=8, ignore_eos=True)
    deltas = iter(generation)
    next(deltas, None)  # the first delta: prefill and one step
    waited = time.perf_counter() - start
    for _ in deltas:
        pass
    return waited, generation.completion


def turn(engine: Engine, cold: Engine, label: str, messages: list[dict]) -> str:
    warm_s, completion = first_token(engine, messages)
    cold.reset()
    cold_s, _ = first_token(cold, messages)
    s = completion.stats
    print(f"{label:>12} {s.prompt_tokens:>7} {s.reused_prompt_tokens:>7} {s.prompt_tokens - s.reused_prompt_tokens:>9} "
          f"{warm_s * 1000:>9.1f} {cold_s * 1000:>11.1f}")
    return completion.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(FIXTURES / "qwen35-dense-F32.gguf"))
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--attempts", type=int, default=3)
    args = parser.parse_args()
    engine, cold = (Engine.load(args.model, device="cpu", n_ctx=16384, spec="off") for _ in range(2))
    print(f"{'turn':>12} {'prompt':>7} {'reused':>7} {'computed':>9} {'TTFT ms':>9} {'cold TTFT ms':>11}")
    messages = [{"role": "system", "content": "You are a coding agent."}, {"role": "user", "content": "Fix the bug."}]
    for n in range(1, args.turns + 1):
        answer = turn(engine, cold, f"turn {n}", messages)
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": TOOL_RESULT[: 200 * n]}]
    attempt_start = list(messages)
    for attempt in range(1, args.attempts + 1):
        messages = list(attempt_start)
        for stage in ("diagnose", "rewrite a", "rewrite b"):
            messages.append({"role": "user", "content": f"Now {stage}: " + TOOL_RESULT[:300]})
            messages.append({"role": "assistant", "content": turn(engine, cold, f"{attempt} {stage}", messages)})


if __name__ == "__main__":
    main()
