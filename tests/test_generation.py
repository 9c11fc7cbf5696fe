"""Generation: greedy and seeded sampling, stop conditions, streaming, prefix reuse, stats."""

from __future__ import annotations

import pytest
import torch

from inference import EngineError, SamplingParams
from inference.engine import StopStrings
from inference.sampling import apply_repetition_penalty, filtered_distribution

MESSAGES = [{"role": "user", "content": "Write a Python function that reverses a string."}]


def test_greedy_is_deterministic_and_streams(smollm2_engine):
    first = smollm2_engine.stream(messages=MESSAGES, max_new_tokens=24)
    deltas = list(first)
    assert len(deltas) > 3 and "".join(deltas) == first.completion.text
    smollm2_engine.reset()
    again = smollm2_engine.generate(messages=MESSAGES, max_new_tokens=24)
    assert again.token_ids == first.completion.token_ids


def test_greedy_continuation_follows_transformers(smollm2, hf_default, smollm2_engine):
    model, tokenizer = hf_default
    prompt = "def fibonacci(n):\n    "
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    expected = model.generate(ids, max_new_tokens=20, do_sample=False)[0, ids.shape[1]:].tolist()
    ours = smollm2_engine.generate(ids[0].tolist(), max_new_tokens=20, ignore_eos=True).token_ids
    assert ours == expected


def test_seeded_sampling_is_reproducible(smollm2_engine):
    params = SamplingParams(temperature=0.9, top_k=50, top_p=0.95, min_p=0.02, repetition_penalty=1.1, seed=7)
    a = smollm2_engine.generate(messages=MESSAGES, sampling=params, max_new_tokens=30).token_ids
    b = smollm2_engine.generate(messages=MESSAGES, sampling=params, max_new_tokens=30).token_ids
    c = smollm2_engine.generate(messages=MESSAGES, sampling=SamplingParams(temperature=0.9, seed=8), max_new_tokens=30).token_ids
    assert a == b
    assert a != c


def test_max_new_tokens(tiny_engine):
    c = tiny_engine.generate("def add", max_new_tokens=5, ignore_eos=True)
    assert len(c.token_ids) == 5 and c.finish_reason == "length" and c.stats.generated_tokens == 5


def test_end_of_turn_token_ends_generation(smollm2_engine):
    c = smollm2_engine.generate(messages=MESSAGES, max_new_tokens=200)
    assert c.finish_reason == "eos" and len(c.token_ids) < 200
    end = {smollm2_engine.tokenizer.special.eos, smollm2_engine.tokenizer.special.eot}
    assert not end & set(c.token_ids) and "<|im_end|>" not in c.text


def test_stop_strings_cut_the_text(smollm2_engine):
    full = smollm2_engine.generate("def fibonacci(n):", max_new_tokens=40, ignore_eos=True).text
    stop = full[15:19]
    assert stop and stop in full
    stream = smollm2_engine.stream("def fibonacci(n):", max_new_tokens=40, stop=[stop], ignore_eos=True)
    text = "".join(stream)
    assert stream.completion.finish_reason == "stop"
    assert text == full[: full.index(stop)]


def test_stop_string_is_never_partly_emitted():
    stops = StopStrings(["</tool_call>"])
    emitted = [stops.feed(d) for d in ["Done </to", "ol_c", "all> after"]]
    assert emitted == ["Done ", "", ""] and stops.stopped
    partial = StopStrings(["STOP"])
    assert partial.feed("a ST") == "a " and partial.feed("x") == "STx" and partial.flush() == ""


def test_prompt_prefix_is_reused_between_turns(smollm2_engine):
    smollm2_engine.reset()
    first = smollm2_engine.generate(messages=MESSAGES, max_new_tokens=16)
    assert first.stats.reused_prompt_tokens == 0
    follow_up = MESSAGES + [{"role": "assistant", "content": first.text}, {"role": "user", "content": "Now in C."}]
    second = smollm2_engine.generate(messages=follow_up, max_new_tokens=8)
    assert second.stats.reused_prompt_tokens >= first.stats.prompt_tokens
    smollm2_engine.reset()
    fresh = smollm2_engine.generate(messages=follow_up, max_new_tokens=8)
    assert fresh.token_ids == second.token_ids  # reuse changes speed, never the output


def test_stats_are_measured(smollm2_engine):
    smollm2_engine.reset()
    c = smollm2_engine.generate(messages=MESSAGES, max_new_tokens=12, ignore_eos=True)
    s = c.stats
    assert s.prompt_tokens == len(smollm2_engine.chat_prompt(MESSAGES))
    assert s.generated_tokens == 12
    assert s.prefill_tokens_per_second > 0 and s.decode_tokens_per_second > 0
    assert s.peak_memory_bytes > 50 * 2**20
    assert set(s.as_dict()) >= {"prefill_tokens_per_second", "decode_tokens_per_second", "peak_memory_bytes"}


def test_context_overflow_is_a_clear_error(tiny_llama):
    from inference import Engine

    engine = Engine.load(tiny_llama, device="cpu", n_ctx=16)
    with pytest.raises(EngineError, match="context holds 16 tokens"):
        engine.generate(list(range(20)), max_new_tokens=2)


def test_bad_inputs_to_the_api(tiny_engine):
    with pytest.raises(EngineError, match="either a prompt"):
        tiny_engine.generate()
    with pytest.raises(EngineError, match="out of range"):
        tiny_engine.generate([10**9])
    with pytest.raises(EngineError, match="top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(EngineError, match="max_new_tokens must be at least 1"):
        tiny_engine.generate("x", max_new_tokens=0)
    with pytest.raises(EngineError, match="prompt is empty"):
        tiny_engine.generate("")


# -- sampling filters -----------------------------------------------------------------------

def test_top_k_keeps_k_tokens():
    probs = filtered_distribution(torch.tensor([1.0, 3.0, 2.0, 0.0]), SamplingParams(temperature=1.0, top_k=2))
    assert (probs > 0).tolist() == [False, True, True, False]


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    probs = filtered_distribution(logits, SamplingParams(temperature=1.0, top_p=0.8))
    assert (probs > 0).tolist() == [True, True, False, False]
    assert probs.sum().item() == pytest.approx(1.0)


def test_min_p_is_relative_to_the_top_token():
    logits = torch.log(torch.tensor([0.6, 0.3, 0.07, 0.03]))
    probs = filtered_distribution(logits, SamplingParams(temperature=1.0, min_p=0.1))
    assert (probs > 0).tolist() == [True, True, True, False]


def test_temperature_sharpens():
    logits = torch.tensor([2.0, 1.0])
    hot = filtered_distribution(logits, SamplingParams(temperature=2.0))
    cold = filtered_distribution(logits, SamplingParams(temperature=0.5))
    assert cold[0] > hot[0]


def test_repetition_penalty_pushes_seen_tokens_down():
    logits = torch.tensor([2.0, -1.0, 3.0])
    out = apply_repetition_penalty(logits, [0, 1], SamplingParams(repetition_penalty=2.0))
    assert out.tolist() == [1.0, -2.0, 3.0]


def test_seeded_draws_follow_the_distribution():
    from inference.sampling import Sampler

    sampler = Sampler(SamplingParams(temperature=1.0, seed=0))
    logits = torch.log(torch.tensor([0.7, 0.2, 0.1]))
    counts = torch.bincount(torch.tensor([sampler(logits, []) for _ in range(3000)]), minlength=3).float() / 3000
    assert torch.allclose(counts, torch.tensor([0.7, 0.2, 0.1]), atol=0.03)


class StopPrefill(Exception):
    pass


def test_the_first_token_does_not_depend_on_how_much_of_the_prompt_was_cached(monkeypatch):
    """Many-row GEMMs round differently from the single-row kernels (bf16 where the CPU has it); the
    logits that pick the first token always come from the single-row path, so a prompt answered
    from an empty cache and from a half-filled one starts the same."""
    from inference import generate

    pieces = generate._prefill_pieces(0, 5000, last_alone=True)
    assert pieces == [(0, 2048), (2048, 4096), (4096, 4999), (4999, 5000)]
    assert generate._prefill_pieces(300, 301, last_alone=True) == [(300, 301)]
    assert generate._prefill_pieces(0, 4096, last_alone=False) == [(0, 2048), (2048, 4096)]
    assert generate._prefill_pieces(0, 4097, last_alone=True) == [(0, 2048), (2048, 4096), (4096, 4097)]


def test_prefill_progress_is_reported_per_chunk_and_can_stop_it(tiny_engine, monkeypatch):
    PREFILL_CHUNK = 32  # the tiny model's context is small
    monkeypatch.setattr("inference.generate.PREFILL_CHUNK", PREFILL_CHUNK)
    prompt = [1 + (i * 7) % 50 for i in range(2 * PREFILL_CHUNK + 20)]
    tiny_engine.reset()
    seen: list[tuple[int, int]] = []
    expected = tiny_engine.generate(prompt, max_new_tokens=8, on_prefill=lambda done, total: seen.append((done, total))).token_ids
    # the last token runs alone, through the single-row path a decode step takes
    assert seen == [(PREFILL_CHUNK, len(prompt)), (2 * PREFILL_CHUNK, len(prompt)), (len(prompt) - 1, len(prompt)),
                    (len(prompt), len(prompt))]

    def stop_after_first(done: int, total: int) -> None:
        if done > PREFILL_CHUNK:
            raise StopPrefill

    tiny_engine.reset()
    with pytest.raises(StopPrefill):
        tiny_engine.generate(prompt, max_new_tokens=8, on_prefill=stop_after_first)
    # the cache keeps the chunks it computed and serves them to the next request
    again = tiny_engine.stream(prompt, max_new_tokens=8)
    completion = again.collect()
    assert completion.token_ids == expected
    assert completion.stats.reused_prompt_tokens == 2 * PREFILL_CHUNK
