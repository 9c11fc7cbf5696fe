"""`agent bench`: prefill and decode speed measured side by side in one process, and perplexity."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from inference import Engine

from .errors import AgentError
from .prompts import load_prompt


@dataclass
class BenchResult:
    model: str
    device: str
    dtype: str
    weights: str
    threads: int
    prefill_tokens: int
    decode_tokens: int
    runs: int
    prefill_tokens_per_second: float  # median over runs
    decode_tokens_per_second: float  # median over runs
    peak_rss_bytes: int
    load_seconds: float
    prefill_runs: list[float] = field(default_factory=list)
    decode_runs: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def bench_prompt_ids(engine: Engine, text: str, n_tokens: int) -> list[int]:
    ids = engine.tokenizer.encode(text)
    if not ids:
        raise AgentError("the benchmark text is empty")
    while len(ids) < n_tokens:
        ids = ids + ids
    return ids[:n_tokens]


def run_bench(engine: Engine, model_path: Path, load_seconds: float, prefill_tokens: int = 512,
              decode_tokens: int = 128, runs: int = 3, warmup: int = 1, text: str | None = None) -> BenchResult:
    if runs < 1:
        raise AgentError("--runs must be at least 1")
    if prefill_tokens + decode_tokens > engine.cache.max_tokens:
        raise AgentError(f"prefill + decode ({prefill_tokens + decode_tokens}) exceed the context ({engine.cache.max_tokens}); raise --ctx")
    ids = bench_prompt_ids(engine, text or load_prompt("bench/code_python.txt"), prefill_tokens)
    prefill, decode, peak = [], [], 0
    for i in range(warmup + runs):
        engine.reset()  # every run prefills the whole prompt: no prefix reuse
        completion = engine.generate(ids, max_new_tokens=decode_tokens, ignore_eos=True)
        if i >= warmup:
            prefill.append(completion.stats.prefill_tokens_per_second)
            decode.append(completion.stats.decode_tokens_per_second)
            peak = max(peak, completion.stats.peak_memory_bytes)
    return BenchResult(
        model=model_path.name, device=str(engine.device), dtype=str(engine.dtype).removeprefix("torch."),
        weights="packed" if engine.packed_weights else "dense", threads=torch.get_num_threads(),
        prefill_tokens=prefill_tokens, decode_tokens=decode_tokens, runs=runs,
        prefill_tokens_per_second=round(statistics.median(prefill), 2),
        decode_tokens_per_second=round(statistics.median(decode), 2),
        peak_rss_bytes=peak, load_seconds=round(load_seconds, 3),
        prefill_runs=[round(x, 2) for x in prefill], decode_runs=[round(x, 2) for x in decode],
    )


@dataclass
class PerplexityResult:
    perplexity: float
    scored_tokens: int
    windows: int
    context: int
    seconds: float


def perplexity(engine: Engine, text: str, context: int = 512) -> PerplexityResult:
    """llama-perplexity's method: split the text into windows of `context` tokens and score the
    second half of each window, so every scored token sees at least context/2 tokens before it."""
    if context < 4:
        raise AgentError("--ctx for perplexity must be at least 4 tokens")
    if context > engine.cache.max_tokens:
        raise AgentError(f"perplexity context {context} exceeds the engine's context {engine.cache.max_tokens}")
    ids = engine.tokenizer.encode(text, add_special=True)
    windows = len(ids) // context
    if windows == 0:
        raise AgentError(f"the text has {len(ids)} tokens; perplexity with context {context} needs at least {context}")
    first = context // 2
    nll, scored = 0.0, 0
    start = time.perf_counter()
    for w in range(windows):
        chunk = ids[w * context : (w + 1) * context]
        logits = engine.logits(chunk).float()
        log_probs = torch.log_softmax(logits[first - 1 : context - 1], dim=-1)
        targets = torch.tensor(chunk[first:context], device=log_probs.device)
        nll -= float(log_probs.gather(1, targets[:, None]).sum())
        scored += len(targets)
    return PerplexityResult(math.exp(nll / scored), scored, windows, context, time.perf_counter() - start)
