"""What running a GGUF will hold in memory, part by part, from its header alone: the weights as
the engine keeps them (packed blocks on CPU, dequantized on GPU), the MTP block, the attention KV
cache in its storage type, the recurrent state, and an estimate of a prefill chunk's activations.
`agent models info FILE --ctx N --kv-cache q8 --gpu-memory 24GiB` prints it and whether it fits.

The rules mirror the loaders (models/, linear.py, mtp.py): matrices with a CPU kernel for their
block type stay packed on CPU, every other matrix is dequantized into the compute dtype, vectors
(norms, the router, the Gated DeltaNet's small tensors) are float32.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .generate import PREFILL_CHUNK
from .gguf_file import GGUFFile, TensorInfo
from .hybrid_cache import state_bytes
from .kv_cache import check_kv_cache, q8_block
from .linear import SCRATCH_MAX_BYTES, packed_kernel_for
from .models import qwen35

# read with vec(): float32 whatever their type in the file
FLOAT32_VECTORS = frozenset({"ssm_conv1d", "ssm_a", "ssm_dt", "ffn_gate_inp", "ffn_gate_inp_shexp"})
EXPANDED_NORMS = {"attn_q_norm": "head_count", "attn_k_norm": "head_count_kv"}  # one row per head once loaded


@dataclass
class MemoryPlan:
    device: str  # cpu or cuda
    n_ctx: int
    kv_cache: str  # auto or q8
    weights: int  # the trunk's weights
    mtp: int  # the MTP block's own weights and its KV cache
    kv: int  # the trunk's attention KV cache
    recurrent: int  # Gated DeltaNet state, rollback snapshots and prompt checkpoints
    activations: int  # an estimate: one prefill chunk's largest tensors and the dequantization scratch

    @property
    def total(self) -> int:
        return self.weights + self.mtp + self.kv + self.recurrent + self.activations


def _dtype_bytes(device: str) -> int:
    return 2 if device == "cuda" else 4  # the compute dtype: bfloat16 on GPUs, float32 on CPUs


def _base(name: str) -> str:
    """blk.3.attn_norm.weight -> attn_norm; blk.0.ssm_a -> ssm_a."""
    parts = name.split(".")
    return parts[-2] if parts[-1] in ("weight", "bias") and len(parts) > 1 else parts[-1]


def held_bytes(t: TensorInfo, g: GGUFFile, device: str, packed: bool) -> int:
    """What the engine allocates for one tensor."""
    base = _base(t.name)
    if base in EXPANDED_NORMS:
        return 4 * t.n_elements * int(g.arch_get(f"attention.{EXPANDED_NORMS[base]}", 1) or 1)
    if "norm" in base or base in FLOAT32_VECTORS:
        return 4 * t.n_elements
    if len(t.shape) == 1:  # biases, in the compute dtype
        return _dtype_bytes(device) * t.n_elements
    if packed and packed_kernel_for(t.qtype, t.shape[-1], torch.device(device)) is not None:
        return t.n_bytes
    return _dtype_bytes(device) * t.n_elements


def _mtp_tensor(name: str, first_mtp_layer: int | None) -> bool:
    if ".nextn." in name:
        return True
    m = re.match(r"blk\.(\d+)\.", name)
    return first_mtp_layer is not None and m is not None and int(m.group(1)) >= first_mtp_layer


def kv_bytes_per_value(device: str, kv_cache: str, head_dim: int) -> float:
    return (1 + 2 / q8_block(head_dim)) if kv_cache == "q8" else _dtype_bytes(device)


def plan_memory(g: GGUFFile, n_ctx: int, device: str = "cpu", kv_cache: str = "auto", weights: str = "auto",
                spec_n_max: int = 3) -> MemoryPlan:
    """The plan for running `g` with a context of n_ctx tokens. weights: "auto" (packed on CPU,
    dense on GPU), "packed" (on a GPU: the Triton kernels) or "dense", and spec_n_max (the recurrent
    state's rollback snapshots), as Engine.load takes them."""
    check_kv_cache(kv_cache)
    packed = weights == "packed" or (device == "cpu" and weights == "auto")
    n_layer = int(g.arch_get("block_count", 0) or 0)
    n_mtp = int(g.arch_get("nextn_predict_layers", 0) or 0)
    first_mtp = n_layer - n_mtp if n_mtp else None
    trunk = mtp = 0
    for t in g.tensors.values():
        size = held_bytes(t, g, device, packed)
        if _mtp_tensor(t.name, first_mtp):
            mtp += size
        else:
            trunk += size
    n_head = int(g.arch_get("attention.head_count", 1) or 1)
    n_head_kv = int(g.arch_get("attention.head_count_kv", n_head) or n_head)
    d_model = int(g.arch_get("embedding_length", 0) or 0)
    head_dim = int(g.arch_get("attention.key_length", 0) or (d_model // n_head if n_head else 0))
    recurrent, kv_layers = 0, n_layer - n_mtp
    if g.architecture in qwen35.ARCHITECTURES:
        cfg = qwen35.Qwen35Config.from_gguf(g)
        kv_layers = cfg.n_layer - sum(cfg.recurrent)
        recurrent = state_bytes(cfg.recurrent_state_values, max_rollback=spec_n_max + 1)
    per_layer = 2 * n_head_kv * head_dim * n_ctx * kv_bytes_per_value(device, kv_cache, head_dim)
    activations = _activations(g, device, packed, d_model)
    if kv_cache == "q8":  # a prompt chunk's attention reads one layer's keys and values dequantized
        activations += 2 * n_head_kv * head_dim * n_ctx * _dtype_bytes(device)
    return MemoryPlan(device=device, n_ctx=n_ctx, kv_cache=kv_cache, weights=trunk, mtp=mtp + int(n_mtp * per_layer),
                      kv=int(kv_layers * per_layer), recurrent=recurrent, activations=activations)


def _activations(g: GGUFFile, device: str, packed: bool, d_model: int) -> int:
    """An estimate: a prefill chunk's residual stream, normed copy and widest projection output
    in float32, plus (packed) the scratch that the widest matrix is dequantized into for it."""
    matrices = [t for t in g.tensors.values() if len(t.shape) == 2 and t.name.startswith("blk.")]
    total = 4 * PREFILL_CHUNK * (3 * d_model + 2 * max((t.shape[0] for t in matrices), default=0))
    if packed and device == "cpu":
        largest = max((t.n_elements for t in matrices), default=0)
        total += min(2 * largest, SCRATCH_MAX_BYTES)  # bf16 or float32 scratch; 2 bytes where prefill runs in bf16
    return total


def parse_size(text: str) -> int:
    """'24GiB', '24G' (binary), '24GB' (decimal), '512MiB', a plain number of bytes."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?)(i?)(B?)\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"cannot read the size '{text}': write it like 24GiB, 24GB or 512MiB")
    number, prefix, binary, byte = m.groups()
    power = "KMGT".find(prefix.upper()) + 1 if prefix else 0
    base = 1000 if (byte and not binary and prefix) else 1024
    return int(float(number) * base ** power)


def module_tensors(module: torch.nn.Module) -> list[torch.Tensor]:
    """Every tensor a model holds: parameters, buffers and plain tensor attributes (packed blocks)."""
    found = []
    for m in module.modules():
        found += [t for t in [*m._parameters.values(), *m._buffers.values()] if t is not None]
        found += [t for t in vars(m).values() if isinstance(t, torch.Tensor)]
    return found


def tensor_storage_bytes(tensors: list[torch.Tensor]) -> int:
    """What a set of tensors holds allocated, each storage once (views and tied weights share one)."""
    seen: dict[int, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())
