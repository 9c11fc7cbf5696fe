"""Model families by GGUF `general.architecture`."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import UnsupportedModelError
from ..gguf_file import GGUFFile
from . import llama, qwen35

Loader = Callable[[GGUFFile, torch.device, torch.dtype, bool], nn.Module]

LOADERS: dict[str, Loader] = {arch: llama.load_llama for arch in llama.ARCHITECTURES}
LOADERS.update({arch: qwen35.load_qwen35 for arch in qwen35.ARCHITECTURES})


def load_model(g: GGUFFile, device: torch.device, dtype: torch.dtype, packed: bool) -> nn.Module:
    arch = g.architecture
    loader = LOADERS.get(arch)
    if loader is None:
        raise UnsupportedModelError(
            f"architecture '{arch}' of {g.path} is not supported (supported: {', '.join(sorted(LOADERS))})"
        )
    return loader(g, device, dtype, packed)
