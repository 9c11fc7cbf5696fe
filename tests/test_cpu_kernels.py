"""The C kernels against slow, obvious torch references."""

from __future__ import annotations

import platform

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as QType

from inference import kernels, ops
from inference.quants import SUPPORTED_TYPES, dequantize
from test_quants import reference_blocks

X86_AVX2 = platform.machine().lower() in ("x86_64", "amd64") and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def test_kernels_are_built_where_they_can_be():
    """On x86-64 with AVX2 (CI's machines) a missing extension is a build failure, not an option."""
    if X86_AVX2:
        assert kernels.cpu is not None, "inference.kernels._cpu did not build; the engine would fall back to slow dense weights"
    else:
        assert kernels.cpu is None


needs_kernels = pytest.mark.skipif(kernels.cpu is None, reason="the C kernels need x86-64 with AVX2")


def packed_matrix(qtype: QType, rows: int, cols: int, seed: int) -> torch.Tensor:
    block_size = GGML_QUANT_SIZES[qtype][0]
    raw = reference_blocks(qtype, rows * cols // block_size, np.random.default_rng(seed))
    return torch.from_numpy(raw.reshape(rows, -1).copy())


@needs_kernels
@pytest.mark.parametrize("qtype", SUPPORTED_TYPES, ids=lambda t: t.name)
def test_dequantize_kernel_is_bit_exact(qtype: QType):
    rows, cols = 48, 512
    w = packed_matrix(qtype, rows, cols, int(qtype))
    expected = dequantize(w, qtype, (rows, cols))
    out = torch.empty(rows, cols)
    kernels.cpu.dequantize(int(qtype), w.data_ptr(), out.data_ptr(), rows, cols, w.shape[1])
    assert torch.equal(out.view(torch.int32), expected.view(torch.int32))


FLOAT_TYPES = (QType.F32, QType.F16, QType.BF16)


@needs_kernels
@pytest.mark.parametrize("qtype", SUPPORTED_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("n_rows", list(range(1, 17)) + [23])  # every verify width, and past two row blocks
def test_matmul_kernel_matches_dense_matmul(qtype: QType, n_rows: int):
    """Float weights: exact up to fp32 rounding. Block-quantized weights: activations are rounded
    to int16 per 32 values, which bounds each row's error by sum|w| * max|x_block| / 65534."""
    out_features, in_features = 40, 512
    w = packed_matrix(qtype, out_features, in_features, int(qtype) + 7)
    x = torch.randn(n_rows, in_features, generator=torch.Generator().manual_seed(n_rows))
    dense = dequantize(w, qtype, (out_features, in_features)).double()
    expected = x.double() @ dense.T
    y = torch.empty(n_rows, out_features)
    kernels.cpu.matmul(int(qtype), x.data_ptr(), w.data_ptr(), y.data_ptr(), n_rows, out_features, in_features, w.shape[1])
    error = (y.double() - expected).abs()
    if qtype in FLOAT_TYPES:
        assert torch.allclose(y.double(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
        return
    block_max = x.double().abs().view(n_rows, -1, 32).amax(-1).repeat_interleave(32, dim=1)  # [rows, in]
    bound = (block_max / 65534) @ dense.abs().T + 1e-5 * expected.abs()  # rounding of x, then of fp32
    assert (error <= bound).all()
    assert (error.norm() / expected.norm()).item() < 1e-4


@needs_kernels
def test_matmul_rows_are_independent_of_batch():
    """Row i of a batch equals the same row computed alone: decode and a verify batch agree bit for bit."""
    w = packed_matrix(QType.Q4_K, 64, 256, 3)
    x = torch.randn(13, 256)  # a full row block and a partial one
    batch = torch.empty(13, 64)
    kernels.cpu.matmul(int(QType.Q4_K), x.data_ptr(), w.data_ptr(), batch.data_ptr(), 13, 64, 256, w.shape[1])
    for i in range(13):
        row = x[i : i + 1].contiguous()
        alone = torch.empty(1, 64)
        kernels.cpu.matmul(int(QType.Q4_K), row.data_ptr(), w.data_ptr(), alone.data_ptr(), 1, 64, 256, w.shape[1])
        assert torch.equal(alone[0], batch[i])


@needs_kernels
def test_bad_shapes_are_refused():
    w = packed_matrix(QType.Q4_K, 4, 256, 0)
    x, y = torch.randn(1, 256), torch.empty(1, 4)
    with pytest.raises(ValueError, match="multiple of the block size"):
        kernels.cpu.matmul(int(QType.Q4_K), x.data_ptr(), w.data_ptr(), y.data_ptr(), 1, 4, 100, w.shape[1])
    with pytest.raises(ValueError, match="no CPU kernel"):
        kernels.cpu.matmul(int(QType.IQ2_XXS), x.data_ptr(), w.data_ptr(), y.data_ptr(), 1, 4, 256, w.shape[1])


def test_fused_ops_match_torch():
    torch.manual_seed(0)
    x, delta, w = torch.randn(5, 96), torch.randn(5, 96), torch.randn(96)
    reference = F.rms_norm(x, (96,), w, 1e-6)
    assert torch.allclose(ops.rms_norm(x, w, 1e-6), reference, atol=1e-5)
    x2, normed = ops.add_rms_norm(x.clone(), delta, w, 1e-6)
    assert torch.allclose(x2, x + delta)
    assert torch.allclose(normed, F.rms_norm(x + delta, (96,), w, 1e-6), atol=1e-5)
    for rows, dim in ((3, 32), (40, 100)):  # a few rows, and many (the threaded path), with a scalar tail
        gate_up = torch.randn(rows, 2 * dim) * 4
        gate_up[0, :4] = torch.tensor([-100.0, 100.0, -88.5, 0.0])
        expected = F.silu(gate_up[:, :dim]) * gate_up[:, dim:]
        assert torch.allclose(ops.silu_mul(gate_up), expected, rtol=1e-5, atol=1e-6)
    x, w = torch.randn(30, 576), torch.randn(576)
    assert torch.allclose(ops.rms_norm(x, w, 1e-5), F.rms_norm(x, (576,), w, 1e-5), atol=1e-5)


@needs_kernels
@pytest.mark.parametrize("n_head,n_head_kv,head_dim,rot_dim", [(4, 4, 64, 64), (9, 3, 64, 64), (8, 2, 128, 64), (4, 1, 40, 40), (2, 2, 36, 20)])
@pytest.mark.parametrize("qk_norm", [False, True])
@pytest.mark.parametrize("kv_type", ["auto", "q8"])
def test_fused_attention_matches_the_torch_path(n_head, n_head_kv, head_dim, rot_dim, qk_norm, kv_type, monkeypatch):
    """norm + rope + KV store + GQA attention in one kernel, against torch's SDPA path, for
    decode (1 row) and verify batches (several rows, causal among themselves) after a prefix."""
    from types import SimpleNamespace

    from inference.kv_cache import KVCache
    from inference.rope import RopeConfig, Rotary

    gen = torch.Generator().manual_seed(head_dim)
    heads = SimpleNamespace(n_head=n_head, n_head_kv=n_head_kv, head_dim=head_dim, rms_eps=1e-6)
    for scaling in ("none", "yarn"):
        rope = RopeConfig(dim=rot_dim, base=10000.0, interleaved=True, scaling=scaling, factor=4.0, original_context=64)
        rotary = Rotary(rope, torch.device("cpu"))
        norm = torch.randn(n_head + n_head_kv, head_dim, generator=gen) if qk_norm else None
        for start, n in ((0, 1), (37, 1), (37, 5), (200, 8)):
            width = (n_head + 2 * n_head_kv) * head_dim
            prefix = torch.randn(start, width, generator=gen)
            qkv = torch.randn(n, width, generator=gen)
            caches, outputs = [], []
            for fused in (True, False):
                cache = KVCache(1, n_head_kv, head_dim, 256, torch.float32, torch.device("cpu"), kv_type)
                with monkeypatch.context() as m:
                    m.setattr(kernels, "cpu", None)  # fill the prefix identically, through torch
                    if start:
                        ops.attention(prefix.clone(), 0, 0, cache, rotary, rotary.angles(torch.arange(start)),
                                      None, norm, heads)
                    if not fused:
                        positions = torch.arange(start, start + n)
                        mask = None if start == 0 or n == 1 else (torch.arange(start + n)[None] <= positions[:, None])
                        outputs.append(ops.attention(qkv.clone(), 0, start, cache, rotary, rotary.angles(positions),
                                                     mask, norm, heads))
                if fused:
                    outputs.append(ops.attention(qkv.clone(), 0, start, cache, rotary, torch.empty(0), None, norm, heads))
                caches.append(cache)
            assert torch.allclose(outputs[0], outputs[1], atol=2e-5, rtol=1e-4), (scaling, start, n)
            end = start + n
            if kv_type == "q8":  # the same bytes whichever path wrote them (k differs by rope's rounding)
                assert torch.equal(caches[0].v[:, :, :end], caches[1].v[:, :, :end])
                assert torch.equal(caches[0].v_scale[:, :, :end], caches[1].v_scale[:, :, :end])
                assert (caches[0].k[:, :, :end].int() - caches[1].k[:, :, :end].int()).abs().max() <= 1
            else:
                assert torch.allclose(caches[0].k[:, :, :end], caches[1].k[:, :, :end], atol=2e-5)
                assert torch.equal(caches[0].v[:, :, :end], caches[1].v[:, :, :end])


@needs_kernels
def test_matrices_of_mixed_block_types_stay_packed_each_in_its_own_type():
    """q, k and v of different types (Q4_K_M keeps v in Q6_K in half the layers) multiply as
    separate packed matrices side by side, not as one dequantized float32 matrix."""
    from inference import Engine
    from inference.linear import DenseLinear, StackedLinear
    from support.qwen35_fixtures import FIXTURES

    path = FIXTURES / "qwen35-dense-Q4_K_M.gguf"
    packed = Engine.load(path, device="cpu", weights="packed", spec="off", activations="int16").model
    dense = dict(Engine.load(path, device="cpu", weights="dense", spec="off").model.named_modules())
    stacked = [(name, m) for name, m in packed.named_modules() if isinstance(m, StackedLinear)]
    assert stacked and not any(isinstance(m, DenseLinear) and m.weight.dim() == 2 and m.weight.shape[1] % 256 == 0
                               for m in packed.modules())
    x = torch.randn(3, dense[stacked[0][0]].weight.shape[1], generator=torch.Generator().manual_seed(0))
    for name, module in stacked:
        want = dense[name](x)
        assert len({p.qtype for p in module.parts}) > 1 and module(x).shape == want.shape
        assert (module(x) - want).norm() / want.norm() < 1e-3, name
