"""The GPU engine on Qwen3.6-27B's shape, in one call of a lent device (issue 17): writes a random
27B-shaped qwen35 GGUF with an MTP block in Q4_K_M-like types, loads it with packed weights (the
Triton kernels) and the 8-bit KV cache, checks each block type's kernel against the dequantized
reference on the device, then measures plain decode and its share of the memory-bandwidth bound,
a forward of M = 1..8 rows, an MTP draft step, prefill with and without MTP, decode at long
contexts, and peak memory. One table, and JSON with --json.

    python benchmarks/gpu_bench.py [--shape 27b|tiny] [--device cuda] [--json out.json]

MTP decoding runs at a forced acceptance: the head drafts (its cost is real) but what is verified
is the plain greedy continuation with each token made wrong with probability 1 - --acceptance, so
random weights accept as a trained head would; the output must equal plain decoding.
`--shape tiny --device cpu` runs the same steps in seconds (what the tests do). Not measured yet:
CUDA graphs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from inference import Engine  # noqa: E402
from inference.generate import TokenLoop, decode_step, prefill  # noqa: E402
from inference.linear import StackedLinear, TritonLinear  # noqa: E402
from inference.memory_plan import module_tensors, tensor_storage_bytes  # noqa: E402
from inference.quants import dequantize  # noqa: E402
from inference.sampling import Sampler, SamplingParams  # noqa: E402
from inference.speculative import Draft, DraftPolicy, SpeculativeLoop  # noqa: E402
from support.qwen35_synthetic import QWEN36_27B, TINY, write_qwen35  # noqa: E402

SHAPES = {"27b": QWEN36_27B, "tiny": TINY}
BANDWIDTH_GBS = {"H100": 3350, "H200": 4800}  # the cards' HBM bandwidth, GB/s, for the decode bound


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device: torch.device, fn, repeat: int = 5) -> float:
    """Median seconds of fn() over `repeat` runs after one warm-up."""
    fn()
    runs = []
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


class ScheduledDrafter:
    """The MTP head drafts, so its cost is real, but the tokens proposed are the plain greedy
    continuation with each one wrong with probability 1 - rate (seeded)."""

    free = False
    name = "mtp"

    def __init__(self, mtp, continuation: list[int], prompt_length: int, rate: float, vocab: int, seed: int = 0):
        self.mtp, self.continuation, self.prompt_length, self.vocab = mtp, continuation, prompt_length, vocab
        rng = random.Random(seed)
        self.wrong = {i for i in range(len(continuation)) if rng.random() > rate}

    def max_keep(self) -> int:
        return self.mtp.max_keep()

    def truncate(self, n_tokens: int) -> None:
        self.mtp.truncate(n_tokens)

    def observe(self, tokens, start, hidden) -> None:
        self.mtp.observe(tokens, start, hidden)

    def draft(self, last: int, context: list[int], n: int, worth=None) -> Draft:
        self.mtp.draft(last, context, n)
        first = len(context) + 1 - self.prompt_length  # the continuation's index of the first drafted token
        tokens = [t if first + i not in self.wrong else (t + 1) % self.vocab
                  for i, t in enumerate(self.continuation[first : first + n])]
        return Draft(tokens, self.name, self.name)


def mtp_decoding(engine: Engine, device: torch.device, rate: float, n_new: int = 48) -> dict[str, float]:
    """Plain decoding, then MTP with N = 1..3 drafts at the forced acceptance: tokens/s and ratio."""
    prompt = list(range(20, 84))
    model, cache, end = engine.model, engine.cache, frozenset()

    def run(loop_of) -> tuple[float, list[int]]:
        engine.reset()
        loop = loop_of()
        sync(device)
        start = time.perf_counter()
        tokens = list(loop)
        sync(device)
        return time.perf_counter() - start, tokens

    plain_s, reference = run(lambda: TokenLoop(model, cache, prompt, Sampler(SamplingParams()), n_new + 8, end))
    plain_s, reference = run(lambda: TokenLoop(model, cache, prompt, Sampler(SamplingParams()), n_new, end))
    out = {"plain_tok_s": round(n_new / plain_s, 1)}
    vocab = engine.tokenizer.vocab_size
    for n in (1, 2, 3):
        def loop_of():
            drafter = ScheduledDrafter(engine.mtp_drafter, reference + [0] * 8, len(prompt), rate, vocab)
            return SpeculativeLoop(model, cache, prompt, Sampler(SamplingParams()), n_new, end, drafters=[drafter],
                                   policy=DraftPolicy(n_max=n))
        seconds, tokens = run(loop_of)
        if tokens != reference:
            raise SystemExit(f"MTP decoding with N={n} changed the output: speculation must be lossless")
        out[f"n{n}_tok_s"], out[f"n{n}_ratio"] = round(n_new / seconds, 1), round(plain_s / seconds, 2)
    return out


def check_kernels(engine: Engine) -> dict[str, float]:
    """Per block type: the largest relative error of one packed matrix against its dequantized self."""
    errors: dict[str, float] = {}
    for module in engine.model.modules():
        parts = module.parts if isinstance(module, StackedLinear) else [module]
        for part in parts:
            if not isinstance(part, TritonLinear) or part.qtype.name in errors:
                continue
            x = torch.randn(4, part.in_features, device=part.blocks.device)
            want = x @ dequantize(part.blocks, part.qtype, (part.out_features, part.in_features)).t()
            errors[part.qtype.name] = ((part(x).float() - want).norm() / want.norm()).item()
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=SHAPES, default="27b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--contexts", default="131072,262144", help="decode at these context lengths (tokens)")
    parser.add_argument("--prefill", type=int, default=8192)
    parser.add_argument("--acceptance", type=float, default=0.72, help="forced per-token acceptance of MTP drafts")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    device = torch.device(args.device)
    contexts = [int(c) for c in args.contexts.split(",")]
    results: dict[str, object] = {"shape": args.shape, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        path = write_qwen35(Path(scratch) / f"qwen35-{args.shape}.gguf", SHAPES[args.shape])
        results["write_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        # room for the prompt, the steps timed after it (the cache only grows) and the long contexts
        engine = Engine.load(path, device=args.device, weights="packed", kv_cache="q8", spec="mtp",
                             n_ctx=max(max(contexts), args.prefill + 512) + 16)
        results["load_s"] = round(time.perf_counter() - start, 1)
    results["kernel_errors"] = check_kernels(engine)
    model, cache = engine.model, engine.cache
    results["weight_bytes"] = tensor_storage_bytes(module_tensors(engine.model))
    with torch.inference_mode():
        prompt = list(range(10, 10 + args.prefill))
        engine.spec = "off"
        engine.reset()
        results["prefill_tok_s"] = round(args.prefill / timed(device, lambda: (engine.reset(), prefill(model, cache, prompt)), 2), 1)
        drafter = engine.mtp_drafter
        results["prefill_mtp_tok_s"] = round(args.prefill / timed(device, lambda: (
            engine.reset(), prefill(model, cache, prompt, observers=[drafter]), drafter.draft(prompt[-1], prompt, 1)), 2), 1)
        # the cache grows by the steps timed (a recurrent state cannot be cut back to any length)
        step = timed(device, lambda: decode_step(model, cache, 7))
        results["decode_tok_s"] = round(1 / step, 1)
        bound = next((gbs for name, gbs in BANDWIDTH_GBS.items() if name in str(results["device"])), None)
        if bound:
            results["decode_bandwidth_share"] = round(results["weight_bytes"] / step / (bound * 1e9), 3)
        rows = {}
        for m in range(1, 9):
            ids = torch.arange(m, device=device) + 5
            rows[m] = timed(device, lambda: (model(ids, cache.length, cache), cache.tokens.extend([0] * m)))
        results["forward_rows_cost"] = {m: round(t / rows[1], 2) for m, t in rows.items()}
        results["mtp_draft_step_ms"] = round(1000 * timed(device, lambda: drafter.draft(7, prompt, 1)), 2)
        results["mtp_decoding"] = mtp_decoding(engine, device, args.acceptance)
        for ctx in contexts:  # positions past the prompt hold whatever the cache holds: attention reads them all
            cache.tokens[:] = [0] * (ctx - 8)
            results[f"decode_{ctx}_tok_s"] = round(1 / timed(device, lambda: decode_step(model, cache, 7)), 1)
    if device.type == "cuda":
        results["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    for key, value in results.items():
        print(f"{key:28} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
