"""Speculative decoding: drafters propose a few tokens (drafters.py), the policy picks a draft and
its length (policy.py), the loop verifies it in one forward pass and rolls back the rest (loop.py),
and SpecStats reports what happened (stats.py).

Drafters: the model's MTP head (following llama.cpp's draft-mtp timeline, so its drafts equal the
reference), prompt lookup (n-grams of the context, for any model), a smaller draft model of the same
vocabulary, or several of them.
"""

from .drafters import (MODEL, STRONG, STRONG_LOOKUP, STRONG_MATCH, WEAK, Draft, Drafter, DraftModelDrafter, MTPDrafter,
                       NgramDrafter, Worth)
from .loop import SpeculativeLoop
from .policy import MAX_DRAFT, MODES, AdaptiveLength, DraftPolicy, StepCosts
from .stats import SpecStats

__all__ = ["MAX_DRAFT", "MODEL", "MODES", "STRONG", "STRONG_LOOKUP", "STRONG_MATCH", "WEAK", "AdaptiveLength", "Draft",
           "DraftModelDrafter", "DraftPolicy", "Drafter", "MTPDrafter", "NgramDrafter", "SpecStats", "SpeculativeLoop", "StepCosts", "Worth"]
