"""The generation steps as plain functions: prefill a prompt (reusing whatever prefix the cache
already holds), run one decode step, and the token loop with its stop conditions."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import torch
from torch import nn

from .kv_cache import KVCache
from .sampling import Sampler

if TYPE_CHECKING:
    from .grammar import GrammarConstraint
    from .speculative import SpecStats

# Prompt tokens per forward pass. Each pass dequantizes every packed matrix once, so longer chunks
# amortize it: 512 -> 2048 took a 2,000-token prefill of the 1.5B from 50 to 67 tok/s (bf16 GEMMs).
PREFILL_CHUNK = 2048


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    reused_prompt_tokens: int = 0  # prompt prefix found in the KV cache, not recomputed
    generated_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    peak_memory_bytes: int = 0
    speculative: dict | None = None  # SpecStats.as_dict() when drafts were verified

    @property
    def prefill_tokens_per_second(self) -> float:
        computed = self.prompt_tokens - self.reused_prompt_tokens
        return computed / self.prefill_seconds if self.prefill_seconds > 0 else 0.0

    @property
    def decode_tokens_per_second(self) -> float:
        # the first generated token comes from the prefill's logits; each later one costs a step
        steps = max(self.generated_tokens - 1, 0)
        return steps / self.decode_seconds if self.decode_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "reused_prompt_tokens": self.reused_prompt_tokens,
            "generated_tokens": self.generated_tokens,
            "prefill_seconds": round(self.prefill_seconds, 4),
            "decode_seconds": round(self.decode_seconds, 4),
            "prefill_tokens_per_second": round(self.prefill_tokens_per_second, 2),
            "decode_tokens_per_second": round(self.decode_tokens_per_second, 2),
            "peak_memory_bytes": self.peak_memory_bytes,
            **({"speculative": self.speculative} if self.speculative else {}),
        }


def reusable_prefix(cache: KVCache, tokens: list[int], observers: Sequence = ()) -> int:
    """How many leading tokens prefill keeps: what the cache (and every observer) can restore,
    short of the last token, whose logits are needed."""
    return cache.restorable_prefix(tokens, limit=min([len(tokens) - 1] + [o.max_keep() for o in observers]))


@torch.inference_mode()
def prefill(model: nn.Module, cache: KVCache, tokens: list[int], logits_for: str = "last",
            observers: Sequence = (), keep: int | None = None,
            on_progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Make the cache hold exactly `tokens` and return the logits of the last one (or of every
    newly computed position with logits_for="all"). Positions whose tokens already match are kept
    (`keep`, from reusable_prefix when not given). Observers (speculative drafters) see each chunk
    with its hidden states, e.g. to fill an MTP head's cache in the same pass. `on_progress(done,
    total)` hears about each chunk; if it raises, the cache keeps the chunks already computed."""
    if keep is None:
        keep = reusable_prefix(cache, tokens, observers)
    cache.truncate(keep)
    for observer in observers:
        observer.truncate(keep)
    cache.check_room(len(tokens) - keep)
    outputs = []
    for start, end in _prefill_pieces(keep, len(tokens), logits_for == "last"):
        if start == len(tokens) - 1 > keep:
            cache.mark_before_prompt_end()
        chunk = tokens[start:end]
        ids = torch.tensor(chunk, dtype=torch.long, device=model.device)
        logits, hidden = model(ids, start, cache, logits_for)
        cache.tokens.extend(chunk)
        for observer in observers:
            observer.observe(chunk, start, hidden)
        outputs.append(logits)
        if on_progress is not None:
            on_progress(start + len(chunk), len(tokens))
    cache.mark_prompt_end()
    return torch.cat(outputs) if logits_for == "all" else outputs[-1][-1]


def _prefill_pieces(start: int, end: int, last_alone: bool) -> list[tuple[int, int]]:
    """Chunks of at most PREFILL_CHUNK tokens. With last_alone the prompt's last token, whose logits
    pick the first generated token, runs by itself: through the same single-row kernels as a decode
    step, so those logits do not depend on how much of the prompt was cached (many-row GEMMs may
    round differently: bfloat16 on CPUs that have it)."""
    pieces = [(s, min(s + PREFILL_CHUNK, end)) for s in range(start, end, PREFILL_CHUNK)]
    if last_alone and pieces and pieces[-1][1] - pieces[-1][0] > 1:
        s, e = pieces.pop()
        pieces += [(s, e - 1), (e - 1, e)]
    return pieces


@torch.inference_mode()
def decode_step(model: nn.Module, cache: KVCache, token: int) -> torch.Tensor:
    cache.check_room(1)
    ids = torch.tensor([token], dtype=torch.long, device=model.device)
    logits, _ = model(ids, cache.length, cache)
    cache.tokens.append(token)
    return logits[-1]


@dataclass
class TokenLoop:
    """Yields generated token ids until an end-of-generation token, the token budget, or the
    caller stops iterating. `stats` and `finish_reason` are filled in as it runs."""

    model: nn.Module
    cache: KVCache
    prompt: list[int]
    sampler: Sampler
    max_new_tokens: int
    end_tokens: frozenset[int]
    stats: GenerationStats = field(default_factory=GenerationStats)
    finish_reason: str | None = None
    on_prefill: Callable[[int, int], None] | None = None  # prefill progress: (tokens done, prompt tokens)
    constraint: GrammarConstraint | None = None  # a grammar every emitted token must follow

    def observers(self) -> Sequence:
        """Who sees the prefill's hidden states (speculative drafters)."""
        return ()

    def speculative_stats(self) -> SpecStats | None:
        """What drafting did in this generation; None for a loop that does not draft."""
        return None

    def sample(self, logits: torch.Tensor, history: list[int]) -> int:
        """The next token, drawn by the sampler within what the grammar (if any) allows; the
        grammar moves past it. The full mask is computed only when the free draw is refused."""
        token = self.sampler(logits, history)
        if self.constraint is not None:
            if not self.constraint.allowed(token):
                token = self.sampler(self.constraint.mask(logits), history)
            self.constraint.advance(token)
        return token

    def next_tokens(self, last: int, history: list[int]) -> list[int]:
        """Feed `last` (sampled, not yet in the cache) and return the tokens that follow it."""
        logits = decode_step(self.model, self.cache, last)
        return [self.sample(logits, history)]

    def __iter__(self) -> Iterator[int]:
        stats = self.stats
        stats.prompt_tokens = len(self.prompt)
        stats.reused_prompt_tokens = reusable_prefix(self.cache, self.prompt, self.observers())
        start = time.perf_counter()
        logits = prefill(self.model, self.cache, self.prompt, observers=self.observers(), keep=stats.reused_prompt_tokens,
                         on_progress=self.on_prefill)
        history = list(self.prompt)
        tokens = [self.sample(logits, history)]
        stats.prefill_seconds = time.perf_counter() - start
        start = time.perf_counter()
        while True:
            for token in tokens:
                history.append(token)
                stats.generated_tokens += 1
                if token in self.end_tokens:
                    self.finish_reason = "eos"
                    break
                yield token
                if stats.generated_tokens >= self.max_new_tokens:
                    self.finish_reason = "length"
                    break
            if self.finish_reason:
                break
            tokens = self.next_tokens(tokens[-1], history)
            stats.decode_seconds = time.perf_counter() - start
        stats.decode_seconds = time.perf_counter() - start
