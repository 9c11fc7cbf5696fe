"""Prefill's many-row GEMMs in bfloat16 where the CPU has it natively: the dequantization into
bfloat16, the choice of dtype, and the error against the exact float32 path."""

from __future__ import annotations

import pytest
import torch
from gguf import GGMLQuantizationType as QType

from inference import kernels
from inference import linear
from inference.errors import EngineError
from inference.linear import PackedLinear, resolve_prefill_dtype
from inference.quants import SUPPORTED_TYPES, dequantize
from test_cpu_kernels import needs_kernels, packed_matrix


@needs_kernels
@pytest.mark.parametrize("qtype", SUPPORTED_TYPES, ids=lambda t: t.name)
def test_dequantize_to_bf16_rounds_like_torch(qtype: QType):
    rows, cols = 29, 512  # three full batches of 8 rows and a partial one
    w = packed_matrix(qtype, rows, cols, int(qtype) + 11)
    expected = dequantize(w, qtype, (rows, cols)).to(torch.bfloat16)
    out = torch.empty(rows, cols, dtype=torch.bfloat16)
    kernels.cpu.dequantize_bf16(int(qtype), w.data_ptr(), out.data_ptr(), rows, cols, w.shape[1])
    assert torch.equal(out.view(torch.int16), expected.view(torch.int16))


def test_f32_to_bf16_rounds_ties_to_even():
    """Values exactly halfway between two bfloat16s go to the even one, as torch rounds."""
    if kernels.cpu is None:
        pytest.skip("the C kernels need x86-64 with AVX2")
    bits = torch.tensor([0x3F808000, 0x3F818000, 0x3F80C000, 0x3F807FFF, 0xBF818000, 0x00000000], dtype=torch.int64)
    # F32 blocks are raw little-endian floats: a 32-column row of them through the dequantizer
    values = torch.zeros(32, dtype=torch.int32)
    values[: len(bits)] = bits.to(torch.int32)
    row = values.view(torch.uint8).reshape(1, -1).clone()
    out = torch.empty(1, 32, dtype=torch.bfloat16)
    kernels.cpu.dequantize_bf16(int(QType.F32), row.data_ptr(), out.data_ptr(), 1, 32, row.shape[1])
    assert torch.equal(out.view(torch.int16), values.view(torch.float32).reshape(1, 32).to(torch.bfloat16).view(torch.int16))


@needs_kernels
@pytest.mark.parametrize("qtype", (QType.Q4_K, QType.Q6_K, QType.Q8_0), ids=lambda t: t.name)
def test_bf16_prefill_path_stays_close_to_float32(qtype: QType):
    out_features, in_features, n_rows = 96, 512, 40
    w = packed_matrix(qtype, out_features, in_features, int(qtype) + 5)
    bias = torch.randn(out_features)
    layer = PackedLinear(w, qtype, in_features, bias)
    x = torch.randn(n_rows, in_features, generator=torch.Generator().manual_seed(1))
    exact = layer(x)
    layer.prefill_dtype = torch.bfloat16
    approx = layer(x)
    assert approx.dtype == torch.float32 and approx.shape == exact.shape
    assert not torch.equal(approx, exact), "the bfloat16 path did not run"
    assert ((approx - exact).norm() / exact.norm()).item() < 1e-2
    # decode-sized inputs keep the packed kernel whatever the prefill dtype: a decode step and the
    # same row in a verify batch stay bit-identical
    few = x[: layer.max_rows]
    layer.prefill_dtype = torch.float32
    kernel_rows = layer(few)
    layer.prefill_dtype = torch.bfloat16
    assert torch.equal(layer(few), kernel_rows)


def test_auto_picks_bf16_only_where_the_cpu_has_it(monkeypatch):
    monkeypatch.setattr(linear, "cpu_has_native_bf16", lambda: True)
    assert resolve_prefill_dtype("auto") == torch.bfloat16
    monkeypatch.setattr(linear, "cpu_has_native_bf16", lambda: False)
    assert resolve_prefill_dtype("auto") == torch.float32
    assert resolve_prefill_dtype("bfloat16") == torch.bfloat16
    assert resolve_prefill_dtype("float32") == torch.float32


def test_cpu_flags_are_read_from_cpuinfo(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(linear.platform, "system", lambda: "Linux")
    for flags, expected in (("fpu avx2 avx512f avx512_bf16", True), ("fpu avx2 amx_bf16 amx_tile", True),
                            ("fpu avx2 avx512f avx512bw", False)):
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(linear, "Path", lambda _: cpuinfo)
        linear.cpu_has_native_bf16.cache_clear()
        assert linear.cpu_has_native_bf16() is expected
    linear.cpu_has_native_bf16.cache_clear()


def test_a_bad_prefill_dtype_is_refused_with_the_choices(tmp_path):
    from inference import Engine

    with pytest.raises(EngineError, match="prefill dtype must be auto, float32 or bfloat16; not 'float16'"):
        Engine.load(tmp_path / "missing.gguf", prefill_dtype="float16")
