"""The qwen35 fixtures (copied from ../shared/fixtures/qwen35 into tests/fixtures/) (tiny GGUF files made by llama.cpp's converter) and their references."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "qwen35"


@dataclass(frozen=True)
class Case:
    model: str  # the GGUF file, without .gguf
    ref: str  # its reference npz, without .npz
    quantized: bool = False

    @property
    def path(self) -> Path:
        if not FIXTURES.is_dir():
            raise FileNotFoundError(f"the qwen35 fixtures are missing: expected them in {FIXTURES}")
        return FIXTURES / f"{self.model}.gguf"

    def __str__(self) -> str:
        return self.model


F32_CASES = [
    Case("qwen35-dense-F32", "qwen35-dense-ref"),
    Case("qwen35-dense-trunk-F32", "qwen35-dense-ref"),  # finds mtp-qwen35-dense-F32.gguf next to it
    Case("qwen35moe-F32", "qwen35moe-ref"),
    Case("qwen35moe-trunk-F32", "qwen35moe-ref"),
    Case("qwen35-dense-mtpfit-F32", "qwen35-dense-mtpfit-ref"),
]
QUANTIZED_CASES = [
    Case("qwen35-dense-Q8_0", "qwen35-dense-Q8_0-ref", True),
    Case("qwen35-dense-Q4_K_M", "qwen35-dense-Q4_K_M-ref", True),
    Case("qwen35moe-Q8_0", "qwen35moe-Q8_0-ref", True),
    Case("qwen35-dense-q4k-Q4_K_M", "qwen35-dense-q4k-Q4_K_M-ref", True),
]
ALL_CASES = F32_CASES + QUANTIZED_CASES


@lru_cache(maxsize=None)
def reference(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


def ids(ref: dict[str, np.ndarray], key: str) -> list[int]:
    return [int(t) for t in ref[key]]


def max_diff(a: torch.Tensor, b: np.ndarray) -> float:
    return (a.double() - torch.from_numpy(b).double()).abs().max().item()


def spec_steps(ref: dict[str, np.ndarray]) -> list[tuple[list[int], int]]:
    """The reference simulation's verify steps: (drafts without the -1 padding, accepted)."""
    return [([int(t) for t in row if t >= 0], int(a)) for row, a in zip(ref["spec_drafts"], ref["spec_accepted"])]


def run_with_trace(engine, prompt: list[int], n: int = 24):
    """Greedy generation of n tokens (EOS not special): the completion and the token loop, whose
    `trace` lists every verify step."""
    generation = engine.stream(prompt, max_new_tokens=n, ignore_eos=True)
    return generation.collect(), generation.loop
