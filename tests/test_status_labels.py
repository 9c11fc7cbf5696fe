"""Honest labels (issue 21 item 5): `MTP` only for drafts from an MTP head, prompt-lookup drafts
named as such, in the status line, /stats and the events."""

from __future__ import annotations

from agent.backends.base import TurnStats
from agent.core.events import StatsEvent
from agent.frontends.interactive import Status
from agent.frontends.tui.widgets import status_text
from inference.speculative.stats import SpecStats


def test_drafts_are_counted_per_drafter():
    spec = SpecStats(mode="auto")
    spec.record(4, 3, "mtp")
    spec.record(5, 1, "ngram")
    assert spec.as_dict()["drafts_by"] == {"mtp": 4, "ngram": 5}
    assert spec.as_dict()["accepted_by"] == {"mtp": 3, "ngram": 1}


def test_the_status_line_says_mtp_only_for_the_mtp_heads_drafts():
    lookup_only = status_text(Status(model="m", drafted=10, accepted=4)).plain
    assert "MTP" not in lookup_only and "lookup 40% (4/10)" in lookup_only
    both = status_text(Status(model="m", drafted=10, accepted=7, mtp_drafted=6, mtp_accepted=6)).plain
    assert "MTP 100% (6/6)" in both and "lookup 25% (1/4)" in both
    assert "MTP" not in status_text(Status(model="m")).plain and "lookup" not in status_text(Status(model="m")).plain


def test_stats_events_carry_the_mtp_share():
    event = StatsEvent(1, TurnStats(drafted_tokens=9, accepted_tokens=5, mtp_drafted_tokens=4, mtp_accepted_tokens=3))
    assert {k: event.as_dict()[k] for k in ("drafted_tokens", "mtp_drafted_tokens", "mtp_accepted_tokens")} == \
        {"drafted_tokens": 9, "mtp_drafted_tokens": 4, "mtp_accepted_tokens": 3}
