"""qwen35 / qwen35moe and their MTP heads against the shared fixtures' transformers references."""

from __future__ import annotations

import pytest
import torch

from inference import Engine, generate
from inference.generate import decode_step, prefill
from inference.hybrid_cache import PROMPT_CHECKPOINTS
from inference.sampling import SamplingParams
from support.qwen35_fixtures import (ALL_CASES, F32_CASES, FIXTURES, QUANTIZED_CASES, Case, ids, max_diff, reference,
                             run_with_trace, spec_steps)

TOL = 1e-4


def load(case: Case, weights: str = "dense", **kwargs) -> Engine:
    return Engine.load(case.path, device="cpu", weights=weights, **kwargs)


def forward_all(engine: Engine, tokens: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and post-norm hidden states of every position, from an empty cache, in one pass."""
    cache = engine.model.new_cache(len(tokens) + 8, engine.dtype)
    with torch.inference_mode():
        return engine.model(torch.tensor(tokens), 0, cache, "all")


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
def test_trunk_logits_and_hidden_states(case: Case):
    """F32 files against the transformers reference; quantized files against the reference computed
    on the weights dequantized from that file."""
    ref = reference(case.ref)
    engine = load(case, spec="off")
    logits, hidden = forward_all(engine, ids(ref, "seq_ids"))
    assert max_diff(logits, ref["seq_logits"]) < TOL
    assert max_diff(hidden, ref["seq_hidden"]) < TOL
    prompt_logits, prompt_hidden = forward_all(engine, ids(ref, "prompt_ids"))
    assert max_diff(prompt_logits, ref["logits"]) < TOL
    assert max_diff(prompt_hidden, ref["hidden"]) < TOL


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
@pytest.mark.parametrize("weights", ["dense", "packed"])
def test_greedy_continuation_is_exact(case: Case, weights: str):
    ref = reference(case.ref)
    # int16 activations (~1e-4): 8-bit ones flip near-tied argmaxes of a random model (their error
    # is bounded in test_models_reference.py)
    engine = load(case, weights, spec="off", activations="int16")
    out = engine.generate(ids(ref, "prompt_ids"), max_new_tokens=24, ignore_eos=True)
    assert out.token_ids == ids(ref, "greedy_ids")


@pytest.mark.parametrize("case", [F32_CASES[0], F32_CASES[2], QUANTIZED_CASES[3]], ids=str)
def test_chunked_prefill_and_token_by_token_decode_agree(case: Case, monkeypatch):
    """The Gated DeltaNet's chunked form (prefill) and its recurrent step (decode) give the same
    logits, whatever the chunking; and both match the reference."""
    ref = reference(case.ref)
    seq = ids(ref, "seq_ids")
    engine = load(case, spec="off")
    one_pass, _ = forward_all(engine, seq)
    engine.cache.truncate(0)
    steps = torch.stack([decode_step(engine.model, engine.cache, t) for t in seq])
    assert (steps - one_pass).abs().max().item() < TOL
    assert max_diff(steps, ref["seq_logits"]) < TOL
    monkeypatch.setattr(generate, "PREFILL_CHUNK", 5)  # 14 forward passes carrying the state across
    engine.cache.truncate(0)
    chunked = prefill(engine.model, engine.cache, seq, logits_for="all")
    assert (chunked - one_pass).abs().max().item() < TOL


@pytest.mark.parametrize("case", [c for c in ALL_CASES if "trunk" not in c.model] + [F32_CASES[1], F32_CASES[3]], ids=str)
def test_mtp_head_with_both_pairings(case: Case):
    """vLLM's pairing (row t: token t+1 with trunk hidden t) on the prompt, and llama.cpp's (row p:
    token p with trunk hidden p-1, zeros for p = 0) over prompt + continuation."""
    ref = reference(case.ref)
    engine = load(case)
    head = engine.mtp_head
    assert head is not None, engine.warnings
    prompt, seq = ids(ref, "prompt_ids"), ids(ref, "seq_ids")
    _, hidden = forward_all(engine, prompt)
    with torch.inference_mode():
        logits, out = head(torch.tensor(prompt[1:]), hidden[:-1], 0, head.new_cache(64, engine.dtype))
    assert max_diff(logits, ref["mtp_logits"]) < TOL
    assert max_diff(out, ref["mtp_hidden"]) < TOL
    _, seq_hidden = forward_all(engine, seq)
    shifted = torch.cat([torch.zeros_like(seq_hidden[:1]), seq_hidden[:-1]])
    with torch.inference_mode():
        logits, out = head(torch.tensor(seq), shifted, 0, head.new_cache(96, engine.dtype))
    assert max_diff(logits, ref["mtp_logits_llamacpp"]) < TOL
    assert max_diff(out, ref["mtp_hidden_llamacpp"]) < TOL


@pytest.mark.parametrize("case", [c for c in ALL_CASES], ids=str)
def test_speculative_simulation_drafts_exactly(case: Case):
    """The engine's MTP loop follows llama.cpp's draft-mtp timeline: the same drafts and
    acceptances at every verify step as the reference simulation, and the same output."""
    ref = reference(case.ref)
    engine = load(case, spec="mtp", spec_n_max=3)
    completion, loop = run_with_trace(engine, ids(ref, "prompt_ids"))
    assert completion.token_ids == ids(ref, "spec_ids") == ids(ref, "greedy_ids")
    assert loop.trace == spec_steps(ref)
    spec = completion.stats.speculative
    assert spec["drafted"] == sum(len(d) for d, _ in loop.trace)
    assert spec["accepted"] == int(ref["spec_accepted"].sum())


def test_mtpfit_partial_acceptance_matches_llama_cpp():
    """(d) has a distilled head: 39 drafted, 9 accepted, as llama-server reported."""
    ref = reference("qwen35-dense-mtpfit-ref")
    engine = load(Case("qwen35-dense-mtpfit-F32", ""), spec="mtp")
    completion, loop = run_with_trace(engine, ids(ref, "prompt_ids"))
    spec = completion.stats.speculative
    assert (spec["drafted"], spec["accepted"], spec["verify_steps"]) == (39, 9, 14)
    assert [a for _, a in loop.trace] == [0, 0, 0, 0, 1, 0, 2, 2, 0, 0, 3, 0, 0, 1]
    assert spec["tokens_per_forward"] == pytest.approx((9 + 14) / 14, abs=1e-3)
    assert spec["acceptance_per_position"] == pytest.approx([5 / 14, 3 / 13, 1 / 12], abs=1e-3)


def test_trunk_with_sidecar_works_exactly_like_the_embedded_file():
    ref = reference("qwen35-dense-ref")
    embedded = load(Case("qwen35-dense-F32", ""), spec="mtp")
    sidecar = load(Case("qwen35-dense-trunk-F32", ""), spec="mtp", mtp=FIXTURES / "mtp-qwen35-dense-F32.gguf")
    assert sidecar.mtp_head.source.gguf.path.name == "mtp-qwen35-dense-F32.gguf"
    a, loop_a = run_with_trace(embedded, ids(ref, "prompt_ids"))
    b, loop_b = run_with_trace(sidecar, ids(ref, "prompt_ids"))
    assert a.token_ids == b.token_ids and loop_a.trace == loop_b.trace


def test_sampled_generation_reuses_the_prompt_without_recomputing_it():
    """The hybrid cache keeps a checkpoint at (and one before) each prompt's end, so the same
    prompt again recomputes only its last token."""
    ref = reference("qwen35-dense-ref")
    engine = load(Case("qwen35-dense-F32", ""), spec="auto")
    prompt = ids(ref, "prompt_ids")
    params = SamplingParams(temperature=0.8, seed=3)
    first = engine.generate(prompt, sampling=params, max_new_tokens=6, ignore_eos=True)
    second = engine.generate(prompt, sampling=params, max_new_tokens=6, ignore_eos=True)
    assert second.stats.reused_prompt_tokens == len(prompt) - 1
    assert second.token_ids == first.token_ids


@pytest.mark.parametrize("case", [F32_CASES[4], F32_CASES[2]], ids=str)
def test_bfloat16_compute_keeps_the_recurrent_state_in_float32(case: Case):
    """The GPU configuration (bf16 weights, activations and KV), run on CPU: the Gated DeltaNet
    state and conv window stay fp32, logits stay close, and speculation still works."""
    ref = reference(case.ref)
    engine = load(case, dtype="bfloat16", spec="mtp")
    assert engine.cache.k.dtype == torch.bfloat16
    assert engine.cache.ssm.dtype == torch.float32 and engine.cache.conv.dtype == torch.float32
    logits, _ = forward_all(engine, ids(ref, "seq_ids"))
    want = torch.from_numpy(ref["seq_logits"])
    agree = (logits.argmax(-1) == want.argmax(-1)).float().mean().item()
    assert agree >= 0.9 and (logits - want).abs().max().item() < 0.15
    completion, loop = run_with_trace(engine, ids(ref, "prompt_ids"))
    assert len(completion.token_ids) == 24 and len(loop.trace) > 1
    if "mtpfit" in case.model:  # the distilled head is right often enough to be accepted in bf16 too
        assert sum(a for _, a in loop.trace) > 0


@pytest.mark.parametrize("spec", ["off", "auto"])
def test_next_agent_turn_reuses_prompt_and_answer_on_a_hybrid_model(spec: str):
    """The recurrent state cannot be truncated, yet the next turn (previous prompt + answer + new
    text) recomputes only the new text: the live state, snapshots and prompt checkpoints cover it."""
    engine = load(Case("qwen35-dense-mtpfit-F32", ""), spec=spec)
    prompt = engine.chat_prompt([{"role": "user", "content": "def main():"}])
    first = engine.generate(prompt, max_new_tokens=20, ignore_eos=True)
    follow_up = prompt + first.token_ids + [5, 6, 7]
    second = engine.generate(follow_up, max_new_tokens=5, ignore_eos=True)
    assert second.stats.reused_prompt_tokens == len(prompt) + len(first.token_ids) - 1
    fresh = load(Case("qwen35-dense-mtpfit-F32", ""), spec="off").generate(follow_up, max_new_tokens=5, ignore_eos=True)
    assert second.token_ids == fresh.token_ids


def test_going_back_to_an_earlier_request_recomputes_only_its_last_token():
    """The fix workflow starts each attempt from the same request after a few prompts of its own:
    that request's checkpoint stays (least recently used out first, and a restore is a use)."""
    assert PROMPT_CHECKPOINTS >= 4  # the request and the attempt's three prompts
    engine = load(Case("qwen35-dense-F32", ""), spec="off")
    request = engine.chat_prompt([{"role": "user", "content": "fix the code " * 20}])
    fresh = load(Case("qwen35-dense-F32", ""), spec="off").generate(request, max_new_tokens=4, ignore_eos=True)
    for attempt in range(3):
        first = engine.generate(request, max_new_tokens=4, ignore_eos=True)
        assert first.stats.reused_prompt_tokens == (len(request) - 1 if attempt else 0)
        assert first.token_ids == fresh.token_ids
        prompt = request + first.token_ids
        for stage in range(3):  # the attempt's own prompts (diagnosis, two rewrites), each going on from the last
            prompt += [5 + stage] * 30
            prompt += engine.generate(prompt, max_new_tokens=4, ignore_eos=True).token_ids
