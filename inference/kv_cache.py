"""Preallocated attention KV cache for one sequence, indexed by position.

Position i of every layer holds the keys and values of token `tokens[i]`. Rolling back (a rejected
draft, a changed prompt suffix) is just truncation: later writes overwrite the stale positions.
"""

from __future__ import annotations

import torch

from .errors import EngineError


class ContextFullError(EngineError):
    pass


class KVCache:
    def __init__(self, n_layer: int, n_head_kv: int, head_dim: int, max_tokens: int,
                 dtype: torch.dtype, device: torch.device):
        shape = (n_layer, n_head_kv, max_tokens, head_dim)
        # empty, not zeros: pages are committed only as positions are written
        self.k = torch.empty(shape, dtype=dtype, device=device)
        self.v = torch.empty(shape, dtype=dtype, device=device)
        self.max_tokens = max_tokens
        self.tokens: list[int] = []

    @property
    def length(self) -> int:
        return len(self.tokens)

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() * 2

    def check_room(self, n_new: int) -> None:
        if self.length + n_new > self.max_tokens:
            raise ContextFullError(
                f"the context holds {self.max_tokens} tokens and this request needs {self.length + n_new}; "
                "raise --ctx or shorten the prompt"
            )

    def write(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v ([n_head_kv, n, head_dim]) at positions start.. and return the keys and
        values of positions 0..start+n as views."""
        end = start + k.shape[1]
        self.k[layer, :, start:end] = k
        self.v[layer, :, start:end] = v
        return self.k[layer, :, :end], self.v[layer, :, :end]

    def truncate(self, n_tokens: int) -> None:
        del self.tokens[n_tokens:]

    def common_prefix(self, tokens: list[int]) -> int:
        n = 0
        for a, b in zip(self.tokens, tokens):
            if a != b:
                break
            n += 1
        return n

    def restorable_prefix(self, tokens: list[int], limit: int | None = None) -> int:
        """How many leading tokens of `tokens` (at most `limit`) the cache can keep: positions are
        independent here, so any common prefix."""
        n = self.common_prefix(tokens)
        return n if limit is None else min(n, limit)

    def mark_before_prompt_end(self) -> None:
        """The cache holds a prompt but its last token (prefill runs that one alone)."""

    def mark_prompt_end(self) -> None:
        """A prompt has just been prefilled. Caches that cannot truncate freely keep a checkpoint."""
