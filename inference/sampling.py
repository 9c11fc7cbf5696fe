"""Turning logits into the next token: greedy, or a seeded draw after llama.cpp's chain of
filters (repetition penalty -> top-k -> top-p -> min-p -> temperature)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import EngineError


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0 means greedy
    top_k: int = 0  # 0 disables
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    repetition_window: int = 64  # how many recent tokens the penalty looks at
    seed: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.temperature < 0:
            problems.append(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            problems.append(f"top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.min_p < 1:
            problems.append(f"min_p must be in [0, 1), got {self.min_p}")
        if self.repetition_penalty <= 0:
            problems.append(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if problems:
            raise EngineError("; ".join(problems))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def apply_repetition_penalty(logits: torch.Tensor, history: list[int], params: SamplingParams) -> torch.Tensor:
    if params.repetition_penalty == 1.0 or not history:
        return logits
    recent = torch.tensor(sorted(set(history[-params.repetition_window:])), device=logits.device)
    logits = logits.clone()
    picked = logits[recent]
    logits[recent] = torch.where(picked > 0, picked / params.repetition_penalty, picked * params.repetition_penalty)
    return logits


def filtered_distribution(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Probabilities [vocab] after top-k, top-p and min-p (measured before temperature, as
    llama.cpp does) and then temperature."""
    logits = logits.float()
    if params.top_k and params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1.0 or params.min_p > 0.0:
        probs = torch.softmax(logits, dim=-1)
        if params.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass ranked above each token
            drop = torch.zeros_like(probs, dtype=torch.bool)
            drop[order] = before >= params.top_p
            logits = logits.masked_fill(drop, float("-inf"))
        if params.min_p > 0.0:
            logits = logits.masked_fill(probs < params.min_p * probs.max(), float("-inf"))
    return torch.softmax(logits / params.temperature, dim=-1)


class Sampler:
    def __init__(self, params: SamplingParams):
        self.params = params
        self.generator = None
        if not params.greedy:  # draws happen on the CPU, so a seed gives the same text on every device
            self.generator = torch.Generator(device="cpu")
            if params.seed is not None:
                self.generator.manual_seed(params.seed)
            else:
                self.generator.seed()

    def __call__(self, logits: torch.Tensor, history: list[int]) -> int:
        logits = apply_repetition_penalty(logits, history, self.params)
        if self.params.greedy:
            return int(torch.argmax(logits))
        probs = filtered_distribution(logits, self.params).cpu()
        return int(torch.multinomial(probs, 1, generator=self.generator))
