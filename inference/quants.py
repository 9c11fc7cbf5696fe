"""GGML block formats dequantized with torch, so the same code runs on CPU and GPU.

Every function takes the raw blocks as a uint8 tensor of shape [n_blocks, type_size] and returns
float32 [n_blocks, block_size]. The arithmetic follows ggml's reference order of operations so the
result is bit-identical to `gguf.quants.dequantize` (the tests check this on random blocks).
"""

from __future__ import annotations

from typing import Callable

import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as QType

from .errors import UnsupportedModelError

QK_K = 256


def _f16(raw: torch.Tensor) -> torch.Tensor:
    """Bytes [n, 2] holding little-endian fp16 -> float32 [n, 1]."""
    return raw.contiguous().view(torch.float16).to(torch.float32)


def _nibbles(qs: torch.Tensor, groups: int) -> torch.Tensor:
    """[n, groups * 16 * k] packed bytes -> low nibbles of each group of bytes, then the high ones."""
    n = qs.shape[0]
    qs = qs.reshape(n, groups, 1, -1)
    shifts = torch.tensor([0, 4], dtype=torch.uint8, device=qs.device).reshape(1, 1, 2, 1)
    return ((qs >> shifts) & 0x0F).reshape(n, -1)


def _bits(raw: torch.Tensor, width: int, groups: int) -> torch.Tensor:
    """Unpack `width`-bit fields: each group of bytes yields 8/width planes, lowest bits first."""
    n = raw.shape[0]
    shifts = torch.arange(0, 8, width, dtype=torch.uint8, device=raw.device).reshape(1, 1, -1, 1)
    return ((raw.reshape(n, groups, 1, -1) >> shifts) & ((1 << width) - 1)).reshape(n, -1)


def _q5_high_bits(qh: torch.Tensor) -> torch.Tensor:
    """The 32 fifth bits of a Q5_0/Q5_1 block, stored as one little-endian uint32."""
    n = qh.shape[0]
    shifts = torch.arange(8, dtype=torch.uint8, device=qh.device).reshape(1, 1, 8)
    return ((qh.reshape(n, 4, 1) >> shifts) & 1).reshape(n, 32)


def dequant_f32(b: torch.Tensor) -> torch.Tensor:
    return b.contiguous().view(torch.float32)


def dequant_f16(b: torch.Tensor) -> torch.Tensor:
    return b.contiguous().view(torch.float16).to(torch.float32)


def dequant_bf16(b: torch.Tensor) -> torch.Tensor:
    return (b.contiguous().view(torch.int16).to(torch.int32) << 16).view(torch.float32)


def dequant_q4_0(b: torch.Tensor) -> torch.Tensor:
    d = _f16(b[:, :2])
    q = _nibbles(b[:, 2:], 1).to(torch.int8) - 8
    return d * q.to(torch.float32)


def dequant_q4_1(b: torch.Tensor) -> torch.Tensor:
    d, m = _f16(b[:, :2]), _f16(b[:, 2:4])
    return d * _nibbles(b[:, 4:], 1).to(torch.float32) + m


def dequant_q5_0(b: torch.Tensor) -> torch.Tensor:
    d = _f16(b[:, :2])
    q = (_nibbles(b[:, 6:], 1) | (_q5_high_bits(b[:, 2:6]) << 4)).to(torch.int8) - 16
    return d * q.to(torch.float32)


def dequant_q5_1(b: torch.Tensor) -> torch.Tensor:
    d, m = _f16(b[:, :2]), _f16(b[:, 2:4])
    q = _nibbles(b[:, 8:], 1) | (_q5_high_bits(b[:, 4:8]) << 4)
    return d * q.to(torch.float32) + m


def dequant_q8_0(b: torch.Tensor) -> torch.Tensor:
    d = _f16(b[:, :2])
    return b[:, 2:].contiguous().view(torch.int8).to(torch.float32) * d


def dequant_q2_k(b: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    scales, qs = b[:, :16], b[:, 16:80]
    d, dmin = _f16(b[:, 80:82]), _f16(b[:, 82:84])
    dl = (d * (scales & 0x0F).to(torch.float32)).reshape(n, 16, 1)
    ml = (dmin * (scales >> 4).to(torch.float32)).reshape(n, 16, 1)
    q = _bits(qs, 2, 2).reshape(n, 16, 16).to(torch.float32)
    return (dl * q - ml).reshape(n, QK_K)


def dequant_q3_k(b: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    hmask, qs, packed_scales = b[:, :32], b[:, 32:96], b[:, 96:108]
    d = _f16(b[:, 108:110])
    low = _bits(packed_scales[:, :8], 4, 1)
    high = _bits(packed_scales[:, 8:12], 2, 1)
    scales = ((low | (high << 4)).to(torch.int8) - 32).to(torch.float32)
    dl = (d * scales).reshape(n, 16, 1)
    ql = _bits(qs, 2, 2).reshape(n, 16, 16)
    # A set bit in hmask means "no -4 offset".
    qh = _bits(hmask, 1, 1).reshape(n, 16, 16) ^ 1
    q = (ql.to(torch.int8) - (qh << 2).to(torch.int8)).to(torch.float32)
    return (dl * q).reshape(n, QK_K)


def _k_scale_min(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The eight 6-bit scales and mins of a Q4_K/Q5_K block, packed into 12 bytes."""
    d, m, md = packed[:, 0:4], packed[:, 4:8], packed[:, 8:12]
    sc = torch.cat([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], dim=-1)
    mn = torch.cat([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], dim=-1)
    return sc, mn


def _k_scaled(b: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    d, dmin = _f16(b[:, :2]), _f16(b[:, 2:4])
    sc, mn = _k_scale_min(b[:, 4:16])
    dl = (d * sc.to(torch.float32)).reshape(n, 8, 1)
    ml = (dmin * mn.to(torch.float32)).reshape(n, 8, 1)
    return (dl * q.reshape(n, 8, 32).to(torch.float32) - ml).reshape(n, QK_K)


def dequant_q4_k(b: torch.Tensor) -> torch.Tensor:
    return _k_scaled(b, _nibbles(b[:, 16:144], 4))


def dequant_q5_k(b: torch.Tensor) -> torch.Tensor:
    high = _bits(b[:, 16:48], 1, 1)
    return _k_scaled(b, _nibbles(b[:, 48:176], 4) | (high << 4))


def dequant_q6_k(b: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    ql, qh, scales = b[:, :128], b[:, 128:192], b[:, 192:208]
    d = _f16(b[:, 208:210])
    dl = (d * scales.contiguous().view(torch.int8).to(torch.float32)).reshape(n, 16, 1)
    q = (_nibbles(ql, 2) | (_bits(qh, 2, 2) << 4)).to(torch.int8) - 32
    return (dl * q.reshape(n, 16, 16).to(torch.float32)).reshape(n, QK_K)


DEQUANTIZERS: dict[QType, Callable[[torch.Tensor], torch.Tensor]] = {
    QType.F32: dequant_f32,
    QType.F16: dequant_f16,
    QType.BF16: dequant_bf16,
    QType.Q4_0: dequant_q4_0,
    QType.Q4_1: dequant_q4_1,
    QType.Q5_0: dequant_q5_0,
    QType.Q5_1: dequant_q5_1,
    QType.Q8_0: dequant_q8_0,
    QType.Q2_K: dequant_q2_k,
    QType.Q3_K: dequant_q3_k,
    QType.Q4_K: dequant_q4_k,
    QType.Q5_K: dequant_q5_k,
    QType.Q6_K: dequant_q6_k,
}

SUPPORTED_TYPES = tuple(DEQUANTIZERS)


def check_supported(qtype: QType, tensor_name: str) -> None:
    if qtype not in DEQUANTIZERS:
        names = ", ".join(t.name for t in SUPPORTED_TYPES)
        raise UnsupportedModelError(
            f"tensor '{tensor_name}' has type {qtype.name}, which this engine cannot load "
            f"(supported: {names}); use a GGUF quantized to one of these, e.g. Q4_K_M or Q8_0"
        )


def row_bytes(qtype: QType, n_cols: int) -> int:
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    return n_cols // block_size * type_size


def dequantize(raw: torch.Tensor, qtype: QType, shape: tuple[int, ...], name: str = "tensor") -> torch.Tensor:
    """Raw GGUF bytes of a tensor (uint8 of any shape, or already typed for F32/F16/BF16)
    -> float32 tensor of `shape` (torch order: the last dimension is the contiguous one)."""
    check_supported(qtype, name)
    type_size = GGML_QUANT_SIZES[qtype][1]
    blocks = raw.reshape(-1).view(torch.uint8).reshape(-1, type_size)
    return DEQUANTIZERS[qtype](blocks).reshape(shape)
