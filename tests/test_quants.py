"""Dequantization: bit-exact against gguf-py's reference, on CPU (and CUDA when present)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as QType, quants

from support.gguf_builder import random_blocks
from inference.errors import UnsupportedModelError
from inference.quants import SUPPORTED_TYPES, check_supported, dequantize

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ISSUE_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]


def reference_blocks(qtype: QType, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    """Raw bytes of n_blocks blocks: real encodings of random values for the float types,
    random blocks with finite scales for the quantized ones."""
    block_size = GGML_QUANT_SIZES[qtype][0]
    if qtype in (QType.F32, QType.F16, QType.BF16):
        values = rng.standard_normal(n_blocks * block_size).astype(np.float32)
        encoded = values if qtype == QType.F32 else quants.quantize(values, qtype)
        return np.ascontiguousarray(encoded).view(np.uint8).reshape(n_blocks, -1)
    return random_blocks(qtype, n_blocks, rng)


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def test_every_type_of_the_issue_is_supported():
    assert sorted(t.name for t in SUPPORTED_TYPES) == sorted(ISSUE_TYPES)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("qtype", SUPPORTED_TYPES, ids=lambda t: t.name)
def test_dequantize_is_bit_exact_with_gguf_reference(qtype: QType, device: str):
    rng = np.random.default_rng(int(qtype))
    shape = (12, 256)  # every row holds whole blocks of every type
    raw = reference_blocks(qtype, shape[0] * shape[1] // GGML_QUANT_SIZES[qtype][0], rng)
    if qtype == QType.F32:
        expected = raw.view(np.float32).reshape(shape)
    elif qtype == QType.F16:
        expected = raw.view(np.float16).astype(np.float32).reshape(shape)
    else:
        expected = quants.dequantize(raw.reshape(shape[0], -1), qtype).reshape(shape)
    got = dequantize(torch.from_numpy(raw.copy()).to(device), qtype, shape).cpu().numpy()
    assert got.dtype == np.float32 and got.shape == shape
    assert np.array_equal(bits(got), bits(expected))


@pytest.mark.parametrize("qtype", [QType.Q4_0, QType.Q4_1, QType.Q5_0, QType.Q5_1, QType.Q8_0], ids=lambda t: t.name)
def test_dequantize_round_trips_real_quantization(qtype: QType):
    """Blocks made by gguf's quantizer decode to values close to the originals."""
    rng = np.random.default_rng(0)
    values = rng.standard_normal((8, 256)).astype(np.float32)
    raw = quants.quantize(values, qtype)
    got = dequantize(torch.from_numpy(raw), qtype, values.shape).numpy()
    assert np.array_equal(bits(got), bits(quants.dequantize(raw, qtype)))
    assert np.abs(got - values).max() < 0.5


def test_random_bytes_including_nan_scales_still_match_bitwise():
    rng = np.random.default_rng(1)
    for qtype in (QType.Q4_1, QType.Q6_K, QType.Q3_K):
        raw = rng.integers(0, 256, (64, GGML_QUANT_SIZES[qtype][1]), dtype=np.uint8)
        with np.errstate(all="ignore"):
            expected = quants.dequantize(raw, qtype)
        got = dequantize(torch.from_numpy(raw.copy()), qtype, expected.shape).numpy()
        assert np.array_equal(bits(got), bits(expected))


@pytest.mark.parametrize("qtype", [QType.IQ2_XXS, QType.TQ1_0, QType.IQ4_XS])
def test_unsupported_type_names_itself(qtype: QType):
    with pytest.raises(UnsupportedModelError, match=rf"tensor 'blk\.0\.ffn_down\.weight' has type {qtype.name}"):
        check_supported(qtype, "blk.0.ffn_down.weight")
