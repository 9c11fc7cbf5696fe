"""Grammar-constrained decoding with llguidance: a Lark grammar decides which tokens may come next.

The token loop asks `allowed()` about the token it sampled and only computes the full mask over
the vocabulary when that token is refused; this is exact for greedy decoding and for sampling
(a refused draw is redrawn from the masked distribution, which gives each allowed token its
probability renormalised). Drafts are cut at the first token the grammar refuses before they are
verified, and the grammar advances only with emitted tokens, so nothing needs to be rolled back.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from .errors import EngineError
from .tokenizer import CONTROL, Tokenizer


def _llguidance() -> Any:
    try:
        import llguidance
    except ImportError as e:  # a declared dependency; only a broken install lacks it
        raise EngineError("constrained decoding needs the 'llguidance' package: pip install llguidance, "
                          "or turn constraints off (--no-constrain)") from e
    return llguidance


class _VocabularyView:
    """What llguidance's TokenizerWrapper reads: every token's bytes, the special (control)
    tokens, EOS, and an encoder. User-defined tokens such as `<tool_call>` count as text, so a
    grammar's literal "<tool_call>" matches that token or the same bytes spelt in pieces."""

    def __init__(self, tokenizer: Tokenizer):
        self._tokenizer = tokenizer
        ends = sorted(tokenizer.end_of_generation)
        self.eos_token_id = tokenizer.special.eot if tokenizer.special.eot is not None else (ends[0] if ends else 0)
        self.bos_token_id = tokenizer.special.bos
        self.tokens = list(tokenizer.id_to_bytes)
        self.special_token_ids = sorted(tokenizer.control_ids)

    def __call__(self, text: str | bytes) -> list[int]:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        return self._tokenizer.encode(text)


@lru_cache(maxsize=4)
def grammar_tokenizer(tokenizer: Tokenizer) -> Any:
    """llguidance's view of a vocabulary (built once per tokenizer: it indexes every token)."""
    ll = _llguidance()
    view = _VocabularyView(tokenizer)
    # each end-of-generation token ends a grammar's accepted text
    return ll.LLTokenizer(ll.TokenizerWrapper(view), n_vocab=tokenizer.vocab_size,
                          eos_token=sorted(tokenizer.end_of_generation) or None)


class GrammarConstraint:
    """One generation's grammar state: which tokens may come next, advanced token by token."""

    def __init__(self, tokenizer: Tokenizer, grammar: str):
        ll = _llguidance()
        self.vocab_size = tokenizer.vocab_size
        self.end_tokens = tokenizer.end_of_generation
        self.matcher = ll.LLMatcher(grammar_tokenizer(tokenizer), grammar, log_level=0)
        if self.matcher.is_error():
            raise EngineError(f"the grammar cannot be used: {self.matcher.get_error()}")
        self._bit = torch.arange(32, dtype=torch.int32)
        self.mask_computations = 0

    def allowed(self, token: int) -> bool:
        if self.matcher.is_stopped():  # the grammar is complete: only the end of the turn may follow
            return token in self.end_tokens
        return self.matcher.validate_tokens([token]) == 1

    def valid_prefix(self, tokens: list[int]) -> int:
        """How many leading `tokens` the grammar accepts from its current state (not consumed)."""
        if not tokens:
            return 0
        if self.matcher.is_stopped():
            return int(tokens[0] in self.end_tokens)
        return self.matcher.validate_tokens(tokens)

    def advance(self, token: int) -> None:
        if self.matcher.is_stopped() and token in self.end_tokens:
            return
        if not self.matcher.consume_token(token):
            raise EngineError(f"token {token} was emitted against the grammar: {self.matcher.get_error()}")

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """`logits` with every token the grammar refuses at -inf."""
        self.mask_computations += 1
        words = torch.frombuffer(bytearray(self.matcher.compute_bitmask()), dtype=torch.int32)
        allowed = ((words.unsqueeze(1) >> self._bit) & 1).flatten()[: self.vocab_size].bool()
        if not bool(allowed.any()):
            raise EngineError(f"the grammar allows no token here: {self.matcher.get_error() or 'dead end'}")
        allowed = allowed.to(logits.device)
        masked = logits.clone()
        masked[: allowed.shape[0]].masked_fill_(~allowed, float("-inf"))
        if masked.shape[0] > allowed.shape[0]:  # padded output rows beyond the vocabulary
            masked[allowed.shape[0]:] = float("-inf")
        return masked
