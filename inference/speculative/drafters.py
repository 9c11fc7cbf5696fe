"""Drafters: what proposes the tokens a verify pass checks. Every drafter has one lifecycle (follow
the model's cache through truncate / observe, then draft) and answers with a `Draft` record; the
model's MTP head and prompt lookup are here, a small draft model would be one more."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Protocol

import torch

from ..kv_cache import KVCache
from ..mtp import MTPHead

# what kind of proposal a draft is; the policy trusts a strong lookup match over a model's draft,
# and lets a weak one yield to the drafters after it
MODEL = "model"
STRONG = "strong"
WEAK = "weak"

STRONG_MATCH = 3  # n-gram length from which prompt lookup is trusted over the MTP head
STRONG_LOOKUP = "ngram:strong"  # the adaptive length of strong lookup matches, kept apart from weak ones

# worth(i, reach): whether draft position i (0-based), right with probability `reach` by the
# drafter's own estimate, is worth a verify row
Worth = Callable[[int, float], bool]


@dataclass(frozen=True)
class Draft:
    tokens: list[int]
    drafter: str  # who proposed it (SpecStats.drafts_by)
    length_key: str  # the adaptive length that measures drafts like it
    kind: str = MODEL  # MODEL, or a lookup's STRONG / WEAK match
    # per position: the drafter's probability that the draft is right up to there; None when it has
    # no such estimate or was not asked for one (no `worth` gate)
    confidence: list[float] | None = None

    def cut(self, n: int) -> Draft:
        return replace(self, tokens=self.tokens[:n],
                       confidence=None if self.confidence is None else self.confidence[:n])


class Drafter(Protocol):
    name: str
    # drafts cost nothing to make (a lookup): the drafter is asked for the most tokens a verify pass
    # takes and the policy cuts the draft by its kind; otherwise it is asked for its adaptive
    # length, timed, and offered the confidence gate
    free: bool

    def max_keep(self) -> int:
        """How much of the model's cache this drafter can follow without recomputation."""

    def truncate(self, n_tokens: int) -> None: ...

    def observe(self, tokens: list[int], start: int, hidden: torch.Tensor) -> None:
        """The model just ran (and keeps) `tokens` at positions start..; hidden: their post-norm states."""

    def draft(self, last: int, context: list[int], n: int, worth: Worth | None = None) -> Draft:
        """Up to n tokens to follow `last`, which comes after `context` (the cached tokens); with
        `worth`, a drafter that knows its confidence stops before the first position not worth it."""


class MTPDrafter:
    """llama.cpp's draft-mtp: the head's cache row p holds (token p, trunk hidden of p-1); drafts
    are greedy; step i > 1 feeds the head its own output hidden state.

    Rows the model keeps are queued and run through the head in one batch when the next draft
    needs them (or once FLUSH_ROWS are queued, so a prefill chunk runs at once): a head that is
    paused by the adaptive length then costs almost nothing."""

    name = "mtp"
    free = False
    FLUSH_ROWS = 64

    def __init__(self, head: MTPHead, max_tokens: int, dtype: torch.dtype, kv_type: str = "auto"):
        self.head = head
        self.cache: KVCache = head.new_cache(max_tokens, dtype, kv_type)
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
    def draft(self, last: int, context: list[int], n: int, worth: Worth | None = None) -> Draft:
        """Up to n greedy drafts. With `worth`, the draft stops before the first position i
        (0-based) for which worth(i, reach) is false, reach being the head's own probability that
        every draft up to i is right (the product of its top probabilities): its confidence tracks
        how often a draft is accepted, so unlikely drafts are not sent to verification."""
        if n <= 0:
            return Draft([], self.name, self.name)
        start = len(context)
        logits, h = self._run_queued(last)  # catching up and the first draft step in one pass
        drafts: list[int] = []
        reaches: list[float] = []
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
                reaches.append(reach)
            drafts.append(self.head.token_id(index))
        self.cache.truncate(start)  # the verify pass rebuilds these rows from the trunk's hidden states
        return Draft(drafts, self.name, self.name, MODEL, reaches if worth is not None else None)


class NgramDrafter:
    """Prompt lookup: find the latest earlier occurrence of the context's last k tokens (longest k
    first) and propose what followed it. Agents re-emit long spans of files they have just read.

    The n-grams of the context are indexed as tokens are kept (a dict per step, not a scan of a
    long context), keyed by hash and checked on lookup."""

    name = "ngram"
    free = True

    def __init__(self, min_match: int = 2, max_match: int = 6):
        self.min_match, self.max_match = min_match, max_match
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

    def draft(self, last: int, context: list[int], n: int, worth: Worth | None = None) -> Draft:
        """What followed the longest match, STRONG from STRONG_MATCH tokens on (with an adaptive
        length of its own), else WEAK. A lookup has no confidence of its own: `worth` is unused."""
        if len(self.tokens) > len(context) or (self.tokens and self.tokens[-1] != context[len(self.tokens) - 1]):
            self.tokens, self.ends = [], {}  # not fed by observe (used on its own): index the context
        self._extend(context[len(self.tokens):])
        # the context followed by `last`, without copying a long context
        for k in range(min(self.max_match, len(context)), self.min_match - 1, -1):
            pattern = context[len(context) - k + 1 :] + [last]
            end = self.ends.get((k, hash(tuple(pattern))))
            if end is not None and context[end - k : end] == pattern:
                tokens = (context[end : end + n] + [last])[:n]
                if k >= STRONG_MATCH:
                    return Draft(tokens, self.name, STRONG_LOOKUP, STRONG)
                return Draft(tokens, self.name, self.name, WEAK)
        return Draft([], self.name, self.name, WEAK)


class DraftModelDrafter:
    """A smaller model of the same vocabulary drafts greedily (llama.cpp's -md), with a KV cache of
    its own. Tokens the main model keeps are queued and run through the draft model in one batch
    when the next draft needs them; its rows for drafts the main model then accepts are kept, so
    an accepted draft costs the draft model nothing more."""

    name = "draft"
    free = False
    FLUSH_ROWS = 64

    def __init__(self, model: torch.nn.Module, max_tokens: int, dtype: torch.dtype, kv_type: str = "auto"):
        self.model = model
        self.cache: KVCache = model.new_cache(max_tokens, dtype, kv_type)
        self.queued: list[int] = []  # kept by the main model, not yet run through the draft model

    @property
    def observed(self) -> int:
        return self.cache.length + len(self.queued)

    def max_keep(self) -> int:
        return self.observed

    def truncate(self, n_tokens: int) -> None:
        if n_tokens < self.cache.length:
            self.cache.truncate(n_tokens)
            self.queued = []
        else:
            del self.queued[n_tokens - self.cache.length:]

    def observe(self, tokens: list[int], start: int, hidden: torch.Tensor) -> None:
        if start < self.cache.length:  # rows run for this model's own drafts: keep those the main model kept
            same = 0
            for cached, kept in zip(self.cache.tokens[start:], tokens):
                if cached != kept:
                    break
                same += 1
            self.cache.truncate(start + same)
            self.queued = []
            tokens = tokens[same:]
        else:
            self.truncate(start)
        self.queued.extend(tokens)
        if len(self.queued) >= self.FLUSH_ROWS:
            self.flush()

    def _run(self, tokens: list[int]) -> torch.Tensor:
        """Run tokens at the end of the cache (they stay in it); the last one's logits."""
        self.cache.check_room(len(tokens))
        ids = torch.tensor(tokens, dtype=torch.long, device=self.model.device)
        logits, _ = self.model(ids, self.cache.length, self.cache, "last")
        self.cache.tokens.extend(tokens)
        return logits[-1]

    @torch.inference_mode()
    def flush(self) -> None:
        if self.queued:
            tokens, self.queued = self.queued, []
            self._run(tokens)

    @torch.inference_mode()
    def draft(self, last: int, context: list[int], n: int, worth: Worth | None = None) -> Draft:
        """Up to n greedy drafts after `last`, gated by `worth` on the draft model's own
        probability that every draft so far is right (as the MTP head's)."""
        if n <= 0:
            return Draft([], self.name, self.name)
        self.truncate(len(context))
        tokens, self.queued = self.queued + [last], []
        drafts: list[int] = []
        reaches: list[float] = []
        reach = 1.0
        for i in range(n):
            row = self._run(tokens)
            index = int(torch.argmax(row))
            if worth is not None:
                reach *= float(torch.softmax(row, dim=-1)[index])
                if not worth(i, reach):
                    break
                reaches.append(reach)
            drafts.append(index)
            tokens = [index]
        return Draft(drafts, self.name, self.name, MODEL, reaches if worth is not None else None)
