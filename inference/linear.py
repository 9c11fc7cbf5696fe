"""Weights as the model sees them: linear layers and embeddings built from GGUF tensors.

Two storage formats, chosen per device when the model is loaded:
- dense: dequantized once into the compute dtype (GPU, and the CPU reference path);
- packed: the GGUF blocks as they are in the file. On the CPU the C kernels multiply them:
  decode-sized inputs (a few rows) use the fused kernel; larger ones dequantize into a scratch
  buffer and use BLAS, in float32 or, where the CPU multiplies bfloat16 natively, in bfloat16
  (`prefill_dtype`). On a GPU the Triton kernels (kernels/triton_matmul.py) decode tiles in
  registers.
  The model code does not know which one it holds.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as QType
from torch import nn

from . import kernels
from .gguf_file import TensorInfo
from .quants import check_supported, dequantize

# Up to this many rows the packed kernel runs; above it, dequantize + float32 BLAS. The kernel is
# faster up to ~16 rows on the 2-core Zen 3 of CI (docs/benchmarks.md); 8 covers a decode step
# and a speculative verify batch, and longer inputs (prefill) keep the exact float path.
PACKED_MAX_ROWS = 8
PREFILL_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: there oneDNN's bf16 GEMM runs ~4-5x faster than fp32 (369 vs 76 GFLOP/s
    on the 2-core Zen 4 of CI); without them bf16 is emulated and slower than fp32 (16 vs 120 on a
    Zen 3). Linux reports the flags in /proc/cpuinfo; elsewhere we assume no."""
    if platform.system() != "Linux":
        return False
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_prefill_dtype(name: str) -> torch.dtype:
    """The dtype of the dequantize + BLAS path for inputs above the kernel's rows ("auto": bfloat16
    where the CPU has it natively — prefill is compute-bound — else float32, which is exact)."""
    if name == "auto":
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    if name not in PREFILL_DTYPES:
        raise ValueError(f"prefill dtype must be auto, {' or '.join(PREFILL_DTYPES)}; not '{name}'")
    return PREFILL_DTYPES[name]


def set_prefill_dtype(model: nn.Module, dtype: torch.dtype) -> None:
    for module in model.modules():
        if isinstance(module, PackedLinear):
            module.prefill_dtype = dtype


ACTIVATIONS = ("auto", "int16", "int8")
# "auto" rounds to int8 where it is measured to pay within the engine's error bar: the K-quants
# (1.5B coder: decode 2.1x, perplexity +0.2%). The 32-weight types keep int16: int8 gains 1.1-1.2x
# there and moved SmolLM2's (Q4_1) logits by 1.7e-2, past the 1e-2 bar (docs/benchmarks.md).
AUTO_INT8_TYPES = frozenset({QType.Q4_K, QType.Q6_K})


def check_activations(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ValueError(f"activations must be {', '.join(ACTIVATIONS)}; not '{name}'")


def set_activations(model: nn.Module, activations: str) -> None:
    """How the packed kernels round a few rows' activations: int16 per 32 values (~1e-4 relative
    error on logits) or int8 as llama.cpp does (per 256 values for K-quants, per 32 for the
    32-weight types; Q2_K, Q3_K, Q5_K and float weights keep int16): fewer instructions per
    weight, coarser. "auto": int8 for the types in AUTO_INT8_TYPES."""
    check_activations(activations)
    for module in model.modules():
        if isinstance(module, PackedLinear):
            module.int8_activations = activations == "int8" or (activations == "auto" and module.qtype in AUTO_INT8_TYPES)


def activations_of(model: nn.Module) -> str | None:
    """int8, int16 or int8+int16 (some matrices each way); None without packed weights."""
    kinds = {"int8" if m.int8_activations else "int16" for m in model.modules() if isinstance(m, PackedLinear)}
    return "+".join(sorted(kinds, reverse=True)) or None


def prefill_dtype_of(model: nn.Module) -> torch.dtype | None:
    """The many-row GEMM dtype of the model's packed weights; None when it has none."""
    return next((m.prefill_dtype for m in model.modules() if isinstance(m, PackedLinear)), None)


def packed_kernel_available(qtype: QType, n_cols: int) -> bool:
    cpu = kernels.cpu
    return cpu is not None and int(qtype) in cpu.supported_types() and n_cols % GGML_QUANT_SIZES[qtype][0] == 0


TRITON_DEVICES = {"cuda"}  # where packed weights use the Triton kernels; the tests add "cpu" (its interpreter)


def packed_kernel_for(qtype: QType, n_cols: int, device: torch.device) -> str | None:
    """Which kernel multiplies a packed matrix of this type on this device: "triton", "cpu" or None."""
    if device.type in TRITON_DEVICES:
        try:
            from .kernels import triton_matmul
        except ImportError:
            return None
        return "triton" if triton_matmul.supported(qtype, n_cols) else None
    return "cpu" if device.type == "cpu" and packed_kernel_available(qtype, n_cols) else None


def load_dense(info: TensorInfo, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Dequantize one tensor on its target device (the raw bytes travel, not fp32 values)."""
    check_supported(info.qtype, info.name)
    if info.rows is not None and len(info.shape) == 1:  # a vector's elements: select after decoding
        values = dequantize(info.raw().to(device), info.qtype, (-1,), info.name)[info.rows.to(device)]
        return values.to(dtype)
    raw = info.raw().to(device)
    return dequantize(raw, info.qtype, info.shape, info.name).to(dtype)


class DenseLinear(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


# One dequantization buffer per dtype, reused by every matrix: a fresh 100 MB tensor each time costs
# more in page faults than the dequantization itself. Larger ones (an LM head scoring every
# position) are not kept.
SCRATCH_MAX_BYTES = 256 * 2**20
_scratch_buffers: dict[torch.dtype, torch.Tensor] = {}


def _scratch(dtype: torch.dtype, shape: tuple[int, int]) -> torch.Tensor:
    numel = shape[0] * shape[1]
    if numel * dtype.itemsize > SCRATCH_MAX_BYTES:
        return torch.empty(shape, dtype=dtype)
    buffer = _scratch_buffers.get(dtype)
    if buffer is None or buffer.numel() < numel:
        buffer = _scratch_buffers[dtype] = torch.empty(numel, dtype=dtype)
    return buffer[:numel].view(shape)


class PackedLinear(nn.Module):
    """y = x @ W^T + b with W kept as GGUF blocks [out_features, row_bytes] on the CPU.

    The tensors are plain attributes, not registered buffers: a decode step calls this ~120 times
    and nn.Module's attribute lookup for buffers costs more than the small matmuls' overhead."""

    def __init__(self, blocks: torch.Tensor, qtype: QType, in_features: int, bias: torch.Tensor | None = None):
        super().__init__()
        self.blocks = blocks.contiguous()
        self.bias = bias
        self.qtype = qtype
        self.in_features = in_features
        self.out_features, self.row_bytes = self.blocks.shape
        self._qtype_id = int(qtype)
        self.max_rows = PACKED_MAX_ROWS  # inputs with more rows take the dequantize + BLAS path
        self.prefill_dtype = torch.float32  # that path's GEMM dtype (set_prefill_dtype)
        self.int8_activations = False  # the kernel rounds activations to 8 bits where it can (set_activations)

    def dequantized(self, dtype: torch.dtype = torch.float32, scratch: bool = False) -> torch.Tensor:
        """The weight matrix as floats; scratch=True writes it into a buffer the next call reuses."""
        shape = (self.out_features, self.in_features)
        out = _scratch(dtype, shape) if scratch else torch.empty(shape, dtype=dtype)
        dequantize = kernels.cpu.dequantize_bf16 if dtype == torch.bfloat16 else kernels.cpu.dequantize
        dequantize(self._qtype_id, self.blocks.data_ptr(), out.data_ptr(), self.out_features, self.in_features, self.row_bytes)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [n_rows, in_features] float32."""
        n_rows = x.shape[0]
        if n_rows > self.max_rows:
            if self.prefill_dtype == torch.float32:
                return F.linear(x, self.dequantized(scratch=True), self.bias)
            out = F.linear(x.to(torch.bfloat16), self.dequantized(torch.bfloat16, scratch=True)).float()
            return out if self.bias is None else out.add_(self.bias)
        if not x.is_contiguous():
            x = x.contiguous()
        out = torch.empty(n_rows, self.out_features)
        kernels.cpu.matmul(self._qtype_id, x.data_ptr(), self.blocks.data_ptr(), out.data_ptr(),
                           n_rows, self.out_features, self.in_features, self.row_bytes, self.int8_activations)
        return out if self.bias is None else out.add_(self.bias)


def build_linear(
    weights: Sequence[TensorInfo],
    biases: Sequence[TensorInfo] | None,
    device: torch.device,
    dtype: torch.dtype,
    packed: bool,
) -> nn.Module:
    """One linear layer from one or more GGUF tensors stacked along the output dimension
    (q, k and v become one matmul; so do gate and up)."""
    in_features = weights[0].shape[-1]
    bias = torch.cat([load_dense(b, device, dtype) for b in biases]) if biases else None
    qtypes = {w.qtype for w in weights}
    kinds = {packed_kernel_for(w.qtype, in_features, device) for w in weights} if packed else {None}
    if None not in kinds:
        kind = kinds.pop()
        if len(qtypes) == 1:
            blocks = torch.cat([w.raw() for w in weights]) if len(weights) > 1 else weights[0].raw().clone()
            return packed_linear(kind, blocks.to(device), weights[0].qtype, in_features, bias)
        # Q4_K_M files keep v (and the 0.5B's Q5_0 files q8_0 v) in another type in half the layers
        biases_ = bias.split([w.shape[0] for w in weights]) if bias is not None else [None] * len(weights)
        return StackedLinear([packed_linear(kind, w.raw().clone().to(device), w.qtype, in_features, b)
                              for w, b in zip(weights, biases_)])
    weight = torch.cat([load_dense(w, device, dtype) for w in weights])
    return DenseLinear(weight, bias)


def packed_linear(kind: str, blocks: torch.Tensor, qtype: QType, in_features: int,
                  bias: torch.Tensor | None = None) -> nn.Module:
    return (TritonLinear if kind == "triton" else PackedLinear)(blocks, qtype, in_features, bias)


class TritonLinear(nn.Module):
    """y = x @ W^T + b with W kept as GGUF blocks [out_features, row_bytes] on the GPU, multiplied
    by kernels/triton_matmul.py in float32 and returned in x's dtype."""

    def __init__(self, blocks: torch.Tensor, qtype: QType, in_features: int, bias: torch.Tensor | None = None):
        super().__init__()
        self.blocks, self.bias, self.qtype, self.in_features = blocks.contiguous(), bias, qtype, in_features
        self.out_features = self.blocks.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from .kernels import triton_matmul

        out = triton_matmul.matmul(x, self.blocks, self.qtype, self.in_features).to(x.dtype)
        return out if self.bias is None else out.add_(self.bias)


class StackedLinear(nn.Module):
    """Matrices of different block types stacked along the output dimension (q, k and v where v
    has a type of its own): each multiplies in its own type, the outputs side by side. Dequantized
    into one float32 matrix instead, such a layer read 4-7x the bytes per token."""

    def __init__(self, parts: list[nn.Module]):
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.out_features = sum(p.out_features for p in parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], dim=-1)


class Embedding(nn.Module):
    """Token embeddings; packed tables dequantize only the rows that are looked up."""

    def __init__(self, info: TensorInfo, device: torch.device, dtype: torch.dtype, packed: bool):
        super().__init__()
        self.dtype = dtype
        self.qtype = info.qtype
        self.dim = info.shape[-1]
        check_supported(info.qtype, info.name)
        self.kernel = packed_kernel_for(info.qtype, self.dim, device) if packed else None
        self.packed = self.kernel is not None
        if self.packed:
            self.register_buffer("table", info.raw().clone().to(device), persistent=False)
        else:
            self.register_buffer("table", load_dense(info, device, dtype), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not self.packed:
            return self.table[ids]
        rows = self.table[ids.reshape(-1)]
        return dequantize(rows, self.qtype, (*ids.shape, self.dim)).to(self.dtype)

    def as_output_layer(self) -> nn.Module:
        """The same table used as the LM head (tied embeddings), without a copy."""
        if self.packed:
            return packed_linear(self.kernel, self.table, self.qtype, self.dim)
        return DenseLinear(self.table)
