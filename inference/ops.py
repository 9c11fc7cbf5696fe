"""The elementwise steps of a decoder layer, fused into single CPU kernels when the C extension
is built (float32 on CPU), plain torch everywhere else. Both paths compute the same function."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import kernels


def _fused(*tensors: torch.Tensor) -> bool:
    return kernels.cpu is not None and all(
        t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() for t in tensors
    )


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
