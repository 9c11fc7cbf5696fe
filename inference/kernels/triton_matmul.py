"""y = x @ W^T with W kept as GGUF blocks on the GPU: Triton kernels that dequantize a tile of
weights in registers and multiply it at once, so a 4.5-bit model stays 4.5-bit in GPU memory.

One kernel serves every block type: each program owns BLOCK_M rows and BLOCK_N output features
(BLOCK_M 16: a decode step, a verify batch, MTP drafts in one tile; 64 for a prompt), walks K one
block (32 or 256 weights) at a time, decodes that [BLOCK_N, block] tile with the type's decoder
below, and accumulates x_tile @ tile^T with tl.dot in float32. The decoders follow ggml's formulas (and
inference/quants.py, the reference of the tests). On a CPU the same kernels run under
TRITON_INTERPRET=1, which is how the tests check them.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as QType

# the block types with a decoder here, by the id the kernel's FMT takes
FORMATS = {QType.Q8_0: 0, QType.Q4_0: 1, QType.Q5_0: 2, QType.Q4_K: 3, QType.Q6_K: 4}
SMALL_M = 16  # up to this many rows one tile of rows; more (prefill) go in tiles of PREFILL_BLOCK_M
PREFILL_BLOCK_M = 64


@triton.jit
def _byte(ptr, offsets):
    return tl.load(ptr + offsets).to(tl.int32)


@triton.jit
def _f16(ptr, offsets):
    """The little-endian fp16 at each offset, as float32."""
    bits = _byte(ptr, offsets) | (_byte(ptr, offsets + 1) << 8)
    return bits.to(tl.uint16).to(tl.float16, bitcast=True).to(tl.float32)


@triton.jit
def _decode(w_ptr, base, FMT: tl.constexpr, QK: tl.constexpr):
    """One block of each of BLOCK_N rows: base [BLOCK_N, 1] byte offsets -> [BLOCK_N, QK] float32."""
    i = tl.arange(0, QK)[None, :]
    if FMT == 0:  # Q8_0: fp16 d, 32 int8
        q = _byte(w_ptr, base + 2 + i).to(tl.int8).to(tl.float32)
        return _f16(w_ptr, base) * q
    elif FMT == 1:  # Q4_0: fp16 d, 16 bytes; value i < 16 the low nibble of byte i, else the high one of i - 16
        byte = _byte(w_ptr, base + 2 + (i % 16))
        q = ((byte >> (4 * (i // 16))) & 0xF) - 8
        return _f16(w_ptr, base) * q.to(tl.float32)
    elif FMT == 2:  # Q5_0: fp16 d, 32 fifth bits (uint32), 16 bytes of nibbles as Q4_0
        byte = _byte(w_ptr, base + 6 + (i % 16))
        high = (_byte(w_ptr, base + 2 + i // 8) >> (i % 8)) & 1
        q = (((byte >> (4 * (i // 16))) & 0xF) | (high << 4)) - 16
        return _f16(w_ptr, base) * q.to(tl.float32)
    elif FMT == 3:  # Q4_K: fp16 d, fp16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles
        j = i // 32  # the sub-block of 32 values
        byte = _byte(w_ptr, base + 16 + (i // 64) * 32 + i % 32)
        q = (byte >> (4 * ((i // 32) % 2))) & 0xF
        low = j < 4  # ggml's get_scale_min_k4: sub-blocks 4-7 keep their top bits in bytes 0-7
        s_j = _byte(w_ptr, base + 4 + j)
        s_j4 = _byte(w_ptr, base + 8 + j)
        s_prev = _byte(w_ptr, base + 4 + tl.where(low, j, j - 4))
        sc = tl.where(low, s_j & 63, (s_j4 & 0xF) | ((s_prev >> 6) << 4))
        mn = tl.where(low, s_j4 & 63, (s_j4 >> 4) | ((s_j >> 6) << 4))
        d, dmin = _f16(w_ptr, base), _f16(w_ptr, base + 2)
        return d * sc.to(tl.float32) * q.to(tl.float32) - dmin * mn.to(tl.float32)
    else:  # Q6_K: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales, fp16 d
        n = i // 128
        l = i % 32
        g = (i % 128) // 32
        ql = _byte(w_ptr, base + n * 64 + l + 32 * (g % 2))
        qh = _byte(w_ptr, base + 128 + n * 32 + l)
        q = (((ql >> (4 * (g // 2))) & 0xF) | (((qh >> (2 * g)) & 3) << 4)) - 32
        sc = _byte(w_ptr, base + 192 + n * 8 + l // 16 + 2 * g).to(tl.int8).to(tl.float32)
        return _f16(w_ptr, base + 208) * sc * q.to(tl.float32)


@triton.jit
def _matmul_kernel(x_ptr, w_ptr, y_ptr, M, N, K, row_bytes, stride_xm, stride_ym,
                   FMT: tl.constexpr, QK: tl.constexpr, TYPE_SIZE: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rows = tl.minimum(n, N - 1)  # past the last row: read the last one again, never store it
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kb in range(0, K // QK):
        tile = _decode(w_ptr, rows[:, None].to(tl.int64) * row_bytes + kb * TYPE_SIZE, FMT, QK)
        k = kb * QK + tl.arange(0, QK)
        x = tl.load(x_ptr + m[:, None] * stride_xm + k[None, :], mask=m[:, None] < M, other=0.0).to(tl.float32)
        acc += tl.dot(x, tl.trans(tile), input_precision="ieee")
    tl.store(y_ptr + m[:, None] * stride_ym + n[None, :], acc, mask=(m[:, None] < M) & (n[None, :] < N))


def supported(qtype: QType, in_features: int) -> bool:
    return qtype in FORMATS and in_features % GGML_QUANT_SIZES[qtype][0] == 0


def matmul(x: torch.Tensor, blocks: torch.Tensor, qtype: QType, in_features: int, block_n: int = 32) -> torch.Tensor:
    """x [M, K] times the [N, row_bytes] blocks' matrix, transposed -> float32 [M, N]."""
    m, k = x.shape
    n, row_bytes = blocks.shape
    if k != in_features or not supported(qtype, k):
        raise ValueError(f"triton matmul: {qtype.name} with {k} inputs is not supported")
    qk, type_size = GGML_QUANT_SIZES[qtype]
    block_m = SMALL_M if m <= SMALL_M else PREFILL_BLOCK_M
    x = x.contiguous()
    y = torch.empty(m, n, dtype=torch.float32, device=x.device)
    grid = (triton.cdiv(m, block_m), triton.cdiv(n, block_n))
    _matmul_kernel[grid](x, blocks, y, m, n, k, row_bytes, x.stride(0), y.stride(0), FMT=FORMATS[qtype], QK=qk,
                         TYPE_SIZE=type_size, BLOCK_M=block_m, BLOCK_N=block_n)
    return y
