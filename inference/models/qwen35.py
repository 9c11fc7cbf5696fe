"""Qwen3.5/3.6 from GGUF: `qwen35` (dense) and `qwen35moe` (routed experts plus a gated shared
expert). Three of every four layers are Gated DeltaNet (linear attention with a recurrent state),
the fourth is gated full attention; an optional MTP block follows the trunk (see ../mtp.py).

Traps in the files (fact sheet section 3): every norm already carries HF's +1 except ssm_norm;
ssm_a is -exp(A_log) with no .weight suffix; V heads are tiled (v-head j uses q/k head j mod Hk);
attn_q holds [q | gate] per head; rope is NeoX over the first rope.dimension_count dims, which the
loader reorders to adjacent pairs like qwen2/qwen3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import gdn, ops
from ..errors import UnsupportedModelError
from ..gguf_file import GGUFFile, TensorInfo
from ..hybrid_cache import MAX_ROLLBACK, HybridCache
from ..linear import Embedding, build_linear, load_dense
from ..rope import RopeConfig, Rotary, neox_to_interleaved
from .llama import FeedForward, causal_mask

ARCHITECTURES = ("qwen35", "qwen35moe")


@dataclass
class Qwen35Config:
    arch: str
    n_layer: int  # trunk layers; an MTP block, if present, is blk.{n_layer}
    n_nextn: int
    d_model: int
    n_head: int
    n_head_kv: int
    head_dim: int
    rms_eps: float
    context_length: int
    rope: RopeConfig
    recurrent: list[bool]  # per trunk layer
    conv_kernel: int
    n_k_heads: int  # Gated DeltaNet q/k heads
    n_v_heads: int
    d_state: int  # head dim of q, k and v in the recurrent layers
    ffn_dim: int  # dense FFN
    n_expert: int = 0
    n_expert_used: int = 0
    expert_ffn_dim: int = 0
    shared_ffn_dim: int = 0

    @property
    def conv_dim(self) -> int:
        return (2 * self.n_k_heads + self.n_v_heads) * self.d_state

    @property
    def recurrent_state_values(self) -> int:
        """Floats of Gated DeltaNet state (S and the conv window) over all recurrent layers."""
        per_layer = self.n_v_heads * self.d_state * self.d_state + self.conv_dim * (self.conv_kernel - 1)
        return sum(self.recurrent) * per_layer

    @property
    def moe(self) -> bool:
        return self.n_expert > 0

    @classmethod
    def from_gguf(cls, g: GGUFFile) -> "Qwen35Config":
        arch = g.architecture
        get = lambda key: g.require(f"{arch}.{key}")  # noqa: E731
        n_nextn = int(g.arch_get("nextn_predict_layers", 0) or 0)
        n_layer = int(get("block_count")) - n_nextn
        head_dim = int(g.arch_get("attention.key_length", int(get("embedding_length")) // int(get("attention.head_count"))))
        flags = g.arch_get("attention.recurrent_layers")
        interval = int(g.arch_get("full_attention_interval", 4))
        recurrent = [bool(f) for f in flags[:n_layer]] if flags else [(i + 1) % interval != 0 for i in range(n_layer)]
        n_v_heads = int(get("ssm.time_step_rank"))
        cfg = cls(
            arch=arch, n_layer=n_layer, n_nextn=n_nextn, d_model=int(get("embedding_length")),
            n_head=int(get("attention.head_count")), n_head_kv=int(get("attention.head_count_kv")), head_dim=head_dim,
            rms_eps=float(get("attention.layer_norm_rms_epsilon")), context_length=int(g.arch_get("context_length", 4096)),
            rope=RopeConfig.from_gguf(g, head_dim, interleaved=False), recurrent=recurrent,
            conv_kernel=int(get("ssm.conv_kernel")), n_k_heads=int(get("ssm.group_count")), n_v_heads=n_v_heads,
            d_state=int(get("ssm.state_size")), ffn_dim=int(g.arch_get("feed_forward_length", 0) or 0),
            n_expert=int(g.arch_get("expert_count", 0) or 0), n_expert_used=int(g.arch_get("expert_used_count", 0) or 0),
            expert_ffn_dim=int(g.arch_get("expert_feed_forward_length", 0) or 0),
            shared_ffn_dim=int(g.arch_get("expert_shared_feed_forward_length", 0) or 0),
        )
        if n_v_heads % cfg.n_k_heads:
            raise UnsupportedModelError(f"{g.path}: {n_v_heads} value heads are not a multiple of {cfg.n_k_heads} key heads")
        return cfg


class GatedAttention(nn.Module):
    """Full attention with an output gate: o = Wo (attn(q, k, v) * sigmoid(gate))."""

    def __init__(self, cfg: Qwen35Config, wqkv: nn.Module, wgate: nn.Module, wo: nn.Module, qk_norm: torch.Tensor,
                 cache_layer: int):
        super().__init__()
        self.cfg, self.wqkv, self.wgate, self.wo, self.qk_norm = cfg, wqkv, wgate, wo, qk_norm
        self.cache_layer = cache_layer  # index among the attention layers (their KV slots)

    def forward(self, x, start, cache, rotary, rotations, mask):
        out = ops.attention(self.wqkv(x), self.cache_layer, start, cache, rotary, rotations, mask, self.qk_norm, self.cfg)
        return self.wo(out * torch.sigmoid(self.wgate(x)))


class GatedDeltaNet(nn.Module):
    def __init__(self, cfg: Qwen35Config, w_in: nn.Module, conv: torch.Tensor, a: torch.Tensor, dt_bias: torch.Tensor,
                 norm: torch.Tensor, w_out: nn.Module, state_index: int):
        super().__init__()
        self.cfg, self.w_in, self.conv_weight, self.w_out = cfg, w_in, conv, w_out
        self.a, self.dt_bias, self.norm = a, dt_bias, norm  # a = -exp(A_log), as stored
        self.state_index = state_index  # index among the recurrent layers (their state slots)
        hv, d = cfg.n_v_heads, cfg.d_state
        self.splits = [cfg.conv_dim, hv * d, hv, hv]  # conv input (q|k|v), z, beta, alpha

    def forward(self, x, start, cache: HybridCache, n_snapshots: int):
        cfg, j = self.cfg, self.state_index
        n, hk, hv, d = x.shape[0], cfg.n_k_heads, cfg.n_v_heads, cfg.d_state
        mixed, z, b, a = self.w_in(x).float().split(self.splits, dim=-1)
        conv_out, conv_inputs = gdn.causal_conv(mixed, self.conv_weight, cache.conv[j])
        q, k, v = conv_out.split([hk * d, hk * d, hv * d], dim=-1)
        repeat = hv // hk  # tiled: v-head j reads q/k head j mod hk
        q = (gdn.l2norm(q.view(n, hk, d)) * d ** -0.5).repeat(1, repeat, 1)
        k = gdn.l2norm(k.reshape(n, hk, d)).repeat(1, repeat, 1)
        v = v.reshape(n, hv, d)
        beta = torch.sigmoid(b)
        g = F.softplus(a + self.dt_bias) * self.a
        state = cache.ssm[j]
        head = n - n_snapshots  # a long prefill runs chunked; its last tokens step by step, saving states
        outputs = []
        if head > 0:
            step = gdn.chunked if head > 1 else gdn.recurrent
            out, state = step(q[:head], k[:head], v[:head], g[:head], beta[:head], state)
            outputs.append(out)
        if n_snapshots:
            out, state = gdn.recurrent(q[head:], k[head:], v[head:], g[head:], beta[head:], state,
                                       cache.snap_ssm[:n_snapshots, j])
            outputs.append(out)
            for s in range(n_snapshots):  # the window after token head+s: the K-1 inputs ending there
                cache.snap_conv[s, j] = conv_inputs[:, head + s + 1 : head + s + cfg.conv_kernel]
        cache.ssm[j] = state
        cache.conv[j] = conv_inputs[:, n:]
        o = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        o = F.rms_norm(o, (d,), self.norm, cfg.rms_eps) * F.silu(z.view(n, hv, d))
        return self.w_out(o.reshape(n, hv * d).to(x.dtype))


class MoE(nn.Module):
    """Top-k routed SwiGLU experts with renormalised weights, plus a shared expert gated by a sigmoid."""

    def __init__(self, router: torch.Tensor, experts: list[tuple[nn.Module, nn.Module]], n_used: int,
                 shared: tuple[nn.Module, nn.Module] | None, shared_gate: torch.Tensor | None):
        super().__init__()
        self.router, self.n_used = router, n_used
        self.gate_up = nn.ModuleList([e[0] for e in experts])
        self.down = nn.ModuleList([e[1] for e in experts])
        # a ModuleList, so that model.modules() (activations, prefill dtype, memory) sees the shared expert too
        self.shared = nn.ModuleList(shared) if shared is not None else None
        self.shared_gate = shared_gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(x.float() @ self.router.t(), dim=-1)
        weights, chosen = torch.topk(probs, self.n_used, dim=-1)
        weights = weights / weights.sum(-1, keepdim=True)
        out = torch.zeros_like(x, dtype=torch.float32)
        for e in chosen.unique().tolist():
            rows, slot = (chosen == e).nonzero(as_tuple=True)
            h = self.down[e](ops.silu_mul(self.gate_up[e](x[rows].contiguous())))
            out.index_add_(0, rows, h.float() * weights[rows, slot, None])
        if self.shared is not None:
            gate_up, down = self.shared
            shared = down(ops.silu_mul(gate_up(x))).float()
            out += shared * torch.sigmoid(x.float() @ self.shared_gate.t())
        return out.to(x.dtype)


class Block(nn.Module):
    def __init__(self, attn_norm: torch.Tensor, mixer: nn.Module, post_norm: torch.Tensor, ffn: nn.Module, eps: float):
        super().__init__()
        self.attn_norm, self.mixer, self.post_norm, self.ffn, self.eps = attn_norm, mixer, post_norm, ffn, eps

    def forward(self, x, start, cache, rotary, rotations, mask, n_snapshots: int = 0):
        h = ops.rms_norm(x, self.attn_norm, self.eps)
        if isinstance(self.mixer, GatedDeltaNet):
            h = self.mixer(h, start, cache, n_snapshots)
        else:
            h = self.mixer(h, start, cache, rotary, rotations, mask)
        x, h = ops.add_rms_norm(x, h, self.post_norm, self.eps)
        return x.add_(self.ffn(h))


class Qwen35Model(nn.Module):
    def __init__(self, cfg: Qwen35Config, embed: Embedding, blocks: list[Block], norm: torch.Tensor, output: nn.Module,
                 device: torch.device):
        super().__init__()
        self.cfg, self.embed, self.blocks, self.norm, self.output = cfg, embed, nn.ModuleList(blocks), norm, output
        self.rotary = Rotary(cfg.rope, device)
        self.device = device

    def new_cache(self, max_tokens: int, dtype: torch.dtype, kv_type: str = "auto",
                  max_rollback: int = MAX_ROLLBACK) -> HybridCache:
        cfg = self.cfg
        n_recurrent = sum(cfg.recurrent)
        return HybridCache(cfg.n_layer - n_recurrent, cfg.n_head_kv, cfg.head_dim, n_recurrent, cfg.n_v_heads,
                           cfg.d_state, cfg.d_state, cfg.conv_dim, cfg.conv_kernel, max_tokens, dtype, self.device,
                           max_rollback, kv_type)

    def forward(self, tokens: torch.Tensor, start: int, cache: HybridCache, logits_for: str = "last"):
        """Like LlamaModel.forward: logits of the last or all positions, post-norm hidden states of all."""
        n = tokens.shape[0]
        x = self.embed(tokens)
        rotations = self.rotary.angles(torch.arange(start, start + n, device=self.device))
        mask = causal_mask(start, n, self.device)
        n_snapshots = cache.snapshot_rows(start, n)
        for block in self.blocks:
            x = block(x, start, cache, self.rotary, rotations, mask, n_snapshots)
        hidden = ops.rms_norm(x.contiguous(), self.norm, self.cfg.rms_eps)
        return self.output(hidden[-1:] if logits_for == "last" else hidden).float(), hidden


def attention_rows(cfg: Qwen35Config) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """attn_q holds [q | gate] per head. Rows of q (rope pairs made adjacent), of gate, of k, and
    the order of one head's q/k norm weights."""
    hd, rot = cfg.head_dim, cfg.rope.dim
    within = neox_to_interleaved(1, hd, rot)
    heads = torch.arange(cfg.n_head)[:, None] * 2 * hd
    q_rows = (heads + within[None, :]).reshape(-1)
    gate_rows = (heads + hd + torch.arange(hd)[None, :]).reshape(-1)
    return q_rows, gate_rows, neox_to_interleaved(cfg.n_head_kv, hd, rot), within


class Loader:
    """Reads blocks of a qwen35/qwen35moe file; also used for the MTP block (../mtp.py)."""

    def __init__(self, g: GGUFFile, cfg: Qwen35Config, device: torch.device, dtype: torch.dtype, packed: bool):
        self.g, self.cfg, self.device, self.dtype, self.packed = g, cfg, device, dtype, packed

    def vec(self, name: str, rows: torch.Tensor | None = None) -> torch.Tensor:
        return load_dense(self.tensor(name, rows), self.device, torch.float32)

    def linear(self, infos: list[TensorInfo]) -> nn.Module:
        return build_linear(infos, None, self.device, self.dtype, self.packed)

    def tensor(self, name: str, rows: torch.Tensor | None = None) -> TensorInfo:
        info = self.g.tensor(name)
        return info if rows is None else info.reordered(rows)

    def attention(self, p: str, cache_layer: int) -> GatedAttention:
        cfg = self.cfg
        q_rows, gate_rows, k_rows, norm_order = attention_rows(cfg)
        wqkv = self.linear([self.tensor(f"{p}.attn_q.weight", q_rows), self.tensor(f"{p}.attn_k.weight", k_rows),
                            self.tensor(f"{p}.attn_v.weight")])
        wgate = self.linear([self.tensor(f"{p}.attn_q.weight", gate_rows)])
        qk_norm = torch.cat([self.vec(f"{p}.attn_q_norm.weight", norm_order).expand(cfg.n_head, -1),
                             self.vec(f"{p}.attn_k_norm.weight", norm_order).expand(cfg.n_head_kv, -1)]).contiguous()
        return GatedAttention(cfg, wqkv, wgate, self.linear([self.tensor(f"{p}.attn_output.weight")]), qk_norm, cache_layer)

    def delta_net(self, p: str, state_index: int) -> GatedDeltaNet:
        w_in = self.linear([self.tensor(f"{p}.{n}") for n in ("attn_qkv.weight", "attn_gate.weight", "ssm_beta.weight", "ssm_alpha.weight")])
        return GatedDeltaNet(self.cfg, w_in, self.vec(f"{p}.ssm_conv1d.weight"), self.vec(f"{p}.ssm_a"),
                             self.vec(f"{p}.ssm_dt.bias"), self.vec(f"{p}.ssm_norm.weight"),
                             self.linear([self.tensor(f"{p}.ssm_out.weight")]), state_index)

    def ffn(self, p: str) -> nn.Module:
        if not self.cfg.moe:
            return FeedForward(self.linear([self.tensor(f"{p}.ffn_gate.weight"), self.tensor(f"{p}.ffn_up.weight")]),
                               self.linear([self.tensor(f"{p}.ffn_down.weight")]))
        cfg, ff = self.cfg, self.cfg.expert_ffn_dim
        experts = []
        for e in range(cfg.n_expert):
            ff_rows, d_rows = torch.arange(e * ff, (e + 1) * ff), torch.arange(e * cfg.d_model, (e + 1) * cfg.d_model)
            gate_up = self.linear([self.tensor(f"{p}.ffn_gate_exps.weight", ff_rows), self.tensor(f"{p}.ffn_up_exps.weight", ff_rows)])
            experts.append((gate_up, self.linear([self.tensor(f"{p}.ffn_down_exps.weight", d_rows)])))
        shared = shared_gate = None
        if self.g.has_tensor(f"{p}.ffn_up_shexp.weight"):
            shared = (self.linear([self.tensor(f"{p}.ffn_gate_shexp.weight"), self.tensor(f"{p}.ffn_up_shexp.weight")]),
                      self.linear([self.tensor(f"{p}.ffn_down_shexp.weight")]))
            shared_gate = self.vec(f"{p}.ffn_gate_inp_shexp.weight").reshape(1, -1)
        return MoE(self.vec(f"{p}.ffn_gate_inp.weight"), experts, cfg.n_expert_used, shared, shared_gate)

    def block(self, i: int, mixer: nn.Module) -> Block:
        p = f"blk.{i}"
        return Block(self.vec(f"{p}.attn_norm.weight"), mixer, self.vec(f"{p}.post_attention_norm.weight"), self.ffn(p),
                     self.cfg.rms_eps)


def load_qwen35(g: GGUFFile, device: torch.device, dtype: torch.dtype, packed: bool) -> Qwen35Model:
    cfg = Qwen35Config.from_gguf(g)
    if not g.has_tensor("blk.0.attn_norm.weight"):
        raise UnsupportedModelError(f"{g.path} holds only an MTP block (a sidecar); load the trunk model and pass this file with --mtp")
    load = Loader(g, cfg, device, dtype, packed)
    blocks, n_attn, n_recurrent = [], 0, 0
    for i in range(cfg.n_layer):
        if cfg.recurrent[i]:
            mixer, n_recurrent = load.delta_net(f"blk.{i}", n_recurrent), n_recurrent + 1
        else:
            mixer, n_attn = load.attention(f"blk.{i}", n_attn), n_attn + 1
        blocks.append(load.block(i, mixer))
    embed = Embedding(g.tensor("token_embd.weight"), device, dtype, packed)
    output = load.linear([g.tensor("output.weight")]) if g.has_tensor("output.weight") else embed.as_output_layer()
    return Qwen35Model(cfg, embed, blocks, load.vec("output_norm.weight"), output, device)
