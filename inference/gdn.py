"""Gated DeltaNet, the linear-attention mixer of Qwen3.5/3.6: the causal depthwise convolution,
the exact recurrent update (one token at a time), and the exact chunked form for prefill.

Shapes: q, k [T, H, dk] (q already L2-normalised and scaled by 1/sqrt(dk), k L2-normalised, both
tiled to the H value heads), v [T, H, dv], g (log decay, <= 0) and beta [T, H]; the state S is
[H, dk, dv]. Everything here runs in float32, as llama.cpp and transformers do.

The recurrence, per head:  S <- exp(g) S;  S <- S + k (beta (v - S^T k))^T;  o = S^T q.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CHUNK = 64


def causal_conv(x: torch.Tensor, weight: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Depthwise causal convolution + SiLU over the channels of x [T, C] with weight [C, K]; window
    [C, K-1] holds the previous K-1 inputs (oldest first). Returns the output and every input the
    convolution saw, [C, K-1+T] (the window, then x): the window after token t is its K-1 columns
    ending at column K-1+t, so the last K-1 columns are the next call's window."""
    inputs = torch.cat([window, x.t()], dim=1)
    out = F.conv1d(inputs[None], weight[:, None, :], groups=weight.shape[0])[0]  # [C, T]
    return F.silu(out.t()), inputs


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x * torch.rsqrt((x * x).sum(dim=-1, keepdim=True) + eps)


def recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor,
              state: torch.Tensor, snapshots: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Token by token. With `snapshots` [T, H, dk, dv], the state after each token is written
    there too (speculative decoding rolls back to one of them)."""
    out = torch.empty(q.shape[0], v.shape[1], v.shape[2], dtype=torch.float32, device=q.device)
    for t in range(q.shape[0]):
        state = state * torch.exp(g[t])[:, None, None]
        kv = torch.einsum("hkv,hk->hv", state, k[t])
        delta = beta[t][:, None] * (v[t] - kv)
        state = state + k[t][:, :, None] * delta[:, None, :]
        out[t] = torch.einsum("hkv,hk->hv", state, q[t])
        if snapshots is not None:
            snapshots[t] = state
    return out, state


def chunked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor,
            state: torch.Tensor, chunk: int = CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """The same recurrence, a chunk at a time (the WY form: within a chunk the delta-rule updates
    are solved as one triangular system). Exact up to float rounding."""
    T = q.shape[0]
    pad = (chunk - T % chunk) % chunk  # padded tokens have g = beta = 0: they leave the state alone

    def blocks(x: torch.Tensor) -> torch.Tensor:
        """[T, H, ...] -> [H, n_chunks, chunk, ...], zero-padded to whole chunks."""
        x = F.pad(x, (0, 0) * (x.dim() - 1) + (0, pad))
        return x.transpose(0, 1).reshape(x.shape[1], -1, chunk, *x.shape[2:])

    qc, kc, vc, gc, bc = blocks(q), blocks(k), blocks(v), blocks(g), blocks(beta)
    gamma = gc.cumsum(-1)  # log decay from the chunk start up to and including each position
    strictly_lower = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril(-1)
    lower = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    decay = (gamma[..., :, None] - gamma[..., None, :]).masked_fill(~lower, float("-inf")).exp()  # [H, N, C, C]

    k_beta, v_beta = kc * bc[..., None], vc * bc[..., None]
    # (I + A) w = rhs with A = tril(beta_i k_i.k_j exp(gamma_i - gamma_j), -1): one solve per chunk
    a = (k_beta @ kc.transpose(-1, -2) * decay).masked_fill(~strictly_lower, 0.0)
    eye = torch.eye(chunk, dtype=torch.float32, device=q.device)
    solve = lambda rhs: torch.linalg.solve_triangular(eye + a, rhs, upper=False, unitriangular=True)  # noqa: E731
    u = solve(v_beta)  # the corrected values, before the carried-in state's contribution
    w = solve(k_beta * gamma.exp()[..., None])  # how much of the carried-in state each row removes

    attn = (qc @ kc.transpose(-1, -2) * decay).masked_fill(~lower, 0.0)
    out = torch.empty_like(vc)
    for n in range(qc.shape[1]):
        v_new = u[:, n] - w[:, n] @ state
        out[:, n] = (qc[:, n] * gamma[:, n, :, None].exp()) @ state + attn[:, n] @ v_new
        last = gamma[:, n, -1]
        state = state * last.exp()[:, None, None] + (kc[:, n] * (last[:, None] - gamma[:, n]).exp()[..., None]).transpose(-1, -2) @ v_new
    return out.reshape(out.shape[0], -1, out.shape[-1])[:, :T].transpose(0, 1), state
