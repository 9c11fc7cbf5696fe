"""The packed kernels' activations rounded to int16 per 32 values against int8 per 256
(`--activations`), side by side in one process: decode tok/s (interleaved runs, medians), the
per-token cost of one matmul per weight type, how far greedy outputs agree, and perplexity with
every token through the few-row kernels (8 rows at a time, as a verify batch) under both.

    python benchmarks/activations.py [--model qwen2.5-coder-1.5b] [--decode 64] [--runs 3] [--ppl-tokens 2048]
"""

from __future__ import annotations

import argparse
import math
import statistics
import textwrap
from pathlib import Path

import torch

from agent.backends.model_store import resolve_model
from inference import Engine
from inference.linear import set_activations

MODES = ("int16", "int8")  # forced on every matrix that has an int8 kernel
PROMPT = "Write a Python function that parses an ISO 8601 duration such as P3DT4H into seconds, with tests."


def kernel_perplexity(engine: Engine, ids: list[int], window: int = 512, rows: int = 8) -> float:
    """Perplexity of the second half of each window, fed `rows` tokens per forward so that every
    matmul runs the few-row kernel (prefill's dequantize + BLAS path never runs)."""
    nll, scored = 0.0, 0
    for start in range(0, len(ids) - window + 1, window):
        chunk = ids[start : start + window]
        engine.reset()
        pieces = []
        with torch.inference_mode():
            for i in range(0, window, rows):
                pieces.append(engine.model(torch.tensor(chunk[i : i + rows]), i, engine.cache, "all")[0])
                engine.cache.tokens.extend(chunk[i : i + rows])
        logits = torch.cat(pieces)
        log_probs = torch.log_softmax(logits[window // 2 - 1 : window - 1].float(), dim=-1)
        targets = torch.tensor(chunk[window // 2 :])
        nll -= float(log_probs.gather(1, targets[:, None]).sum())
        scored += len(targets)
    return math.exp(nll / scored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--decode", type=int, default=64, help="tokens generated per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ppl-tokens", type=int, default=2048, help="tokens of textwrap.py scored (0: skip)")
    args = parser.parse_args()
    engine = Engine.load(resolve_model(args.model), device="cpu", spec="off", n_ctx=4096)
    ids = engine.chat_prompt([{"role": "user", "content": PROMPT}])
    speed: dict[str, list[float]] = {name: [] for name in MODES}
    outputs: dict[str, list[int]] = {}
    print(f"{args.model}, {torch.get_num_threads()} threads, {args.decode} tokens, median of {args.runs}")
    for run in range(args.runs + 1):  # the first round warms up
        for name in MODES:
            set_activations(engine.model, name)
            engine.reset()
            completion = engine.generate(ids, max_new_tokens=args.decode, ignore_eos=True)
            if run:
                speed[name].append(completion.stats.decode_tokens_per_second)
            outputs[name] = completion.token_ids
    same = next((i for i, (a, b) in enumerate(zip(*outputs.values())) if a != b), args.decode)
    perplexities = {}
    if args.ppl_tokens:
        text_ids = engine.tokenizer.encode(Path(textwrap.__file__).read_text())[: args.ppl_tokens]
        for name in MODES:
            set_activations(engine.model, name)
            perplexities[name] = kernel_perplexity(engine, text_ids)
    print(f"{'activations':12} {'decode tok/s':>13} {'perplexity (kernel path)':>25}")
    for name in MODES:
        ppl = f"{perplexities[name]:25.4f}" if perplexities else f"{'-':>25}"
        print(f"{name:12} {statistics.median(speed[name]):13.1f} {ppl}")
    print(f"int8 / int16 decode: {statistics.median(speed['int8']) / statistics.median(speed['int16']):.2f}x; "
          f"greedy outputs identical for the first {same} of {args.decode} tokens")


if __name__ == "__main__":
    main()
