"""What a verify row costs: a whole forward of M rows (M = 1..16) at the end of a context, and one
packed matmul per weight type of the model, each against M = 1. Speculative decoding pays when a
row costs much less than a token: issue 16's targets are cost(4) <= 1.3x and cost(8) <= 1.7x.

    python benchmarks/verify_rows.py [--model smollm2-135m] [--context 512] [--runs 7] [--activations int8]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from agent.backends.model_store import resolve_model
from inference import Engine
from inference import kernels

ROWS = [1, 2, 3, 4, 6, 8, 12, 16]


def median_seconds(work, runs: int) -> float:
    work()  # warm
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--activations", default="int16", choices=["int16", "int8"])
    args = parser.parse_args()
    engine = Engine.load(resolve_model(args.model), device="cpu", spec="off", activations=args.activations)
    int8 = args.activations == "int8"
    model, cache = engine.model, engine.cache
    prompt = [(i * 7919) % 1000 + 100 for i in range(args.context)]
    engine.generate(prompt, max_new_tokens=1)
    base = cache.length

    def forward(m: int):
        ids = torch.tensor(prompt[:m], dtype=torch.long)

        def run() -> None:
            with torch.inference_mode():
                model(ids, base, cache, "all")
            cache.truncate(base)
        return run

    print(f"{args.model}, context {base}, {torch.get_num_threads()} threads, {args.activations} activations, median of {args.runs}")
    one = median_seconds(forward(1), args.runs)
    print("whole forward: " + "  ".join(f"M={m}: {median_seconds(forward(m), args.runs) / one:.2f}x" for m in ROWS)
          + f"  (M=1: {one * 1000:.1f} ms)")
    if kernels.cpu is None:
        return
    seen = {}
    for tensor in engine.gguf.tensors.values():
        if len(tensor.shape) == 2 and tensor.qtype not in seen and tensor.shape[1] >= 256:
            seen[tensor.qtype] = tensor
    for qtype, tensor in seen.items():
        w = tensor.raw()[:4096].contiguous()  # at most 4096 output rows: an embedding matrix is huge
        n, k = w.shape[0], tensor.shape[1]

        def matmul(m: int):
            x, y = torch.randn(m, k), torch.empty(m, n)
            return lambda: kernels.cpu.matmul(int(qtype), x.data_ptr(), w.data_ptr(), y.data_ptr(), m, n, k, w.shape[1], int8)
        one = median_seconds(matmul(1), args.runs)
        print(f"{qtype.name:>5} [{n}x{k}]: " + "  ".join(f"M={m}: {median_seconds(matmul(m), args.runs) / one:.2f}x"
                                                     for m in ROWS) + f"  (M=1: {one * 1e6:.0f} us)")


if __name__ == "__main__":
    main()
