"""The memory planner (`agent models info --ctx N --kv-cache q8 --gpu-memory SIZE`) against what
the engine really allocates for the same file: weights, MTP block, KV cache and recurrent state."""

from __future__ import annotations

import pytest
import torch

from agent.frontends.cli import main
from inference import Engine
from inference.gguf_file import GGUFFile
from inference.hybrid_cache import PROMPT_CHECKPOINTS
from inference.memory_plan import module_tensors, parse_size, plan_memory, tensor_storage_bytes
from support.qwen35_fixtures import FIXTURES

QWEN35 = [FIXTURES / f"{name}.gguf" for name in ("qwen35-dense-Q4_K_M", "qwen35-dense-F32", "qwen35moe-F32")]


def allocated(engine: Engine) -> dict[str, int]:
    trunk = module_tensors(engine.model)
    head = module_tensors(engine.mtp_head) if engine.mtp_head is not None else []
    cache = engine.cache
    recurrent = [cache.ssm, cache.conv, cache.snap_ssm, cache.snap_conv,
                 *(t for pair in cache.checkpoints.values() for t in pair)] if hasattr(cache, "ssm") else []
    mtp_kv = engine.mtp_drafter.cache.nbytes if engine.mtp_drafter is not None else 0
    return {"weights": tensor_storage_bytes(trunk),
            "mtp": tensor_storage_bytes(trunk + head) - tensor_storage_bytes(trunk) + mtp_kv,
            "kv": tensor_storage_bytes([cache.k, cache.v, cache.k_scale, cache.v_scale]),
            "recurrent": tensor_storage_bytes(recurrent) if recurrent else 0}


def fill_prompt_checkpoints(engine: Engine) -> None:
    """Prompts that grow, as an agent's turns do: the recurrent state keeps its checkpoints."""
    prompt = list(range(3, 40))
    for _ in range(PROMPT_CHECKPOINTS + 1):
        prompt += engine.generate(prompt, max_new_tokens=4, ignore_eos=True).token_ids + list(range(50, 60))


@pytest.mark.parametrize("path", QWEN35, ids=lambda p: p.stem)
@pytest.mark.parametrize("kv_cache", ["auto", "q8"])
@pytest.mark.parametrize("weights", ["packed", "dense"])
def test_the_plan_is_what_the_engine_allocates(path, kv_cache: str, weights: str):
    engine = Engine.load(path, device="cpu", n_ctx=1536, weights=weights, kv_cache=kv_cache)
    fill_prompt_checkpoints(engine)
    plan = plan_memory(GGUFFile(path), 1536, "cpu", kv_cache, weights)
    real = allocated(engine)
    assert (plan.weights, plan.mtp, plan.kv, plan.recurrent) == (real["weights"], real["mtp"], real["kv"], real["recurrent"])
    assert plan.activations > 0 and plan.total > sum(real.values())


def test_a_llama_plan_is_what_the_engine_allocates(tiny_llama):
    for kv_cache in ("auto", "q8"):
        engine = Engine.load(tiny_llama, device="cpu", n_ctx=700, kv_cache=kv_cache)
        plan = plan_memory(GGUFFile(tiny_llama), 700, "cpu", kv_cache)
        real = allocated(engine)
        assert (plan.weights, plan.kv, plan.mtp, plan.recurrent) == (real["weights"], real["kv"], 0, 0)


def test_q8_takes_a_bit_over_a_quarter_of_a_float32_kv_cache_and_a_gpu_holds_bf16():
    g = GGUFFile(QWEN35[0])
    plans = {(device, kv): plan_memory(g, 262144, device, kv) for device in ("cpu", "cuda") for kv in ("auto", "q8")}
    assert plans["cpu", "q8"].kv * 128 == plans["cpu", "auto"].kv * 34
    assert plans["cuda", "auto"].kv * 2 == plans["cpu", "auto"].kv
    assert plans["cuda", "q8"].weights > plans["cpu", "q8"].weights  # dequantized on the GPU, packed on the CPU
    assert plan_memory(g, 1024, "cuda", "q8", "packed").weights < plans["cuda", "q8"].weights  # the Triton path


@pytest.mark.parametrize("text,size", [("24GiB", 24 * 2**30), ("24G", 24 * 2**30), ("24GB", 24 * 10**9),
                                       ("512MiB", 512 * 2**20), ("1.5 GiB", 3 * 2**29), ("1000", 1000)])
def test_sizes_read_as_written(text: str, size: int):
    assert parse_size(text) == size


def test_models_info_says_whether_it_fits(capsys):
    path = str(QWEN35[0])
    assert main(["models", "info", path, "--ctx", "262144", "--kv-cache", "q8", "--gpu-memory", "24GiB"]) == 0
    out = capsys.readouterr().out
    assert "memory at 262,144 tokens, KV cache q8" in out
    assert "fits a GPU of 24.00 GiB: yes with dense weights; yes with packed weights" in out
    assert main(["models", "info", path, "--ctx", "262144", "--gpu-memory", "64MiB"]) == 0
    assert "fits a GPU of 64.0 MiB: no, " in capsys.readouterr().out
    assert main(["models", "info", path, "--gpu-memory", "lots"]) == 2
    assert "--gpu-memory: cannot read the size 'lots'" in capsys.readouterr().err


def test_a_scaled_down_qwen36_27b_layout_is_planned_as_allocated(tmp_path):
    """The 27B's layout (Q4_K matrices, Q6_K v, ffn_down and output, Q8_0 Gated DeltaNet gates, an
    MTP block) at a tiny size: what the planner says for it is what loading it allocates."""
    from support.qwen35_synthetic import TINY, write_qwen35

    path = write_qwen35(tmp_path / "tiny-27b-layout.gguf", TINY)
    for kv_cache in ("auto", "q8"):
        engine = Engine.load(path, device="cpu", n_ctx=1024, kv_cache=kv_cache)
        fill_prompt_checkpoints(engine)
        plan = plan_memory(GGUFFile(path), 1024, "cpu", kv_cache)
        real = allocated(engine)
        assert (plan.weights, plan.mtp, plan.kv, plan.recurrent) == (real["weights"], real["mtp"], real["kv"], real["recurrent"])
