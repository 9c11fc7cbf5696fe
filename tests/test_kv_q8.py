"""The 8-bit KV cache (`--kv-cache q8`): llama.cpp's q8_0 blocks, read directly by the CPU kernel
and dequantized by the torch path; close to the float cache, a quarter of its memory, and lossless
under speculative decoding."""

from __future__ import annotations

import pytest
import torch

from inference import Engine
from inference.errors import EngineError
from inference.generate import decode_step
from inference.kv_cache import KVCache, dequantize_q8, quantize_q8
from support.qwen35_fixtures import Case, ids, reference, run_with_trace

DENSE = Case("qwen35-dense-F32", "qwen35-dense-ref")
MOE = Case("qwen35moe-F32", "qwen35moe-ref")
CPU = torch.device("cpu")


def test_blocks_round_as_q8_0():
    x = torch.zeros(3, 32)
    x[1, :6] = torch.tensor([127.0, -63.5, 0.5, 1.5, 2.5, -127.0])  # scale 1: halves go to the even integer
    x[2, 0] = 1e9  # a scale past fp16's range is clamped, not infinite
    q, scale = quantize_q8(x, 32)
    assert q.dtype is torch.int8 and scale.dtype is torch.float16 and scale.shape == (3, 1)
    assert scale[0].item() == 0 and not q[0].any()  # an all-zero block stays zero
    assert q[1, :6].tolist() == [127, -64, 0, 2, 2, -127] and scale[1].item() == 1.0
    assert torch.isfinite(dequantize_q8(q, scale, torch.float32)).all()


@pytest.mark.parametrize("head_dim,block", [(128, 32), (64, 32), (40, 40)])
def test_each_value_is_within_half_a_step_of_its_block_scale(head_dim: int, block: int):
    x = torch.randn(4, 7, head_dim, generator=torch.Generator().manual_seed(head_dim)) * 3
    q, scale = quantize_q8(x, block)
    assert scale.shape == (4, 7, head_dim // block)
    back = dequantize_q8(q, scale, torch.float32)
    step = scale.float().repeat_interleave(block, dim=-1)
    assert ((back - x).abs() <= step / 2 + 1e-6).all()


def test_the_cache_takes_34_bytes_per_32_values():
    plain = KVCache(4, 2, 128, 1024, torch.float32, CPU)
    q8 = KVCache(4, 2, 128, 1024, torch.float32, CPU, "q8")
    assert plain.nbytes == 2 * 4 * 2 * 1024 * 128 * 4
    assert q8.nbytes * 128 == plain.nbytes * 34
    with pytest.raises(EngineError, match="--kv-cache must be one of auto, q8"):
        KVCache(4, 2, 128, 16, torch.float32, CPU, "q4")


@pytest.mark.parametrize("case", [DENSE, MOE], ids=str)
@pytest.mark.parametrize("weights", ["dense", "packed"])
def test_logits_stay_close_to_the_float_cache_in_prefill_and_decode(case: Case, weights: str):
    """Prefill attends through the torch path, decode steps through the CPU kernel: both read 8-bit keys and values."""
    seq = ids(reference(case.ref), "seq_ids")
    engine = Engine.load(case.path, device="cpu", weights=weights, spec="off")
    outputs = []
    for kv_type in ("auto", "q8"):
        cache = engine.model.new_cache(len(seq) + 8, engine.dtype, kv_type)
        with torch.inference_mode():
            prompt, _ = engine.model(torch.tensor(seq[:-6]), 0, cache, "all")
            steps = torch.stack([decode_step(engine.model, cache, t) for t in seq[-6:]])
        outputs.append(torch.cat([prompt, steps.reshape(6, -1)]))
    error = (outputs[1] - outputs[0]).norm() / outputs[0].norm()
    assert 0 < error < 2e-2  # 8-bit keys and values change the logits a little, never much


@pytest.mark.parametrize("spec", ["mtp", "auto"])
def test_greedy_output_with_speculation_is_identical_to_plain_decoding(spec: str):
    """A verify batch and a decode step write a token's keys into the same 8-bit bytes."""
    prompt = ids(reference(DENSE.ref), "prompt_ids")
    plain, _ = run_with_trace(Engine.load(DENSE.path, device="cpu", spec="off", kv_cache="q8"), prompt)
    drafted, loop = run_with_trace(Engine.load(DENSE.path, device="cpu", spec=spec, spec_n_max=3, kv_cache="q8"), prompt)
    assert drafted.token_ids == plain.token_ids
    assert any(drafts for drafts, _ in loop.trace)  # drafts were verified with the token before them


def test_a_llama_engine_keeps_its_cache_and_its_drafters_in_q8(tiny_llama):
    engine = Engine.load(tiny_llama, device="cpu", n_ctx=256, kv_cache="q8")
    assert engine.cache.quantized and engine.cache.k.dtype is torch.int8
    out = engine.generate([1, 2, 3, 4, 5, 6], max_new_tokens=8, ignore_eos=True)
    assert len(out.token_ids) == 8
    with pytest.raises(EngineError, match="--kv-cache must be one of"):
        Engine.load(tiny_llama, device="cpu", kv_cache="fp8")
