"""Prefill with float32 against bfloat16 GEMMs (`--prefill-dtype`), side by side in one process:
a long prompt from an empty cache, and a turn's few new tokens on a cached prefix, interleaved
runs, medians; with perplexity under both.

    python benchmarks/prefill_dtype.py [--model qwen2.5-coder-1.5b] [--tokens 2000] [--new 60] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import textwrap
import time
from pathlib import Path

import torch

from agent.backends.model_store import resolve_model
from agent.engine_tools.bench import perplexity
from inference import Engine
from inference.linear import cpu_has_native_bf16, set_prefill_dtype

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--tokens", type=int, default=2000, help="prompt tokens prefilled from an empty cache")
    parser.add_argument("--new", type=int, default=60, help="new tokens of a turn on a cached prefix")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    engine = Engine.load(resolve_model(args.model), device="cpu", spec="off", n_ctx=args.tokens + args.new + 8)
    text = Path(textwrap.__file__).read_text()
    ids = engine.tokenizer.encode(text)[: args.tokens + args.new]
    prompt, turn = ids[: args.tokens], ids[: args.tokens + args.new]
    cold: dict[str, list[float]] = {name: [] for name in DTYPES}
    warm: dict[str, list[float]] = {name: [] for name in DTYPES}
    print(f"{args.model}, {torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}")
    for _ in range(args.runs):
        for name, dtype in DTYPES.items():
            set_prefill_dtype(engine.model, dtype)
            engine.reset()
            cold[name].append(len(prompt) / seconds(lambda: engine.generate(prompt, max_new_tokens=1)))
            warm[name].append(seconds(lambda: engine.generate(turn, max_new_tokens=1)))
    print(f"{'GEMMs':10} {'prefill tok/s':>14} {f'+{args.new} tokens s':>16} {'perplexity':>11}")
    for name, dtype in DTYPES.items():
        set_prefill_dtype(engine.model, dtype)
        ppl = perplexity(engine, text, 512).perplexity
        print(f"{name:10} {statistics.median(cold[name]):14.1f} {statistics.median(warm[name]):16.2f} {ppl:11.4f}")
    ratio = statistics.median(cold["bfloat16"]) / statistics.median(cold["float32"])
    print(f"bfloat16 / float32 prefill: {ratio:.2f}x")


if __name__ == "__main__":
    main()
