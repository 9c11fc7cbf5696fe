"""Rotary position embeddings as GGUF describes them: base, rotated dims, pair layout, scaling.

Angles are computed for the positions of each forward pass instead of a [max_seq, dim] table, so
a 262K context costs nothing up front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import UnsupportedModelError
from .gguf_file import GGUFFile


@dataclass
class RopeConfig:
    dim: int  # rotated dimensions per head (may be less than head_dim)
    base: float
    interleaved: bool  # ggml "normal" rope: pairs (2i, 2i+1); otherwise neox: pairs (i, i + dim/2)
    scaling: str = "none"  # none | linear | yarn
    factor: float = 1.0
    original_context: int = 0
    freq_factors: torch.Tensor | None = None  # rope_freqs.weight (Llama 3.1 style), divides the frequencies
    yarn_beta_fast: float = 32.0
    yarn_beta_slow: float = 1.0
    attn_factor: float | None = None

    @classmethod
    def from_gguf(cls, g: GGUFFile, head_dim: int, interleaved: bool) -> "RopeConfig":
        scaling = g.arch_get("rope.scaling.type", "none") or "none"
        if scaling not in ("none", "linear", "yarn"):
            raise UnsupportedModelError(f"rope scaling '{scaling}' in {g.path} is not supported (none, linear, yarn)")
        factors = None
        if g.has_tensor("rope_freqs.weight"):
            info = g.tensor("rope_freqs.weight")
            factors = torch.from_numpy(info.data.astype("float32").reshape(-1).copy())
        return cls(
            dim=int(g.arch_get("rope.dimension_count", head_dim)),
            base=float(g.arch_get("rope.freq_base", 10000.0)),
            interleaved=interleaved,
            scaling=scaling,
            factor=float(g.arch_get("rope.scaling.factor", 1.0) or 1.0),
            original_context=int(g.arch_get("rope.scaling.original_context_length", 0) or 0),
            freq_factors=factors,
            yarn_beta_fast=float(g.arch_get("rope.scaling.yarn_beta_fast", 32.0)),
            yarn_beta_slow=float(g.arch_get("rope.scaling.yarn_beta_slow", 1.0)),
            attn_factor=g.arch_get("rope.scaling.attn_factor"),
        )


def _yarn_inv_freq(cfg: RopeConfig, inv_freq: torch.Tensor) -> tuple[torch.Tensor, float]:
    """YaRN (arXiv 2309.00071) as transformers computes it: interpolate the low frequencies,
    keep the high ones, blend linearly between the two correction dimensions."""
    dim, base = cfg.dim, cfg.base

    def correction_dim(n_rot: float) -> float:
        return dim * math.log(cfg.original_context / (n_rot * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(correction_dim(cfg.yarn_beta_fast)), 0)
    high = min(math.ceil(correction_dim(cfg.yarn_beta_slow)), dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    extrapolate = 1 - ramp
    blended = (inv_freq / cfg.factor) * (1 - extrapolate) + inv_freq * extrapolate
    mscale = cfg.attn_factor if cfg.attn_factor else (0.1 * math.log(cfg.factor) + 1.0 if cfg.factor > 1 else 1.0)
    return blended, mscale


class Rotary:
    def __init__(self, cfg: RopeConfig, device: torch.device):
        self.cfg = cfg
        inv_freq = 1.0 / (cfg.base ** (torch.arange(0, cfg.dim, 2, dtype=torch.float32) / cfg.dim))
        self.mscale = 1.0
        if cfg.freq_factors is not None:
            inv_freq = inv_freq / cfg.freq_factors
        if cfg.scaling == "linear":
            inv_freq = inv_freq / cfg.factor
        elif cfg.scaling == "yarn":
            inv_freq, self.mscale = _yarn_inv_freq(cfg, inv_freq)
        self.inv_freq = inv_freq.to(device)

    def angles(self, positions: torch.Tensor) -> torch.Tensor:
        """Unit rotations (times the YaRN attention factor) as complex64 [n_positions, 1, dim/2]."""
        theta = positions.to(torch.float32)[:, None] * self.inv_freq[None, :]
        return torch.polar(torch.full_like(theta, self.mscale), theta)[:, None, :]

    def apply(self, x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
        """x: [n_positions, n_heads, head_dim] with adjacent rotary pairs (2i, 2i+1); the first
        `dim` features of each head are rotated, the rest pass through."""
        d = self.cfg.dim
        rot = x[..., :d].float().unflatten(-1, (-1, 2))
        rotated = torch.view_as_real(torch.view_as_complex(rot) * rotations).flatten(-2).to(x.dtype)
        return rotated if d == x.shape[-1] else torch.cat((rotated, x[..., d:]), dim=-1)


def neox_to_interleaved(n_heads: int, head_dim: int, rot_dim: int) -> torch.Tensor:
    """Row order that turns a neox-rope projection (pairs i, i + d/2) into the interleaved layout
    (pairs 2i, 2i+1). Applied to the q and k weights at load time, so one rope kernel serves both;
    q.k is unchanged because both sides are permuted alike."""
    half = rot_dim // 2
    within = torch.arange(rot_dim).view(2, half).t().reshape(-1)
    order = torch.cat([within, torch.arange(rot_dim, head_dim)])
    return (torch.arange(n_heads)[:, None] * head_dim + order[None, :]).reshape(-1)
