"""How much to draft and whose draft to verify: the measured cost of a step (StepCosts), the
adaptive draft length per drafter (AdaptiveLength), the confidence gate, and the choice between
the drafters' proposals (DraftPolicy)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from .drafters import STRONG, WEAK, Draft, Drafter

MODES = ("auto", "mtp", "ngram", "draft", "off")
MAX_DRAFT = 7  # a verify batch of up to 8 rows stays on the same kernels as a single-token step
NO_DRAFT = Draft([], "none", "none")


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


@dataclass
class DraftPolicy:
    """Which drafter's proposal a step verifies, and how long it is: `n_max` tokens, or in
    `adaptive` (`auto`) mode each drafter's AdaptiveLength, weighed with the measured `costs`."""

    n_max: int = 3
    adaptive: bool = False
    costs: StepCosts = field(default_factory=StepCosts)  # kept by the engine across generations
    lengths: dict[str, AdaptiveLength] = field(default_factory=dict)  # by Draft.length_key, in adaptive mode

    def adaptive_length(self, key: str, strong: bool = False) -> AdaptiveLength:
        """The adaptive length of the drafts measured as `key`; those of strong lookup matches may
        run to MAX_DRAFT, past n_max."""
        if key not in self.lengths:
            self.lengths[key] = AdaptiveLength(MAX_DRAFT if strong else self.n_max, costs=self.costs, name=key)
        return self.lengths[key]

    def _length(self, key: str, budget: int) -> int:
        return min(self.adaptive_length(key).length() if self.adaptive else self.n_max, budget)

    def choose(self, drafters: Sequence[Drafter], last: int, context: list[int], budget: int) -> Draft:
        """The draft to verify after `last`, at most `budget` tokens. The first drafter with a
        proposal wins, except that a weak lookup match yields to the drafters after it (in `auto`:
        when their drafts are expected to give more tokens per second, their cost included), and a
        strong one (an agent re-emitting a file) may run past n_max — in `auto`, as far as its own
        record and the measured costs justify."""
        if budget <= 0:
            return NO_DRAFT
        fallback = NO_DRAFT
        for drafter in drafters:
            if fallback.tokens and self.adaptive and self.lookup_pays_as_well(fallback.length_key, drafter.name):
                return fallback
            proposal = self._ask(drafter, last, context, budget)
            if not proposal.tokens:
                continue
            if proposal.kind == STRONG:
                if not self.adaptive:
                    return proposal
                n = self.adaptive_length(proposal.length_key, strong=True).length()
                if n:
                    return proposal.cut(n)
                continue  # strong matches have not been paying off lately: no lookup this step
            if proposal.kind == WEAK:
                if not fallback.tokens:
                    fallback = proposal.cut(self._length(proposal.length_key, budget))
                continue
            return proposal
        return fallback

    def _ask(self, drafter: Drafter, last: int, context: list[int], budget: int) -> Draft:
        if drafter.free:
            return drafter.draft(last, context, min(MAX_DRAFT, budget))
        started = time.perf_counter()
        n = self._length(drafter.name, budget)
        proposal = drafter.draft(last, context, n, worth=self.worth_verifying if self.adaptive else None)
        self.costs.observe_draft(drafter.name, len(proposal.tokens), time.perf_counter() - started)
        return proposal

    def record(self, draft: Draft, n_accepted: int) -> None:
        """What the verify pass made of a (non-empty) draft."""
        if self.adaptive:
            self.adaptive_length(draft.length_key, draft.kind == STRONG).update(len(draft.tokens), n_accepted)

    def lookup_pays_as_well(self, lookup: str, other: str) -> bool:
        """Whether a weak lookup draft is expected to give at least as many tokens per second as
        the other drafter's (lookup drafts cost nothing to make; a head's steps do); before any
        step is timed, whether lookup has been accepted as often."""
        mine, theirs = self.adaptive_length(lookup), self.adaptive_length(other)
        mine_best, theirs_best = mine.best(), theirs.best()
        if mine_best is None or theirs_best is None:
            return mine.rate[0] >= theirs.rate[0]
        return mine_best[1] >= theirs_best[1]

    def worth_verifying(self, position: int, reach: float) -> bool:
        """Whether a draft at `position` (0-based), right with probability `reach` by the drafter's
        own estimate, is worth its verify row: it must be expected to give at least the share of a
        token that the row costs (~25% on a CPU, almost nothing on a GPU)."""
        one = self.costs.verify_seconds(1)
        if one is None:
            return True
        rows = position + 2
        return reach >= (self.costs.verify_seconds(rows) - self.costs.verify_seconds(rows - 1)) / one
