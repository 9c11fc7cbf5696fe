"""`agent bench`: prefill and decode speed measured side by side in one process, and perplexity."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from inference import Engine

from agent.errors import AgentError
from agent.prompts import load_prompt


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
    prefill_dtype: str = "float32"  # the GEMMs of prefill's many rows
    activations: str = "int16"  # how decode's packed kernels round activations
    kv_cache: str = "auto"  # the KV cache's storage
    kv_cache_bytes: int = 0  # what the KV cache (and recurrent state) holds allocated
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
        prefill_dtype=str(engine.prefill_dtype).removeprefix("torch."), activations=engine.activations,
        kv_cache=engine.kv_cache, kv_cache_bytes=engine.cache.nbytes,
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


SPEC_TASKS = ("code_python", "code_cpp", "stepwise_math", "code_edit")


@dataclass
class SpecTaskResult:
    task: str
    tokens: int
    plain_tokens_per_second: float  # medians over runs
    spec_tokens_per_second: float
    drafted: int
    accepted: int
    tokens_per_forward: float
    acceptance_per_position: list[float]
    identical: bool  # the speculative output equals plain decoding (greedy)
    # --spec auto with an MTP head: the same mode without the head (prompt lookup alone), for comparison
    without_head_tokens_per_second: float | None = None

    @property
    def speedup(self) -> float:
        return self.spec_tokens_per_second / self.plain_tokens_per_second if self.plain_tokens_per_second else 0.0

    @property
    def without_head_speedup(self) -> float | None:
        if self.without_head_tokens_per_second is None or not self.plain_tokens_per_second:
            return None
        return self.without_head_tokens_per_second / self.plain_tokens_per_second

    @property
    def acceptance(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0


@dataclass
class SpecBenchResult:
    model: str
    device: str
    mode: str
    draft_n_max: int
    runs: int
    tasks: list[SpecTaskResult]
    prefill_tokens: int
    prefill_plain_tokens_per_second: float
    prefill_mtp_tokens_per_second: float | None  # None without an MTP head: nothing runs during prefill
    mtp_weight_bytes: int
    mtp_kv_bytes: int
    snapshot_bytes: int
    context: int

    def as_dict(self) -> dict:
        out = asdict(self)
        for task, row in zip(self.tasks, out["tasks"]):
            row.update(speedup=round(task.speedup, 3), acceptance=round(task.acceptance, 4))
            if task.without_head_speedup is not None:
                row.update(without_head_speedup=round(task.without_head_speedup, 3))
        return out


def _task_prompt(engine: Engine, task: str) -> list[int]:
    text = load_prompt(f"bench/tasks/{task}.md")
    if engine.chat_template is not None:
        return engine.chat_prompt([{"role": "user", "content": text}])
    return engine.tokenizer.encode(text, add_special=True)


def _timed(engine: Engine, spec: str, ids: list[int], max_new_tokens: int, head: bool = True):
    engine.spec = spec
    engine.reset()  # no prefix reuse: both settings do the same work
    if head:
        return engine.generate(ids, max_new_tokens=max_new_tokens)
    held = engine.mtp_head, engine.mtp_drafter
    engine.mtp_head = engine.mtp_drafter = None
    try:
        return engine.generate(ids, max_new_tokens=max_new_tokens)
    finally:
        engine.mtp_head, engine.mtp_drafter = held


def run_spec_bench(engine: Engine, model_path: Path, mode: str, decode_tokens: int = 128, runs: int = 3,
                   prefill_tokens: int = 512, tasks: tuple[str, ...] = SPEC_TASKS) -> SpecBenchResult:
    """Each task's answer generated greedily without and with speculation, alternating, after one
    warm-up of each (with --spec auto and an MTP head, also auto without the head, to show what the
    head adds); plus prefill speed with the MTP head catching up and without it."""
    if runs < 1:
        raise AgentError("--runs must be at least 1")
    if mode == "off":
        raise AgentError("--spec off has nothing to compare; use --spec auto, mtp or ngram")
    chosen = engine.spec
    rows = []
    spec_stats: dict = {}
    try:
        for task in tasks:
            ids = _task_prompt(engine, task)
            plain, fast, headless = [], [], []
            compare_headless = mode == "auto" and engine.mtp_head is not None
            identical = True
            for i in range(runs + 1):
                base = _timed(engine, "off", ids, decode_tokens)
                spec = _timed(engine, mode, ids, decode_tokens)
                lookup = _timed(engine, mode, ids, decode_tokens, head=False) if compare_headless else None
                identical &= spec.token_ids == base.token_ids and (lookup is None or lookup.token_ids == base.token_ids)
                if i:
                    plain.append(base.stats.decode_tokens_per_second)
                    fast.append(spec.stats.decode_tokens_per_second)
                    if lookup is not None:
                        headless.append(lookup.stats.decode_tokens_per_second)
            spec_stats = spec.stats.speculative or {}
            rows.append(SpecTaskResult(
                task=task, tokens=len(spec.token_ids), plain_tokens_per_second=round(statistics.median(plain), 2),
                spec_tokens_per_second=round(statistics.median(fast), 2), drafted=spec_stats.get("drafted", 0),
                accepted=spec_stats.get("accepted", 0), tokens_per_forward=spec_stats.get("tokens_per_forward", 1.0),
                acceptance_per_position=spec_stats.get("acceptance_per_position", []), identical=identical,
                without_head_tokens_per_second=round(statistics.median(headless), 2) if headless else None))
        prefill_ids = bench_prompt_ids(engine, load_prompt("bench/code_python.txt"), prefill_tokens)
        prefill_plain, prefill_mtp = [], []
        for i in range(runs + 1):
            a = _timed(engine, "off", prefill_ids, 1).stats.prefill_tokens_per_second
            b = _timed(engine, "mtp", prefill_ids, 1).stats.prefill_tokens_per_second if engine.mtp_head else None
            if i:
                prefill_plain.append(a)
                prefill_mtp.append(b)
    finally:
        engine.spec = chosen
    return SpecBenchResult(
        model=model_path.name, device=str(engine.device), mode=mode, draft_n_max=engine.spec_n_max, runs=runs, tasks=rows,
        prefill_tokens=prefill_tokens, prefill_plain_tokens_per_second=round(statistics.median(prefill_plain), 2),
        prefill_mtp_tokens_per_second=round(statistics.median(prefill_mtp), 2) if engine.mtp_head else None,
        mtp_weight_bytes=spec_stats.get("mtp_weight_bytes", 0), mtp_kv_bytes=spec_stats.get("mtp_kv_bytes", 0),
        snapshot_bytes=spec_stats.get("snapshot_bytes", 0), context=engine.cache.max_tokens)


def format_spec_bench(r: SpecBenchResult) -> str:
    mib = lambda n: f"{n / 2**20:.1f} MiB"  # noqa: E731
    lines = [f"model {r.model} on {r.device}; --spec {r.mode}, drafts of up to {r.draft_n_max}; medians of {r.runs} runs",
             f"{'task':<14} {'tokens':>6} {'plain tok/s':>11} {'spec tok/s':>10} {'speedup':>7} {'accepted':>9} "
             f"{'rate':>5} {'tok/fwd':>7}  same output"]
    headless = any(t.without_head_speedup is not None for t in r.tasks)
    if headless:
        lines[1] += "   without the head"
    for t in r.tasks:
        line = (f"{t.task:<14} {t.tokens:>6} {t.plain_tokens_per_second:>11.1f} {t.spec_tokens_per_second:>10.1f} "
                f"{t.speedup:>6.2f}x {f'{t.accepted}/{t.drafted}':>9} {100 * t.acceptance:>4.0f}% "
                f"{t.tokens_per_forward:>7.2f}  {'yes' if t.identical else 'NO':<11}")
        if t.without_head_speedup is not None:
            line += f"   {t.without_head_tokens_per_second:.1f} tok/s, {t.without_head_speedup:.2f}x"
        lines.append(line.rstrip())
    if r.prefill_mtp_tokens_per_second is None:
        lines.append(f"prefill ({r.prefill_tokens} tokens): {r.prefill_plain_tokens_per_second:.1f} tok/s; "
                     "no MTP head, so nothing extra runs during prefill")
    else:
        ratio = r.prefill_mtp_tokens_per_second / r.prefill_plain_tokens_per_second
        lines.append(f"prefill ({r.prefill_tokens} tokens): {r.prefill_plain_tokens_per_second:.1f} tok/s MTP off, "
                     f"{r.prefill_mtp_tokens_per_second:.1f} tok/s MTP on ({100 * ratio:.0f}%)")
        lines.append(f"MTP memory: weights {mib(r.mtp_weight_bytes)}, its KV {mib(r.mtp_kv_bytes)} at {r.context} tokens, "
                     f"recurrent-state snapshots {mib(r.snapshot_bytes)}")
    if r.snapshot_bytes and r.prefill_mtp_tokens_per_second is None:
        lines.append(f"rollback memory: recurrent-state snapshots {mib(r.snapshot_bytes)}")
    return "\n".join(lines)
