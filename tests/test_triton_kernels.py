"""The GPU's packed matmuls (Triton) against dequantize-then-matmul, on random blocks: run on a GPU
when there is one, else under TRITON_INTERPRET=1 on the CPU (set in conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as QType

from inference.quants import dequantize
from test_quants import reference_blocks

triton_matmul = pytest.importorskip("inference.kernels.triton_matmul")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def random_matrix(qtype: QType, n: int, k: int, seed: int) -> torch.Tensor:
    block, _ = GGML_QUANT_SIZES[qtype]
    raw = reference_blocks(qtype, n * k // block, np.random.default_rng(seed))
    return torch.from_numpy(np.ascontiguousarray(raw)).reshape(n, -1).to(DEVICE)


@pytest.mark.parametrize("qtype", list(triton_matmul.FORMATS), ids=lambda t: t.name)
@pytest.mark.parametrize("rows", [1, 3, 8, 16, 70])  # 70: a prompt, in tiles of 64 rows
def test_matches_dequantize_then_matmul(qtype: QType, rows: int):
    n, k = 45, 2 * GGML_QUANT_SIZES[qtype][0] if qtype in (QType.Q4_K, QType.Q6_K) else 96  # odd n: a partial tile
    blocks = random_matrix(qtype, n, k, seed=rows)
    x = torch.randn(rows, k, generator=torch.Generator().manual_seed(rows)).to(DEVICE)
    want = x @ dequantize(blocks, qtype, (n, k)).t()
    got = triton_matmul.matmul(x, blocks, qtype, k)
    assert got.shape == (rows, n)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


def test_unsupported_shapes_say_so():
    blocks = random_matrix(QType.Q4_K, 4, 256, seed=0)
    with pytest.raises(ValueError, match="not supported"):
        triton_matmul.matmul(torch.randn(2, 128).to(DEVICE), blocks[:, :72], QType.Q4_K, 128)


def test_a_model_with_triton_packed_weights_decodes_as_the_dense_one(monkeypatch):
    """The GPU's packed path through a whole qwen35 model (MTP head included), here in the
    interpreter on CPU tensors: the same greedy tokens as dequantized weights."""
    from inference import Engine, linear
    from inference.linear import DenseLinear, TritonLinear
    from support.qwen35_fixtures import FIXTURES, ids, reference

    monkeypatch.setattr(linear, "TRITON_DEVICES", {"cpu"})
    path = FIXTURES / "qwen35-dense-Q4_K_M.gguf"
    prompt = ids(reference("qwen35-dense-Q4_K_M-ref"), "prompt_ids")[:12]
    triton_engine = Engine.load(path, device="cpu", weights="packed", spec="mtp")
    kinds = {type(m) for m in triton_engine.model.modules()}
    assert TritonLinear in kinds and not any(isinstance(m, DenseLinear) and m.weight.dim() == 2
                                             for m in triton_engine.model.modules())
    from inference.gguf_file import GGUFFile
    from inference.memory_plan import module_tensors, plan_memory, tensor_storage_bytes

    planned = plan_memory(GGUFFile(path), triton_engine.cache.max_tokens, "cpu", "auto", "packed")
    assert planned.weights == tensor_storage_bytes(module_tensors(triton_engine.model))
    dense = Engine.load(path, device="cpu", weights="dense", spec="off")
    want = dense.generate(prompt, max_new_tokens=6, ignore_eos=True).token_ids
    assert triton_engine.generate(prompt, max_new_tokens=6, ignore_eos=True).token_ids == want
