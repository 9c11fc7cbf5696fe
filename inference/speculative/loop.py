"""The token loop with drafting: each step asks the policy for a draft, checks it in one forward
pass, keeps the longest agreeing prefix plus one token of the model's own, and rolls back the rest
(attention KV truncated, recurrent state restored from the snapshots taken during the pass).

Acceptance is llama.cpp's sample-and-compare: each verified row is sampled with the user's
sampler and a draft survives while the sample equals it. Every emitted token is therefore a draw
from the model's own distribution (identical tokens under greedy decoding), whatever the drafter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from ..generate import TokenLoop
from .drafters import Draft, Drafter
from .policy import DraftPolicy
from .stats import SpecStats


@dataclass(kw_only=True)
class SpeculativeLoop(TokenLoop):
    """The token loop with drafting: each step verifies a draft and may emit several tokens."""

    drafters: list[Drafter]
    policy: DraftPolicy = field(default_factory=DraftPolicy)
    spec: SpecStats = field(default_factory=SpecStats)
    trace: list[tuple[list[int], int]] = field(default_factory=list)  # per verify step: drafts, accepted

    def observers(self) -> list[Drafter]:
        return self.drafters

    def speculative_stats(self) -> SpecStats:
        return self.spec

    def next_tokens(self, last: int, history: list[int]) -> list[int]:
        remaining = self.max_new_tokens - self.stats.generated_tokens
        draft = self.policy.choose(self.drafters, last, self.cache.tokens, remaining - 1)
        if self.constraint is not None and draft.tokens:
            draft = draft.cut(self.constraint.valid_prefix(draft.tokens))  # verify rows the grammar would refuse are wasted
        return self.verify_draft(last, draft, history)

    @torch.inference_mode()
    def verify_draft(self, last: int, draft: Draft, history: list[int]) -> list[int]:
        """Run [last, drafts...] through the model, keep what the samples agree with; returns the
        accepted drafts followed by the model's own next token."""
        cache, position, drafts = self.cache, self.cache.length, draft.tokens
        started = time.perf_counter()
        rows = [last] + drafts
        cache.check_room(len(rows))
        ids = torch.tensor(rows, dtype=torch.long, device=self.model.device)
        logits, hidden = self.model(ids, position, cache, "all")
        cache.tokens.extend(rows)
        # row i is sampled after the tokens emitted before it; history is extended in place and
        # put back (the caller appends what is emitted), not copied per row
        emitted_from = len(history)
        for i in range(len(rows)):
            sample = self.sample(logits[i], history)
            history.append(sample)
            if i == len(drafts) or sample != drafts[i]:
                break
        emitted = history[emitted_from:]
        del history[emitted_from:]
        self.policy.costs.observe_verify(len(rows), time.perf_counter() - started)
        accepted = len(emitted) - 1
        cache.truncate(position + accepted + 1)  # rejected drafts leave no trace
        for d in self.drafters:
            d.observe(rows[: accepted + 1], position, hidden[: accepted + 1])
        if drafts:
            self.spec.record(len(drafts), accepted, draft.drafter)
            self.policy.record(draft, accepted)
        else:
            self.spec.verify_steps += 1
        self.trace.append((list(drafts), accepted))
        return emitted
