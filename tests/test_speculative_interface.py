"""The drafter interface: every drafter answers with a Draft record, and a drafter of a new kind
plugs into SpeculativeLoop through that interface alone."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pytest

from inference import Engine
from inference.sampling import Sampler, SamplingParams
from inference.speculative import (MODEL, STRONG, STRONG_LOOKUP, STRONG_MATCH, WEAK, Draft, DraftPolicy, NgramDrafter,
                                  SpeculativeLoop)
from support.qwen35_fixtures import Case, ids, reference

DENSE = Case("qwen35-dense-F32", "qwen35-dense-ref")


def test_a_lookup_draft_says_whether_its_match_is_strong_or_weak():
    """The Draft record carries what NgramDrafter.last_match used to: a match of STRONG_MATCH
    tokens or more is STRONG (with an adaptive length of its own), a shorter one WEAK."""

    def longest_match(seq: list[int]) -> int:
        for k in range(min(6, len(seq) - 1), 1, -1):
            if any(seq[end - k : end] == seq[-k:] for end in range(len(seq) - 1, k - 1, -1)):
                return k
        return 0

    rng = np.random.default_rng(1)
    drafter, context, seen = NgramDrafter(), [], Counter()
    for step in range(300):
        last = int(rng.integers(0, 4))
        draft, k = drafter.draft(last, context, 4), longest_match(context + [last])
        assert draft.drafter == "ngram" and draft.confidence is None
        if k:
            strong = k >= STRONG_MATCH
            assert draft.kind == (STRONG if strong else WEAK), step
            assert draft.length_key == (STRONG_LOOKUP if strong else "ngram"), step
            seen[draft.kind] += 1
        else:
            assert draft.tokens == [], step
        drafter.observe([last], len(context), None)
        context.append(last)
    assert seen[STRONG] > 10 and seen[WEAK] > 10


@dataclass
class FixedDraftModel:
    """A third kind of drafter, as a small draft model would be: it keeps its own copy of the
    model's cache in step through truncate / observe, pays for its drafts, has a confidence per
    position and stops where the gate says so. It proposes fixed tokens: the reference
    continuation, with every third one wrong."""

    continuation: list[int]
    prompt_length: int
    name: str = "draft-model"
    free: bool = False
    seen: list[int] = field(default_factory=list)  # its "cache": the tokens the model kept
    gated: int = 0

    def max_keep(self) -> int:
        return len(self.seen)

    def truncate(self, n_tokens: int) -> None:
        del self.seen[n_tokens:]

    def observe(self, tokens, start, hidden) -> None:
        self.truncate(start)
        self.seen.extend(tokens)

    def draft(self, last: int, context: list[int], n: int, worth=None) -> Draft:
        assert context == self.seen  # it followed the model's cache through the lifecycle alone
        first = len(context) + 1 - self.prompt_length
        tokens, confidence, reach = [], [], 1.0
        for i, t in enumerate(self.continuation[first : first + n]):
            wrong = (first + i) % 3 == 2
            reach *= 0.3 if wrong else 0.9
            if worth is not None:
                self.gated += 1
                if not worth(i, reach):
                    break
            tokens.append((t + 1) % 1000 if wrong else t)
            confidence.append(reach)
        return Draft(tokens, self.name, self.name, MODEL, confidence)


@pytest.mark.parametrize("adaptive", [False, True])
def test_a_custom_drafter_plugs_in_through_the_interface_alone(adaptive: bool):
    ref = reference(DENSE.ref)
    prompt, want = ids(ref, "prompt_ids"), ids(ref, "greedy_ids")
    engine = Engine.load(DENSE.path, device="cpu", spec="off")
    drafter = FixedDraftModel(want, len(prompt))
    policy = DraftPolicy(n_max=3, adaptive=adaptive)
    loop = SpeculativeLoop(engine.model, engine.cache, prompt, Sampler(SamplingParams()), len(want), frozenset(),
                           drafters=[NgramDrafter(), drafter], policy=policy)
    assert list(loop) == want  # the same greedy tokens as plain decoding
    stats = loop.speculative_stats()
    assert stats.drafts_by[drafter.name] > 0 and 0 < stats.accepted < stats.drafted
    assert any(0 < a < len(d) for d, a in loop.trace)
    assert drafter.seen == engine.cache.tokens
    assert (drafter.name in policy.costs.draft) and (drafter.gated > 0) == adaptive  # timed; gated in auto only
