"""What speculative decoding did in one generation: tokens drafted and accepted, per draft position
and per drafter, and the memory it holds (reported as `completion.stats.speculative`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SpecStats:
    mode: str = "off"
    drafted: int = 0
    accepted: int = 0
    verify_steps: int = 0
    drafted_at: list[int] = field(default_factory=list)  # per draft position: how often a token was proposed there
    accepted_at: list[int] = field(default_factory=list)  # ... and accepted
    drafts_by: dict[str, int] = field(default_factory=dict)  # which drafter proposed how many tokens
    accepted_by: dict[str, int] = field(default_factory=dict)  # ... and how many of them were accepted
    mtp_weight_bytes: int = 0
    mtp_kv_bytes: int = 0
    snapshot_bytes: int = 0

    def record(self, n_drafted: int, n_accepted: int, drafter: str) -> None:
        self.verify_steps += 1
        self.drafted += n_drafted
        self.accepted += n_accepted
        self.drafts_by[drafter] = self.drafts_by.get(drafter, 0) + n_drafted
        self.accepted_by[drafter] = self.accepted_by.get(drafter, 0) + n_accepted
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
                "accepted_by": dict(self.accepted_by),
                "mtp_weight_bytes": self.mtp_weight_bytes, "mtp_kv_bytes": self.mtp_kv_bytes,
                "snapshot_bytes": self.snapshot_bytes}
