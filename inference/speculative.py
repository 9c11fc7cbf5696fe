"""Speculative decoding: a drafter proposes a few tokens, the model checks them all in one forward
pass, the longest agreeing prefix is kept plus one token of the model's own, and the rest is rolled
back (attention KV truncated, recurrent state restored from the snapshots taken during the pass).

Acceptance is llama.cpp's sample-and-compare: each verified row is sampled with the user's
sampler and a draft survives while the sample equals it. Every emitted token is therefore a draw
from the model's own distribution (identical tokens under greedy decoding), whatever the drafter.

Drafters: the model's MTP head (following llama.cpp's draft-mtp timeline, so its drafts equal the
reference), prompt lookup (n-grams of the context, for any model), or both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from .generate import TokenLoop
from .kv_cache import KVCache
from .mtp import MTPHead

MODES = ("auto", "mtp", "ngram", "off")
MAX_DRAFT = 7  # a verify batch of up to 8 rows stays on the same kernels as a single-token step
STRONG_MATCH = 3  # n-gram length from which prompt lookup is trusted over the MTP head
STRONG_LOOKUP = "ngram:strong"  # the adaptive length of strong lookup matches, kept apart from weak ones


@dataclass
class SpecStats:
    mode: str = "off"
    drafted: int = 0
    accepted: int = 0
    verify_steps: int = 0
    drafted_at: list[int] = field(default_factory=list)  # per draft position: how often a token was proposed there
    accepted_at: list[int] = field(default_factory=list)  # ... and accepted
    drafts_by: dict[str, int] = field(default_factory=dict)  # which drafter proposed how many tokens
    mtp_weight_bytes: int = 0
    mtp_kv_bytes: int = 0
    snapshot_bytes: int = 0

    def record(self, n_drafted: int, n_accepted: int, drafter: str) -> None:
        self.verify_steps += 1
        self.drafted += n_drafted
        self.accepted += n_accepted
        self.drafts_by[drafter] = self.drafts_by.get(drafter, 0) + n_drafted
        for i in range(n_drafted):
            while len(self.drafted_at) <= i:
                self.drafted_at.append(0)
                self.accepted_at.append(0)
            self.drafted_at[i] += 1
            self.accepted_at[i] += i < n_accepted

    @property
    def acceptance(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def acceptance_per_position(self) -> list[float]:
        return [a / d if d else 0.0 for a, d in zip(self.accepted_at, self.drafted_at)]

    @property
    def tokens_per_forward(self) -> float:
        """Tokens emitted per model forward pass during decoding (1.0 without speculation)."""
        return (self.accepted + self.verify_steps) / self.verify_steps if self.verify_steps else 1.0

    def as_dict(self) -> dict:
        return {"mode": self.mode, "drafted": self.drafted, "accepted": self.accepted, "verify_steps": self.verify_steps,
                "acceptance": round(self.acceptance, 4),
                "acceptance_per_position": [round(x, 4) for x in self.acceptance_per_position],
                "drafted_at": list(self.drafted_at), "accepted_at": list(self.accepted_at),
                "tokens_per_forward": round(self.tokens_per_forward, 3), "drafts_by": dict(self.drafts_by),
                "mtp_weight_bytes": self.mtp_weight_bytes, "mtp_kv_bytes": self.mtp_kv_bytes,
                "snapshot_bytes": self.snapshot_bytes}


class Drafter(Protocol):
    name: str

    def max_keep(self) -> int:
        """How much of the model's cache this drafter can follow without recomputation."""

    def truncate(self, n_tokens: int) -> None: ...

    def observe(self, tokens: list[int], start: int, hidden: torch.Tensor) -> None:
        """The model just ran (and keeps) `tokens` at positions start..; hidden: their post-norm states."""

    def draft(self, last: int, context: list[int], n: int) -> list[int]:
        """Up to n tokens to follow `last`, which comes after `context` (the cached tokens)."""


class MTPDrafter:
    """llama.cpp's draft-mtp: the head's cache row p holds (token p, trunk hidden of p-1); drafts
    are greedy; step i > 1 feeds the head its own output hidden state.

    Rows the model keeps are queued and run through the head in one batch when the next draft
    needs them (or once FLUSH_ROWS are queued, so a prefill chunk runs at once): a head that is
    paused by the adaptive length then costs almost nothing."""

    name = "mtp"
    FLUSH_ROWS = 64

    def __init__(self, head: MTPHead, max_tokens: int, dtype: torch.dtype):
        self.head = head
        self.cache: KVCache = head.new_cache(max_tokens, dtype)
        self.zeros = torch.zeros(1, head.cfg.d_model, dtype=dtype, device=head.device)
        self.last_h = self.zeros  # trunk hidden of the last observed token, paired with the next row
        self.hidden_at: dict[int, torch.Tensor] = {0: self.zeros}  # by observed length, for rollbacks
        self.queued: list[tuple[list[int], int, torch.Tensor]] = []  # (tokens, start, paired hidden)

    @property
    def observed(self) -> int:
        return self.cache.length + sum(len(t) for t, _, _ in self.queued)

    def max_keep(self) -> int:
        return self.observed  # rows the head has not seen must be recomputed to catch it up

    def truncate(self, n_tokens: int) -> None:
        if n_tokens < self.cache.length:
            self.cache.truncate(n_tokens)
            self.queued = []
        else:
            self.queued = [(t[: n_tokens - s], s, h[: n_tokens - s]) for t, s, h in self.queued if s < n_tokens]
        h = self.hidden_at.get(n_tokens)
        # without the trunk's hidden state at that point, start over as at position 0: drafts get
        # worse for a while, the output does not change (every draft is verified)
        self.last_h = h if h is not None else self.zeros
        self.hidden_at = {p: v for p, v in self.hidden_at.items() if p <= n_tokens}

    def observe(self, tokens: list[int], start: int, hidden: torch.Tensor) -> None:
        self.truncate(start)
        paired = torch.cat([self.last_h, hidden[:-1]]) if len(tokens) > 1 else self.last_h
        self.queued.append((list(tokens), start, paired))
        self.last_h = hidden[-1:].clone()
        self.hidden_at[start + len(tokens)] = self.last_h
        for old in sorted(self.hidden_at)[:-16]:
            del self.hidden_at[old]
        if self.observed - self.cache.length >= self.FLUSH_ROWS:
            self.flush()

    def _run_queued(self, extra_token: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the queued rows through the head (they stay in its cache), followed by the row
        (extra_token, last hidden) when given; returns the last row's logits and hidden state."""
        tokens = [t for chunk, _, _ in self.queued for t in chunk]
        hidden = [h for _, _, h in self.queued]
        start = self.queued[0][1] if self.queued else self.cache.length
        if extra_token is not None:
            hidden.append(self.last_h)
        ids = torch.tensor(tokens + ([] if extra_token is None else [extra_token]), dtype=torch.long,
                           device=self.head.device)
        logits, out = self.head(ids, torch.cat(hidden), start, self.cache, logits_for="last")
        self.cache.tokens.extend(tokens)
        self.queued = []
        return logits, out[-1:]

    @torch.inference_mode()
    def flush(self) -> None:
        if self.queued:
            self._run_queued()

    @torch.inference_mode()
    def draft(self, last: int, context: list[int], n: int,
              worth: Callable[[int, float], bool] | None = None) -> list[int]:
        """Up to n greedy drafts. With `worth`, the draft stops before the first position i
        (0-based) for which worth(i, reach) is false, reach being the head's own probability that
        every draft up to i is right (the product of its top probabilities): its confidence tracks
        how often a draft is accepted, so unlikely drafts are not sent to verification."""
        if n <= 0:
            return []
        start = len(context)
        logits, h = self._run_queued(last)  # catching up and the first draft step in one pass
        drafts: list[int] = []
        reach = 1.0
        for i in range(n):
            if i:
                ids = torch.tensor([drafts[-1]], dtype=torch.long, device=self.head.device)
                logits, h = self.head(ids, h, start + i, self.cache, logits_for="last")
            row = logits[-1]
            index = int(torch.argmax(row))
            if worth is not None:
                reach *= float(torch.softmax(row.float(), dim=-1)[index])
                if not worth(i, reach):
                    break
            drafts.append(self.head.token_id(index))
        self.cache.truncate(start)  # the verify pass rebuilds these rows from the trunk's hidden states
        return drafts


class NgramDrafter:
    """Prompt lookup: find the latest earlier occurrence of the context's last k tokens (longest k
    first) and propose what followed it. Agents re-emit long spans of files they have just read.

    The n-grams of the context are indexed as tokens are kept (a dict per step, not a scan of a
    long context), keyed by hash and checked on lookup."""

    name = "ngram"

    def __init__(self, min_match: int = 2, max_match: int = 6):
        self.min_match, self.max_match = min_match, max_match
        self.last_match = 0  # length of the n-gram the latest draft came from
        self.tokens: list[int] = []  # what the index covers: the model's cached tokens
        self.ends: dict[tuple[int, int], int] = {}  # (k, hash of a k-gram) -> where its latest occurrence ends

    def max_keep(self) -> int:
        return 1 << 62

    def truncate(self, n_tokens: int) -> None:
        if n_tokens < len(self.tokens):  # a new prompt that diverges: index it again from scratch
            kept = self.tokens[:n_tokens]
            self.tokens, self.ends = [], {}
            self._extend(kept)

    def observe(self, tokens: list[int], start: int, hidden: torch.Tensor) -> None:
        self.truncate(start)
        self._extend(tokens)

    def _extend(self, tokens: list[int]) -> None:
        seq, ends = self.tokens, self.ends
        for t in tokens:
            seq.append(t)
            end = len(seq)
            for k in range(self.min_match, min(self.max_match, end) + 1):
                ends[k, hash(tuple(seq[end - k : end]))] = end

    def draft(self, last: int, context: list[int], n: int) -> list[int]:
        if len(self.tokens) > len(context) or (self.tokens and self.tokens[-1] != context[len(self.tokens) - 1]):
            self.tokens, self.ends = [], {}  # not fed by observe (used on its own): index the context
        self._extend(context[len(self.tokens):])
        self.last_match = 0
        # the context followed by `last`, without copying a long context
        for k in range(min(self.max_match, len(context)), self.min_match - 1, -1):
            pattern = context[len(context) - k + 1 :] + [last]
            end = self.ends.get((k, hash(tuple(pattern))))
            if end is not None and context[end - k : end] == pattern:
                self.last_match = k
                return (context[end : end + n] + [last])[:n]
        return []


class StepCosts:
    """What a step costs on this machine, measured as decoding runs: the verify pass by number of
    rows (model forward + sampling), and a draft token by drafter (moving averages, seconds).

    On a GPU a verify row is almost free; on a CPU, where the kernels are compute-bound, each row
    costs a sizeable share of a token, and drafting must be right more often to pay off."""

    EXTRA_ROW_GUESS = 0.15  # an unmeasured row count: each row beyond one costs this share of a one-row pass

    def __init__(self, decay: float = 0.9):
        self.decay = decay
        self.verify: dict[int, float] = {}
        self.draft: dict[str, float] = {}

    def _average(self, table: dict, key, seconds: float) -> None:
        old = table.get(key)
        table[key] = seconds if old is None else self.decay * old + (1 - self.decay) * seconds

    def observe_verify(self, rows: int, seconds: float) -> None:
        self._average(self.verify, rows, seconds)

    def observe_draft(self, drafter: str, n_tokens: int, seconds: float) -> None:
        if n_tokens:
            self._average(self.draft, drafter, seconds / n_tokens)

    def verify_seconds(self, rows: int) -> float | None:
        """Measured, or on the line through the nearest measured row counts; None before any."""
        if rows in self.verify:
            return self.verify[rows]
        known = sorted(self.verify)
        if not known:
            return None
        if len(known) == 1:
            (k, t), = self.verify.items()
            one = t / (1 + self.EXTRA_ROW_GUESS * (k - 1))
            return one * (1 + self.EXTRA_ROW_GUESS * (rows - 1))
        below = [k for k in known if k < rows]
        above = [k for k in known if k > rows]
        if below and above:  # between two measured counts
            a, b = below[-1], above[0]
        elif below:  # past the largest: the line through the last two
            a, b = known[-2], known[-1]
        else:  # under the smallest: the line through the first two
            a, b = known[0], known[1]
        slope = (self.verify[b] - self.verify[a]) / (b - a)
        return max(self.verify[a] + slope * (rows - a), 1e-9)

    def step_seconds(self, drafter: str, n: int) -> float | None:
        verify = self.verify_seconds(n + 1)
        return None if verify is None else verify + n * self.draft.get(drafter, 0.0)


class AdaptiveLength:
    """`auto` mode's draft length. Per draft position, a moving average of how often a draft there
    is accepted given that the ones before it were; the chance that position i is reached and
    accepted is the product up to i. With measured step costs, the length is the one with the most
    tokens per second: (1 + expected accepted drafts) / (verify pass + draft steps), 0 when not
    drafting is fastest; before any measurement, positions are drafted while that chance is at
    least `keep_above`. A fully accepted draft also counts for the position after it, so a short
    length can grow again. A drafter that is almost never right (or never worth its cost) is
    paused, with a one-token probe every `probe_every` steps."""

    def __init__(self, n_max: int, keep_above: float = 0.25, decay: float = 0.8, start: float = 0.8,
                 pause_below: float = 0.1, probe_every: int = 8, costs: StepCosts | None = None, name: str = ""):
        self.n_max, self.keep_above, self.decay = n_max, keep_above, decay
        self.pause_below, self.probe_every = pause_below, probe_every
        self.costs, self.name = costs, name
        self.rate = [start] * n_max  # optimistic, so that every position gets tried
        self.paused_steps = 0

    def _probe(self) -> int:
        self.paused_steps += 1
        return 1 if self.paused_steps % self.probe_every == 0 else 0

    def _reach(self) -> list[float]:
        """reach[i]: the chance that draft position i+1 is reached and accepted."""
        reach, chance = [], 1.0
        for rate in self.rate:
            chance *= rate
            reach.append(chance)
        return reach

    def best(self) -> tuple[int, float] | None:
        """The draft length with the most expected tokens per second and that rate (length 0:
        plain decoding is fastest); None before any step has been timed."""
        plain = self.costs.step_seconds(self.name, 0) if self.costs else None
        if plain is None:
            return None
        reach = self._reach()
        best, best_rate = 0, 1.0 / plain
        for n in range(1, self.n_max + 1):
            rate = (1 + sum(reach[:n])) / self.costs.step_seconds(self.name, n)
            if rate > best_rate * 1.01:  # a longer draft must be clearly better
                best, best_rate = n, rate
        return best, best_rate

    def length(self) -> int:
        if self.rate[0] < self.pause_below:
            return self._probe()
        best = self.best()
        if best is None:
            reach, n = self._reach(), 0
            while n < self.n_max and reach[n] >= self.keep_above:
                n += 1
            return max(n, 1)
        return best[0] if best[0] else self._probe()

    def _move(self, i: int, accepted: bool) -> None:
        self.rate[i] = self.decay * self.rate[i] + (1 - self.decay) * float(accepted)

    def update(self, n_drafted: int, n_accepted: int) -> None:
        n_drafted = min(n_drafted, self.n_max)  # a strong n-gram match may run past n_max
        for i in range(min(n_accepted + 1, n_drafted)):  # positions after the first rejection were not tested
            self._move(i, i < n_accepted)
        if n_accepted >= n_drafted and n_drafted < self.n_max:
            self._move(n_drafted, True)
        if n_accepted and self.rate[0] < self.pause_below:
            self.rate[0] = self.pause_below  # a probe that hits resumes drafting


@dataclass(kw_only=True)
class SpeculativeLoop(TokenLoop):
    """The token loop with drafting: each step verifies a draft and may emit several tokens."""

    drafters: list[Drafter]
    n_max: int = 3
    adaptive: bool = False
    spec: SpecStats = field(default_factory=SpecStats)
    trace: list[tuple[list[int], int]] = field(default_factory=list)  # per verify step: drafts, accepted
    lengths: dict[str, AdaptiveLength] = field(default_factory=dict)  # per drafter, in adaptive mode
    costs: StepCosts = field(default_factory=StepCosts)  # kept by the engine across generations

    def _adaptive(self, key: str) -> AdaptiveLength:
        if key not in self.lengths:
            n_max = MAX_DRAFT if key == STRONG_LOOKUP else self.n_max
            self.lengths[key] = AdaptiveLength(n_max, costs=self.costs, name=key)
        return self.lengths[key]

    def _length(self, drafter: str, budget: int) -> int:
        return min(self._adaptive(drafter).length() if self.adaptive else self.n_max, budget)

    def _draft(self, last: int, budget: int) -> tuple[list[int], str, str]:
        """(drafts, drafter, the key of its adaptive length). The first drafter with a proposal
        wins, except that a weak n-gram match yields to the drafters after it (in `auto`: when
        their drafts are expected to give more tokens per second, their cost included), and a
        strong one (an agent re-emitting a file) may run past n_max — in `auto`, as far as its own
        record and the measured costs justify."""
        if budget <= 0:
            return [], "none", "none"
        fallback: tuple[list[int], str, str] = ([], "none", "none")
        for drafter in self.drafters:
            if isinstance(drafter, NgramDrafter):
                looked_up = drafter.draft(last, self.cache.tokens, min(MAX_DRAFT, budget))
                if looked_up and drafter.last_match >= STRONG_MATCH:
                    if not self.adaptive:
                        return looked_up, drafter.name, drafter.name
                    n = self._adaptive(STRONG_LOOKUP).length()
                    if n:
                        return looked_up[:n], drafter.name, STRONG_LOOKUP
                    continue  # strong matches have not been paying off lately: no lookup this step
                if looked_up and not fallback[0]:
                    fallback = looked_up[: self._length(drafter.name, budget)], drafter.name, drafter.name
                continue
            if fallback[0] and self.adaptive and self._lookup_pays_as_well(fallback[1], drafter.name):
                return fallback
            started = time.perf_counter()
            n = self._length(drafter.name, budget)
            if self.adaptive and isinstance(drafter, MTPDrafter):
                drafts = drafter.draft(last, self.cache.tokens, n, worth=self._worth_verifying)
            else:
                drafts = drafter.draft(last, self.cache.tokens, n)
            self.costs.observe_draft(drafter.name, len(drafts), time.perf_counter() - started)
            if drafts:
                return drafts, drafter.name, drafter.name
        return fallback

    def _lookup_pays_as_well(self, lookup: str, other: str) -> bool:
        """Whether a weak lookup draft is expected to give at least as many tokens per second as
        the other drafter's (lookup drafts cost nothing to make; a head's steps do); before any
        step is timed, whether lookup has been accepted as often."""
        mine, theirs = self._adaptive(lookup), self._adaptive(other)
        mine_best, theirs_best = mine.best(), theirs.best()
        if mine_best is None or theirs_best is None:
            return mine.rate[0] >= theirs.rate[0]
        return mine_best[1] >= theirs_best[1]

    def _worth_verifying(self, position: int, reach: float) -> bool:
        """Whether a draft at `position` (0-based), right with probability `reach` by the drafter's
        own estimate, is worth its verify row: it must be expected to give at least the share of a
        token that the row costs (~25% on a CPU, almost nothing on a GPU)."""
        one = self.costs.verify_seconds(1)
        if one is None:
            return True
        rows = position + 2
        return reach >= (self.costs.verify_seconds(rows) - self.costs.verify_seconds(rows - 1)) / one

    def observers(self) -> list[Drafter]:
        return self.drafters

    def next_tokens(self, last: int, history: list[int]) -> list[int]:
        remaining = self.max_new_tokens - self.stats.generated_tokens
        drafts, drafter, length_key = self._draft(last, remaining - 1)
        return self._verify(last, drafts, drafter, history, length_key)

    @torch.inference_mode()
    def _verify(self, last: int, drafts: list[int], drafter: str, history: list[int], length_key: str) -> list[int]:
        """Run [last, drafts...] through the model, keep what the samples agree with; returns the
        accepted drafts followed by the model's own next token."""
        cache, position = self.cache, self.cache.length
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
            sample = self.sampler(logits[i], history)
            history.append(sample)
            if i == len(drafts) or sample != drafts[i]:
                break
        emitted = history[emitted_from:]
        del history[emitted_from:]
        self.costs.observe_verify(len(rows), time.perf_counter() - started)
        accepted = len(emitted) - 1
        cache.truncate(position + accepted + 1)  # rejected drafts leave no trace
        for d in self.drafters:
            d.observe(rows[: accepted + 1], position, hidden[: accepted + 1])
        if drafts:
            self.spec.record(len(drafts), accepted, drafter)
            if self.adaptive:
                self._adaptive(length_key).update(len(drafts), accepted)
        else:
            self.spec.verify_steps += 1
        self.trace.append((list(drafts), accepted))
        return emitted
