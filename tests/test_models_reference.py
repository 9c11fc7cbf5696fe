"""The engine's logits against transformers reading the same GGUF file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gguf import GGMLQuantizationType as QType

from support.gguf_builder import TinyModel
from inference import Engine
from inference.generate import decode_step

CODE_TEXT = (Path(__file__).parent.parent / "prompts" / "bench" / "code_python.txt").read_text()


def transformers_logits(path: Path, ids: list[int]) -> torch.Tensor:
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


TINY_CASES = [
    (arch, qtype, tied)
    for arch in ("llama", "qwen2", "qwen3")
    for qtype, tied in ((QType.F32, False), (QType.F32, True), (QType.Q8_0, False), (QType.Q4_1, False), (QType.Q4_K, False), (QType.Q6_K, True))
]


@pytest.mark.parametrize("arch,qtype,tied", TINY_CASES, ids=lambda v: getattr(v, "name", str(v)))
def test_tiny_models_match_transformers(arch, qtype, tied, tmp_path):
    k_quant = qtype in (QType.Q4_K, QType.Q6_K)
    shape = dict(d_model=256, ffn_dim=512, n_head=4, head_dim=64) if k_quant else {}
    if arch == "qwen3":
        shape.update(head_dim=128)  # transformers reads qwen3 GGUFs with its default head_dim
    path = TinyModel(arch=arch, qtype=qtype, tied=tied, seed=len(arch), **shape).write(tmp_path / f"{arch}.gguf")
    ids = torch.randint(0, 290, (48,), generator=torch.Generator().manual_seed(0)).tolist()
    reference = transformers_logits(path, ids)
    for weights, activations in (("dense", "int16"), ("packed", "int16"), ("packed", "auto")):
        engine = Engine.load(path, device="cpu", weights=weights, prefill_dtype="float32", activations=activations)
        logits = engine.logits(ids)
        assert relative_error(logits, reference) < 1e-5, weights
        assert torch.equal(logits.argmax(-1), reference.argmax(-1))
        # the last tokens one at a time: the fused single-row attention and matmul kernels
        engine.logits(ids[:40])
        steps = torch.stack([decode_step(engine.model, engine.cache, t) for t in ids[40:]])
        exact = weights == "dense" or qtype == QType.F32
        if activations == "int16":
            assert relative_error(steps, reference[40:]) < (1e-5 if exact else 1e-3), weights
            int16_steps = steps
        elif k_quant:
            # "auto" takes 8-bit activations for K-quants: in use, and close. Random tiny models are
            # the worst case (one 256-value block holds a whole hidden state); the 1.5B coder's
            # perplexity moved 0.2%.
            assert engine.activations == "int8"
            assert not torch.equal(steps, int16_steps)
            assert relative_error(steps, reference[40:]) < 5e-2
        else:
            assert engine.activations == "int16" and torch.equal(steps, int16_steps)


@pytest.fixture(scope="module")
def code_ids(hf_default) -> list[int]:
    _, tokenizer = hf_default
    ids = tokenizer(CODE_TEXT, add_special_tokens=False).input_ids[:320]
    assert len(ids) >= 256
    return ids


@pytest.fixture(scope="module")
def reference_logits(hf_default, code_ids) -> torch.Tensor:
    model, _ = hf_default
    with torch.no_grad():
        return model(torch.tensor([code_ids])).logits[0]


@pytest.mark.parametrize("weights,prefill_dtype", [("dense", "float32"), ("packed", "float32"), ("packed", "bfloat16")])
def test_smollm2_matches_transformers(smollm2, code_ids, reference_logits, weights, prefill_dtype):
    """The issue's bar: argmax agrees at >= 99% of positions, relative L2 error <= 1e-2 (fp32).
    Prefill's GEMMs in bfloat16 (the default where the CPU has it) stay within the error bound; a
    135M model's near-ties flip at ~2% of positions (the 1.5B's perplexity on textwrap.py is
    unchanged: 3.5080 float32, 3.5073 bfloat16, docs/benchmarks.md)."""
    engine = Engine.load(smollm2, device="cpu", weights=weights, n_ctx=1024, prefill_dtype=prefill_dtype)
    assert engine.dtype == torch.float32
    logits = engine.logits(code_ids)
    agreement = (logits.argmax(-1) == reference_logits.argmax(-1)).float().mean().item()
    assert agreement >= (0.99 if prefill_dtype == "float32" else 0.97)
    assert relative_error(logits, reference_logits) <= 1e-2
    if prefill_dtype == "float32":  # in fact both float32 paths are exact up to float rounding
        assert relative_error(logits, reference_logits) < 1e-5


@pytest.mark.parametrize("weights,activations,tolerance,agreement",
                         [("dense", "int16", 1e-5, 0.99), ("packed", "int16", 1e-3, 0.99), ("packed", "auto", 1e-3, 0.99),
                          ("packed", "int8", 3e-2, 0.95)])
def test_incremental_decode_equals_one_pass(smollm2, code_ids, reference_logits, weights, activations, tolerance, agreement):
    """Prefill part of the text, then feed the rest one token at a time through the KV cache.
    Dense weights reproduce the reference exactly; the packed kernels round activations to int16
    per 32 values for single-row steps (docs/engine.md), which costs ~1e-4 relative error. Forced
    to int8 (per 32 values for SmolLM2's Q4_1) the error is ~1.7e-2 and 96% of argmaxes agree, past
    the engine's bar (1e-2, 99%):
    why "auto" keeps int16 for the 32-weight types."""
    from inference.generate import prefill

    engine = Engine.load(smollm2, device="cpu", weights=weights, n_ctx=1024, prefill_dtype="float32", activations=activations)
    split = 200
    prefill(engine.model, engine.cache, code_ids[:split])
    steps = torch.stack([decode_step(engine.model, engine.cache, t) for t in code_ids[split:280]])
    assert relative_error(steps, reference_logits[split:280]) < tolerance
    assert (steps.argmax(-1) == reference_logits[split:280].argmax(-1)).float().mean().item() >= agreement


def test_prefill_in_chunks_with_a_cached_prefix(smollm2, code_ids, reference_logits, monkeypatch):
    """Chunked prefill over a kept prefix uses the masked attention path; it must agree too."""
    from inference import generate

    engine = Engine.load(smollm2, device="cpu", n_ctx=1024, prefill_dtype="float32", activations="int16")
    monkeypatch.setattr(generate, "PREFILL_CHUNK", 64)
    generate.prefill(engine.model, engine.cache, code_ids[:100])
    logits = generate.prefill(engine.model, engine.cache, code_ids[:300], logits_for="all")  # 100 reused
    assert logits.shape[0] == 200
    assert relative_error(logits, reference_logits[100:300]) < 1e-3  # the last 8-row chunk runs the packed kernel


def test_bfloat16_dense_path_runs_on_cpu(smollm2, code_ids, reference_logits):
    """The GPU configuration (dense bf16 weights, bf16 KV cache and activations) exercised on the
    CPU, so its dtype handling is tested where CI has no GPU."""
    engine = Engine.load(smollm2, device="cpu", dtype="bfloat16", n_ctx=512)
    assert not engine.packed_weights and engine.cache.k.dtype == torch.bfloat16
    logits = engine.logits(code_ids[:128])
    assert logits.dtype == torch.float32
    assert relative_error(logits, reference_logits[:128]) < 0.1
    assert (logits.argmax(-1) == reference_logits[:128].argmax(-1)).float().mean().item() >= 0.9
    completion = engine.generate(code_ids[:64], max_new_tokens=8, ignore_eos=True)
    assert len(completion.token_ids) == 8
