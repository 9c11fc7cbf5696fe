"""Gated DeltaNet: the recurrent and chunked forms against a plain float64 loop, and each other."""

from __future__ import annotations

import pytest
import torch

from inference import gdn


def inputs(T: int, H: int = 3, dk: int = 8, dv: int = 6, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    q = gdn.l2norm(torch.randn(T, H, dk, generator=gen)) * dk ** -0.5
    k = gdn.l2norm(torch.randn(T, H, dk, generator=gen))
    v = torch.randn(T, H, dv, generator=gen)
    g = -torch.rand(T, H, generator=gen) * 0.5
    beta = torch.rand(T, H, generator=gen)
    state = torch.randn(H, dk, dv, generator=gen) * 0.1
    return q, k, v, g, beta, state


def reference(q, k, v, g, beta, state):
    """The recurrence exactly as written, in float64, one head and one token at a time."""
    q, k, v, g, beta, s = (x.double() for x in (q, k, v, g, beta, state))
    out = torch.zeros(q.shape[0], v.shape[1], v.shape[2], dtype=torch.float64)
    for t in range(q.shape[0]):
        for h in range(q.shape[1]):
            s[h] = s[h] * torch.exp(g[t, h])
            delta = beta[t, h] * (v[t, h] - s[h].t() @ k[t, h])
            s[h] = s[h] + torch.outer(k[t, h], delta)
            out[t, h] = s[h].t() @ q[t, h]
    return out, s


@pytest.mark.parametrize("T", [1, 5, 64, 100, 130])
def test_recurrent_and_chunked_match_the_definition(T):
    q, k, v, g, beta, state = inputs(T)
    want_out, want_state = reference(q, k, v, g, beta, state)
    for form in (gdn.recurrent, gdn.chunked):
        out, new_state = form(q, k, v, g, beta, state.clone())
        assert torch.allclose(out.double(), want_out, atol=1e-5), form.__name__
        assert torch.allclose(new_state.double(), want_state, atol=1e-5), form.__name__


def test_chunked_with_small_chunks_and_a_carried_state():
    q, k, v, g, beta, state = inputs(37, seed=3)
    out_a, state_a = gdn.chunked(q, k, v, g, beta, state.clone(), chunk=8)
    out_b, state_b = gdn.recurrent(q, k, v, g, beta, state.clone())
    assert torch.allclose(out_a, out_b, atol=1e-5) and torch.allclose(state_a, state_b, atol=1e-5)


def test_snapshots_hold_the_state_after_each_token():
    q, k, v, g, beta, state = inputs(4)
    snapshots = torch.empty(4, *state.shape)
    _, final = gdn.recurrent(q, k, v, g, beta, state.clone(), snapshots)
    for t in range(4):
        _, after_t = gdn.recurrent(q[: t + 1], k[: t + 1], v[: t + 1], g[: t + 1], beta[: t + 1], state.clone())
        assert torch.equal(snapshots[t], after_t)
    assert torch.equal(snapshots[-1], final)


def test_causal_conv_carries_its_window():
    gen = torch.Generator().manual_seed(1)
    x, weight = torch.randn(10, 6, generator=gen), torch.randn(6, 4, generator=gen)
    whole, inputs = gdn.causal_conv(x, weight, torch.zeros(6, 3))
    first, inputs_1 = gdn.causal_conv(x[:7], weight, torch.zeros(6, 3))
    second, inputs_2 = gdn.causal_conv(x[7:], weight, inputs_1[:, -3:])
    assert torch.allclose(torch.cat([first, second]), whole, atol=1e-6) and torch.equal(inputs_2[:, -3:], inputs[:, -3:])
    # out_t = silu(sum_k w[c,k] x_{t-3+k}[c]): weight index 0 multiplies the oldest input
    t = 5
    expected = torch.nn.functional.silu((weight * x[t - 3 : t + 1].t()).sum(-1))
    assert torch.allclose(whole[t], expected, atol=1e-6)
