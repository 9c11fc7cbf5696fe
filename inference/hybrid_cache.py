"""The cache of a hybrid model: attention KV for the full-attention layers, plus the Gated DeltaNet
state (the [H, dk, dv] matrix S and the conv window) of every recurrent layer.

Attention rolls back by truncation; a recurrent state cannot, so it is kept at a few positions:
- snapshots of the states after each of the last `max_rollback` tokens of the latest forward pass
  (a speculative verify batch rolls back to one of them, as llama.cpp does);
- checkpoints at the ends of the last PROMPT_CHECKPOINTS prompts, one token short of each (the
  logits of a prompt's last token are always computed), least recently used out first, a restore
  counting as a use: an agent's next turn that rewrites the end of the previous answer restarts
  from the previous prompt's end, and a workflow that goes back to an earlier message (the fix
  workflow starts each attempt from the same request) restarts from that request's end instead of
  from zero.
`restorable_prefix` says how much of a new prompt can be kept given what is stored.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from .errors import EngineError
from .kv_cache import KVCache

PROMPT_CHECKPOINTS = 4
MAX_ROLLBACK = 8  # snapshots per forward pass: a verify batch of up to 8 rows can roll back to any of them


def state_bytes(state_values: int, max_rollback: int = MAX_ROLLBACK) -> int:
    """fp32 recurrent state: the live copy, the snapshots and the prompt-end checkpoints."""
    return 4 * state_values * (1 + max_rollback + PROMPT_CHECKPOINTS)


class HybridCache(KVCache):
    def __init__(self, n_attn: int, n_head_kv: int, head_dim: int, n_recurrent: int, n_v_heads: int, dk: int, dv: int,
                 conv_dim: int, conv_kernel: int, max_tokens: int, dtype: torch.dtype, device: torch.device,
                 max_rollback: int = MAX_ROLLBACK, kv_type: str = "auto"):
        super().__init__(n_attn, n_head_kv, head_dim, max_tokens, dtype, device, kv_type)
        f32 = dict(dtype=torch.float32, device=device)
        self.ssm = torch.zeros(n_recurrent, n_v_heads, dk, dv, **f32)
        self.conv = torch.zeros(n_recurrent, conv_dim, conv_kernel - 1, **f32)
        self.max_rollback = max_rollback
        self.snap_ssm = torch.zeros(max_rollback, *self.ssm.shape, **f32)
        self.snap_conv = torch.zeros(max_rollback, *self.conv.shape, **f32)
        self.snap_lengths: list[int] = []  # cache length each snapshot slot corresponds to
        self.checkpoints: OrderedDict[int, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()  # least recently used first
        self.before_end: tuple[int, torch.Tensor, torch.Tensor] | None = None  # mark_before_prompt_end's state

    @property
    def nbytes(self) -> int:
        return super().nbytes + state_bytes(self.ssm.numel() + self.conv.numel(), self.max_rollback)

    @property
    def snapshot_bytes(self) -> int:
        return 4 * (self.ssm.numel() + self.conv.numel()) * self.max_rollback

    # -- the forward pass writes, per recurrent layer -------------------------------------------

    def snapshot_rows(self, start: int, n: int) -> int:
        """How many of the n tokens at positions start.. get a snapshot (the last ones). Called
        once per forward pass, before the layers run."""
        kept = min(n, self.max_rollback)
        self.snap_lengths = [start + n - kept + i + 1 for i in range(kept)]
        return kept

    # -- rollback -------------------------------------------------------------------------------

    def _available(self) -> set[int]:
        return {self.length, 0, *self.snap_lengths, *self.checkpoints}

    def restorable_prefix(self, tokens: list[int], limit: int | None = None) -> int:
        common = super().restorable_prefix(tokens, limit)
        return max(p for p in self._available() if p <= common)

    def truncate(self, n_tokens: int) -> None:
        if n_tokens == self.length:
            return
        if n_tokens in self.snap_lengths:
            slot = self.snap_lengths.index(n_tokens)
            self.ssm.copy_(self.snap_ssm[slot])
            self.conv.copy_(self.snap_conv[slot])
        elif n_tokens in self.checkpoints:
            ssm, conv = self.checkpoints[n_tokens]
            self.ssm.copy_(ssm)
            self.conv.copy_(conv)
            self.checkpoints.move_to_end(n_tokens)
        elif n_tokens == 0:
            self.ssm.zero_()
            self.conv.zero_()
        else:
            raise EngineError(f"the recurrent state cannot be rolled back to {n_tokens} tokens (kept: {sorted(self._available())})")
        super().truncate(n_tokens)
        self.snap_lengths = [p if p <= n_tokens else -1 for p in self.snap_lengths]
        self.checkpoints = OrderedDict((p, s) for p, s in self.checkpoints.items() if p <= n_tokens)

    def mark_before_prompt_end(self) -> None:
        self.before_end = (self.length, self.ssm.clone(), self.conv.clone())

    def mark_prompt_end(self) -> None:
        """Keep the state one token before the prompt's end: the same prompt again (a retry, a
        workflow's next attempt) recomputes only its last token, whose logits it needs, and a
        prompt that goes on from it (the answer, written back differently) one token more."""
        at = self.length - 1
        if at in self.checkpoints:
            self.checkpoints.move_to_end(at)
        elif self.before_end is not None and self.before_end[0] == at:
            self.checkpoints[at] = self.before_end[1:]
        elif at in self.snap_lengths and at > 0:
            slot = self.snap_lengths.index(at)
            self.checkpoints[at] = (self.snap_ssm[slot].clone(), self.snap_conv[slot].clone())
        self.before_end = None
        while len(self.checkpoints) > PROMPT_CHECKPOINTS:
            self.checkpoints.popitem(last=False)
