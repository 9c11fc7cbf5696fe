"""Speculative decoding is lossless: the same greedy tokens as plain decoding whatever the drafter,
the recurrent state rolled back exactly, and sampled tokens drawn from the model's distribution."""

from __future__ import annotations

import math
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from support.gguf_builder import rewrite_gguf
from inference import Engine
from inference.errors import UnsupportedModelError
from inference.generate import decode_step, prefill
from inference.sampling import Sampler, SamplingParams
from inference.kv_cache import KVCache
from inference.speculative import (MAX_DRAFT, STRONG, STRONG_LOOKUP, WEAK, AdaptiveLength, Draft, DraftPolicy, NgramDrafter,
                                  SpeculativeLoop, StepCosts)
from support.qwen35_fixtures import FIXTURES, Case, ids, reference, run_with_trace

DENSE = Case("qwen35-dense-F32", "qwen35-dense-ref")
MOE = Case("qwen35moe-F32", "qwen35moe-ref")
MTPFIT = Case("qwen35-dense-mtpfit-F32", "qwen35-dense-mtpfit-ref")


@pytest.mark.parametrize("case", [DENSE, MOE, MTPFIT], ids=str)
@pytest.mark.parametrize("spec", ["mtp", "ngram", "auto"])
@pytest.mark.parametrize("n_max", [1, 2, 3, 4])
def test_greedy_output_is_identical_to_plain_decoding(case: Case, spec: str, n_max: int):
    ref = reference(case.ref)
    engine = Engine.load(case.path, device="cpu", spec=spec, spec_n_max=n_max)
    completion, loop = run_with_trace(engine, ids(ref, "prompt_ids"))
    assert completion.token_ids == ids(ref, "greedy_ids")
    assert all(len(drafts) <= n_max for drafts, _ in loop.trace if spec == "mtp")


def test_smollm2_with_prompt_lookup_is_lossless_and_accepts(smollm2_engine):
    """An agent re-emitting a file it just read: n-gram drafts get accepted, output unchanged.
    Both runs prefill from scratch: the packed kernels round a long prefill chunk differently from
    short steps, so a reused prefix is not bit for bit the same computation."""
    source = (Path(__file__).parent.parent / "prompts" / "bench" / "code_python.txt").read_text()[:1200]
    messages = [{"role": "user", "content": f"Here is a file:\n\n{source}\n\nCopy it out exactly."}]
    engine = smollm2_engine
    try:
        engine.spec = "off"
        engine.reset()
        plain = engine.generate(messages=messages, max_new_tokens=120)
        engine.spec = "ngram"
        engine.reset()
        drafted = engine.generate(messages=messages, max_new_tokens=120)
    finally:
        engine.spec = "auto"
    assert drafted.token_ids == plain.token_ids
    spec = drafted.stats.speculative
    assert spec["accepted"] > 0.3 * len(plain.token_ids)  # it does copy, so most drafts are right
    assert spec["tokens_per_forward"] > 1.5


class FollowsNothing:
    """A test drafter that needs nothing from the model: no cache of its own to keep in step."""

    free = False

    def max_keep(self) -> int:
        return 1 << 62

    def truncate(self, n_tokens: int) -> None:
        pass

    def observe(self, tokens, start, hidden) -> None:
        pass


@dataclass
class InjectedDrafter(FollowsNothing):
    """Drafts the reference continuation with chosen positions corrupted; records the recurrent
    state whenever it is asked for a draft right after a rejection."""

    continuation: list[int]
    prompt_length: int
    corrupt: set[int]
    cache: object
    name: str = "injected"
    states_after_rejection: list[tuple[int, torch.Tensor, torch.Tensor]] = field(default_factory=list)
    rejected_last_step: bool = False

    def draft(self, last: int, context: list[int], n: int, worth=None) -> Draft:
        if self.rejected_last_step:
            self.states_after_rejection.append((len(context), self.cache.ssm.clone(), self.cache.conv.clone()))
        first = len(context) + 1 - self.prompt_length  # index in the continuation of the first drafted token
        drafts = [t if first + i not in self.corrupt else (t + 1) % 1000
                  for i, t in enumerate(self.continuation[first : first + n])]
        return Draft(drafts, self.name, self.name)

    def expected_accepted(self, first: int, n: int) -> int:
        return next((i for i in range(n) if first + i in self.corrupt), n)


class PlainReplay:
    """The same prompt decoded one token at a time in a cache of its own, to compare states with."""

    def __init__(self, engine: Engine, prompt: list[int]):
        self.model = engine.model
        self.cache = engine.model.new_cache(128, engine.dtype)
        prefill(self.model, self.cache, prompt)

    def assert_same_state(self, tokens: list[int], length: int, ssm: torch.Tensor, conv: torch.Tensor) -> None:
        """Decode tokens up to `length`, then the recurrent state must equal (ssm, conv) within 1e-6."""
        while self.cache.length < length:
            decode_step(self.model, self.cache, tokens[self.cache.length])
        assert (ssm - self.cache.ssm).abs().max().item() <= 1e-6
        assert (conv - self.cache.conv).abs().max().item() <= 1e-6


@pytest.mark.parametrize("case", [DENSE, MOE], ids=str)
def test_injected_drafts_partial_acceptance_and_exact_rollback(case: Case):
    ref = reference(case.ref)
    prompt, want = ids(ref, "prompt_ids"), ids(ref, "greedy_ids")
    engine = Engine.load(case.path, device="cpu", spec="off", spec_n_max=4)  # the cache keeps 4 + 1 snapshots
    drafter = InjectedDrafter(want, len(prompt), corrupt={2, 4, 5, 9, 14, 15, 16, 21}, cache=engine.cache)
    loop = SpeculativeLoop(engine.model, engine.cache, prompt, Sampler(SamplingParams()), 24, frozenset(),
                           drafters=[drafter], policy=DraftPolicy(n_max=4))
    out = []
    for token in loop:
        out.append(token)
        drafter.rejected_last_step = bool(loop.trace) and loop.trace[-1][1] < len(loop.trace[-1][0])
    assert out == want
    accepted = [a for _, a in loop.trace]
    first = 1
    for drafts, a in loop.trace:
        assert a == drafter.expected_accepted(first, len(drafts))
        first += a + 1
    assert any(0 < a < len(d) for d, a in loop.trace), "some step must accept part of its draft"
    assert any(a == len(d) == 4 for d, a in loop.trace), "some step must accept a whole draft"
    assert 0 in accepted
    assert drafter.states_after_rejection

    # replay with plain one-token decoding and compare the Gated DeltaNet state at each rollback point
    plain = PlainReplay(engine, prompt)
    for length, ssm, conv in sorted(drafter.states_after_rejection, key=lambda s: s[0]):
        plain.assert_same_state(prompt + want, length, ssm, conv)
    assert len(drafter.states_after_rejection) >= 3


def test_real_mtp_rejections_restore_the_recurrent_state():
    """The distilled head's partial acceptances (a = 1, 2) leave the same state as plain decoding."""
    ref = reference(MTPFIT.ref)
    prompt, want = ids(ref, "prompt_ids"), ids(ref, "greedy_ids")
    engine = Engine.load(MTPFIT.path, device="cpu", spec="mtp")
    generation = engine.stream(prompt, max_new_tokens=24, ignore_eos=True)
    plain = PlainReplay(engine, prompt)
    compared = 0
    for _ in generation:
        trace = generation.loop.trace
        if trace and 0 < trace[-1][1] < len(trace[-1][0]):
            cache = engine.cache
            plain.assert_same_state(cache.tokens, cache.length, cache.ssm, cache.conv)
            compared += 1
    assert generation.completion.token_ids == want
    assert compared >= 2


class TableDrafter(FollowsNothing):
    """Proposes, after each first token, two tokens from a fixed table (some likely, some not)."""

    name = "table"

    def __init__(self, prompt_length: int, table: dict[int, list[int]]):
        self.prompt_length, self.table = prompt_length, table

    def draft(self, last: int, context: list[int], n: int, worth=None) -> Draft:
        return Draft(self.table.get(last, [])[:n] if len(context) == self.prompt_length else [], self.name, self.name)


def test_sampling_with_speculation_follows_the_target_distribution():
    """Joint distribution of three sampled tokens (top-k 3, temperature 1): exact probabilities
    from the model against 1500 speculative generations, by a chi-square test. Drafts are chosen
    so that all of full acceptance, partial acceptance and rejection happen."""
    ref = reference(DENSE.ref)
    prompt = ids(ref, "prompt_ids")[:20]
    engine = Engine.load(DENSE.path, device="cpu", spec="off")
    params = SamplingParams(temperature=1.0, top_k=3)

    def top3(tokens: list[int]) -> dict[int, float]:
        logits = engine.logits(tokens)[-1]
        values, index = logits.topk(3)
        return dict(zip(index.tolist(), torch.softmax(values.double(), -1).tolist()))

    exact: dict[tuple[int, ...], float] = {}
    table: dict[int, list[int]] = {}
    for rank, (t1, p1) in enumerate(top3(prompt).items()):
        second = top3(prompt + [t1])
        ordered = sorted(second, key=second.get, reverse=True)
        d1 = ordered[rank % 3]  # the likeliest, the second or the third: acceptance varies
        table[t1] = [d1, max(top3(prompt + [t1, d1]).items(), key=lambda kv: kv[1])[0]]
        for t2, p2 in second.items():
            for t3, p3 in top3(prompt + [t1, t2]).items():
                exact[(t1, t2, t3)] = p1 * p2 * p3

    n_samples = 1500
    counts: Counter = Counter()
    accepted = Counter()
    drafter = TableDrafter(len(prompt), table)
    for seed in range(n_samples):
        sampler = Sampler(SamplingParams(temperature=params.temperature, top_k=params.top_k, seed=seed))
        loop = SpeculativeLoop(engine.model, engine.cache, prompt, sampler, 4, frozenset(), drafters=[drafter], policy=DraftPolicy(n_max=2))
        counts[tuple(loop)[:3]] += 1  # the first three of four: after t1 there is room for two drafts
        accepted[loop.trace[0][1]] += 1
    assert set(counts) <= set(exact)
    assert all(accepted[a] > 50 for a in (0, 1, 2)), accepted
    chi2 = sum((counts[k] - n_samples * p) ** 2 / (n_samples * p) for k, p in exact.items())
    dof = len(exact) - 1
    # p < 1e-3 would reject; for 26 degrees of freedom that is chi2 > 54.05
    assert dof == 26 and chi2 < 54.05, (chi2, counts)
    # and the test has power: a loop that trusted its drafts would be far off
    trusting = Counter()
    for t1, p1 in top3(prompt).items():
        trusting[(t1, *table[t1])] += n_samples * p1
    bad_chi2 = sum((trusting[k] - n_samples * p) ** 2 / (n_samples * p) for k, p in exact.items())
    assert bad_chi2 > 10 * 54.05


def test_ngram_drafter_proposes_what_followed_the_longest_match():
    drafter = NgramDrafter(min_match=2, max_match=4)
    context = [1, 2, 3, 4, 5, 9, 9, 2, 3]
    draft = drafter.draft(4, context, 3)
    assert draft.tokens == [5, 9, 9]
    assert draft.kind == STRONG  # [2, 3, 4] (the only longer match there could be, [9, 2, 3, 4], is not in it)
    assert drafter.draft(7, context, 3).tokens == []
    draft = drafter.draft(3, [5, 3, 6, 7, 5], 2)
    assert draft.tokens == [6, 7] and draft.kind == WEAK  # [5, 3]: min_match is 2, so weak means 2


def test_ngram_index_agrees_with_a_plain_scan():
    """The indexed lookup, fed step by step with rollbacks as the loop feeds it, against a scan."""

    def scan(seq: list[int], n: int) -> list[int]:
        for k in range(min(6, len(seq) - 1), 1, -1):
            for end in range(len(seq) - 1, k - 1, -1):
                if seq[end - k : end] == seq[-k:]:
                    return seq[end : end + n]
        return []

    rng = np.random.default_rng(0)
    drafter, context = NgramDrafter(), []
    for step in range(400):
        last = int(rng.integers(0, 5))
        assert drafter.draft(last, context, 4).tokens == scan(context + [last], 4), step
        if step % 37 == 36:  # a new prompt sharing only a prefix
            keep = int(rng.integers(0, len(context) + 1))
            context = context[:keep]
            drafter.truncate(keep)
        drafter.observe([last], len(context), None)
        context.append(last)


def test_adaptive_length_shrinks_when_drafts_fail_and_recovers():
    lengths = AdaptiveLength(n_max=4)
    assert lengths.length() == 4
    for _ in range(30):
        lengths.update(4, 1)  # the first draft is right, the second never
    assert lengths.length() == 1
    for _ in range(30):
        lengths.update(1, 1)
    assert lengths.length() >= 2
    lengths.update(7, 7)  # a strong n-gram draft past n_max is fine


def test_adaptive_length_pauses_a_drafter_that_is_never_right_and_probes_it():
    lengths = AdaptiveLength(n_max=3, probe_every=4)
    for _ in range(40):
        lengths.update(lengths.length() or 1, 0)
    plan = [lengths.length() for _ in range(12)]
    assert plan.count(1) == 3 and plan.count(0) == 9  # a one-token probe every 4th step
    lengths.update(1, 1)  # a probe hit
    assert lengths.length() == 1 and lengths.length() == 1


def test_step_costs_fill_unmeasured_row_counts_from_the_measured_ones():
    costs = StepCosts()
    assert costs.step_seconds("mtp", 1) is None
    costs.observe_verify(4, 0.013)
    assert costs.verify_seconds(1) == pytest.approx(0.013 / 1.45)  # one row count: the guessed share per row
    costs.observe_verify(2, 0.011)
    assert costs.verify_seconds(3) == pytest.approx(0.012)
    assert costs.verify_seconds(1) == pytest.approx(0.010)
    assert costs.verify_seconds(8) == pytest.approx(0.017)
    costs.observe_draft("mtp", 2, 0.002)
    assert costs.step_seconds("mtp", 2) == pytest.approx(0.012 + 2 * 0.001)
    assert costs.step_seconds("ngram", 2) == pytest.approx(0.012)


def _lengths_with(rate: float, extra_row: float, draft: float = 0.0) -> list[int]:
    """Four steps' draft lengths, given each draft position's acceptance and the costs measured:
    a verify row beyond the first costs `extra_row` of a token, a draft step `draft` seconds."""
    costs = StepCosts()
    for rows in (1, 2):
        costs.observe_verify(rows, 0.010 * (1 + extra_row * (rows - 1)))
    costs.observe_draft("mtp", 1, draft)
    lengths = AdaptiveLength(n_max=4, costs=costs, name="mtp", probe_every=4)
    lengths.rate = [rate] * 4
    return [lengths.length() for _ in range(4)]


def test_auto_drafts_as_far_as_the_measured_costs_pay_for():
    assert _lengths_with(0.6, extra_row=0.02) == [4] * 4  # cheap rows (a GPU): draft far
    assert _lengths_with(0.6, extra_row=0.3) == [1] * 4  # a CPU: a row costs 30% of a token
    assert _lengths_with(0.4, extra_row=0.3) == [1] * 4  # 1.4 tokens for 1.3 the cost
    # 1.35 tokens for 1.4 the cost: not worth it, so paused, with a one-token probe every 4th step
    assert _lengths_with(0.35, extra_row=0.3, draft=0.001) == [0, 0, 0, 1]
    costs = StepCosts()
    costs.observe_verify(2, 0.013)  # only two-row passes measured: one row is estimated
    plan = AdaptiveLength(n_max=3, costs=costs, name="mtp", probe_every=4)
    plan.rate = [0.12] * 3
    assert [plan.length() for _ in range(8)] == [0, 0, 0, 1, 0, 0, 0, 1]
    plan.rate = [0.5] * 3
    assert plan.length() == 2  # the third row, unmeasured, is guessed at 15% of a token


def test_auto_verifies_a_draft_only_when_its_confidence_pays_for_its_row():
    policy = DraftPolicy(adaptive=True)
    assert policy.worth_verifying(0, 0.01)  # nothing measured yet: every draft is tried
    for rows in (1, 2, 3):
        policy.costs.observe_verify(rows, 0.010 * (1 + 0.25 * (rows - 1)))  # a CPU: +25% a row
    assert not policy.worth_verifying(0, 0.24) and policy.worth_verifying(0, 0.26)
    assert not policy.worth_verifying(1, 0.2) and policy.worth_verifying(1, 0.3)
    gpu = DraftPolicy(adaptive=True)
    for rows in (1, 2, 3):
        gpu.costs.observe_verify(rows, 0.010 * (1 + 0.02 * (rows - 1)))
    assert gpu.worth_verifying(2, 0.05)  # rows almost free: unlikely drafts are still worth a try


def test_a_weak_lookup_wins_over_a_head_whose_steps_cost_more_than_its_edge():
    policy = DraftPolicy(adaptive=True, n_max=1)
    policy.adaptive_length("ngram").rate = [0.6]
    policy.adaptive_length("mtp").rate = [0.65]
    assert not policy.lookup_pays_as_well("ngram", "mtp")  # nothing timed yet: the head is right more often
    for rows in (1, 2):
        policy.costs.observe_verify(rows, 0.010 * (1 + 0.25 * (rows - 1)))
    policy.costs.observe_draft("mtp", 1, 0.002)  # a head step: 20% of a token
    assert policy.lookup_pays_as_well("ngram", "mtp")  # 1.6 tokens for 1.25 vs 1.65 for 1.45
    policy.adaptive_length("mtp").rate = [0.95]
    assert not policy.lookup_pays_as_well("ngram", "mtp")  # 1.95 for 1.45 beats 1.6 for 1.25


def test_the_head_stops_drafting_where_its_confidence_falls_short():
    """MTPDrafter.draft with `worth`: the head's cumulative confidence is offered per position, the
    draft stops at the first refusal, and the head's cache is left as without it."""
    engine = Engine.load(MTPFIT.path, device="cpu", spec="mtp", spec_n_max=4)
    last = engine.generate(ids(reference(MTPFIT.ref), "prompt_ids"), sampling=SamplingParams(), max_new_tokens=1).token_ids[-1]
    drafter, context = engine.mtp_drafter, list(engine.cache.tokens)  # `last` is the token after them
    full = drafter.draft(last, context, 4).tokens
    offered: list[tuple[int, float]] = []
    assert drafter.draft(last, context, 4, worth=lambda i, reach: offered.append((i, reach)) or True).tokens == full
    assert [i for i, _ in offered] == [0, 1, 2, 3]
    reaches = [r for _, r in offered]
    assert 0 < reaches[-1] and all(1 >= a >= b for a, b in zip(reaches, reaches[1:]))
    assert drafter.draft(last, context, 4, worth=lambda i, reach: i < 2).tokens == full[:2]
    assert drafter.draft(last, context, 4, worth=lambda i, reach: False).tokens == []
    assert drafter.cache.length == len(context) and drafter.draft(last, context, 4).tokens == full


def test_auto_cuts_strong_lookup_drafts_that_stop_paying_off():
    """A strong n-gram match drafts past n_max; in `auto` only as far as its record and the
    measured costs justify, and not at all (bar probes) once such drafts keep failing."""
    cache = KVCache(1, 1, 4, 64, torch.float32, torch.device("cpu"))
    cache.tokens = list(range(1, 11)) * 3 + [1, 2, 3]  # `4` next: a strong match, 7 tokens to copy
    policy, drafters = DraftPolicy(adaptive=True), [NgramDrafter()]
    for rows in range(1, 9):
        policy.costs.observe_verify(rows, 0.010 * (1 + 0.25 * (rows - 1)))  # a CPU: +25% a row
    draft = policy.choose(drafters, 4, cache.tokens, 50)
    drafts, drafter, key = draft.tokens, draft.drafter, draft.length_key
    assert drafter == "ngram" and key == STRONG_LOOKUP and drafts == [5, 6, 7, 8, 9, 10][: len(drafts)]
    assert 2 <= len(drafts) < MAX_DRAFT  # at the optimistic start (80% per position), 7 rows cost more than they give
    for _ in range(20):
        policy.adaptive_length(key).update(len(drafts), 0)
    assert [len(policy.choose(drafters, 4, cache.tokens, 50).tokens) for _ in range(8)] == [0] * 7 + [1]  # paused, with a probe
    policy.adaptive = False  # --spec ngram: the whole match
    assert policy.choose(drafters, 4, cache.tokens, 50).tokens == [5, 6, 7, 8, 9, 10, 1]


def test_auto_mode_stops_paying_for_a_head_that_is_never_accepted():
    """The fixtures' random heads are never right: under --spec auto the head is soon paused, so
    far fewer tokens are drafted than verify steps, and the output is unchanged."""
    prompt = ids(reference(MOE.ref), "prompt_ids")
    engine = Engine.load(MOE.path, device="cpu", spec="off")
    plain, _ = run_with_trace(engine, prompt, n=64)
    engine.spec = "auto"
    engine.reset()
    completion, loop = run_with_trace(engine, prompt, n=64)
    assert completion.token_ids == plain.token_ids
    drafted = [len(d) for d, _ in loop.trace]
    assert sum(drafted) < len(drafted) / 2 and drafted[-16:].count(0) >= 13


# -- bad input ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cut_head(tmp_path_factory) -> Path:
    """The dense fixture with one tensor of its nextn block missing, as a cut conversion leaves it."""
    dst = tmp_path_factory.mktemp("cut") / "qwen35-dense-cut.gguf"
    return rewrite_gguf(DENSE.path, dst, drop={"blk.8.nextn.eh_proj.weight", "blk.8.attn_q.weight"})


def test_partial_nextn_block_disables_mtp_with_one_warning(cut_head: Path):
    engine = Engine.load(cut_head, device="cpu", spec="auto")
    assert engine.mtp_head is None
    assert len(engine.warnings) == 1 and "\n" not in engine.warnings[0]
    assert "MTP drafting is off" in engine.warnings[0] and "blk.8" in engine.warnings[0]
    ref = reference(DENSE.ref)
    completion, _ = run_with_trace(engine, ids(ref, "prompt_ids"))
    assert completion.token_ids == ids(ref, "greedy_ids")


def test_declared_but_absent_nextn_block_disables_mtp_with_a_warning(tmp_path: Path):
    from gguf import GGUFReader

    mtp_tensors = {t.name for t in GGUFReader(DENSE.path).tensors if t.name.startswith("blk.8.")}
    path = rewrite_gguf(DENSE.path, tmp_path / "no-head.gguf", drop=mtp_tensors)
    engine = Engine.load(path, device="cpu", spec="auto")
    assert engine.mtp_head is None and len(engine.warnings) == 1
    assert "declares an MTP block (blk.8) but holds none of its tensors" in engine.warnings[0]
    with pytest.raises(UnsupportedModelError, match="--mtp FILE"):
        Engine.load(path, device="cpu", spec="mtp")


def test_partial_nextn_block_is_an_error_when_mtp_is_forced(cut_head: Path):
    with pytest.raises(UnsupportedModelError, match="incomplete"):
        Engine.load(cut_head, device="cpu", spec="mtp")


def test_missing_head_is_an_error_only_when_mtp_is_forced(tmp_path: Path):
    trunk = shutil.copy(FIXTURES / "qwen35-dense-trunk-F32.gguf", tmp_path / "model.gguf")  # no sidecar next to it
    engine = Engine.load(trunk, device="cpu", spec="auto")
    assert engine.mtp_head is None and engine.warnings == []
    with pytest.raises(UnsupportedModelError, match="no MTP head.*--mtp FILE"):
        Engine.load(trunk, device="cpu", spec="mtp")


@pytest.mark.parametrize("sidecar,problem", [
    ("mtp-qwen35moe-F32.gguf", "architecture is qwen35moe"),
    ("vocab", "vocabulary has 1000 tokens"),
])
def test_mismatched_sidecar_is_refused(sidecar: str, problem: str, tmp_path: Path):
    path = FIXTURES / sidecar
    if sidecar == "vocab":
        from gguf import GGUFReader

        embd = next(t for t in GGUFReader(FIXTURES / "mtp-qwen35-dense-F32.gguf").tensors if t.name == "token_embd.weight")
        path = rewrite_gguf(FIXTURES / "mtp-qwen35-dense-F32.gguf", tmp_path / "mtp-small-vocab.gguf",
                            replace={"token_embd.weight": np.asarray(embd.data)[:1000]})
    with pytest.raises(UnsupportedModelError, match=f"does not belong.*{problem}"):
        Engine.load(FIXTURES / "qwen35-dense-trunk-F32.gguf", device="cpu", spec="auto", mtp=path)


def test_wider_models_sidecar_is_refused_by_shape():
    with pytest.raises(UnsupportedModelError, match="embedding_length is 64, the model's is 256"):
        Engine.load(FIXTURES / "qwen35-dense-q4k-Q4_K_M.gguf", device="cpu", mtp=FIXTURES / "mtp-qwen35-dense-F32.gguf")


def test_sidecar_alone_is_not_a_model():
    with pytest.raises(UnsupportedModelError, match="only an MTP block"):
        Engine.load(FIXTURES / "mtp-qwen35-dense-F32.gguf", device="cpu")


def test_llama_models_fall_back_to_prompt_lookup(tiny_llama: Path):
    engine = Engine.load(tiny_llama, device="cpu", spec="auto")
    assert engine.mtp_head is None and engine.warnings == []
    with pytest.raises(UnsupportedModelError):
        Engine.load(tiny_llama, device="cpu", spec="mtp")
    assert math.isfinite(engine.generate("the quick", max_new_tokens=8).stats.decode_tokens_per_second)
