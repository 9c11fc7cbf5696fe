"""A random qwen35 model of any shape, in a Q4_K_M-like mix of block types, with an MTP block:
Qwen3.6-27B's shape for the GPU benchmark (benchmarks/gpu_bench.py) and, as a sparse file whose
tensor data is a hole, for the memory planner's figure; tiny shapes for the tests. The tokenizer
and chat template are the qwen35 fixture's, its vocabulary padded with unused tokens to the shape's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as QType, GGUFReader, GGUFValueType, GGUFWriter

from support.gguf_builder import random_blocks
from support.qwen35_fixtures import FIXTURES

TEMPLATE = FIXTURES / "qwen35-dense-Q4_K_M.gguf"  # its tokenizer and chat template
UNUSED = 5  # tokenizer.ggml.token_type of the padding tokens


@dataclass(frozen=True)
class Qwen35Shape:
    n_layer: int  # trunk layers; the MTP block comes after them
    d_model: int
    ffn: int
    n_head: int
    n_head_kv: int
    head_dim: int
    ssm_inner: int  # value heads x head size
    ssm_state: int  # the head size of keys and values
    ssm_groups: int  # key/query heads
    ssm_v_heads: int
    vocab: int
    rope_dim: int
    conv_kernel: int = 4
    interval: int = 4  # every interval-th layer is full attention
    context: int = 262144


QWEN36_27B = Qwen35Shape(n_layer=64, d_model=5120, ffn=17408, n_head=24, n_head_kv=4, head_dim=256, ssm_inner=6144,
                         ssm_state=128, ssm_groups=16, ssm_v_heads=48, vocab=248320, rope_dim=64)
TINY = Qwen35Shape(n_layer=4, d_model=256, ffn=512, n_head=4, n_head_kv=2, head_dim=64, ssm_inner=256, ssm_state=32,
                   ssm_groups=2, ssm_v_heads=8, vocab=2048, rope_dim=16, context=4096)


def layout(s: Qwen35Shape) -> list[tuple[str, tuple[int, ...], QType]]:
    """Every tensor: name, shape (rows first) and type. Q4_K matrices, with v and ffn_down in Q6_K in
    every other layer and the output in Q6_K, as Q4_K_M files have them; vectors in F32."""
    conv_dim = 2 * s.ssm_state * s.ssm_groups + s.ssm_inner  # q, k (a key head each per group) and v
    tensors = [("token_embd.weight", (s.vocab, s.d_model), QType.Q4_K), ("output.weight", (s.vocab, s.d_model), QType.Q6_K),
               ("output_norm.weight", (s.d_model,), QType.F32)]
    for i in range(s.n_layer + 1):
        p, more_bits = f"blk.{i}", QType.Q6_K if i % 2 else QType.Q4_K
        tensors += [(f"{p}.attn_norm.weight", (s.d_model,), QType.F32), (f"{p}.post_attention_norm.weight", (s.d_model,), QType.F32),
                    (f"{p}.ffn_gate.weight", (s.ffn, s.d_model), QType.Q4_K), (f"{p}.ffn_up.weight", (s.ffn, s.d_model), QType.Q4_K),
                    (f"{p}.ffn_down.weight", (s.d_model, s.ffn), more_bits)]
        if i == s.n_layer or (i + 1) % s.interval == 0:  # full attention (the MTP block too)
            tensors += [(f"{p}.attn_q.weight", (2 * s.n_head * s.head_dim, s.d_model), QType.Q4_K),
                        (f"{p}.attn_k.weight", (s.n_head_kv * s.head_dim, s.d_model), QType.Q4_K),
                        (f"{p}.attn_v.weight", (s.n_head_kv * s.head_dim, s.d_model), more_bits),
                        (f"{p}.attn_output.weight", (s.d_model, s.n_head * s.head_dim), QType.Q4_K),
                        (f"{p}.attn_q_norm.weight", (s.head_dim,), QType.F32), (f"{p}.attn_k_norm.weight", (s.head_dim,), QType.F32)]
        else:
            tensors += [(f"{p}.attn_qkv.weight", (conv_dim, s.d_model), QType.Q4_K),
                        (f"{p}.attn_gate.weight", (s.ssm_inner, s.d_model), QType.Q4_K),
                        (f"{p}.ssm_alpha.weight", (s.ssm_v_heads, s.d_model), QType.Q8_0),
                        (f"{p}.ssm_beta.weight", (s.ssm_v_heads, s.d_model), QType.Q8_0),
                        (f"{p}.ssm_a", (s.ssm_v_heads,), QType.F32), (f"{p}.ssm_dt.bias", (s.ssm_v_heads,), QType.F32),
                        (f"{p}.ssm_conv1d.weight", (conv_dim, s.conv_kernel), QType.F32),
                        (f"{p}.ssm_norm.weight", (s.ssm_inner // s.ssm_v_heads,), QType.F32),
                        (f"{p}.ssm_out.weight", (s.d_model, s.ssm_inner), QType.Q4_K)]
        if i == s.n_layer:
            tensors += [(f"{p}.nextn.eh_proj.weight", (s.d_model, 2 * s.d_model), QType.Q4_K)]
            tensors += [(f"{p}.nextn.{n}.weight", (s.d_model,), QType.F32) for n in ("enorm", "hnorm", "shared_head_norm")]
    return tensors


def _metadata(writer: GGUFWriter, s: Qwen35Shape) -> None:
    reader = GGUFReader(TEMPLATE)
    values = {"qwen35.block_count": s.n_layer + 1, "qwen35.nextn_predict_layers": 1, "qwen35.context_length": s.context,
              "qwen35.embedding_length": s.d_model, "qwen35.feed_forward_length": s.ffn,
              "qwen35.attention.head_count": s.n_head, "qwen35.attention.head_count_kv": s.n_head_kv,
              "qwen35.attention.key_length": s.head_dim, "qwen35.attention.value_length": s.head_dim,
              "qwen35.rope.dimension_count": s.rope_dim, "qwen35.ssm.conv_kernel": s.conv_kernel,
              "qwen35.ssm.state_size": s.ssm_state, "qwen35.ssm.group_count": s.ssm_groups,
              "qwen35.ssm.time_step_rank": s.ssm_v_heads, "qwen35.ssm.inner_size": s.ssm_inner,
              "qwen35.full_attention_interval": s.interval, "general.name": "synthetic qwen35"}
    tokens = list(reader.fields["tokenizer.ggml.tokens"].contents())
    types = list(reader.fields["tokenizer.ggml.token_type"].contents())
    values["tokenizer.ggml.tokens"] = tokens + [f"<|unused_{i}|>" for i in range(s.vocab - len(tokens))]
    values["tokenizer.ggml.token_type"] = types + [UNUSED] * (s.vocab - len(types))
    for f in reader.fields.values():
        if f.name.startswith("GGUF.") or f.name in ("general.architecture", "qwen35.attention.recurrent_layers"):
            continue  # the layer types follow full_attention_interval
        sub_type = f.types[-1] if f.types[0] == GGUFValueType.ARRAY else None
        writer.add_key_value(f.name, values.pop(f.name, f.contents()), f.types[0], sub_type=sub_type)
    for name, value in values.items():
        writer.add_uint32(name, value) if isinstance(value, int) else writer.add_string(name, value)


def write_qwen35(path: Path, s: Qwen35Shape = TINY, seed: int = 0, sparse: bool = False) -> Path:
    """The model as a GGUF file: random blocks with small finite scales; with sparse=True only the
    header, the tensor data left a hole (for what reads headers only, such as the memory planner)."""
    rng = np.random.default_rng(seed)
    writer = GGUFWriter(path, "qwen35")
    _metadata(writer, s)
    tensors = layout(s)
    for name, shape, qtype in tensors:
        block, type_size = GGML_QUANT_SIZES[qtype]
        n_bytes = int(np.prod(shape)) // block * type_size
        raw_shape = (*shape[:-1], shape[-1] // block * type_size)
        writer.add_tensor_info(name, raw_shape if qtype != QType.F32 else shape,
                               np.dtype(np.uint8 if qtype != QType.F32 else np.float32), n_bytes, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    if sparse:
        handle = writer.fout[0]
        data_start = handle.tell() + (-handle.tell()) % 32  # the data section starts aligned
        handle.truncate(data_start + sum(_padded(GGML_QUANT_SIZES[q], shp) for _, shp, q in tensors))
    else:
        for name, shape, qtype in tensors:
            if qtype == QType.F32:
                values = (1.0 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
                if name.endswith(("ssm_a", "ssm_dt.bias")):
                    values = -np.abs(values)
                writer.write_tensor_data(values)
            else:
                block = GGML_QUANT_SIZES[qtype][0]
                writer.write_tensor_data(random_blocks(qtype, int(np.prod(shape)) // block, rng).reshape(-1))
    writer.close()
    return path


def _padded(sizes: tuple[int, int], shape: tuple[int, ...], alignment: int = 32) -> int:
    block, type_size = sizes
    n = int(np.prod(shape)) // block * type_size
    return n + (-n) % alignment


def scaled(shape: Qwen35Shape, **changes: int) -> Qwen35Shape:
    return replace(shape, **changes)
