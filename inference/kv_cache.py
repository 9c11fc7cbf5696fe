"""Preallocated attention KV cache for one sequence, indexed by position.

Position i of every layer holds the keys and values of token `tokens[i]`. Rolling back (a rejected
draft, a changed prompt suffix) is just truncation: later writes overwrite the stale positions.

`--kv-cache q8` stores keys and values as llama.cpp's q8_0 does: blocks of 32 int8 values with one
fp16 scale (34 bytes per 32 values, against 128 in float32 and 64 in bf16). The CPU kernel reads
the blocks directly; the torch path dequantizes the positions it attends to.
"""

from __future__ import annotations

import torch

from .errors import EngineError

KV_CACHE_TYPES = ("auto", "q8")  # auto: the compute dtype (float32 on CPUs, bfloat16 on GPUs)
Q8_BLOCK = 32


def check_kv_cache(kv_type: str) -> None:
    if kv_type not in KV_CACHE_TYPES:
        raise EngineError(f"--kv-cache must be one of {', '.join(KV_CACHE_TYPES)}, not '{kv_type}'")


def q8_block(head_dim: int) -> int:
    """Values per scale: 32, or the whole head where 32 does not divide it."""
    return Q8_BLOCK if head_dim % Q8_BLOCK == 0 else head_dim


def quantize_q8(x: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x [..., D] -> int8 [..., D] and fp16 scales [..., D / block]: scale = max|x| / 127 per block,
    rounded to fp16 first, then x / scale rounded half to even (as the C kernel does)."""
    blocks = x.float().unflatten(-1, (-1, block))
    scale = (blocks.abs().amax(-1, keepdim=True) / 127).clamp(max=65504.0).to(torch.float16)
    d = scale.float()
    q = torch.where(d > 0, torch.round(blocks / d), 0.0).clamp(-127, 127).to(torch.int8)
    return q.flatten(-2), scale.squeeze(-1)


def dequantize_q8(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    blocks = q.unflatten(-1, (scale.shape[-1], -1)).float() * scale.float().unsqueeze(-1)
    return blocks.flatten(-2).to(dtype)


class ContextFullError(EngineError):
    pass


class KVCache:
    def __init__(self, n_layer: int, n_head_kv: int, head_dim: int, max_tokens: int,
                 dtype: torch.dtype, device: torch.device, kv_type: str = "auto"):
        check_kv_cache(kv_type)
        shape = (n_layer, n_head_kv, max_tokens, head_dim)
        self.quantized = kv_type == "q8"
        self.dtype = dtype  # what attention reads
        # empty, not zeros: pages are committed only as positions are written
        self.k = torch.empty(shape, dtype=torch.int8 if self.quantized else dtype, device=device)
        self.v = torch.empty_like(self.k)
        self.block = q8_block(head_dim)
        scales = (n_layer, n_head_kv, max_tokens, head_dim // self.block) if self.quantized else (0,)
        self.k_scale = torch.empty(scales, dtype=torch.float16, device=device)
        self.v_scale = torch.empty_like(self.k_scale)
        self.max_tokens = max_tokens
        self.tokens: list[int] = []

    @property
    def length(self) -> int:
        return len(self.tokens)

    @property
    def nbytes(self) -> int:
        return 2 * (self.k.numel() * self.k.element_size() + self.k_scale.numel() * self.k_scale.element_size())

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
        if not self.quantized:
            self.k[layer, :, start:end] = k
            self.v[layer, :, start:end] = v
            return self.k[layer, :, :end], self.v[layer, :, :end]
        self.k[layer, :, start:end], self.k_scale[layer, :, start:end] = quantize_q8(k, self.block)
        self.v[layer, :, start:end], self.v_scale[layer, :, start:end] = quantize_q8(v, self.block)
        return (dequantize_q8(self.k[layer, :, :end], self.k_scale[layer, :, :end], self.dtype),
                dequantize_q8(self.v[layer, :, :end], self.v_scale[layer, :, :end], self.dtype))

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
