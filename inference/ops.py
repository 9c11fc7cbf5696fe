"""The elementwise steps of a decoder layer, fused into single CPU kernels when the C extension
is built (float32 on CPU), plain torch everywhere else. Both paths compute the same function."""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

from . import kernels
from .kv_cache import KVCache
from .rope import Rotary

# Up to this many rows (a decode step, a speculative verify batch) attention runs as one fused
# CPU kernel; longer inputs (prefill) use torch's flash attention.
FUSED_ATTENTION_MAX_ROWS = 8


class HeadShape(Protocol):
    n_head: int
    n_head_kv: int
    head_dim: int
    rms_eps: float


def _fused(*tensors: torch.Tensor) -> bool:
    if kernels.cpu is None:
        return False
    for t in tensors:
        if t.dtype is not torch.float32 or not t.is_cpu or not t.is_contiguous():
            return False
    return True


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    if _fused(x, weight) and weight.dim() == 1:
        out = torch.empty_like(x)
        kernels.cpu.rms_norm(x.data_ptr(), 0, weight.data_ptr(), out.data_ptr(), x.numel() // x.shape[-1], x.shape[-1], eps)
        return out
    return F.rms_norm(x.float(), (x.shape[-1],), weight.float(), eps).to(x.dtype)


def add_rms_norm(x: torch.Tensor, delta: torch.Tensor, weight: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """x + delta (the residual stream, updated in place where fused) and its RMSNorm."""
    if _fused(x, delta, weight):
        out = torch.empty_like(x)
        kernels.cpu.rms_norm(x.data_ptr(), delta.data_ptr(), weight.data_ptr(), out.data_ptr(),
                             x.numel() // x.shape[-1], x.shape[-1], eps)
        return x, out
    x = x + delta
    return x, rms_norm(x, weight, eps)


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """[rows, 2*d] holding gate then up -> silu(gate) * up, [rows, d]."""
    d = gate_up.shape[-1] // 2
    if _fused(gate_up):
        out = torch.empty(*gate_up.shape[:-1], d, dtype=gate_up.dtype)
        kernels.cpu.silu_mul(gate_up.data_ptr(), out.data_ptr(), gate_up.numel() // gate_up.shape[-1], d)
        return out
    gate, up = gate_up.split(d, dim=-1)
    return F.silu(gate) * up


def _layer_ptr(t: torch.Tensor, layer: int) -> int:
    """The address of one layer of a cache tensor; 0 for an empty one (no q8 scales)."""
    return t.data_ptr() + layer * t.stride(0) * t.element_size() if t.numel() else 0


def attention(qkv: torch.Tensor, layer: int, start: int, cache: KVCache, rotary: Rotary, rotations: torch.Tensor,
              mask: torch.Tensor | None, qk_norm: torch.Tensor | None, heads: HeadShape) -> torch.Tensor:
    """Self-attention of rows at positions start.. given their fused q|k|v projections
    ([n, (n_head + 2 * n_head_kv) * head_dim]): optional per-head q/k RMSNorm (qk_norm holds one
    weight row per q head, then per k head), rotary embedding, K/V written into the cache, then
    grouped-query attention over all cached positions. Returns [n, n_head * head_dim]."""
    n, hd = qkv.shape[0], heads.head_dim
    if n <= FUSED_ATTENTION_MAX_ROWS and _fused(qkv) and cache.k.is_cpu and (qk_norm is None or _fused(qk_norm)) \
            and (cache.quantized or cache.k.dtype is torch.float32):
        out = torch.empty(n, heads.n_head * hd, dtype=torch.float32)
        kernels.cpu.attention(
            qkv.data_ptr(), n, heads.n_head, heads.n_head_kv, hd, rotary.cfg.dim, rotary.inv_freq.data_ptr(),
            rotary.mscale, 0 if qk_norm is None else qk_norm.data_ptr(), heads.rms_eps,
            _layer_ptr(cache.k, layer), _layer_ptr(cache.v, layer), _layer_ptr(cache.k_scale, layer),
            _layer_ptr(cache.v_scale, layer), cache.block, cache.max_tokens, start, out.data_ptr(),
        )
        return out
    n_qk = heads.n_head + heads.n_head_kv
    qk = qkv[:, : n_qk * hd].view(n, n_qk, hd)
    v = qkv[:, n_qk * hd :].view(n, heads.n_head_kv, hd)
    if qk_norm is not None:
        qk = (F.rms_norm(qk.float(), (hd,), None, heads.rms_eps) * qk_norm.float()).to(qk.dtype)
    qk = rotary.apply(qk, rotations)
    q, k = qk[:, : heads.n_head].transpose(0, 1), qk[:, heads.n_head :].transpose(0, 1)
    keys, values = cache.write(layer, start, k, v.transpose(0, 1))
    out = F.scaled_dot_product_attention(
        q[None], keys[None], values[None], attn_mask=mask, is_causal=(mask is None and n > 1), enable_gqa=True,
    )
    return out[0].transpose(0, 1).reshape(n, heads.n_head * hd)
