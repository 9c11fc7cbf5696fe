"""Llama-family decoders read from GGUF: llama (SmolLM2, Llama 3), qwen2 (q/k/v biases) and
qwen3 (RMSNorm on each query and key head).

Differences llama.cpp's converter bakes into the files: llama's q/k rows are permuted so rotary
pairs are adjacent ("normal" rope), while qwen2/qwen3 keep the neox layout (i, i + d/2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import ops
from ..gguf_file import GGUFFile, TensorInfo
from ..kv_cache import KVCache
from ..linear import Embedding, build_linear, load_dense
from ..rope import RopeConfig, Rotary, neox_to_interleaved

ARCHITECTURES = ("llama", "qwen2", "qwen3")


@dataclass
class LlamaConfig:
    arch: str
    n_layer: int
    d_model: int
    n_head: int
    n_head_kv: int
    head_dim: int
    ffn_dim: int
    vocab_size: int
    rms_eps: float
    context_length: int
    rope: RopeConfig
    qkv_bias: bool
    qk_norm: bool

    @classmethod
    def from_gguf(cls, g: GGUFFile) -> "LlamaConfig":
        arch = g.architecture
        d_model = int(g.require(f"{arch}.embedding_length"))
        n_head = int(g.require(f"{arch}.attention.head_count"))
        head_dim = int(g.arch_get("attention.key_length", d_model // n_head))
        vocab = g.arch_get("vocab_size") or g.tensor("token_embd.weight").shape[0]
        return cls(
            arch=arch,
            n_layer=int(g.require(f"{arch}.block_count")) - int(g.arch_get("nextn_predict_layers", 0) or 0),
            d_model=d_model,
            n_head=n_head,
            n_head_kv=int(g.arch_get("attention.head_count_kv", n_head)),
            head_dim=head_dim,
            ffn_dim=int(g.require(f"{arch}.feed_forward_length")),
            vocab_size=int(vocab),
            rms_eps=float(g.arch_get("attention.layer_norm_rms_epsilon", 1e-6)),
            context_length=int(g.arch_get("context_length", 4096)),
            rope=RopeConfig.from_gguf(g, head_dim, interleaved=(arch == "llama")),
            qkv_bias=g.has_tensor("blk.0.attn_q.bias"),
            qk_norm=g.has_tensor("blk.0.attn_q_norm.weight"),
        )


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig, wqkv: nn.Module, wo: nn.Module, qk_norm: torch.Tensor | None):
        super().__init__()
        self.cfg = cfg
        self.wqkv, self.wo = wqkv, wo
        self.qk_norm = qk_norm  # [n_head + n_head_kv, head_dim]: the q norm weight per q head, then k's

    def forward(self, x: torch.Tensor, layer: int, start: int, cache: KVCache, rotary: Rotary,
                rotations: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out = ops.attention(self.wqkv(x), layer, start, cache, rotary, rotations, mask, self.qk_norm, self.cfg)
        return self.wo(out)


class FeedForward(nn.Module):
    def __init__(self, w_gate_up: nn.Module, w_down: nn.Module):
        super().__init__()
        self.w_gate_up, self.w_down = w_gate_up, w_down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_down(ops.silu_mul(self.w_gate_up(x)))


class Block(nn.Module):
    def __init__(self, attn_norm: torch.Tensor, attn: Attention, ffn_norm: torch.Tensor, ffn: FeedForward, eps: float):
        super().__init__()
        self.attn_norm, self.attn, self.ffn_norm, self.ffn, self.eps = attn_norm, attn, ffn_norm, ffn, eps

    def forward(self, x, layer, start, cache, rotary, rotations, mask):
        h = self.attn(ops.rms_norm(x, self.attn_norm, self.eps), layer, start, cache, rotary, rotations, mask)
        x, h = ops.add_rms_norm(x, h, self.ffn_norm, self.eps)
        return x.add_(self.ffn(h))


def causal_mask(start: int, n: int, device: torch.device) -> torch.Tensor | None:
    """None where SDPA's own causal flag or no mask is right; else a [n, start+n] bool mask."""
    if start == 0 or n == 1:
        return None
    keys = torch.arange(start + n, device=device)
    return keys[None, :] <= (start + torch.arange(n, device=device))[:, None]


class LlamaModel(nn.Module):
    def __init__(self, cfg: LlamaConfig, embed: Embedding, blocks: list[Block], norm: torch.Tensor,
                 output: nn.Module, device: torch.device):
        super().__init__()
        self.cfg = cfg
        self.embed, self.blocks, self.norm, self.output = embed, nn.ModuleList(blocks), norm, output
        self.rotary = Rotary(cfg.rope, device)
        self.device = device

    def new_cache(self, max_tokens: int, dtype: torch.dtype, kv_type: str = "auto", max_rollback: int = 0) -> KVCache:
        """max_rollback: unused, attention rolls back by truncation (qwen35's recurrent state needs snapshots)."""
        cfg = self.cfg
        return KVCache(cfg.n_layer, cfg.n_head_kv, cfg.head_dim, max_tokens, dtype, self.device, kv_type)

    def forward(self, tokens: torch.Tensor, start: int, cache: KVCache, logits_for: str = "last") -> tuple[torch.Tensor, torch.Tensor]:
        """Run `tokens` (1-D) at positions start.. and return the logits of the last position
        ("last") or of all of them ("all"), and the post-norm hidden states of all of them (what an
        MTP head is fed)."""
        n = tokens.shape[0]
        x = self.embed(tokens)
        rotations = self.rotary.angles(torch.arange(start, start + n, device=self.device))
        mask = causal_mask(start, n, self.device)
        for i, block in enumerate(self.blocks):
            x = block(x, i, start, cache, self.rotary, rotations, mask)
        hidden = ops.rms_norm(x.contiguous(), self.norm, self.cfg.rms_eps)
        return self.output(hidden[-1:] if logits_for == "last" else hidden).float(), hidden


class LlamaLoader:
    """Reads llama-family tensors from a GGUF into modules. qwen2/qwen3 files keep HF's neox rope
    layout; their q/k rows are reordered to adjacent pairs on the way in."""

    def __init__(self, g: GGUFFile, cfg: LlamaConfig, device: torch.device, dtype: torch.dtype, packed: bool):
        self.g, self.cfg, self.device, self.dtype, self.packed = g, cfg, device, dtype, packed
        self.q_rows = self.k_rows = self.head_rows = None
        if not cfg.rope.interleaved:
            self.q_rows = neox_to_interleaved(cfg.n_head, cfg.head_dim, cfg.rope.dim)
            self.k_rows = neox_to_interleaved(cfg.n_head_kv, cfg.head_dim, cfg.rope.dim)
            self.head_rows = neox_to_interleaved(1, cfg.head_dim, cfg.rope.dim)

    def tensor(self, name: str, rows: torch.Tensor | None = None) -> TensorInfo:
        info = self.g.tensor(name)
        return info if rows is None else info.reordered(rows)

    def vec(self, name: str, rows: torch.Tensor | None = None) -> torch.Tensor:
        return load_dense(self.tensor(name, rows), self.device, torch.float32)

    def linear(self, names: list[str], row_orders: list | None = None, bias: bool = False) -> nn.Module:
        row_orders = row_orders or [None] * len(names)
        weights = [self.tensor(f"{n}.weight", r) for n, r in zip(names, row_orders)]
        biases = [self.tensor(f"{n}.bias", r) for n, r in zip(names, row_orders)] if bias else None
        return build_linear(weights, biases, self.device, self.dtype, self.packed)

    def block(self, p: str) -> Block:
        """The decoder block whose tensors are named `{p}.*` (p = "blk.3")."""
        cfg = self.cfg
        qk_norm = None
        if cfg.qk_norm:
            qk_norm = torch.cat([
                self.vec(f"{p}.attn_q_norm.weight", self.head_rows).expand(cfg.n_head, -1),
                self.vec(f"{p}.attn_k_norm.weight", self.head_rows).expand(cfg.n_head_kv, -1),
            ]).to(self.dtype)
        attn = Attention(
            cfg,
            self.linear([f"{p}.attn_q", f"{p}.attn_k", f"{p}.attn_v"], [self.q_rows, self.k_rows, None], bias=cfg.qkv_bias),
            self.linear([f"{p}.attn_output"]),
            qk_norm,
        )
        ffn = FeedForward(self.linear([f"{p}.ffn_gate", f"{p}.ffn_up"]), self.linear([f"{p}.ffn_down"]))
        return Block(self.vec(f"{p}.attn_norm.weight"), attn, self.vec(f"{p}.ffn_norm.weight"), ffn, cfg.rms_eps)


def load_llama(g: GGUFFile, device: torch.device, dtype: torch.dtype, packed: bool) -> LlamaModel:
    cfg = LlamaConfig.from_gguf(g)
    loader = LlamaLoader(g, cfg, device, dtype, packed)
    blocks = [loader.block(f"blk.{i}") for i in range(cfg.n_layer)]
    embed = Embedding(g.tensor("token_embd.weight"), device, dtype, packed)
    output = loader.linear(["output"]) if g.has_tensor("output.weight") else embed.as_output_layer()
    return LlamaModel(cfg, embed, blocks, loader.vec("output_norm.weight"), output, device)
