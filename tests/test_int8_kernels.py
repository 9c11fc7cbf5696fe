"""The kernels with 8-bit activations (llama.cpp's scheme: one scale per 256 values for K-quants,
per 32 for the 32-weight types) against a torch reference that rounds the activations the same
way, and against the exact product within the rounding's bound."""

from __future__ import annotations

import pytest
import torch
from gguf import GGMLQuantizationType as QType

from inference import kernels
from inference.quants import dequantize
from test_cpu_kernels import needs_kernels, packed_matrix

# the activations' block for each type with an int8 kernel
INT8_BLOCKS = {QType.Q4_K: 256, QType.Q6_K: 256, QType.Q4_0: 32, QType.Q4_1: 32, QType.Q5_0: 32, QType.Q5_1: 32,
               QType.Q8_0: 32}


def int8_matmul(qtype: QType, x: torch.Tensor, w: torch.Tensor, out_features: int, int8: bool = True) -> torch.Tensor:
    y = torch.empty(x.shape[0], out_features)
    kernels.cpu.matmul(int(qtype), x.data_ptr(), w.data_ptr(), y.data_ptr(), x.shape[0], out_features, x.shape[1],
                       w.shape[1], int8)
    return y


def rounded_activations(x: torch.Tensor, block: int) -> torch.Tensor:
    """x as the kernel sees it: each `block` values rounded (half to even) to d * q, |q| <= 127,
    d = max|x| / 127, in float32 as the kernel computes it."""
    blocks = x.view(x.shape[0], -1, block)
    amax = blocks.abs().amax(-1, keepdim=True)
    inverse = torch.where(amax > 0, torch.tensor(127.0) / amax, torch.zeros_like(amax))
    q = torch.round(blocks * inverse)
    return (q * (amax / 127.0)).view_as(x)


@needs_kernels
def test_int8_kernels_cover_the_types_of_the_catalog():
    assert sorted(kernels.cpu.int8_types()) == sorted(int(t) for t in INT8_BLOCKS)


@needs_kernels
@pytest.mark.parametrize("qtype", list(INT8_BLOCKS), ids=lambda t: t.name)
@pytest.mark.parametrize("n_rows", list(range(1, 17)) + [23])
@pytest.mark.parametrize("in_features", [256, 768])
def test_int8_matmul_matches_its_reference(qtype: QType, n_rows: int, in_features: int):
    out_features = 37
    w = packed_matrix(qtype, out_features, in_features, int(qtype) + n_rows)
    x = torch.randn(n_rows, in_features, generator=torch.Generator().manual_seed(n_rows)) * 3
    x[0, :5] = 40.0  # one block with an outlier: its other values lose precision, as in the kernel
    dense = dequantize(w, qtype, (out_features, in_features)).double()
    y = int8_matmul(qtype, x, w, out_features).double()
    block = INT8_BLOCKS[qtype]
    reference = rounded_activations(x, block).double() @ dense.T
    assert torch.allclose(y, reference, rtol=1e-5, atol=1e-5 * reference.abs().max().item())
    exact = x.double() @ dense.T
    half_step = x.double().abs().view(n_rows, -1, block).amax(-1).repeat_interleave(block, dim=1) / 254
    bound = half_step @ dense.abs().T + 1e-5 * exact.abs().max()
    assert ((y - exact).abs() <= bound).all()


@needs_kernels
@pytest.mark.parametrize("qtype", list(INT8_BLOCKS), ids=lambda t: t.name)
def test_int8_rows_are_independent_of_batch(qtype: QType):
    """A decode step and the same token inside a verify batch agree bit for bit."""
    w = packed_matrix(qtype, 48, 512, 5)
    x = torch.randn(13, 512)
    batch = int8_matmul(qtype, x, w, 48)
    for i in range(13):
        assert torch.equal(int8_matmul(qtype, x[i : i + 1].contiguous(), w, 48)[0], batch[i])


@needs_kernels
def test_types_without_an_int8_kernel_keep_their_int16_one():
    w = packed_matrix(QType.Q5_K, 16, 256, 1)
    x = torch.randn(3, 256)
    assert torch.equal(int8_matmul(QType.Q5_K, x, w, 16, int8=True), int8_matmul(QType.Q5_K, x, w, 16, int8=False))


@needs_kernels
@pytest.mark.parametrize("qtype", [QType.Q6_K, QType.Q4_1], ids=lambda t: t.name)
def test_zero_activations_give_zero(qtype: QType):
    w = packed_matrix(qtype, 8, 256, 2)
    assert torch.equal(int8_matmul(qtype, torch.zeros(2, 256), w, 8), torch.zeros(2, 8))
